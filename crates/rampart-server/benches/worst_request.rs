//! The worst request we can construct for each endpoint, through the real router in process
//! (no network), beside a typical request to the same endpoint in the same run (the ratio is
//! the price of the worst case) and `/healthz` (the noise floor of a request through the
//! router). Target: every worst case under 5 ms of CPU — one thread, so time is CPU time.
//!
//!     cargo bench -p rampart-server --bench worst_request
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

use std::sync::Arc;

/// The allocator the `rampart` binary (and so `rampart serve`) ships with, so the numbers are
/// the server's: the system allocator maps and faults in every megabyte-sized string afresh.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use axum::body::Body;
use axum::http::Request;
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use rampart_policy::EngineOptions;
use rampart_policy::store::{LiveEngine, PolicySources};
use rampart_server::{AppState, Metrics, router};
use rampart_types::review::limits::{
    MAX_BODY, MAX_EXTRA_KEYS, MAX_EXTRA_VALUES, MAX_GROUPS, MAX_SAR_BODY, MAX_SELECTOR_REQUIREMENTS,
    MAX_SELECTOR_VALUES,
};
use serde_json::json;
use tower::ServiceExt as _;

/// The policies of the README's examples: group scopes, a label-selector forbid, an admission
/// label check and a workload registry rule.
const POLICIES: &str = r#"
permit (principal in k8s::Group::"viewers", action in [k8s::Action::"get", k8s::Action::"list"], resource is k8s::Resource)
unless { resource.apiGroup == "" && resource.resource == "secrets" };
forbid (principal is k8s::User in k8s::Group::"requires-labels", action in [k8s::Action::"list", k8s::Action::"watch"], resource is k8s::Resource)
unless { resource has labelSelector && resource.labelSelector.contains({"key": "owner", "operator": "in", "values": [principal.name]}) };
forbid (principal is k8s::User in k8s::Group::"requires-labels", action in [k8s::admission::Action::"create", k8s::admission::Action::"update"], resource)
unless { resource has metadata && resource.metadata has labels && resource.metadata.labels.contains({"key": "owner", "value": principal.name}) };
"#;

fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.cedar"), POLICIES).unwrap();
    let (live, _) =
        LiveEngine::load(PolicySources::new(vec![dir.path().into()], EngineOptions::default())).unwrap();
    (AppState::new(live, Arc::new(Metrics::new())), dir)
}

fn sar(groups: Vec<String>, extra: serde_json::Value, selector: serde_json::Value) -> String {
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
        "user": "alice", "groups": groups, "extra": extra,
        "resourceAttributes": {"verb": "list", "version": "v1", "resource": "configmaps", "namespace": "default",
            "labelSelector": {"requirements": selector}}}})
    .to_string()
}

/// The largest SubjectAccessReview that is still evaluated: every limit at its maximum
/// (groups, extra, label-selector requirements and values), the rest of the 1 MiB body in
/// the length of the user name.
fn worst_sar() -> String {
    let groups: Vec<String> = (0..MAX_GROUPS).map(|i| format!("group-{i:05}")).collect();
    let per_key = MAX_EXTRA_VALUES / MAX_EXTRA_KEYS;
    let extra: serde_json::Map<String, serde_json::Value> = (0..MAX_EXTRA_KEYS)
        .map(|k| {
            (format!("example.com/key-{k}"), json!((0..per_key).map(|v| format!("v{v}")).collect::<Vec<_>>()))
        })
        .collect();
    let per_requirement = MAX_SELECTOR_VALUES / MAX_SELECTOR_REQUIREMENTS;
    let selector: Vec<_> = (0..MAX_SELECTOR_REQUIREMENTS)
        .map(|i| {
            json!({"key": format!("owner-{i:05}"), "operator": "In",
            "values": (0..per_requirement).map(|v| format!("v{v}")).collect::<Vec<_>>()})
        })
        .collect();
    let body = sar(groups.clone(), json!(extra), json!(selector));
    let padded = body.replacen(
        "\"user\":\"alice\"",
        &format!("\"user\":\"{}\"", "a".repeat(MAX_SAR_BODY - body.len() - 64)),
        1,
    );
    assert!(padded.len() <= MAX_SAR_BODY, "{} bytes", padded.len());
    padded
}

fn configmap_review(data_bytes: usize, labels: usize) -> String {
    let labels: serde_json::Map<String, serde_json::Value> =
        (0..labels).map(|i| (format!("l{i}"), json!("v"))).collect();
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default", "labels": labels},
        "data": {"blob": "x".repeat(data_bytes)}});
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "name": "c", "namespace": "default", "operation": "UPDATE",
        "userInfo": {"username": "alice", "groups": ["requires-labels"]},
        "object": object, "oldObject": object}})
    .to_string()
}

/// The largest AdmissionReview an UPDATE can carry: two ~1.5 MiB ConfigMaps (etcd's object
/// limit), each with 1,000 labels.
fn worst_admission() -> String {
    let body = configmap_review(1_500_000, 1000);
    assert!(body.len() <= MAX_BODY);
    body
}

fn call(app: &axum::Router, runtime: &tokio::runtime::Runtime, path: &str, body: &str) -> usize {
    let request =
        Request::post(path).header("content-type", "application/json").body(Body::from(body.to_owned()));
    runtime.block_on(async {
        let response = app.clone().oneshot(request.unwrap()).await.unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        bytes.len()
    })
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (state, _dir) = state();
    let app = router(state);
    let over_groups = sar((0..(MAX_SAR_BODY / 12)).map(|i| format!("g{i}")).collect(), json!({}), json!([]));
    let cases: Vec<(&str, &str, String)> = vec![
        ("authorize", "typical", sar(vec!["viewers".into()], json!({}), json!([]))),
        ("authorize", "worst: every limit at its maximum, 256 KiB", worst_sar()),
        ("authorize", "refused: over the group limit", over_groups),
        (
            "authorize",
            "1024 groups",
            sar((0..MAX_GROUPS).map(|i| format!("group-{i:05}")).collect(), json!({}), json!([])),
        ),
        ("mutate", "typical", configmap_review(100, 3)),
        ("admit", "typical", configmap_review(100, 3)),
        ("admit", "worst: UPDATE of two 1.5 MiB objects", worst_admission()),
    ];
    let mut group = c.benchmark_group("worst_request");
    group.sample_size(20);
    group.bench_function("healthz (floor)", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response =
                    app.clone().oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await;
                response.unwrap().status()
            })
        })
    });
    for (endpoint, case, body) in &cases {
        let path = format!("/v1/{endpoint}");
        assert!(call(&app, &runtime, &path, body) > 0);
        // Every request differs (a counter in the user name), as an attacker's would: the
        // decision cache answers repeats, and the worst case is the one it cannot.
        let mut n = 0u64;
        group.bench_with_input(BenchmarkId::new(*endpoint, case), body, |b, body| {
            b.iter_batched(
                || {
                    n += 1;
                    body.replacen("\"alice\"", &format!("\"alice-{n}\""), 1)
                },
                |unique| call(&app, &runtime, &path, &unique),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
