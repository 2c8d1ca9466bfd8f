//! `rampart kube-config`: the kube-apiserver side of the wiring.
//!
//! Prints, as one multi-document YAML stream (or, with `--output-dir`, one file each):
//! 1. an `AuthorizationConfiguration` (Node → Rampart webhook → RBAC);
//! 2. the webhook kubeconfig it points to (server URL + CA bundle);
//! 3. a `ValidatingWebhookConfiguration` for `/v1/admit`;
//! 4. how to pass them to the apiserver on the chosen target (kind, a kubeadm-style cluster,
//!    or a bare kube-apiserver's flags);
//! 5. and 6. with `--cluster-id`, the IAM authentication wiring;
//! 7. with `--workload-identity`, a `MutatingWebhookConfiguration` for `/v1/mutate`.
//!
//! The end-to-end tests wire a real kube-apiserver with exactly these files, so what is
//! printed here is what is proven to work.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine as _;
use rampart_server::tls::{CertSource, default_names, trust_anchor};
use rampart_types::wiring;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// A kind cluster: Rampart as a static pod on the control-plane node, on loopback.
    Kind,
    /// A kubeadm-style self-managed cluster (e.g. on EC2, EKS-like): Rampart on each
    /// control-plane node (static pod or hostNetwork DaemonSet), on loopback.
    SelfManaged,
    /// A kube-apiserver you start yourself: the flags to add to its command line.
    Apiserver,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailurePolicy {
    /// Deny requests when Rampart cannot be reached (fail closed). Break-glass identities
    /// (system:masters) and the control plane bypass the webhook.
    Deny,
    /// Fall through to RBAC when Rampart cannot be reached (forbids are then not enforced).
    NoOpinion,
}

/// Versions of `AuthorizationConfiguration` kube-apiserver accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthorizationConfigVersion {
    /// apiserver.config.k8s.io/v1 (Kubernetes 1.32 and later).
    V1,
    /// apiserver.config.k8s.io/v1beta1 (Kubernetes 1.30 and 1.31).
    V1beta1,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the apiserver runs: a kind cluster, a kubeadm-style cluster, or flags for your own.
    #[arg(long, value_enum, default_value = "kind")]
    pub target: Target,
    /// Base URL of Rampart as the apiserver reaches it (https only). Its host goes into the
    /// generated serving certificate.
    #[arg(long, default_value = "https://127.0.0.1:10288")]
    pub url: String,
    /// CA bundle the apiserver trusts for Rampart (PEM), when you bring your own certificate.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Where Rampart's private CA and serving certificate live: generated now if missing (the
    /// serving certificate names the --url host and every --tls-san), and the same DIR
    /// `rampart serve --cert-dir` uses.
    #[arg(long, value_name = "DIR", conflicts_with = "ca_file")]
    pub cert_dir: Option<PathBuf>,
    /// Extra DNS name or IP for the generated serving certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    pub tls_sans: Vec<String>,
    /// Where the apiserver will find the webhook kubeconfigs (documents 2 and 5). Default:
    /// /etc/rampart, or --output-dir when given.
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<String>,
    /// Write each document to its own file in DIR instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// What the apiserver does when Rampart is unreachable.
    #[arg(long, value_enum, default_value = "deny")]
    pub failure_policy: FailurePolicy,
    /// apiVersion of AuthorizationConfiguration.
    #[arg(long, value_enum, default_value = "v1")]
    pub authorization_config_version: AuthorizationConfigVersion,
    /// Rampart's own user when it reads the cluster (namespaces, aws-auth, service accounts):
    /// it bypasses the webhook, so Rampart never has to authorize its own start.
    #[arg(long, default_value = wiring::DEFAULT_SELF_IDENTITY, value_name = "USER")]
    pub self_identity: String,
    /// Also print the IAM authentication wiring for this cluster id: the apiserver's
    /// authentication-token-webhook kubeconfig and a kubectl user that runs `rampart token`.
    #[arg(long, value_name = "ID")]
    pub cluster_id: Option<String>,
    /// The cluster's API server URL, for the kubectl kubeconfig.
    #[arg(long, default_value = "https://127.0.0.1:6443")]
    pub api_server: String,
    /// The API server's CA (PEM), embedded in the kubectl kubeconfig.
    #[arg(long, value_name = "FILE")]
    pub api_server_ca: Option<PathBuf>,
    /// Also print the MutatingWebhookConfiguration that sends pod creations to `/v1/mutate`
    /// (IRSA and Pod Identity injection; run `rampart serve --service-accounts …`).
    #[arg(long)]
    pub workload_identity: bool,
    /// Also print the ValidatingWebhookConfiguration unified policies need (`rampart serve
    /// --unified`): every write to the resources unified policies can name, from every user
    /// the authorization webhook judges, so no conditional answer goes unfinished.
    #[arg(long)]
    pub unified: bool,
    /// Also print the MutatingWebhookConfiguration of image signatures (`rampart serve
    /// --image-policy`): pods and pod templates verified, tags pinned to digests, failing
    /// closed.
    #[arg(long)]
    pub images: bool,
    /// Also print the EncryptionConfiguration that encrypts Secrets at rest through `rampart
    /// kms-plugin` (KMS v2), and its static-pod snippet; adds --encryption-provider-config to
    /// the apiserver's flags.
    #[arg(long)]
    pub encryption: bool,
    /// The KMS plugin's socket, as the apiserver reaches it.
    #[arg(long, default_value = "/var/run/rampart/kms.sock", value_name = "PATH")]
    pub kms_socket: String,
    /// Resources to encrypt (repeatable; `secrets` by default).
    #[arg(long = "encrypt-resource", value_name = "RESOURCE", default_values = ["secrets"])]
    pub encrypt_resources: Vec<String>,
}

