//! Scenario 13: the Helm chart (`deploy/helm/rampart`) with Helm built from the Go module proxy.
//! `helm lint`; `helm template` with the default values and with every component on, applied
//! with `kubectl apply --dry-run=server` (the real apiserver validates every object against its
//! schema); the rendered pod specs pass Rampart's own restricted Pod Security check (the node
//! agent, privileged by nature, only at `privileged`); a typo in values fails `helm template`.

use std::path::PathBuf;
use std::process::Command;

use crate::{Cluster, shared};

/// Stand-in CRDs for the third-party kinds the chart can render (cert-manager, the Prometheus
/// Operator): the apiserver then accepts their apiVersion and kind; their own fields are those
/// projects' schemas, not checked here.
const THIRD_PARTY_CRDS: &str = "
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: certificates.cert-manager.io}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {kind: Certificate, plural: certificates}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: issuers.cert-manager.io}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {kind: Issuer, plural: issuers}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, plural: servicemonitors}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
";

const ALL_ON: &str = "
webhook:
  policyConfigMaps: [org-policies]
  guardrails: |
    podSecurity: {defaults: {enforce: baseline}}
  mutation: {enabled: true, awsDefaultRegion: us-east-1}
  unified:
    enabled: true
    policies: |
      permit (principal in k8s::Group::\"devs\", action == k8s::unified::Action::\"create\", resource is core::configmaps);
    configMaps: [team-unified]
  images: {enabled: true, ecrRegions: [eu-west-1]}
tls:
  certManager: {enabled: true}
podIdentity:
  clusterName: e2e
  region: us-east-1
  agent: {enabled: true, linkImage: example.com/iproute2:1}
  broker: {enabled: true, awsSecret: broker-aws}
metrics:
  serviceMonitor: {enabled: true}
  grafanaDashboard: {enabled: true}
";

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/helm/rampart")
}

/// `helm ARGS…` with the cluster's PATH (helm is built beside kubectl).
fn helm(c: &Cluster, args: &[&str]) -> std::process::Output {
    Command::new("helm").env("PATH", &c.env["PATH"]).args(args).output().expect("helm runs")
}

/// `helm template` into a file; its path.
fn render(c: &Cluster, dir: &std::path::Path, name: &str, values: &str, extra: &[&str]) -> PathBuf {
    let values_file = dir.join(format!("{name}-values.yaml"));
    std::fs::write(&values_file, values).unwrap();
    let chart = chart();
    let mut args = vec![
        "template",
        "r",
        chart.to_str().unwrap(),
        "-n",
        "rampart-system",
        "-f",
        values_file.to_str().unwrap(),
    ];
    args.extend(extra);
    let out = helm(c, &args);
    assert!(out.status.success(), "helm template ({name}): {}", String::from_utf8_lossy(&out.stderr));
    let rendered = dir.join(format!("{name}.yaml"));
    std::fs::write(&rendered, &out.stdout).unwrap();
    rendered
}

fn check_manifests(file: &std::path::Path, level: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["check-manifests", "--level", level])
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn the_chart_lints_renders_and_the_apiserver_accepts_every_object() {
    let (_gate, c) = shared();
    let chart = chart();
    let lint = helm(c, &["lint", chart.to_str().unwrap()]);
    assert!(
        lint.status.success(),
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    c.apply(THIRD_PARTY_CRDS);
    for crd in
        ["certificates.cert-manager.io", "issuers.cert-manager.io", "servicemonitors.monitoring.coreos.com"]
    {
        c.admin().run(&["wait", "--for", "condition=established", &format!("crd/{crd}")]).ok();
    }

    let dir = tempfile::tempdir().unwrap();
    let default = render(c, dir.path(), "default", "{}\n", &["--include-crds"]);
    let all_on = render(c, dir.path(), "all-on", ALL_ON, &["--include-crds"]);
    for rendered in [&default, &all_on] {
        let out = c.admin().run(&["apply", "--dry-run=server", "-f", rendered.to_str().unwrap()]);
        assert!(out.ok, "the apiserver refused {}:\n{}{}", rendered.display(), out.stdout, out.stderr);
        assert!(out.stdout.contains("(server dry run)"), "{}", out.stdout);
    }
    let text = std::fs::read_to_string(&all_on).unwrap();
    for kind in [
        "Deployment",
        "DaemonSet",
        "PodDisruptionBudget",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ServiceMonitor",
        "Certificate",
    ] {
        assert!(text.contains(&format!("\nkind: {kind}\n")), "{kind} is rendered with every component on");
    }

    // Restricted Pod Security: the webhook and the broker pass; the node agent needs the host
    // network, so it passes only `privileged` — and says why at restricted.
    let without_agent = render(
        c,
        dir.path(),
        "no-agent",
        &ALL_ON.replace("agent: {enabled: true", "agent: {enabled: false"),
        &[],
    );
    for rendered in [&default, &without_agent] {
        let out = check_manifests(rendered, "restricted");
        assert!(out.status.success(), "{}: {}", rendered.display(), String::from_utf8_lossy(&out.stdout));
    }
    let restricted = check_manifests(&all_on, "restricted");
    let report = String::from_utf8_lossy(&restricted.stdout);
    assert_eq!(restricted.status.code(), Some(1));
    assert!(
        report.contains("DaemonSet rampart-system/r-rampart-agent") && report.contains("hostNetwork=true"),
        "{report}"
    );
    assert!(!report.contains("Deployment rampart-system"), "only the agent fails restricted: {report}");
    // Unified policies: their ConfigMap, the --unified flags and the webhook that finishes them.
    for unified in [
        "name: r-rampart-unified\n",
        "--unified=/etc/rampart/unified/inline",
        "--unified=/etc/rampart/unified/team-unified",
        "name: unified.rampart.dev",
        "path: /v1/admit/unified",
    ] {
        assert!(text.contains(unified), "{unified} is rendered with unified policies on");
    }
    assert!(
        !std::fs::read_to_string(&default).unwrap().contains("unified"),
        "unified policies are off by default"
    );
    // Image signatures: the flags, the fail-closed webhook, the RBAC to read policies and keys.
    for images in [
        "--image-policies-from-cluster",
        "--ecr-region=eu-west-1",
        "name: r-rampart-images\n",
        "name: images.rampart.dev",
        "path: /v1/images",
        "resources: [imagepolicies]",
    ] {
        assert!(text.contains(images), "{images} is rendered with image signatures on");
    }
    assert!(
        !std::fs::read_to_string(&default).unwrap().contains("/v1/images"),
        "image signatures are off by default"
    );
    assert!(check_manifests(&all_on, "privileged").status.success());

    // A typo in values is an error naming the field, not a silently ignored setting.
    let typo = helm(c, &["template", "r", chart.to_str().unwrap(), "--set", "webhook.replicaz=3"]);
    let err = String::from_utf8_lossy(&typo.stderr);
    assert!(!typo.status.success() && err.contains("replicaz"), "{err}");
    let wrong_type =
        helm(c, &["template", "r", chart.to_str().unwrap(), "--set", "webhook.failurePolicy=Sometimes"]);
    assert!(!wrong_type.status.success(), "an unknown failurePolicy is refused");
}
