//! The guardrails stage on full AdmissionReview objects, as the API server sends them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use rampart_guardrails::admission::Guardrails;
use rampart_types::admission;
use serde_json::{Value, json};

const NAMESPACES: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata:
    name: prod
    labels:
      pod-security.kubernetes.io/enforce: restricted
      pod-security.kubernetes.io/enforce-version: v1.30
- apiVersion: v1
  kind: Namespace
  metadata: {name: dev, labels: {pod-security.kubernetes.io/warn: restricted}}
"#;

const CONFIG: &str = r#"
podSecurity:
  defaults: {enforce: baseline}
  exemptions: {usernames: [system:serviceaccount:kube-system:replicaset-controller-break-glass], runtimeClasses: [kata]}
rules:
  disallowLatestTag: enforce
  automountServiceAccountToken: audit
"#;

fn guardrails() -> Guardrails {
    let config = Guardrails::config_from_yaml(CONFIG).unwrap();
    Guardrails::new(config, Guardrails::namespaces_from_yaml(NAMESPACES).unwrap()).unwrap()
}

fn review(
    op: &str,
    ns: &str,
    group: &str,
    resource: &str,
    kind: &str,
    object: Value,
    old: Value,
) -> admission::AdmissionRequest {
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "b0d1c2e3-0000-4000-8000-000000000001",
        "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "requestKind": {"group": group, "version": "v1", "kind": kind},
        "requestResource": {"group": group, "version": "v1", "resource": resource},
        "name": "web", "namespace": ns, "operation": op,
        "userInfo": {"username": "alice", "uid": "u1", "groups": ["system:authenticated"]},
        "object": object, "oldObject": old, "dryRun": false,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}});
    admission::decode(body.to_string().as_bytes()).unwrap().request
}

fn pod(image: &str, extra_spec: Value) -> Value {
    let mut spec = json!({"containers": [{"name": "app", "image": image}]});
    for (k, v) in extra_spec.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "prod"}, "spec": spec})
}

const RESTRICTED_OK: &str = r#"{"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
  "containers": [{"name": "app", "image": "nginx:1.25", "securityContext": {"allowPrivilegeEscalation": false,
  "capabilities": {"drop": ["ALL"]}}}], "automountServiceAccountToken": false}"#;

#[test]
fn restricted_namespace_rejects_a_default_pod_with_upstream_wording() {
    let g = guardrails();
    let v = g.admit(&review("CREATE", "prod", "", "pods", "Pod", pod("nginx:1.25", json!({})), Value::Null));
    let denial = v.denial.unwrap();
    assert!(denial.starts_with(r#"pods "web" is forbidden: violates PodSecurity "restricted:v1.30": allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities"#), "{denial}");
    assert_eq!(v.audit_annotations["pod-security.kubernetes.io/enforce-policy"], "restricted:v1.30");
}

#[test]
fn a_compliant_pod_passes_and_rules_annotate() {
    let g = guardrails();
    let spec: Value = serde_json::from_str(RESTRICTED_OK).unwrap();
    let object = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": spec});
    let v = g.admit(&review("CREATE", "prod", "", "pods", "Pod", object, Value::Null));
    assert_eq!(v.denial, None, "{v:?}");
    assert!(v.warnings.is_empty());
}

#[test]
fn latest_tag_is_enforced_by_rule_and_automount_audited() {
    let g = guardrails();
    let v = g.admit(&review("CREATE", "default", "", "pods", "Pod", pod("nginx", json!({})), Value::Null));
    assert!(v.denial.unwrap().contains("disallowLatestTag"));
    assert!(v.audit_annotations.contains_key("rampart.dev/automountServiceAccountToken"));
}

#[test]
fn deployments_warn_but_are_never_denied() {
    let g = guardrails();
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
        "spec": {"hostNetwork": true, "containers": [{"name": "app", "image": "nginx"}]}}}});
    let v = g.admit(&review("CREATE", "prod", "apps", "deployments", "Deployment", deployment, Value::Null));
    assert_eq!(v.denial, None);
    assert!(v.warnings.iter().any(|w| w.contains("host namespaces")), "{:?}", v.warnings);
    assert!(v.warnings.iter().any(|w| w.contains("disallowLatestTag")), "{:?}", v.warnings);
    let cronjob = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"hostPID": true,
        "containers": [{"name": "app", "image": "busybox:1"}], "restartPolicy": "Never"}}}}}});
    let v = g.admit(&review("CREATE", "dev", "batch", "cronjobs", "CronJob", cronjob, Value::Null));
    assert!(
        v.warnings
            .iter()
            .any(|w| w.starts_with("would violate PodSecurity \"restricted:latest\": host namespaces")),
        "{:?}",
        v.warnings
    );
}

#[test]
fn exemptions_and_insignificant_updates() {
    let g = guardrails();
    let kata = pod("nginx:1", json!({"runtimeClassName": "kata", "hostPID": true}));
    let v = g.admit(&review("CREATE", "prod", "", "pods", "Pod", kata, Value::Null));
    assert_eq!(v.denial, None);
    assert_eq!(v.audit_annotations["pod-security.kubernetes.io/exempt"], "runtimeClass");
    // A label-only update of a non-compliant pod is not re-checked.
    let bad = pod("nginx:1", json!({"hostPID": true}));
    let v = g.admit(&review("UPDATE", "prod", "", "pods", "Pod", bad.clone(), bad.clone()));
    assert_eq!(v, Default::default());
    // An image change is.
    let v =
        g.admit(&review("UPDATE", "prod", "", "pods", "Pod", pod("nginx:2", json!({"hostPID": true})), bad));
    assert!(v.denial.is_some());
    // exec is never checked.
    let mut exec = review(
        "CREATE",
        "prod",
        "",
        "pods",
        "PodExecOptions",
        json!({"kind": "PodExecOptions"}),
        Value::Null,
    );
    exec.sub_resource = Some("exec".into());
    assert_eq!(g.admit(&exec), Default::default());
}

#[test]
fn bad_namespace_labels_fail_closed_for_enforce() {
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: odd, labels: {pod-security.kubernetes.io/enforce: strict}}\n";
    let g = Guardrails::new(Default::default(), Guardrails::namespaces_from_yaml(ns).unwrap()).unwrap();
    let v = g.admit(&review("CREATE", "odd", "", "pods", "Pod", pod("nginx:1", json!({})), Value::Null));
    assert!(v.denial.unwrap().contains("restricted:latest"));
    assert!(v.audit_annotations["pod-security.kubernetes.io/error"].contains("strict"));
}