/// One document of the wiring: where it goes and what it is for.
struct Document {
    file: &'static str,
    comment: String,
    body: Body,
}

enum Body {
    Yaml(Value),
    /// kube-apiserver command-line flags, one per line.
    Flags(Vec<String>),
}

/// A CEL string literal (a user name from a flag must not be able to change the expression).
fn cel_str(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A CEL list literal of strings.
fn cel_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| cel_str(i)).collect();
    format!("[{}]", quoted.join(", "))
}

/// Check `--url`: https only (the apiserver sends identities in every review), with a host.
fn parse_url(url: &str) -> anyhow::Result<(String, String)> {
    let parsed: http::Uri = url.parse().with_context(|| format!("--url {url:?} is not a URL"))?;
    match parsed.scheme_str() {
        Some("https") => {}
        Some("http") => bail!(
            "--url {url}: the apiserver must reach Rampart over https (reviews carry user identities); \
             use https://… and the certificate from --cert-dir"
        ),
        _ => bail!("--url {url:?} must start with https://"),
    }
    let host =
        parsed.host().filter(|h| !h.is_empty()).with_context(|| format!("--url {url:?} has no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    Ok((url.trim_end_matches('/').to_owned(), host))
}

fn authorization_config(args: &Args, webhook_kubeconfig: &str) -> Value {
    let mut conditions = vec![
        // Rampart reads namespaces, aws-auth and service accounts to decide: it must never need
        // its own answer to start.
        json!({"expression": format!("request.user != {}", cel_str(&args.self_identity))}),
        // The control plane: scheduler, controller manager, kube-proxy and the apiserver's own
        // loopback client; the bootstrap RBAC roles grant them exactly what they need.
        json!({"expression": format!("!(request.user in {})", cel_list(&wiring::CONTROL_PLANE_USERS))}),
        // Controllers running with --use-service-account-credentials.
        json!({"expression": format!("!({} in request.groups)", cel_str(wiring::KUBE_SYSTEM_SERVICE_ACCOUNTS))}),
        // Kubelets: the Node authorizer before this webhook already decides their requests.
        json!({"expression": format!("!({} in request.groups)", cel_str(wiring::NODES_GROUP))}),
    ];
    if args.failure_policy == FailurePolicy::Deny {
        // Fail closed, but keep a way in: break-glass admins never depend on Rampart.
        conditions.push(
            json!({"expression": format!("!({} in request.groups)", cel_str(wiring::PRIVILEGED_GROUP))}),
        );
    }
    let version = match args.authorization_config_version {
        AuthorizationConfigVersion::V1 => "v1",
        AuthorizationConfigVersion::V1beta1 => "v1beta1",
    };
    json!({
        "apiVersion": format!("apiserver.config.k8s.io/{version}"),
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
                "connectionInfo": {"type": "KubeConfigFile", "kubeConfigFile": webhook_kubeconfig},
                "matchConditions": conditions,
            }},
            {"type": "RBAC", "name": "rbac"},
        ],
    })
}

