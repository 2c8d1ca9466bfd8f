//! The real router over real HTTPS: reviews in, reviews out, metrics, hot reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rampart_policy::EngineOptions;
use rampart_policy::store::live::ReloadEvent;
use rampart_policy::store::{LiveEngine, PolicySources};
use rampart_server::serve::RunningServer;
use rampart_server::tls::CertSource;
use rampart_server::{AppState, Metrics, ServeConfig, Transport, start};
use serde_json::{Value, json};

const POLICY: &str = r#"
permit (principal in k8s::Group::"viewers", action == k8s::Action::"get", resource is k8s::Resource);
forbid (principal, action, resource is k8s::Resource) when { resource.resource == "secrets" };
forbid (principal, action == k8s::admission::Action::"create", resource is core::v1::ConfigMap)
  unless { resource has metadata && resource.metadata has labels
           && resource.metadata.labels.contains({"key": "owner", "value": principal.name}) };
"#;

struct Harness {
    server: RunningServer,
    client: reqwest::Client,
    live: Arc<LiveEngine>,
    metrics: Arc<Metrics>,
    _dir: tempfile::TempDir,
}

async fn harness(policies: &str) -> Harness {
    harness_with(policies, None).await
}

async fn harness_with(
    policies: &str,
    guardrails: Option<rampart_guardrails::admission::Guardrails>,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("policies");
    std::fs::create_dir(&pdir).unwrap();
    std::fs::write(pdir.join("main.cedar"), policies).unwrap();
    let sources = PolicySources::new(vec![pdir], EngineOptions::default());
    let (live, _warnings) = LiveEngine::load(sources).unwrap();
    let metrics = Arc::new(Metrics::new());
    let config = ServeConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        transport: Transport::Tls(CertSource::SelfSigned {
            dir: dir.path().join("certs"),
            names: rampart_server::tls::default_names(),
        }),
    };
    let state = match guardrails {
        Some(g) => AppState::with_guardrails(live.clone(), metrics.clone(), g),
        None => AppState::new(live.clone(), metrics.clone()),
    };
    let server = start(&config, state).unwrap();
    let ca = std::fs::read(server.cert_file.as_ref().unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    Harness { server, client, live, metrics, _dir: dir }
}

impl Harness {
    async fn post(&self, path: &str, body: String) -> Value {
        let url = format!("https://localhost:{}{path}", self.server.addr.port());
        let resp = self.client.post(url).body(body).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        resp.json().await.unwrap()
    }

    async fn get(&self, path: &str) -> String {
        let url = format!("https://localhost:{}{path}", self.server.addr.port());
        self.client.get(url).send().await.unwrap().text().await.unwrap()
    }

    fn policy_dir(&self) -> &Path {
        self._dir.path()
    }
}

fn sar(user: &str, groups: &[&str], verb: &str, resource: &str) -> String {
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups,
                 "resourceAttributes": {"verb": verb, "version": "v1", "resource": resource, "namespace": "default"}}})
    .to_string()
}

