//! The broker over HTTP: the EKS Auth wire protocol in front, a recording STS stub behind (moto
//! accepts but ignores session tags, so what the broker *sends* is checked here; the real-peer
//! path is in rampart-cli's pod_identity test). Spec cases B01–B03, B09–B13.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_identity::client::AwsCredentials;
use rampart_identity::pod_identity::BoxFuture;
use rampart_identity::pod_identity::broker::{Associations, Broker, BrokerConfig, StaticCredentials};
use rampart_identity::pod_identity::verify::{TokenReviewValidator, TokenReviewer, Validator};
use rampart_identity::workload_sources::Association;
use rampart_server::broker::{BrokerState, broker_router};

/// Every token is a pod token of team-a/app (pod app-7d9c, uid U1), unless it says "stranger"
/// or "unbound".
struct Reviewer;
impl TokenReviewer for Reviewer {
    fn review<'a>(
        &'a self,
        token: &'a str,
        _aud: &'a str,
    ) -> BoxFuture<'a, Result<serde_json::Value, String>> {
        Box::pin(async move {
            let extra = if token.contains("unbound") {
                serde_json::json!({})
            } else {
                serde_json::json!({"authentication.kubernetes.io/pod-name": ["app-7d9c"], "authentication.kubernetes.io/pod-uid": ["U1"]})
            };
            let audiences = if token.contains("stranger") { vec![] } else { vec!["pods.eks.amazonaws.com"] };
            Ok(serde_json::json!({"authenticated": true, "audiences": audiences,
                "user": {"username": "system:serviceaccount:team-a:app", "extra": extra}}))
        })
    }
}

#[derive(Default)]
struct Sts {
    calls: Mutex<Vec<BTreeMap<String, String>>>,
    /// Refuse durations over an hour (as STS does for chained sessions).
    chained: Mutex<bool>,
    deny: Mutex<bool>,
}

fn form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect()
}

fn percent_decode(v: &str) -> String {
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 {
            out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

async fn sts(State(sts): State<Arc<Sts>>, body: String) -> Response {
    let f = form(&body);
    sts.calls.lock().unwrap().push(f.clone());
    let error = |status: u16, code: &str, message: &str| {
        let xml = format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>"
        );
        (StatusCode::from_u16(status).unwrap(), xml).into_response()
    };
    if *sts.deny.lock().unwrap() {
        return error(403, "AccessDenied", "not authorized to perform sts:AssumeRole");
    }
    let duration: u32 = f.get("DurationSeconds").map(|d| d.parse().unwrap()).unwrap_or(3600);
    if *sts.chained.lock().unwrap() && duration > 3600 {
        return error(
            400,
            "ValidationError",
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        );
    }
    let role = &f["RoleArn"];
    let account = role.split(':').nth(4).unwrap();
    let name = role.rsplit('/').next().unwrap();
    let session = &f["RoleSessionName"];
    let xml = format!(
        "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA{}</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>2100-01-01T00:00:00.123456Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROAX:{session}</AssumedRoleId><Arn>arn:aws:sts::{account}:assumed-role/{name}/{session}</Arn></AssumedRoleUser></AssumeRoleResult></AssumeRoleResponse>",
        sts.calls.lock().unwrap().len()
    );
    xml.into_response()
}

struct Setup {
    url: String,
    sts: Arc<Sts>,
}

fn association(target: Option<&str>, disable_tags: bool) -> Association {
    Association {
        namespace: "team-a".into(),
        service_account: "app".into(),
        role_arn: "arn:aws:iam::123456789012:role/app".into(),
        target_role_arn: target.map(str::to_owned),
        disable_session_tags: disable_tags,
        session_policy: None,
        id: "a-1".into(),
    }
}

async fn setup(association: Option<Association>) -> Setup {
    let sts_state = Arc::new(Sts::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sts_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(sts).with_state(sts_state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut associations = Associations::new();
    if let Some(a) = association {
        associations.insert((a.namespace.clone(), a.service_account.clone()), a);
    }
    let config = BrokerConfig {
        cluster_name: "very-long-cluster-name".into(),
        cluster_arn: None,
        region: "eu-west-1".into(),
        partition: "aws".into(),
        sts_endpoint: sts_url,
        duration_seconds: 21600,
    };
    let creds = AwsCredentials {
        access_key_id: "AKIABROKER".into(),
        secret_access_key: "s".into(),
        session_token: None,
        expires_at: None,
    };
    let validator = Validator::TokenReview(TokenReviewValidator::new(Arc::new(Reviewer)));
    let broker = Broker::new(config, validator, associations, Arc::new(StaticCredentials(creds))).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = broker_router(BrokerState::new(Arc::new(broker)));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Setup { url, sts: sts_state }
}

/// An unsigned token with a far exp (the stub reviewer decides validity).
fn token(marker: &str) -> String {
    use base64::Engine as _;
    let enc = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{marker}",
        enc(serde_json::json!({"alg": "RS256"})),
        enc(serde_json::json!({"exp": 4_102_444_800i64}))
    )
}

impl Setup {
    async fn ask(&self, cluster: &str, token: &str) -> (u16, Option<String>, serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/clusters/{cluster}/assume-role-for-pod-identity", self.url))
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .unwrap();
        let code = r.headers().get("x-amzn-errortype").map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), code, r.json().await.unwrap())
    }
    fn calls(&self) -> Vec<BTreeMap<String, String>> {
        self.sts.calls.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn b01_assume_role_with_session_name_and_six_transitive_tags() {
    let s = setup(Some(association(None, false))).await;
    let (status, _, body) = s.ask("very-long-cluster-name", &token("ok")).await;
    assert_eq!(status, 200, "{body}");
    let calls = s.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c["RoleArn"], "arn:aws:iam::123456789012:role/app");
    let session = &c["RoleSessionName"];
    assert!(session.starts_with("eks-very-long--app-7d9c-") && session.len() <= 64, "{session}");
    let tags: BTreeMap<&str, &str> = (1..=6)
        .map(|n| (c[&format!("Tags.member.{n}.Key")].as_str(), c[&format!("Tags.member.{n}.Value")].as_str()))
        .collect();
    assert_eq!(
        tags,
        BTreeMap::from([
            ("eks-cluster-arn", "arn:aws:eks:eu-west-1:123456789012:cluster/very-long-cluster-name"),
            ("eks-cluster-name", "very-long-cluster-name"),
            ("kubernetes-namespace", "team-a"),
            ("kubernetes-service-account", "app"),
            ("kubernetes-pod-name", "app-7d9c"),
            ("kubernetes-pod-uid", "U1"),
        ])
    );
    let transitive: Vec<&str> =
        (1..=6).map(|n| c[&format!("TransitiveTagKeys.member.{n}")].as_str()).collect();
    assert_eq!(transitive.len(), 6);
    assert!(tags.keys().all(|k| transitive.contains(k)));
    assert_eq!(c["DurationSeconds"], "21600");
    assert_eq!(body["subject"], serde_json::json!({"namespace": "team-a", "serviceAccount": "app"}));
    assert_eq!(body["credentials"]["expiration"], 4_102_444_800i64, "epoch seconds, fraction dropped");
    assert!(
        body["assumedRoleUser"]["arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:sts::123456789012:assumed-role/app/eks-")
    );
}

#[tokio::test]
async fn b02_b03_b09_refusals_never_reach_sts() {
    let s = setup(Some(association(None, false))).await;
    assert_eq!(
        s.ask("very-long-cluster-name", &token("stranger")).await.1.as_deref(),
        Some("InvalidTokenException")
    );
    assert_eq!(
        s.ask("very-long-cluster-name", &token("unbound")).await.1.as_deref(),
        Some("InvalidTokenException")
    );
    let (status, code, _) = s.ask("other-cluster", &token("ok")).await;
    assert_eq!((status, code.as_deref()), (404, Some("ResourceNotFoundException")));
    let bare = reqwest::Client::new()
        .post(format!("{}/clusters/very-long-cluster-name/assume-role-for-pod-identity", s.url))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 400);
    let none = setup(None).await;
    let (status, code, body) = none.ask("very-long-cluster-name", &token("ok")).await;
    assert_eq!((status, code.as_deref()), (404, Some("ResourceNotFoundException")), "{body}");
    assert!(s.calls().is_empty() && none.calls().is_empty());
}

