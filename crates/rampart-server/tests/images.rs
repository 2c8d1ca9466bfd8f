//! `POST /v1/images` through the real router, against a real registry with images signed by
//! cosign: full AdmissionReviews as the apiserver sends them, the patch applied with
//! `json-patch`, denials, UPDATEs, ephemeral containers, malformed reviews; and `/v1/admit`
//! giving Cedar `context.images`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

mod common;
#[path = "../../rampart-images/tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rampart_images::verify::CacheSettings;
use rampart_policy::EngineOptions;
use rampart_policy::store::{LiveEngine, PolicySources, Validation};
use rampart_server::images::ImageVerification;
use rampart_server::{AppState, Metrics};
use serde_json::{Value, json};

async fn server(registry: &support::Registry) -> (rampart_server::serve::RunningServer, tempfile::TempDir) {
    let spec = "  authorities:\n    - name: release\n      key: {file: trusted.pub}\n";
    let admitter = support::admitter(registry, spec, CacheSettings::default(), Duration::from_secs(5)).await;
    // The Cedar side: prod-* pods need images signed by `release` (examples/policies/images).
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies/images/signed-only.cedar");
    let text = std::fs::read_to_string(example).unwrap();
    // Only the signature policy: the provenance one would refuse every pod here.
    let first = text.split("@id(\"prod-images-with-provenance\")").next().unwrap();
    std::fs::write(dir.path().join("images.cedar"), format!("{first}\npermit(principal, action, resource);"))
        .unwrap();
    let mut sources = PolicySources::new(vec![dir.path().into()], EngineOptions::default());
    sources.validation = Validation::Off;
    let (live, _) = LiveEngine::load(sources).unwrap();
    let state = AppState::new(live, Arc::new(Metrics::new()))
        .with_images(ImageVerification { admitter: Arc::new(admitter), pull_secrets: None });
    (common::serve(state), dir)
}

fn review(operation: &str, kind: (&str, &str), resource: &str, object: Value, old: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "b1f0", "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
        "resource": {"group": kind.0, "version": "v1", "resource": resource},
        "name": "web", "namespace": "prod-eu", "operation": operation,
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": object, "oldObject": old}})
}

/// A pod of `prod-eu` as the apiserver sends it, with a field Rampart does not model.
fn pod(images: &[&str]) -> Value {
    let mut pod = support::pod(images);
    pod["apiVersion"] = json!("v1");
    pod["metadata"] = json!({"name": "web", "namespace": "prod-eu"});
    pod["spec"]["futureField"] = json!({"kept": true});
    pod
}

async fn post(server: &rampart_server::serve::RunningServer, path: &str, body: &Value) -> Value {
    let resp =
        reqwest::Client::new().post(format!("{}{path}", server.url())).json(body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn patched(review: &Value, response: &Value) -> Value {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut object = review["request"]["object"].clone();
    json_patch::patch(&mut object, &patch).unwrap();
    object
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_verified_pinned_or_refused_through_the_router() {
    let mut registry = support::Registry::start();
    let host = registry.host.clone();
    registry.keypair("trusted");
    let digest = registry.push("prod/app:v1", "app");
    registry.sign("trusted", "prod/app:v1", &[]);
    registry.push("prod/unsigned:v1", "unsigned");
    let (server, _dir) = server(&registry).await;
    let signed = format!("{host}/prod/app:v1");
    let unsigned = format!("{host}/prod/unsigned:v1");

    // A pod: allowed, pinned; fields Rampart does not model survive the patch.
    let create =
        review("CREATE", ("", "Pod"), "pods", pod(&[&signed, "registry.k8s.io/pause:3.10"]), Value::Null);
    let response = post(&server, "/v1/images", &create).await;
    assert_eq!(response["response"]["allowed"], true, "{response}");
    let pinned = patched(&create, &response);
    assert_eq!(pinned["spec"]["containers"][0]["image"], format!("{host}/prod/app@{digest}"));
    assert_eq!(
        pinned["spec"]["containers"][1]["image"], "registry.k8s.io/pause:3.10",
        "not covered: untouched"
    );
    assert_eq!(pinned["spec"]["futureField"], json!({"kept": true}));

    // The validating webhook sees the pinned pod, and Cedar sees it verified.
    let only_signed = pod(&[pinned["spec"]["containers"][0]["image"].as_str().unwrap()]);
    let admitted = review("CREATE", ("", "Pod"), "pods", only_signed, Value::Null);
    let response = post(&server, "/v1/admit", &admitted).await;
    assert_eq!(response["response"]["allowed"], true, "{response}");
    let unverified = review("CREATE", ("", "Pod"), "pods", pod(&["registry.k8s.io/pause:3.10"]), Value::Null);
    let response = post(&server, "/v1/admit", &unverified).await;
    assert_eq!(
        response["response"]["allowed"], false,
        "Cedar refuses an unverified image in prod-*: {response}"
    );

    // A Deployment with an unsigned image: refused, 403, naming image, digest and policy.
    let template = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": unsigned}]}}}});
    let response = post(
        &server,
        "/v1/images",
        &review("CREATE", ("apps", "Deployment"), "deployments", template, Value::Null),
    )
    .await;
    assert_eq!(response["response"]["allowed"], false);
    assert_eq!(response["response"]["status"]["code"], 403);
    let message = response["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("image \"{unsigned}\" (sha256:"))
            && message.ends_with("policy \"release\": no cosign signature"),
        "{message}"
    );

    // An ephemeral container added through pods/ephemeralcontainers is verified too.
    let mut with_debug = pinned.clone();
    with_debug["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": unsigned}]);
    let mut ephemeral = review("UPDATE", ("", "Pod"), "pods", with_debug, pinned.clone());
    ephemeral["request"]["subResource"] = json!("ephemeralcontainers");
    let response = post(&server, "/v1/images", &ephemeral).await;
    assert_eq!(response["response"]["allowed"], false, "{response}");

    // With the registry gone: an UPDATE keeping its images and a DELETE pass; a new image is
    // refused, naming the cause.
    registry.stop();
    let mut relabelled = pinned.clone();
    relabelled["metadata"]["labels"] = json!({"touched": "yes"});
    let response =
        post(&server, "/v1/images", &review("UPDATE", ("", "Pod"), "pods", relabelled, pinned.clone())).await;
    assert_eq!(response["response"]["allowed"], true, "{response}");
    assert!(response["response"].get("patch").is_none());
    let response =
        post(&server, "/v1/images", &review("DELETE", ("", "Pod"), "pods", Value::Null, pinned.clone()))
            .await;
    assert_eq!(response["response"]["allowed"], true);
    let fresh = review("CREATE", ("", "Pod"), "pods", pod(&[&format!("{host}/prod/new:v1")]), Value::Null);
    let response = post(&server, "/v1/images", &fresh).await;
    assert_eq!(response["response"]["allowed"], false);
    let message = response["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("cannot verify: registry {host} unreachable")), "{message}");

    // Malformed: a review naming the problem, with the uid salvaged.
    let mut bad = create.clone();
    bad["request"]["operation"] = json!("PATCH");
    let response = post(&server, "/v1/images", &bad).await;
    assert_eq!(
        (response["response"]["uid"].as_str(), response["response"]["status"]["code"].as_u64()),
        (Some("b1f0"), Some(400))
    );
}
