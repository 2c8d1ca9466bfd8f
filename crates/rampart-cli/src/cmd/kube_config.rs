//! `rampart kube-config`: the kube-apiserver side of the wiring.
//!
//! Prints, as one multi-document YAML stream:
//! 1. an `AuthorizationConfiguration` (Node → Rampart webhook → RBAC);
//! 2. the webhook kubeconfig it points to (server URL + CA bundle);
//! 3. a `ValidatingWebhookConfiguration` for `/v1/admit`;
//! 4. how to pass them to the apiserver on the chosen target (kind or a kubeadm-style
//!    self-managed cluster);
//! 5. and 6. with `--cluster-id`, the IAM authentication wiring;
//! 7. with `--workload-identity`, a `MutatingWebhookConfiguration` for `/v1/mutate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use rampart_server::tls::{CertSource, default_names, ensure_files};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// A kind cluster: Rampart as a static pod on the control-plane node, on loopback.
    Kind,
    /// A kubeadm-style self-managed cluster (e.g. on EC2, EKS-like): Rampart on each
    /// control-plane node (static pod or hostNetwork DaemonSet), on loopback.
    SelfManaged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailurePolicy {
    /// Deny requests when Rampart cannot be reached (fail closed). Break-glass identities
    /// (system:masters, kube-system service accounts, nodes) bypass the webhook.
    Deny,
    /// Fall through to RBAC when Rampart cannot be reached (forbids are then not enforced).
    NoOpinion,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value = "kind")]
    pub target: Target,
    /// Base URL of Rampart as the apiserver reaches it.
    #[arg(long, default_value = "https://127.0.0.1:10288")]
    pub url: String,
    /// CA bundle to trust (PEM). Default: the self-signed certificate in --cert-dir,
    /// generated now if missing, so `rampart serve --cert-dir` uses the same one.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    #[arg(long, default_value = "rampart-certs", value_name = "DIR")]
    pub cert_dir: PathBuf,
    /// Where the apiserver will find the webhook kubeconfig (document 2).
    #[arg(long, default_value = "/etc/rampart/authorization-webhook.yaml", value_name = "PATH")]
    pub webhook_kubeconfig_path: String,
    /// What the apiserver does when Rampart is unreachable.
    #[arg(long, value_enum, default_value = "deny")]
    pub failure_policy: FailurePolicy,
    /// apiVersion of AuthorizationConfiguration: v1 (Kubernetes ≥ 1.32) or v1beta1 (1.30–1.31).
    #[arg(long, default_value = "v1")]
    pub authorization_config_version: String,
    /// Also print the IAM authentication wiring for this cluster id: the apiserver's
    /// authentication-token-webhook kubeconfig and a kubectl user that runs `rampart token`.
    #[arg(long, value_name = "ID")]
    pub cluster_id: Option<String>,
    /// The cluster's API server URL, for the kubectl kubeconfig.
    #[arg(long, default_value = "https://127.0.0.1:6443")]
    pub api_server: String,
    /// Also print the MutatingWebhookConfiguration that sends pod creations to `/v1/mutate`
    /// (IRSA and Pod Identity injection; run `rampart serve --service-accounts …`).
    #[arg(long)]
    pub workload_identity: bool,
}

