//! The Cedar guardrail library (`examples/policies/guardrails`): each rule denies the pod it is
//! about and lets a compliant pod through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use rampart_policy::store::{PolicySources, Validation};
use rampart_policy::{Engine, EngineOptions};
use rampart_types::admission;
use serde_json::{Value, json};

fn engine() -> Engine {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies/guardrails");
    let mut sources = PolicySources::new(vec![dir.into()], EngineOptions::default());
    // `context.workload` is a Rampart extension the upstream schema does not declare.
    sources.validation = Validation::Off;
    sources.load().unwrap().engine
}

fn compliant() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"automountServiceAccountToken": false, "containers": [{"name": "app",
            "image": "registry.k8s.io/app:1.2@sha256:0123456789abcdef",
            "securityContext": {"readOnlyRootFilesystem": true}}]}})
}

fn denied_by(engine: &Engine, kind: &str, group: &str, resource: &str, object: Value) -> Vec<String> {
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "name": "web", "namespace": "prod", "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": object, "oldObject": null}});
    let review = admission::decode(body.to_string().as_bytes()).unwrap();
    let verdict = engine.admit(&review.request);
    verdict
        .diagnostic
        .reasons
        .iter()
        .filter(|_| !verdict.response.allowed)
        .map(|r| r.policy.clone())
        .collect()
}

#[test]
fn a_compliant_pod_passes_every_rule() {
    assert_eq!(denied_by(&engine(), "Pod", "", "pods", compliant()), Vec::<String>::new());
}

/// Turns the compliant pod into one that breaks a rule.
type Mutation = fn(&mut Value);

#[test]
fn each_rule_catches_its_violation() {
    let engine = engine();
    let cases: Vec<(&str, Mutation)> = vec![
        ("workload-rules.cedar.policy0", (|p| p["spec"]["automountServiceAccountToken"] = json!(true))),
        ("workload-rules.cedar.policy1", (|p| p["spec"]["containers"][0]["securityContext"] = json!({}))),
        (
            "workload-rules.cedar.policy2",
            (|p| p["spec"]["containers"][0]["image"] = json!("quay.io/app:1@sha256:00")),
        ),
        (
            "workload-rules.cedar.policy3",
            (|p| p["spec"]["containers"][0]["image"] = json!("registry.k8s.io/app")),
        ),
        (
            "workload-rules.cedar.policy4",
            (|p| p["spec"]["containers"][0]["image"] = json!("registry.k8s.io/app:1.2")),
        ),
        ("workload-rules.cedar.policy5", (|p| p["spec"]["hostPID"] = json!(true))),
    ];
    for (policy, mutate) in cases {
        let mut pod = compliant();
        mutate(&mut pod);
        let denied = denied_by(&engine, "Pod", "", "pods", pod.clone());
        assert!(denied.contains(&policy.to_owned()), "{policy}: {denied:?} for {pod}");
    }
}

#[test]
fn a_digest_without_a_tag_is_not_latest() {
    let mut pod = compliant();
    pod["spec"]["containers"][0]["image"] = json!("registry.k8s.io/app@sha256:00");
    assert_eq!(denied_by(&engine(), "Pod", "", "pods", pod), Vec::<String>::new());
}

#[test]
fn controllers_are_checked_through_their_template() {
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}}});
    let denied = denied_by(&engine(), "Deployment", "apps", "deployments", deployment);
    for p in ["policy1", "policy2", "policy3"] {
        assert!(denied.contains(&format!("workload-rules.cedar.{p}")), "{p}: {denied:?}");
    }
}