fn admission_review(user: &str, labels: Value) -> String {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "requestKind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "requestResource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "cm", "namespace": "default", "operation": "CREATE",
            "userInfo": {"username": user, "uid": "014fbff9a07c", "groups": ["system:authenticated"],
                         "extra": {"some-key": ["some-value1"]}},
            "object": {"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "cm", "namespace": "default", "labels": labels}, "data": {"k": "v"}},
            "oldObject": null, "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}})
    .to_string()
}

#[tokio::test]
async fn authorize_allow_deny_and_no_opinion() {
    let h = harness(POLICY).await;
    let allow = h.post("/v1/authorize", sar("alice", &["viewers"], "get", "pods")).await;
    assert_eq!(allow["status"]["allowed"], true);
    assert_eq!(
        allow["status"]["reason"],
        r#"{"reasons":[{"policy":"main.cedar.policy0","position":{"filename":"main.cedar","offset":1,"line":2,"column":1}}]}"#
    );
    let deny = h.post("/v1/authorize", sar("alice", &["viewers"], "get", "secrets")).await;
    assert_eq!(deny["status"]["denied"], true);
    let none = h.post("/v1/authorize", sar("bob", &["others"], "get", "pods")).await;
    assert_eq!(none["status"], json!({"allowed": false}));
    // The same body again is answered from the cache, identically.
    let again = h.post("/v1/authorize", sar("alice", &["viewers"], "get", "secrets")).await;
    assert_eq!(again, deny);
    let metrics = h.get("/metrics").await;
    assert!(metrics.contains("rampart_decision_cache_hits_total 1"), "{metrics}");
    assert!(metrics.contains(r#"rampart_decisions_total{endpoint="authorize",decision="deny""#), "{metrics}");
    assert!(metrics.contains("rampart_decision_duration_seconds_bucket"), "{metrics}");
    assert!(h.get("/readyz").await.contains("3 policies"));
    assert_eq!(h.get("/healthz").await, "ok");
}

#[tokio::test]
async fn admission_with_a_full_review() {
    let h = harness(POLICY).await;
    let denied = h.post("/v1/admit", admission_review("alice", json!({}))).await;
    assert_eq!(denied["kind"], "AdmissionReview");
    assert_eq!(denied["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(denied["response"]["allowed"], false);
    assert_eq!(denied["response"]["status"]["code"], 403);
    assert!(denied["response"]["status"]["message"].as_str().unwrap().contains("main.cedar.policy2"));
    let allowed = h.post("/v1/admit", admission_review("alice", json!({"owner": "alice"}))).await;
    assert_eq!(allowed["response"]["allowed"], true);
}

#[tokio::test]
async fn malformed_reviews_get_well_formed_answers() {
    let h = harness(POLICY).await;
    let bad_sar = h
        .post(
            "/v1/authorize",
            r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"groups":7}}"#
                .into(),
        )
        .await;
    assert_eq!(bad_sar["status"]["allowed"], false);
    assert!(bad_sar["status"]["evaluationError"].as_str().unwrap().contains("spec.groups"), "{bad_sar}");
    let not_json = h.post("/v1/admit", "{not json".into()).await;
    assert_eq!(not_json["response"]["allowed"], false);
    assert_eq!(not_json["response"]["status"]["code"], 400);
    let mut review: Value = serde_json::from_str(&admission_review("alice", json!({}))).unwrap();
    review["request"]["operation"] = json!("EXPLODE");
    let bad_op = h.post("/v1/admit", review.to_string()).await;
    assert_eq!(bad_op["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert!(bad_op["response"]["status"]["message"].as_str().unwrap().contains("request.operation"));
    assert!(h.get("/metrics").await.contains("rampart_bad_requests_total"));
}

async fn wait_for(mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached within 5s");
}

#[tokio::test]
async fn hot_reload_swaps_and_a_bad_file_keeps_the_last_good_set() {
    let h = harness(POLICY).await;
    let metrics = h.metrics.clone();
    let _guard = h
        .live
        .watch(move |event| {
            let result = if matches!(event, ReloadEvent::Reloaded { .. }) { "ok" } else { "error" };
            metrics.reloads.get_or_create(&rampart_server::metrics::ReloadLabels { result }).inc();
        })
        .unwrap();
    let file = h.policy_dir().join("policies/extra.cedar");
    std::fs::write(&file, r#"permit (principal, action == k8s::Action::"list", resource);"#).unwrap();
    wait_for(async || {
        h.post("/v1/authorize", sar("bob", &[], "list", "pods")).await["status"]["allowed"] == true
    })
    .await;
    // A broken file: the reload fails, is counted, and the previous set keeps answering.
    std::fs::write(&file, "permit (principal, action == k8s::Action::\"list\", resource);\nforbid (oops);")
        .unwrap();
    wait_for(async || h.get("/metrics").await.contains(r#"rampart_policy_reloads_total{result="error"} 1"#))
        .await;
    assert_eq!(h.post("/v1/authorize", sar("bob", &[], "list", "pods")).await["status"]["allowed"], true);
    match h.live.reload() {
        ReloadEvent::Failed(f) => assert!(f.to_string().contains("extra.cedar:2:"), "{f}"),
        other => panic!("expected failure, got {other:?}"),
    }
}

#[tokio::test]
async fn plain_http_only_on_loopback() {
    let h = harness(POLICY).await;
    let state = AppState::new(h.live.clone(), h.metrics.clone());
    let config = ServeConfig { addr: "0.0.0.0:0".parse().unwrap(), transport: Transport::PlainHttp };
    let err = start(&config, state.clone()).err().unwrap();
    assert!(err.to_string().contains("only allowed on a loopback"), "{err}");
    let config = ServeConfig { addr: "127.0.0.1:0".parse().unwrap(), transport: Transport::PlainHttp };
    let plain = start(&config, state).unwrap();
    let body: Value = reqwest::Client::new()
        .post(format!("{}/v1/authorize", plain.url()))
        .body(sar("alice", &["viewers"], "get", "pods"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"]["allowed"], true);
    plain.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn guardrails_run_before_cedar_in_the_admission_path() {
    use rampart_guardrails::admission::Guardrails;
    let namespaces = "apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {pod-security.kubernetes.io/enforce: baseline, pod-security.kubernetes.io/warn: restricted}}\n";
    let g =
        Guardrails::new(Default::default(), Guardrails::namespaces_from_yaml(namespaces).unwrap()).unwrap();
    let h = harness_with(POLICY, Some(g)).await;
    let pod = |spec: Value| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "9a1b", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": "p", "namespace": "default",
            "operation": "CREATE", "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": spec},
            "oldObject": null}})
        .to_string()
    };
    let denied = h
        .post(
            "/v1/admit",
            pod(json!({"hostNetwork": true, "containers": [{"name": "c", "image": "nginx:1"}]})),
        )
        .await;
    assert_eq!(denied["response"]["allowed"], false);
    let message = denied["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(r#"violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#),
        "{message}"
    );
    let warned = h.post("/v1/admit", pod(json!({"containers": [{"name": "c", "image": "nginx:1"}]}))).await;
    assert_eq!(warned["response"]["allowed"], true);
    let warning = warned["response"]["warnings"][0].as_str().unwrap();
    assert!(warning.starts_with(r#"would violate PodSecurity "restricted:latest""#), "{warning}");
    assert!(h.get("/metrics").await.contains(r#"decision="deny",tier="guardrails""#));
}

/// A replica that has not read every live source once answers no review (503, fail closed)
/// and `/readyz` names what it waits for, with the last error; once read, both work.
#[tokio::test]
async fn not_ready_until_every_live_source_is_read_once() {
    let h = harness(POLICY).await;
    h.metrics.expect_source("namespaces");
    h.metrics.expect_source("aws-auth");
    h.metrics.report_source("aws-auth", Err("forbidden: cannot get configmaps".into()));
    let url = |path: &str| format!("https://localhost:{}{path}", h.server.addr.port());
    let review = h
        .client
        .post(url("/v1/authorize"))
        .body(sar("alice", &["viewers"], "get", "pods"))
        .send()
        .await
        .unwrap();
    assert_eq!(review.status(), 503);
    let ready = h.client.get(url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let text = ready.text().await.unwrap();
    assert!(
        text.contains("waiting for the first read of aws-auth, namespaces")
            && text.contains("aws-auth: forbidden: cannot get configmaps"),
        "{text}"
    );
    assert_eq!(h.get("/healthz").await, "ok", "alive while not ready");
    h.metrics.report_source("namespaces", Ok(()));
    h.metrics.report_source("aws-auth", Ok(()));
    assert_eq!(
        h.post("/v1/authorize", sar("alice", &["viewers"], "get", "pods")).await["status"]["allowed"],
        true
    );
    assert!(h.get("/readyz").await.starts_with("ok: 3 policies"));
}

/// Oversized and over-limit SubjectAccessReviews are refused with a well-formed review naming
/// the problem (denied: not passed on to RBAC), instead of a stream reset or seconds of CPU.
#[tokio::test]
async fn oversized_and_over_limit_reviews_get_a_review_back() {
    use rampart_types::review::limits::{MAX_BODY, MAX_GROUPS};
    let h = harness(POLICY).await;
    let groups: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    let crowded = h.post("/v1/authorize", sar("alice", &groups, "get", "pods")).await;
    assert_eq!(crowded["status"]["denied"], true);
    assert!(
        crowded["status"]["evaluationError"].as_str().unwrap().starts_with("spec.groups has 1025 entries")
    );
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_BODY));
    let refused = h.post("/v1/authorize", huge.clone()).await;
    assert_eq!(refused["status"]["denied"], true);
    assert!(refused["status"]["evaluationError"].as_str().unwrap().contains("larger than"), "{refused}");
    let admission = h.post("/v1/admit", huge).await;
    assert_eq!(admission["response"]["status"]["code"], 413);
}