fn yaml_doc(comment: &str, value: &Value) -> anyhow::Result<String> {
    let body = serde_yaml::to_string(value)?;
    let comment: String = comment.lines().map(|l| format!("# {l}\n")).collect();
    Ok(format!("---\n{comment}{body}"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ca_path = match &args.ca_file {
        Some(p) => p.clone(),
        None => {
            ensure_files(&CertSource::SelfSigned { dir: args.cert_dir.clone(), names: default_names() })?.0
        }
    };
    let ca =
        std::fs::read(&ca_path).with_context(|| format!("cannot read CA bundle {}", ca_path.display()))?;
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(&ca);
    let url = args.url.trim_end_matches('/');

    let mut match_conditions =
        vec![json!({"expression": "!('system:serviceaccounts:kube-system' in request.groups)"})];
    if args.failure_policy == FailurePolicy::Deny {
        // Fail closed, but keep a way in: break-glass admins and nodes never depend on Rampart.
        match_conditions.push(json!({"expression": "!('system:masters' in request.groups)"}));
        match_conditions.push(json!({"expression": "!('system:nodes' in request.groups)"}));
    }
    let authz = json!({
        "apiVersion": format!("apiserver.config.k8s.io/{}", args.authorization_config_version),
        "kind": "AuthorizationConfiguration",
        "authorizers": [
            {"type": "Node", "name": "node"},
            {"type": "Webhook", "name": "rampart", "webhook": {
                "timeout": "3s",
                "authorizedTTL": "10s",
                "unauthorizedTTL": "10s",
                "subjectAccessReviewVersion": "v1",
                "matchConditionSubjectAccessReviewVersion": "v1",
                "failurePolicy": match args.failure_policy { FailurePolicy::Deny => "Deny", FailurePolicy::NoOpinion => "NoOpinion" },
                "connectionInfo": {"type": "KubeConfigFile", "kubeConfigFile": args.webhook_kubeconfig_path},
                "matchConditions": match_conditions,
            }},
            {"type": "RBAC", "name": "rbac"},
        ],
    });
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "rampart", "cluster": {
            "server": format!("{url}/v1/authorize"),
            "certificate-authority-data": ca_b64,
        }}],
        "users": [{"name": "kube-apiserver", "user": {}}],
        "contexts": [{"name": "rampart", "context": {"cluster": "rampart", "user": "kube-apiserver"}}],
        "current-context": "rampart",
    });
    let admission = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "rampart"},
        "webhooks": [{
            "name": "vpolicy.rampart.dev",
            "clientConfig": {"url": format!("{url}/v1/admit"), "caBundle": ca_b64},
            "rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE", "DELETE", "CONNECT"], "resources": ["*/*"], "scope": "*"}],
            "failurePolicy": "Fail",
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "rampart-system"]}]},
            "sideEffects": "None",
            "timeoutSeconds": 5,
            "admissionReviewVersions": ["v1"],
        }],
    });
    let wiring = match args.target {
        Target::Kind => json!({
            "kind": "Cluster",
            "apiVersion": "kind.x-k8s.io/v1alpha4",
            "nodes": [{"role": "control-plane",
                "extraMounts": [{"hostPath": "./rampart", "containerPath": "/etc/rampart"}],
                "kubeadmConfigPatches": ["kind: ClusterConfiguration\napiServer:\n  extraArgs:\n    authorization-config: /etc/rampart/authorization-config.yaml\n  extraVolumes:\n  - name: rampart\n    hostPath: /etc/rampart\n    mountPath: /etc/rampart\n    readOnly: true\n"]}],
        }),
        Target::SelfManaged => json!({
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "ClusterConfiguration",
            "apiServer": {
                "extraArgs": [{"name": "authorization-config", "value": "/etc/rampart/authorization-config.yaml"}],
                "extraVolumes": [{"name": "rampart", "hostPath": "/etc/rampart", "mountPath": "/etc/rampart", "readOnly": true, "pathType": "DirectoryOrCreate"}],
            },
        }),
    };
    let wiring_note = match args.target {
        Target::Kind => {
            "4. kind cluster config: save documents 1 and 2 as ./rampart/authorization-config.yaml and\n   ./rampart/authorization-webhook.yaml, then `kind create cluster --config <this document>`.\n   Run `rampart serve` as a static pod (hostNetwork) on the control-plane node."
        }
        Target::SelfManaged => {
            "4. kubeadm ClusterConfiguration patch: put documents 1 and 2 in /etc/rampart on every\n   control-plane node and run `rampart serve` there (static pod or hostNetwork DaemonSet).\n   Remove any --authorization-mode flag: it cannot be combined with --authorization-config."
        }
    };
    print!(
        "{}{}{}{}",
        yaml_doc(
            "1. AuthorizationConfiguration: kube-apiserver --authorization-config=<this file>.\n   Order: Node, then Rampart (allow/deny overlay), then RBAC for everything Rampart has no opinion on.",
            &authz
        )?,
        yaml_doc(&format!("2. Webhook kubeconfig: save as {}", args.webhook_kubeconfig_path), &kubeconfig)?,
        yaml_doc("3. ValidatingWebhookConfiguration: kubectl apply -f <this document>", &admission)?,
        yaml_doc(wiring_note, &wiring)?,
    );
    if let Some(cluster_id) = &args.cluster_id {
        let authn_webhook = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "rampart-authn", "cluster": {"server": format!("{url}/v1/authenticate"), "certificate-authority-data": ca_b64}}],
            "users": [{"name": "kube-apiserver", "user": {}}],
            "contexts": [{"name": "webhook", "context": {"cluster": "rampart-authn", "user": "kube-apiserver"}}],
            "current-context": "webhook",
        });
        let kubectl = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster_id, "cluster": {"server": args.api_server}}],
            "users": [{"name": "aws-iam", "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "rampart",
                "args": ["token", "--cluster-id", cluster_id],
                "interactiveMode": "Never",
            }}}],
            "contexts": [{"name": cluster_id, "context": {"cluster": cluster_id, "user": "aws-iam"}}],
            "current-context": cluster_id,
        });
        print!(
            "{}{}",
            yaml_doc(
                "5. Authentication webhook kubeconfig: kube-apiserver --authentication-token-webhook-config-file=<this file>\n   (run `rampart serve --cluster-id ...` with --aws-auth and/or --access-entries)",
                &authn_webhook
            )?,
            yaml_doc(
                "6. kubectl kubeconfig: users authenticate with IAM through `rampart token`\n   (add certificate-authority-data for your API server)",
                &kubectl
            )?,
        );
    }
    if args.workload_identity {
        let mutating = json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "rampart-workload-identity"},
            "webhooks": [{
                "name": "pod-identity.rampart.dev",
                "clientConfig": {"url": format!("{url}/v1/mutate"), "caBundle": ca_b64},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}],
                // Ignore, as upstream: the webhook only adds plumbing, and a pod without it
                // falls back to no AWS identity rather than failing to start.
                "failurePolicy": "Ignore",
                "reinvocationPolicy": "IfNeeded",
                "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["rampart-system"]}]},
                // Upstream's opt-out label: any value keeps the pod away from the webhook.
                "objectSelector": {"matchExpressions": [{"key": "eks.amazonaws.com/skip-pod-identity-webhook", "operator": "DoesNotExist"}]},
                "sideEffects": "None",
                "timeoutSeconds": 5,
                "admissionReviewVersions": ["v1"],
            }],
        });
        print!(
            "{}",
            yaml_doc(
                "7. MutatingWebhookConfiguration: kubectl apply -f <this document>\n   (pods created while Rampart is unreachable get no AWS identity: recreate them)",
                &mutating
            )?
        );
    }
    Ok(ExitCode::SUCCESS)
}
