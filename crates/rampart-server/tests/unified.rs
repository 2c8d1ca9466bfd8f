//! Unified policies through the real router over HTTPS: a conditional authorization answered
//! `allowed`, finished by the validating webhook with the object, and left to the engine's
//! RBAC tier when no unified policy decides.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use std::sync::Arc;

use rampart_policy::EngineOptions;
use rampart_policy::store::{LiveEngine, PolicySources};
use rampart_server::serve::RunningServer;
use rampart_server::tls::CertSource;
use rampart_server::{AppState, Metrics, ServeConfig, Transport, start};
use rampart_unified::live::LiveUnified;
use serde_json::{Value, json};

const UNIFIED: &str = r#"
@id("devs-configmaps")
permit (principal in k8s::Group::"devs",
        action in [k8s::unified::Action::"create", k8s::unified::Action::"update",
                   k8s::unified::Action::"patch", k8s::unified::Action::"delete"],
        resource is core::configmaps)
when { resource has namespace && resource.namespace == "dev" };

@id("no-prod-configmaps")
@reason("production ConfigMaps are managed by the release pipeline")
forbid (principal in k8s::Group::"devs",
        action in [k8s::unified::Action::"create", k8s::unified::Action::"update",
                   k8s::unified::Action::"patch"],
        resource is core::configmaps)
when { resource has object && resource.object has metadata && resource.object.metadata has name &&
       resource.object.metadata.name like "prod*" };

@id("labelled-secrets")
permit (principal in k8s::Group::"ops",
        action == k8s::unified::Action::"create",
        resource is core::secrets)
when { resource has object && resource.object has metadata && resource.object.metadata has labels &&
       resource.object.metadata.labels.contains({"key": "owner", "value": "ops"}) };
"#;

/// RBAC grants `ops` every verb on secrets in `dev` (a Role and its binding).
const RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secrets, namespace: dev}
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ops-secrets, namespace: dev}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secrets}
subjects:
- {kind: Group, apiGroup: rbac.authorization.k8s.io, name: ops}
"#;

struct Harness {
    server: RunningServer,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn harness(with_rbac: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let unified = dir.path().join("unified.cedar");
    std::fs::write(&unified, UNIFIED).unwrap();
    let mut sources = PolicySources::new(vec![], EngineOptions::default());
    if with_rbac {
        let rbac = dir.path().join("rbac.yaml");
        std::fs::write(&rbac, RBAC).unwrap();
        sources.rbac = vec![rbac];
    }
    let (live, _) = LiveEngine::load(sources).unwrap();
    let config = ServeConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        transport: Transport::Tls(CertSource::SelfSigned {
            dir: dir.path().join("certs"),
            names: rampart_server::tls::default_names(),
        }),
    };
    let state = AppState::new(live, Arc::new(Metrics::new()))
        .with_unified(LiveUnified::load(vec![unified], false).unwrap());
    let server = start(&config, state).unwrap();
    let ca = std::fs::read(server.cert_file.as_ref().unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    Harness { server, client, _dir: dir }
}

impl Harness {
    async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("https://localhost:{}{path}", self.server.addr.port());
        let resp = self.client.post(url).body(body.to_string()).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    async fn authorize(&self, user: &str, group: &str, verb: &str, resource: &str, name: &str) -> Value {
        let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": [group, "system:authenticated"],
                     "resourceAttributes": {"verb": verb, "version": "v1", "resource": resource,
                                            "namespace": "dev", "name": name}}});
        self.post("/v1/authorize", sar).await["status"].clone()
    }

    async fn admit(&self, user: &str, group: &str, resource: &str, object: Value) -> Value {
        self.admit_at("/v1/admit", user, group, resource, object).await
    }

    async fn admit_at(&self, path: &str, user: &str, group: &str, resource: &str, object: Value) -> Value {
        let kind = if resource == "secrets" { "Secret" } else { "ConfigMap" };
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": kind},
                "resource": {"group": "", "version": "v1", "resource": resource},
                "requestResource": {"group": "", "version": "v1", "resource": resource},
                "name": object["metadata"]["name"], "namespace": "dev", "operation": "CREATE",
                "userInfo": {"username": user, "groups": [group, "system:authenticated"]},
                "object": object, "oldObject": null}});
        self.post(path, review).await["response"].clone()
    }
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "dev"}, "data": {"k": "v"}})
}