/// The webhook that finishes unified policies' conditional answers. It must see every request
/// the authorizer may have answered conditionally: every write (and connect) to a resource of
/// the unified model, by every user the authorization webhook judges. So its match conditions
/// are exactly the authorizer's exclusions (requests Rampart never authorized can never be
/// conditional), it has no namespace selector (`rampart serve` folds every answer in the
/// namespaces it exempts from admission at authorization instead), and it fails closed. The
/// Helm chart renders the same object (see `helm_webhooks`).
pub(crate) fn unified_webhook(site: &WebhookSite<'_>) -> Value {
    let mut by_group: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for r in rampart_unified::schema::RESOURCES {
        let name = if r.subresource.is_empty() {
            r.resource.to_owned()
        } else {
            format!("{}/{}", r.resource, r.subresource)
        };
        by_group.entry(r.group).or_default().push(name);
    }
    let rules: Vec<Value> = by_group
        .into_iter()
        .map(|(group, resources)| json!({"apiGroups": [group], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE", "DELETE", "CONNECT"], "resources": resources, "scope": "*"}))
        .collect();
    let conditions = vec![
        json!({"name": "not-rampart", "expression": format!("request.userInfo.username != {}", cel_str(site.self_identity))}),
        json!({"name": "not-control-plane", "expression": format!("!(request.userInfo.username in {})", cel_list(&wiring::CONTROL_PLANE_USERS))}),
        json!({"name": "not-kube-system-controllers", "expression": format!("!({} in request.userInfo.groups)", cel_str(wiring::KUBE_SYSTEM_SERVICE_ACCOUNTS))}),
        json!({"name": "not-nodes", "expression": format!("!({} in request.userInfo.groups)", cel_str(wiring::NODES_GROUP))}),
        // system:masters never reach an authorization webhook (the apiserver's privileged-group
        // authorizer allows them first), so nothing they send can be conditional.
        json!({"name": "not-break-glass", "expression": format!("!({} in request.userInfo.groups)", cel_str(wiring::PRIVILEGED_GROUP))}),
    ];
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": site.unified_name},
        "webhooks": [{
            "name": "unified.rampart.dev",
            "clientConfig": (site.client)("/v1/admit/unified"),
            "rules": rules,
            // An unreachable webhook must not turn a conditional answer into an allow.
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "matchConditions": conditions,
            "sideEffects": "None",
            "timeoutSeconds": site.timeout_seconds,
            "admissionReviewVersions": ["v1"],
        }],
    })
}

/// What the validating webhook never sees, each with why skipping it is safe.
fn admission_match_conditions(self_identity: &str) -> Value {
    let pods_written = "request.resource.group == '' && request.resource.resource == 'pods' \
                        && request.subResource == '' && request.operation in ['CREATE', 'UPDATE']";
    json!([
        // Leader election and node heartbeats: nothing in a Lease grants or runs anything, and
        // blocking them would stop the scheduler, the controllers and every node's status.
        {"name": "skip-leases", "expression":
            "!(request.resource.group == 'coordination.k8s.io' && request.resource.resource == 'leases')"},
        // Events are written by every component, at volume, and grant nothing.
        {"name": "skip-events", "expression":
            "!(request.resource.resource == 'events' && request.resource.group in ['', 'events.k8s.io'])"},
        // TokenReviews and SubjectAccessReviews are questions, not stored objects.
        {"name": "skip-access-reviews", "expression":
            "!(request.resource.group in ['authentication.k8s.io', 'authorization.k8s.io'])"},
        // Break-glass: system:masters can always repair the cluster, even with Rampart down.
        {"name": "break-glass-masters", "expression": format!("!({} in request.userInfo.groups)", cel_str(wiring::PRIVILEGED_GROUP))},
        // Kubelets write node and pod status; NodeRestriction already confines them to their node.
        {"name": "skip-nodes", "expression": format!("!({} in request.userInfo.groups)", cel_str(wiring::NODES_GROUP))},
        // Rampart itself.
        {"name": "skip-rampart", "expression": format!("request.userInfo.username != {}", cel_str(self_identity))},
        // The control plane keeps working without Rampart, except for the pods it creates or
        // updates: those still meet Pod Security, as they do with upstream PSA (a Deployment
        // must not become a way around the pod rules).
        {"name": "control-plane-except-pods", "expression": format!(
            "!((request.userInfo.username in {users} || {controllers} in request.userInfo.groups) && !({pods_written}))",
            users = cel_list(&wiring::CONTROL_PLANE_USERS), controllers = cel_str(wiring::KUBE_SYSTEM_SERVICE_ACCOUNTS))},
    ])
}

/// How the webhook configurations reach Rampart and the knobs an installer sets; the printed
/// wiring and the Helm chart's template fill it differently, from the same objects.
pub(crate) struct WebhookSite<'a> {
    /// `clientConfig` for a path (`/v1/admit`): a URL and CA bundle, or a Service reference.
    pub client: &'a dyn Fn(&str) -> Value,
    pub self_identity: &'a str,
    /// Rampart's own namespace (never sent to the webhooks: Rampart must be able to restart).
    pub namespace: &'a str,
    /// Names of the two configuration objects.
    pub validating_name: &'a str,
    pub mutating_name: &'a str,
    /// Name of the unified policies' configuration object.
    pub unified_name: &'a str,
    /// Name of the image-signature webhook's configuration object.
    pub images_name: &'a str,
    /// failurePolicy of the policy webhook (`Fail` when printed).
    pub failure_policy: Value,
    pub timeout_seconds: Value,
}

