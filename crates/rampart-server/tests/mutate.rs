//! `POST /v1/mutate` end to end: full AdmissionReview objects as the apiserver sends them, the
//! returned base64 JSON patch applied with `json-patch` to the original pod, and checks that
//! unknown fields survive, that non-pod and non-create requests pass untouched, and that a
//! malformed review gets a well-formed rejection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

mod common;

use std::sync::Arc;

use base64::Engine as _;
use rampart_identity::inject::{IdentitySources, InjectConfig};
use rampart_server::mutate::Injection;
use rampart_server::{AppState, Metrics};
use serde_json::{Value, json};

const ROLE: &str = "arn:aws:iam::111122223333:role/s3-reader";

const SOURCES: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: reader
  namespace: team-a
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/s3-reader
    eks.amazonaws.com/sts-regional-endpoints: "true"
---
apiVersion: rampart.dev/v1alpha1
kind: PodIdentityAssociation
metadata: {name: team-b-app}
spec: {namespace: team-b, serviceAccount: app, roleArn: "arn:aws:iam::111122223333:role/b"}
"#;

async fn server() -> (rampart_server::serve::RunningServer, tempfile::TempDir) {
    let (live, dir) = common::permit_all();
    let mut sources = IdentitySources::default();
    sources.add_manifests("sources.yaml", SOURCES).unwrap();
    let config = InjectConfig { region: Some("eu-west-1".into()), ..InjectConfig::default() };
    let injection = Injection::new(config, sources);
    let state = AppState::from_parts(live, Arc::new(Metrics::new()), None, None, Some(injection), None);
    (common::serve(state), dir)
}