fn secret(owner: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "dev", "labels": {"owner": owner}}})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conditional_create_is_allowed_then_finished_by_the_webhook() {
    let h = harness(false).await;
    // Authorization cannot see the object: allowed on condition, and the reason says so.
    let status = h.authorize("dev-1", "devs", "create", "configmaps", "").await;
    assert_eq!(status["allowed"], true, "{status}");
    assert!(status["reason"].as_str().unwrap().contains("conditional"), "{status}");

    let ok = h.admit("dev-1", "devs", "configmaps", configmap("app")).await;
    assert_eq!(ok["allowed"], true, "{ok}");
    let denied = h.admit("dev-1", "devs", "configmaps", configmap("prod-db")).await;
    assert_eq!(denied["allowed"], false, "{denied}");
    assert_eq!(denied["status"]["code"], 403);
    assert_eq!(
        denied["status"]["message"],
        "denied by unified policy no-prod-configmaps: production ConfigMaps are managed by the release pipeline"
    );
    // The unified webhook's own path finishes it the same way.
    let denied = h.admit_at("/v1/admit/unified", "dev-1", "devs", "configmaps", configmap("prod-db")).await;
    assert_eq!(denied["allowed"], false, "{denied}");
    let ok = h.admit_at("/v1/admit/unified", "dev-1", "devs", "configmaps", configmap("app")).await;
    assert_eq!(ok["allowed"], true, "{ok}");
    // Deletes carry no new object: the permit decides at authorization.
    let delete = h.authorize("dev-1", "devs", "delete", "configmaps", "prod-db").await;
    assert_eq!(delete["allowed"], true, "{delete}");
    assert!(delete["reason"].as_str().unwrap().contains("devs-configmaps"), "{delete}");
    // Other users and resources are none of the unified tier's business.
    let other = h.authorize("someone", "others", "create", "configmaps", "").await;
    assert_eq!(other["allowed"], false);
    assert_ne!(other["denied"], true);
    let other_write = h.admit("someone", "others", "configmaps", configmap("prod-db")).await;
    assert_eq!(other_write["allowed"], true, "{other_write}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conditional_request_no_unified_policy_grants_goes_to_the_rbac_tier() {
    // ops may create secrets labelled owner=ops by the unified permit; RBAC grants them the
    // rest, exactly as authorization would have without the unified tier's conditional answer.
    let with_rbac = harness(true).await;
    let status = with_rbac.authorize("op-1", "ops", "create", "secrets", "").await;
    assert_eq!(status["allowed"], true, "{status}");
    assert!(status["reason"].as_str().unwrap().contains("conditional"), "{status}");
    assert_eq!(with_rbac.admit("op-1", "ops", "secrets", secret("ops")).await["allowed"], true);
    let by_rbac = with_rbac.admit("op-1", "ops", "secrets", secret("someone-else")).await;
    assert_eq!(by_rbac["allowed"], true, "{by_rbac}");

    // Without an RBAC tier nothing grants it once the object is known: fail closed, and say
    // what to do.
    let without = harness(false).await;
    let denied = without.admit("op-1", "ops", "secrets", secret("someone-else")).await;
    assert_eq!(denied["allowed"], false, "{denied}");
    assert!(denied["status"]["message"].as_str().unwrap().contains("--rbac"), "{denied}");
    assert_eq!(without.admit("op-1", "ops", "secrets", secret("ops")).await["allowed"], true);
}