impl WebhookSite<'_> {
    /// The printed wiring's site: a URL with its CA bundle.
    fn url<'a>(client: &'a dyn Fn(&str) -> Value, self_identity: &'a str) -> WebhookSite<'a> {
        WebhookSite {
            client,
            self_identity,
            namespace: "rampart-system",
            validating_name: "rampart",
            mutating_name: "rampart-workload-identity",
            unified_name: "rampart-unified",
            images_name: "rampart-images",
            failure_policy: json!("Fail"),
            timeout_seconds: json!(5),
        }
    }
}

pub(crate) fn validating_webhook(site: &WebhookSite<'_>) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": site.validating_name},
        "webhooks": [{
            "name": "vpolicy.rampart.dev",
            "clientConfig": (site.client)("/v1/admit"),
            "rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE", "DELETE", "CONNECT"], "resources": ["*/*"], "scope": "*"}],
            "failurePolicy": site.failure_policy,
            // kube-system and kube-node-lease hold the control plane's own objects; Rampart's
            // namespace holds Rampart (it must be able to restart itself).
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "kube-node-lease", site.namespace]}]},
            "matchConditions": admission_match_conditions(site.self_identity),
            "sideEffects": "None",
            "timeoutSeconds": site.timeout_seconds,
            "admissionReviewVersions": ["v1"],
        }, {
            // Policy objects that would not load are refused at `kubectl apply` time, for every
            // writer: system:masters included, since a Policy is read by Rampart, not the
            // apiserver, and a bad one would otherwise be dropped silently. Status writes
            // (a subresource) are not sent here.
            "name": "policies.rampart.dev",
            "clientConfig": (site.client)("/v1/admit"),
            "rules": [{"apiGroups": ["cedar.k8s.aws"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": ["policies"], "scope": "Cluster"}],
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "timeoutSeconds": site.timeout_seconds,
            "admissionReviewVersions": ["v1"],
        }],
    })
}