#[tokio::test]
async fn b10_disabled_tags_and_b11_target_role_chaining() {
    let s = setup(Some(association(None, true))).await;
    assert_eq!(s.ask("very-long-cluster-name", &token("ok")).await.0, 200);
    assert!(!s.calls()[0].keys().any(|k| k.starts_with("Tags") || k.starts_with("TransitiveTagKeys")));

    let s = setup(Some(association(Some("arn:aws:iam::222233334444:role/t"), false))).await;
    let (status, _, body) = s.ask("very-long-cluster-name", &token("ok")).await;
    assert_eq!(status, 200, "{body}");
    let calls = s.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1]["RoleArn"], "arn:aws:iam::222233334444:role/t");
    assert_eq!(calls[1]["DurationSeconds"], "3600");
    assert!(!calls[1].contains_key("ExternalId"));
    assert!(!calls[1].keys().any(|k| k.starts_with("Tags")), "transitive tags travel on their own");
    assert!(
        body["assumedRoleUser"]["arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:sts::222233334444:assumed-role/t/")
    );

    let s = setup(Some(association(Some("arn:aws:iam::222233334444:role/t"), true))).await;
    assert_eq!(s.ask("very-long-cluster-name", &token("ok")).await.0, 200);
    assert_eq!(s.calls()[1]["ExternalId"], "eu-west-1/123456789012/very-long-cluster-name/team-a/app");
}

#[tokio::test]
async fn b13_duration_fallback_and_sts_denial() {
    let s = setup(Some(association(None, false))).await;
    *s.sts.chained.lock().unwrap() = true;
    assert_eq!(s.ask("very-long-cluster-name", &token("ok")).await.0, 200);
    let durations: Vec<String> = s.calls().iter().map(|c| c["DurationSeconds"].clone()).collect();
    assert_eq!(durations, ["21600", "3600"]);
    *s.sts.deny.lock().unwrap() = true;
    let (status, code, _) = s.ask("very-long-cluster-name", &token("ok")).await;
    assert_eq!((status, code.as_deref()), (400, Some("AccessDeniedException")), "as EKS Auth reports it");
}
