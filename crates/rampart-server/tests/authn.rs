//! `POST /v1/authenticate` end to end: a real token shape, a stub STS, aws-auth mapping,
//! caching, throttling and unknown principals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use rampart_identity::authenticator::Authenticator;
use rampart_identity::host::HostVerifier;
use rampart_identity::mapping::{AccessEntries, AuthMode, AwsAuth, Mapper, NoEc2};
use rampart_identity::sts::StsClient;
use rampart_server::{AppState, Metrics};
use serde_json::{Value, json};

/// A stub STS answering every request with `status`/`body`, counting requests.
async fn stub_sts(status: &'static str, body: String) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 8192];
            let _ = s.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), hits)
}

fn token() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let date = rampart_identity::token::format_amz_date(now);
    let url = format!(
        "https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=ASIAR2TG44V6AS3ZZE7C%2F{}%2Fus-west-2%2Fsts%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires=60\
         &X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=00",
        &date[..8]
    );
    format!("k8s-aws-v1.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url))
}

const AWS_AUTH: &str = "data:\n  mapRoles: |\n    - rolearn: arn:aws:iam::123456789012:role/Admin\n      username: \"admin:{{SessionName}}\"\n      groups: [system:masters]\n";

async fn start_server(sts_base: String) -> (rampart_server::serve::RunningServer, tempfile::TempDir) {
    let (live, dir) = common::permit_all();
    let (aws_auth, _) = AwsAuth::from_configmap(AWS_AUTH).unwrap();
    let mapper = Mapper {
        mode: AuthMode::ConfigMap,
        aws_auth,
        entries: AccessEntries::default(),
        ec2: Box::new(NoEc2),
    };
    let authn = Authenticator::new(
        HostVerifier::new("aws", ""),
        StsClient::new("my-cluster", Some(sts_base)).unwrap(),
        mapper,
    );
    let state = AppState::from_parts(live, Arc::new(Metrics::new()), None, Some(Arc::new(authn)), None, None);
    (common::serve(state), dir)
}

async fn review(server: &rampart_server::serve::RunningServer, token: &str) -> (u16, Value) {
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token, "audiences": ["https://kubernetes.default.svc"]}});
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/authenticate", server.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn maps_an_assumed_role_and_caches_until_expiry() {
    let identity = r#"{"GetCallerIdentityResponse":{"GetCallerIdentityResult":{"Account":"123456789012","Arn":"arn:aws:sts::123456789012:assumed-role/Admin/alice","UserId":"AROAEXAMPLE:alice"}}}"#;
    let (base, hits) = stub_sts("200 OK", identity.into()).await;
    let (server, _dir) = start_server(base).await;
    let token = token();
    let (status, body) = review(&server, &token).await;
    assert_eq!(status, 200, "{body}");
    let user = &body["status"]["user"];
    assert_eq!(body["status"]["authenticated"], true);
    assert_eq!(user["username"], "admin:alice");
    assert_eq!(user["uid"], "aws-iam-authenticator:123456789012:AROAEXAMPLE");
    assert_eq!(user["groups"], json!(["system:masters"]));
    assert_eq!(user["extra"]["canonicalArn"], json!(["arn:aws:iam::123456789012:role/Admin"]));
    assert_eq!(user["extra"]["accessKeyId"], json!(["ASIAR2TG44V6AS3ZZE7C"]));
    let (status, _) = review(&server, &token).await;
    assert_eq!(status, 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the repeated token must not reach STS");
}

#[tokio::test]
async fn throttling_unknown_principals_and_bad_tokens() {
    let (base, _) = stub_sts("400 Bad Request", r#"{"Error":{"Code":"Throttling"}}"#.into()).await;
    let (server, _dir) = start_server(base).await;
    let (status, body) = review(&server, &token()).await;
    assert_eq!(status, 429);
    assert_eq!(body["status"], json!({"authenticated": false, "user": {}}));

    let nobody = r#"{"GetCallerIdentityResponse":{"GetCallerIdentityResult":{"Account":"1","Arn":"arn:aws:iam::1:user/mallory","UserId":"AIDA"}}}"#;
    let (base, _) = stub_sts("200 OK", nobody.into()).await;
    let (server, _dir) = start_server(base).await;
    assert_eq!(review(&server, &token()).await.0, 403);
    assert_eq!(review(&server, "k8s-aws-v2.nope").await.0, 403);
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/authenticate", server.url()))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}