pub(crate) fn mutating_webhook(site: &WebhookSite<'_>) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": site.mutating_name},
        "webhooks": [{
            "name": "pod-identity.rampart.dev",
            "clientConfig": (site.client)("/v1/mutate"),
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}],
            // Ignore, as upstream: the webhook only adds plumbing, and a pod without it
            // falls back to no AWS identity rather than failing to start.
            "failurePolicy": "Ignore",
            "reinvocationPolicy": "IfNeeded",
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [site.namespace]}]},
            // Upstream's opt-out label: any value keeps the pod away from the webhook.
            "objectSelector": {"matchExpressions": [{"key": "eks.amazonaws.com/skip-pod-identity-webhook", "operator": "DoesNotExist"}]},
            "sideEffects": "None",
            "timeoutSeconds": site.timeout_seconds,
            "admissionReviewVersions": ["v1"],
        }],
    })
}

/// The image-signature webhook (`/v1/images`): pods and every pod template, so controllers'
/// templates are pinned too and the pods they create hit the verification cache.
pub(crate) fn images_webhook(site: &WebhookSite<'_>) -> Value {
    let write = json!(["CREATE", "UPDATE"]);
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": site.images_name},
        "webhooks": [{
            "name": "images.rampart.dev",
            "clientConfig": (site.client)("/v1/images"),
            "rules": [
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": write, "scope": "Namespaced",
                 "resources": ["pods", "pods/ephemeralcontainers", "podtemplates", "replicationcontrollers"]},
                {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": write, "scope": "Namespaced",
                 "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"]},
                {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": write, "scope": "Namespaced",
                 "resources": ["jobs", "cronjobs"]},
            ],
            // Fail closed: an unverified image must not run because Rampart was unreachable.
            // The control plane's namespaces and Rampart's own stay out, so neither can be
            // locked out by it.
            "failurePolicy": "Fail",
            // Re-run when a later webhook changes an image, so what runs is still verified.
            "reinvocationPolicy": "IfNeeded",
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "kube-node-lease", site.namespace]}]},
            "sideEffects": "None",
            // Above `serve --image-verify-timeout` (8s), so a slow registry gets Rampart's
            // message rather than the apiserver's timeout.
            "timeoutSeconds": 10,
            "admissionReviewVersions": ["v1"],
        }],
    })
}

/// Secrets (and any other `resources`) encrypted with KMS v2 through Rampart's plugin; the
/// identity provider last, so what was stored in plaintext before still reads.
pub(crate) fn encryption_config(resources: &[String], socket: &str) -> Value {
    json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [{
            "resources": resources,
            "providers": [
                {"kms": {"apiVersion": "v2", "name": "rampart", "endpoint": format!("unix://{socket}"), "timeout": "3s"}},
                {"identity": {}},
            ],
        }],
    })
}

/// `rampart kms-plugin` as a static pod beside the apiserver, sharing the socket directory.
fn kms_plugin_pod(socket: &str) -> Value {
    let dir = std::path::Path::new(socket)
        .parent()
        .map_or("/var/run/rampart".to_string(), |d| d.display().to_string());
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "rampart-kms-plugin", "namespace": "kube-system", "labels": {"app.kubernetes.io/name": "rampart-kms-plugin"}},
        "spec": {
            "hostNetwork": true,
            "priorityClassName": "system-node-critical",
            "containers": [{
                "name": "kms-plugin",
                "image": "ghcr.io/rampart-k8s/rampart:latest",
                "args": ["kms-plugin", format!("--socket={socket}"), "--aws-kms-key=alias/CHANGE-ME", "--cluster-name=CHANGE-ME"],
                "volumeMounts": [{"name": "socket", "mountPath": dir}],
                "securityContext": {"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false},
            }],
            "volumes": [{"name": "socket", "hostPath": {"path": dir, "type": "DirectoryOrCreate"}}],
        },
    })
}

fn webhook_kubeconfig(cluster: &str, server: String, ca_b64: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": ca_b64}}],
        "users": [{"name": "kube-apiserver", "user": {}}],
        "contexts": [{"name": "webhook", "context": {"cluster": cluster, "user": "kube-apiserver"}}],
        "current-context": "webhook",
    })
}