/// A pod CREATE review shaped like the apiserver's, including fields Rampart does not model.
fn pod_review(namespace: &str, service_account: &str) -> Value {
    json!({
      "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
      "request": {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "web-7d4b9", "namespace": namespace, "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                     "uid": "a3e2", "groups": ["system:serviceaccounts", "system:authenticated"]},
        "object": {
          "apiVersion": "v1", "kind": "Pod",
          "metadata": {"name": "web-7d4b9", "namespace": namespace, "labels": {"app": "web"},
                       "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "1", "controller": true}]},
          "spec": {
            "serviceAccountName": service_account,
            "volumes": [{"name": "kube-api-access-x", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}],
            "initContainers": [{"name": "init", "image": "busybox", "env": [{"name": "AWS_REGION", "value": "us-east-1"}]}],
            "containers": [{"name": "web", "image": "nginx:1.27",
                            "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                            "futureField": {"kept": true},
                            "volumeMounts": [{"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]}],
            "hostUsers": false
          },
          "status": {}
        },
        "oldObject": null, "dryRun": false,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
      }
    })
}

async fn post(server: &rampart_server::serve::RunningServer, body: String) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/mutate", server.url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// The pod after applying the response's patch, as the apiserver would.
fn patched(review: &Value, response: &Value) -> Value {
    assert_eq!(response["response"]["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).unwrap();
    pod
}

fn env(container: &Value) -> Vec<String> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}={}", e["name"].as_str().unwrap(), e["value"].as_str().unwrap()))
        .collect()
}

#[tokio::test]
async fn irsa_pod_gets_role_token_volume_and_mounts_and_keeps_unknown_fields() {
    let (server, _dir) = server().await;
    let review = pod_review("team-a", "reader");
    let response = post(&server, review.to_string()).await;
    assert_eq!(response["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(response["response"]["allowed"], true);
    // W27: the TypeMeta is echoed (k3s/kOps reject a bare response, upstream PR #310).
    assert_eq!(
        (response["apiVersion"].as_str(), response["kind"].as_str()),
        (Some("admission.k8s.io/v1"), Some("AdmissionReview"))
    );
    let pod = patched(&review, &response);
    let web = &pod["spec"]["containers"][0];
    assert_eq!(
        env(web),
        [
            "AWS_STS_REGIONAL_ENDPOINTS=regional",
            "AWS_DEFAULT_REGION=eu-west-1",
            "AWS_REGION=eu-west-1",
            &format!("AWS_ROLE_ARN={ROLE}"),
            "AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
        ]
    );
    assert_eq!(web["futureField"], json!({"kept": true}));
    assert_eq!(web["resizePolicy"][0]["resourceName"], "cpu");
    assert_eq!(web["volumeMounts"].as_array().unwrap().len(), 2);
    assert_eq!(web["volumeMounts"][1]["mountPath"], "/var/run/secrets/eks.amazonaws.com/serviceaccount");
    // The init container set its own region: it is kept, not overwritten.
    let init = &pod["spec"]["initContainers"][0];
    assert!(env(init).contains(&"AWS_REGION=us-east-1".to_owned()));
    assert!(!env(init).iter().any(|e| e.starts_with("AWS_DEFAULT_REGION")));
    assert_eq!(pod["spec"]["volumes"][0]["name"], "aws-iam-token");
    assert_eq!(
        pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"],
        json!({"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"})
    );
    assert_eq!(pod["spec"]["volumes"][1]["name"], "kube-api-access-x");
    assert_eq!(pod["spec"]["hostUsers"], false);
}

#[tokio::test]
async fn pod_identity_pod_gets_credentials_uri_label_and_jittered_token() {
    let (server, _dir) = server().await;
    let review = pod_review("team-b", "app");
    let pod = patched(&review, &post(&server, review.to_string()).await);
    assert_eq!(pod["metadata"]["labels"], json!({"app": "web", "eks.amazonaws.com/pod-identity": "enabled"}));
    let web_env = env(&pod["spec"]["containers"][0]);
    assert!(
        web_env.contains(&"AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials".into())
    );
    assert!(web_env.contains(
        &"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
            .into()
    ));
    let token = &pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(token["audience"], "pods.eks.amazonaws.com");
    let expiration = token["expirationSeconds"].as_i64().unwrap();
    assert!((79_200..=86_400).contains(&expiration), "{expiration}");
}

#[tokio::test]
async fn other_requests_pass_unchanged_and_bad_bodies_get_a_clear_rejection() {
    let (server, _dir) = server().await;
    // A service account with no role and no association: allowed, no patch.
    let response = post(&server, pod_review("team-a", "default").to_string()).await;
    assert_eq!(response["response"]["allowed"], true);
    assert!(response["response"].get("patch").is_none(), "{response}");
    // UPDATE of a pod that would be mutated on create: untouched.
    let mut update = pod_review("team-a", "reader");
    update["request"]["operation"] = json!("UPDATE");
    let response = post(&server, update.to_string()).await;
    assert!(response["response"].get("patch").is_none(), "{response}");
    // The opt-out label (any value) leaves the pod alone even without the objectSelector.
    let mut opted_out = pod_review("team-a", "reader");
    opted_out["request"]["object"]["metadata"]["labels"]["eks.amazonaws.com/skip-pod-identity-webhook"] =
        json!("");
    let response = post(&server, opted_out.to_string()).await;
    assert!(response["response"].get("patch").is_none(), "{response}");
    // A Deployment is not a pod: untouched (its pods are mutated when created).
    let mut deployment = pod_review("team-a", "reader");
    deployment["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let response = post(&server, deployment.to_string()).await;
    assert!(response["response"].get("patch").is_none(), "{response}");
    // Malformed: a review reply naming the problem, with the uid salvaged.
    let mut bad = pod_review("team-a", "reader");
    bad["request"]["operation"] = json!("PATCH");
    let response = post(&server, bad.to_string()).await;
    assert_eq!(response["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(response["response"]["allowed"], false);
    assert_eq!(response["response"]["status"]["code"], 400);
    assert!(response["response"]["status"]["message"].as_str().unwrap().contains("operation"), "{response}");
    // W26: no request at all.
    let response =
        post(&server, r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.into()).await;
    assert_eq!(response["response"]["allowed"], false);
    assert!(response["response"]["status"]["message"].as_str().unwrap().contains("request"), "{response}");
    // W25: not JSON.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/mutate", server.url()))
        .header("content-type", "application/xml")
        .body("<x/>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let refused: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(refused["kind"], "AdmissionReview", "a well-formed review, not plain text");
    assert!(
        refused["response"]["status"]["message"].as_str().unwrap().contains("application/xml"),
        "{refused}"
    );
    // No Content-Type at all (curl, scripts): read as JSON.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/mutate", server.url()))
        .body(pod_review("team-a", "reader").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Over the body limit: still a review, saying why.
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(rampart_types::review::limits::MAX_BODY));
    let response = post(&server, huge).await;
    assert_eq!(response["response"]["status"]["code"], 413, "{response}");
    // A user with more groups than Rampart evaluates: refused, naming the field.
    let mut crowded = pod_review("team-a", "reader");
    crowded["request"]["userInfo"]["groups"] =
        json!(vec!["g"; rampart_types::review::limits::MAX_GROUPS + 1]);
    let response = post(&server, crowded.to_string()).await;
    assert_eq!(response["response"]["allowed"], false);
    assert!(
        response["response"]["status"]["message"].as_str().unwrap().starts_with("request.userInfo.groups")
    );
}

/// A ServiceAccount that only appears in the apiserver after `appears_after` (None: never).
struct LateServiceAccount {
    started: std::time::Instant,
    appears_after: Option<std::time::Duration>,
}

impl rampart_server::mutate::ServiceAccountLookup for LateServiceAccount {
    fn annotations<'a>(
        &'a self,
        _namespace: &'a str,
        _name: &'a str,
    ) -> rampart_identity::pod_identity::BoxFuture<
        'a,
        Result<Option<std::collections::BTreeMap<String, String>>, String>,
    > {
        Box::pin(async move {
            Ok(self.appears_after.filter(|after| self.started.elapsed() >= *after).map(|_| {
                std::collections::BTreeMap::from([("eks.amazonaws.com/role-arn".to_owned(), ROLE.to_owned())])
            }))
        })
    }
}

/// Spec W24: a pod whose service account is created with it is mutated if the account shows up
/// within the grace period, and admitted unchanged otherwise (or with no grace period).
#[tokio::test]
async fn w24_missing_service_account_grace_period() {
    use std::time::Duration;
    let cases = [
        (Duration::ZERO, Some(Duration::ZERO), false),
        (Duration::from_millis(500), Some(Duration::from_millis(50)), true),
        (Duration::from_millis(100), None, false),
    ];
    for (grace, appears_after, mutated) in cases {
        let (live, _dir) = common::permit_all();
        let mut injection = Injection::new(InjectConfig::default(), IdentitySources::default());
        let lookup = LateServiceAccount { started: std::time::Instant::now(), appears_after };
        injection.lookup = Some((Arc::new(lookup), grace));
        let state = AppState::from_parts(live, Arc::new(Metrics::new()), None, None, Some(injection), None);
        let server = common::serve(state);
        let response = post(&server, pod_review("team-new", "fresh").to_string()).await;
        assert_eq!(response["response"]["allowed"], true);
        assert_eq!(response["response"].get("patch").is_some(), mutated, "grace {grace:?}: {response}");
        if mutated {
            let patch = base64::engine::general_purpose::STANDARD
                .decode(response["response"]["patch"].as_str().unwrap())
                .unwrap();
            assert!(String::from_utf8(patch).unwrap().contains(ROLE));
        }
    }
}
