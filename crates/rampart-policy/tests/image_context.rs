//! `context.images`: what image verification found, as Cedar admission policies see it
//! (`examples/policies/images`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use rampart_policy::store::{PolicySources, Validation};
use rampart_policy::{Engine, EngineOptions};
use rampart_types::admission;
use rampart_types::workload::ImageContext;
use serde_json::json;

fn engine() -> Engine {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies/images");
    let mut sources = PolicySources::new(vec![dir.into()], EngineOptions::default());
    // `context.images` is a Rampart extension the upstream schema does not declare.
    sources.validation = Validation::Off;
    sources.load().unwrap().engine
}

fn denied_by(engine: &Engine, namespace: &str, images: Option<&ImageContext>) -> Vec<String> {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/prod/app@sha256:0123"}]}});
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "web", "namespace": namespace, "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": pod, "oldObject": null}});
    let review = admission::decode(body.to_string().as_bytes()).unwrap();
    let verdict = engine.admit_with_images(&review.request, images);
    let mut denied: Vec<String> = verdict
        .diagnostic
        .reasons
        .iter()
        .filter(|_| !verdict.response.allowed)
        .map(|r| r.policy.clone())
        .collect();
    denied.sort();
    denied
}

#[test]
fn policies_read_what_verification_found() {
    let engine = engine();
    let image = "registry.example.com/prod/app@sha256:0123".to_string();
    let good = ImageContext {
        verified: vec![image.clone()],
        unverified: vec![],
        signers: vec!["release".into()],
        attestations: vec!["https://slsa.dev/provenance/v0.2".into()],
    };
    assert_eq!(denied_by(&engine, "prod-eu", Some(&good)), Vec::<String>::new());

    let unsigned = ImageContext { verified: vec![], unverified: vec![image.clone()], ..Default::default() };
    assert_eq!(
        denied_by(&engine, "prod-eu", Some(&unsigned)),
        ["signed-only.cedar.policy0", "signed-only.cedar.policy1"]
    );
    let other_signer = ImageContext { signers: vec!["ci".into()], ..good.clone() };
    assert_eq!(denied_by(&engine, "prod-eu", Some(&other_signer)), ["signed-only.cedar.policy0"]);
    let no_provenance = ImageContext { attestations: vec![], ..good.clone() };
    assert_eq!(denied_by(&engine, "prod-eu", Some(&no_provenance)), ["signed-only.cedar.policy1"]);
    // Without verification there are no facts: in prod that is a refusal, elsewhere nothing.
    assert_eq!(denied_by(&engine, "prod-eu", None).len(), 2);
    assert_eq!(denied_by(&engine, "dev", None), Vec::<String>::new());
}