fn documents(args: &Args, url: &str, ca_b64: &str) -> anyhow::Result<Vec<Document>> {
    let config_dir = match (&args.config_dir, &args.output_dir) {
        (Some(dir), _) => dir.trim_end_matches('/').to_owned(),
        (None, Some(out)) => std::path::absolute(out)
            .with_context(|| format!("cannot resolve --output-dir {}", out.display()))?
            .display()
            .to_string(),
        (None, None) => "/etc/rampart".to_owned(),
    };
    let in_config_dir = |file: &str| format!("{config_dir}/{file}");
    let client = |path: &str| json!({"url": format!("{url}{path}"), "caBundle": ca_b64});
    let mut docs = vec![
        Document {
            file: "authorization-config.yaml",
            comment: "1. AuthorizationConfiguration: kube-apiserver --authorization-config=<this file>.\n   \
                      Order: Node, then Rampart (allow/deny overlay), then RBAC for everything Rampart has no opinion on."
                .into(),
            body: Body::Yaml(authorization_config(args, &in_config_dir("authorization-webhook.yaml"))),
        },
        Document {
            file: "authorization-webhook.yaml",
            comment: format!("2. Webhook kubeconfig: save as {}", in_config_dir("authorization-webhook.yaml")),
            body: Body::Yaml(webhook_kubeconfig("rampart", format!("{url}/v1/authorize"), ca_b64)),
        },
        Document {
            file: "validating-webhook.yaml",
            comment: "3. ValidatingWebhookConfiguration: kubectl apply -f <this document>".into(),
            body: Body::Yaml(validating_webhook(&WebhookSite::url(&client, &args.self_identity))),
        },
    ];
    if args.unified {
        docs.push(Document {
            file: "unified-webhook.yaml",
            comment: "3b. Unified policies: kubectl apply -f <this document>, and run `rampart serve --unified PATH`.\n   \
                      Rampart answers a conditional authorization `allowed` and this webhook finishes it, so it sees every\n   \
                      write to the resources unified policies name, from every user the authorizer judges (its match\n   \
                      conditions are the authorizer's), in every namespace, and fails closed. Not covered, so never left\n   \
                      conditional or not nameable: reads (answered at authorization), objects admission never sees\n   \
                      (admissionregistration, aggregated APIs), and a reload between the two calls (the later policies win)."
                .into(),
            body: Body::Yaml(unified_webhook(&WebhookSite::url(&client, &args.self_identity))),
        });
    }
    let mut flags = vec![format!("--authorization-config={}", in_config_dir("authorization-config.yaml"))];
    if args.encryption {
        flags.push(format!("--encryption-provider-config={}", in_config_dir("encryption-config.yaml")));
    }
    if args.cluster_id.is_some() {
        flags.push(format!(
            "--authentication-token-webhook-config-file={}",
            in_config_dir("authentication-webhook.yaml")
        ));
        flags.push("--authentication-token-webhook-version=v1".into());
    }
    docs.push(match args.target {
        Target::Kind => Document {
            file: "kind-cluster.yaml",
            comment: format!(
                "4. kind cluster config: put the files of documents 1, 2{} in ./rampart, then\n   \
                 `kind create cluster --config <this document>`.\n   \
                 Run `rampart serve` as a static pod (hostNetwork) on the control-plane node.",
                if args.cluster_id.is_some() { " and 5" } else { "" }
            ),
            body: Body::Yaml(json!({
                "kind": "Cluster",
                "apiVersion": "kind.x-k8s.io/v1alpha4",
                "nodes": [{"role": "control-plane",
                    "extraMounts": [{"hostPath": "./rampart", "containerPath": config_dir}],
                    "kubeadmConfigPatches": [format!(
                        "kind: ClusterConfiguration\napiServer:\n  extraArgs:\n{}  extraVolumes:\n  - name: rampart\n    hostPath: {config_dir}\n    mountPath: {config_dir}\n    readOnly: true\n",
                        flags.iter().map(|f| {
                            let (name, value) = f.trim_start_matches("--").split_once('=').unwrap_or((f, ""));
                            format!("    {name}: {value}\n")
                        }).collect::<String>())]}],
            })),
        },
        Target::SelfManaged => Document {
            file: "kubeadm-patch.yaml",
            comment: format!(
                "4. kubeadm ClusterConfiguration patch: put the files of documents 1, 2{} in {config_dir} on\n   \
                 every control-plane node and run `rampart serve` there (static pod or hostNetwork DaemonSet).\n   \
                 Remove any --authorization-mode flag: it cannot be combined with --authorization-config.",
                if args.cluster_id.is_some() { " and 5" } else { "" }
            ),
            body: Body::Yaml(json!({
                "apiVersion": "kubeadm.k8s.io/v1beta4",
                "kind": "ClusterConfiguration",
                "apiServer": {
                    "extraArgs": flags.iter().map(|f| {
                        let (name, value) = f.trim_start_matches("--").split_once('=').unwrap_or((f, ""));
                        json!({"name": name, "value": value})
                    }).collect::<Vec<_>>(),
                    "extraVolumes": [{"name": "rampart", "hostPath": config_dir, "mountPath": config_dir, "readOnly": true, "pathType": "DirectoryOrCreate"}],
                },
            })),
        },
        Target::Apiserver => Document {
            file: "kube-apiserver.flags",
            comment: format!(
                "4. kube-apiserver flags: add these to its command line, with the files of documents 1, 2{} in {config_dir}.\n   \
                 Leave out --authorization-mode: it cannot be combined with --authorization-config.",
                if args.cluster_id.is_some() { " and 5" } else { "" }
            ),
            body: Body::Flags(flags),
        },
    });
    if let Some(cluster_id) = &args.cluster_id {
        let mut cluster = json!({"server": args.api_server});
        if let Some(path) = &args.api_server_ca {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read --api-server-ca {}", path.display()))?;
            cluster["certificate-authority-data"] =
                base64::engine::general_purpose::STANDARD.encode(pem).into();
        }
        docs.push(Document {
            file: "authentication-webhook.yaml",
            comment: format!(
                "5. Authentication webhook kubeconfig: save as {}\n   \
                 kube-apiserver --authentication-token-webhook-config-file=<this file> --authentication-token-webhook-version=v1\n   \
                 (run `rampart serve --cluster-id {cluster_id}` with --aws-auth or --aws-auth-from-cluster and/or --access-entries)",
                in_config_dir("authentication-webhook.yaml")
            ),
            body: Body::Yaml(webhook_kubeconfig("rampart-authn", format!("{url}/v1/authenticate"), ca_b64)),
        });
        docs.push(Document {
            file: "kubectl.kubeconfig",
            comment: format!(
                "6. kubectl kubeconfig: users authenticate with IAM through `rampart token`{}",
                if args.api_server_ca.is_some() {
                    ""
                } else {
                    "\n   (add certificate-authority-data for your API server, or pass --api-server-ca)"
                }
            ),
            body: Body::Yaml(json!({
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": cluster_id, "cluster": cluster}],
                "users": [{"name": "aws-iam", "user": {"exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "rampart",
                    "args": ["token", "--cluster-id", cluster_id],
                    "interactiveMode": "Never",
                }}}],
                "contexts": [{"name": cluster_id, "context": {"cluster": cluster_id, "user": "aws-iam"}}],
                "current-context": cluster_id,
            })),
        });
    }
    if args.workload_identity {
        docs.push(Document {
            file: "mutating-webhook.yaml",
            comment: "7. MutatingWebhookConfiguration: kubectl apply -f <this document>\n   \
                      (pods created while Rampart is unreachable get no AWS identity: recreate them)"
                .into(),
            body: Body::Yaml(mutating_webhook(&WebhookSite::url(&client, &args.self_identity))),
        });
    }
    if args.encryption {
        docs.push(Document {
            file: "encryption-config.yaml",
            comment: format!(
                "9. EncryptionConfiguration: save as {}; kube-apiserver --encryption-provider-config=<this file>.\n   \
                 Run `rampart kms-plugin --socket {} --aws-kms-key KEY --cluster-name NAME` on every control-plane\n   \
                 node first (document 10). New writes are encrypted; rewrite existing Secrets with\n   \
                 `kubectl get secrets -A -o json | kubectl replace -f -`. The identity provider reads what was\n   \
                 stored before (remove it once everything is rewritten).",
                in_config_dir("encryption-config.yaml"),
                args.kms_socket
            ),
            body: Body::Yaml(encryption_config(&args.encrypt_resources, &args.kms_socket)),
        });
        docs.push(Document {
            file: "kms-plugin-pod.yaml",
            comment: "10. The plugin as a static pod: save in /etc/kubernetes/manifests on every control-plane node\n   \
                      (it needs AWS credentials: the node's instance role, or AWS_* in its env)."
                .into(),
            body: Body::Yaml(kms_plugin_pod(&args.kms_socket)),
        });
    }
    if args.images {
        docs.push(Document {
            file: "images-webhook.yaml",
            comment: "8. Image signatures: kubectl apply -f <this document>, and run `rampart serve --image-policy PATH`.\n   \
                      Pods and pod templates whose images an ImagePolicy covers are verified and pinned to digests;\n   \
                      it fails closed (kube-system, kube-node-lease and rampart-system are left out)."
                .into(),
            body: Body::Yaml(images_webhook(&WebhookSite::url(&client, &args.self_identity))),
        });
    }
    Ok(docs)
}

fn render(doc: &Document, with_comment: bool) -> anyhow::Result<String> {
    let comment: String =
        if with_comment { doc.comment.lines().map(|l| format!("# {l}\n")).collect() } else { String::new() };
    Ok(match &doc.body {
        Body::Yaml(value) => format!("---\n{comment}{}", serde_yaml::to_string(value)?),
        Body::Flags(flags) if with_comment => {
            format!("---\n{comment}{}", flags.iter().map(|f| format!("#   {f}\n")).collect::<String>())
        }
        Body::Flags(flags) => flags.iter().map(|f| format!("{f}\n")).collect(),
    })
}

fn write_all(dir: &Path, docs: &[Document]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create --output-dir {}", dir.display()))?;
    for doc in docs {
        let path = dir.join(doc.file);
        std::fs::write(&path, render(doc, false)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let first = doc.comment.lines().next().unwrap_or_default();
        crate::outln!("{}\t{first}", path.display());
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (url, host) = parse_url(&args.url)?;
    let ca_path = match (&args.ca_file, &args.cert_dir) {
        (Some(path), _) => path.clone(),
        (None, Some(dir)) => {
            let mut names = default_names();
            names.push(host);
            names.extend(args.tls_sans.iter().cloned());
            names.dedup();
            trust_anchor(&CertSource::SelfSigned { dir: dir.clone(), names })?
        }
        (None, None) => {
            bail!(
                "say where the webhook certificate lives: --cert-dir DIR (a CA and a serving certificate are \
                 generated there if missing; give `rampart serve` the same --cert-dir) or --ca-file FILE"
            )
        }
    };
    let ca =
        std::fs::read(&ca_path).with_context(|| format!("cannot read CA bundle {}", ca_path.display()))?;
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(&ca);
    let docs = documents(&args, &url, &ca_b64)?;
    match &args.output_dir {
        Some(dir) => write_all(dir, &docs)?,
        None => {
            let text: String = docs.iter().map(|d| render(d, true)).collect::<anyhow::Result<_>>()?;
            crate::out!("{text}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_with_a_host() {
        assert_eq!(
            parse_url("https://10.0.0.5:10288/").unwrap(),
            ("https://10.0.0.5:10288".into(), "10.0.0.5".into())
        );
        assert_eq!(parse_url("https://[::1]:10288").unwrap().1, "::1");
        let err = parse_url("http://10.0.0.5:10288").unwrap_err().to_string();
        assert!(err.contains("https"), "{err}");
        assert!(parse_url("10.0.0.5:10288").is_err());
    }

    #[test]
    fn cel_lists_quote_each_item() {
        assert_eq!(cel_list(&["a", "b"]), "['a', 'b']");
        assert_eq!(cel_str("x' || true || '"), r"'x\' || true || \''");
    }
}
