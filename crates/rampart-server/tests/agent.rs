//! The node agent over HTTP against a stub EKS Auth (moto has none, spec M07): spec cases
//! A01–A12, A16 and the hardening of B14, through the real router.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rampart_identity::client::AwsCredentials;
use rampart_identity::pod_identity::broker::StaticCredentials;
use rampart_identity::pod_identity::cache::{CacheConfig, CredentialCache};
use rampart_identity::pod_identity::eks_auth::{EksAuthClient, Signing};
use rampart_server::agent::{Agent, AgentConfig, credentials_router};

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn jwt(claims: serde_json::Value) -> String {
    let enc = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.c2ln", enc(serde_json::json!({"alg": "RS256"})), enc(claims))
}

fn token(uid: &str) -> String {
    jwt(serde_json::json!({"aud": ["pods.eks.amazonaws.com"], "exp": now() + 3600, "nbf": now() - 1,
        "kubernetes.io": {"namespace": "ns", "pod": {"name": "p", "uid": uid}, "serviceaccount": {"name": "sa"}}}))
}

/// What the stub EKS Auth saw and will answer.
#[derive(Default)]
struct Stub {
    calls: AtomicUsize,
    last: Mutex<Option<(String, HeaderMap, String)>>,
    /// `(status, error type)`; `None` answers credentials.
    error: Mutex<Option<(u16, &'static str)>>,
    hang: Mutex<bool>,
}

async fn eks_auth(
    State(stub): State<Arc<Stub>>,
    Path(cluster): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    stub.calls.fetch_add(1, Ordering::SeqCst);
    *stub.last.lock().unwrap() = Some((cluster, headers, body));
    if *stub.hang.lock().unwrap() {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if let Some((status, code)) = *stub.error.lock().unwrap() {
        let mut r =
            (StatusCode::from_u16(status).unwrap(), r#"{"message":"No Pod Identity Association..."}"#)
                .into_response();
        r.headers_mut().insert("x-amzn-errortype", code.parse().unwrap());
        r.headers_mut().insert("x-amzn-requestid", "R1".parse().unwrap());
        return r;
    }
    let body = serde_json::json!({
        "subject": {"namespace": "ns", "serviceAccount": "sa"}, "audience": "pods.eks.amazonaws.com",
        "podIdentityAssociation": {"associationArn": "A", "associationId": "a-1"},
        "assumedRoleUser": {"arn": "arn:aws:sts::123456789012:assumed-role/r/eks-c-p-uuid", "assumeRoleId": "AROA:eks-c-p-uuid"},
        "credentials": {"accessKeyId": "AK", "secretAccessKey": "SK", "sessionToken": "ST", "expiration": 4_102_444_800i64}});
    axum::Json(body).into_response()
}

struct Setup {
    url: String,
    stub: Arc<Stub>,
    http: reqwest::Client,
}

async fn setup(config: AgentConfig) -> Setup {
    setup_with(config, None).await
}

/// An agent in front of a stub EKS Auth, optionally validating tokens itself.
async fn setup_with(
    config: AgentConfig,
    validator: Option<rampart_identity::pod_identity::verify::Validator>,
) -> Setup {
    let stub = Arc::new(Stub::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/clusters/{cluster}/assume-role-for-pod-identity", axum::routing::post(eks_auth))
        .with_state(stub.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let creds = AwsCredentials {
        access_key_id: "AKIANODE".into(),
        secret_access_key: "s".into(),
        session_token: None,
        expires_at: None,
    };
    let signing =
        Signing::SigV4 { region: "us-west-2".into(), credentials: Arc::new(StaticCredentials(creds)) };
    let http = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    let client = EksAuthClient::new(http, endpoint, "my-cluster".into(), signing);
    let agent =
        Agent::with_validator(config, CredentialCache::new(CacheConfig::default()), client, validator);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = credentials_router(agent);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Setup { url, stub, http: reqwest::Client::new() }
}

impl Setup {
    async fn get(&self, host: &str, token: Option<&str>) -> (u16, String, String) {
        let mut r = self.http.get(format!("{}/v1/credentials", self.url)).header("host", host);
        if let Some(t) = token {
            r = r.header("authorization", t);
        }
        let r = r.send().await.unwrap();
        let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (r.status().as_u16(), ct, r.text().await.unwrap())
    }
}

#[tokio::test]
async fn a01_a02_happy_path_signed_call_and_host_variants() {
    let s = setup(AgentConfig::default()).await;
    let t = token("U1");
    let (status, ct, body) = s.get("169.254.170.23", Some(&t)).await;
    assert_eq!((status, ct.as_str()), (200, "application/json"), "{body}");
    assert_eq!(
        body,
        r#"{"AccessKeyId":"AK","SecretAccessKey":"SK","Token":"ST","AccountId":"123456789012","Expiration":"2100-01-01T00:00:00Z"}"#
    );
    let (cluster, headers, sent) = s.stub.last.lock().unwrap().clone().unwrap();
    assert_eq!(cluster, "my-cluster");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&sent).unwrap(), serde_json::json!({"token": t}));
    let auth = headers["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIANODE/")
            && auth.contains("/us-west-2/eks-auth/aws4_request"),
        "{auth}"
    );
    for host in ["169.254.170.23:80", "fd00:ec2::23", "[fd00:ec2::23]", "[fd00:ec2::23]:4213"] {
        assert_eq!(s.get(host, Some(&t)).await.0, 200, "{host}");
    }
}

#[tokio::test]
async fn a03_to_a08_refusals_in_upstream_order_and_wording() {
    let s = setup(AgentConfig::default()).await;
    for host in ["127.0.0.1:24432", "localhost", "169.254.170.23.nip.io", "10.0.0.5"] {
        let (status, ct, body) = s.get(host, Some(&token("U1"))).await;
        assert_eq!(status, 403, "{host}");
        assert_eq!(ct, "text/plain; charset=utf-8");
        assert!(body.starts_with("Access Denied. Called agent through invalid address, please use either [169.254.170.23 fd00:ec2::23] address not "), "{body}");
    }
    assert_eq!(s.get("127.0.0.1", None).await.0, 403, "A08: host before token");
    assert_eq!(s.get("169.254.170.23", None).await.2, "Service account token cannot be empty\n");
    let (status, _, body) = s.get("169.254.170.23", Some(&format!("Bearer {}", token("U1")))).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("Service account token cannot be parsed: token is malformed"), "A05: {body}");
    let expired =
        jwt(serde_json::json!({"aud": "pods.eks.amazonaws.com", "exp": now() - 10, "nbf": now() - 20}));
    let (status, _, body) = s.get("169.254.170.23", Some(&expired)).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("Service account token failed basic claim validations")
            && body.contains("token is expired")
    );
    let early =
        jwt(serde_json::json!({"aud": "pods.eks.amazonaws.com", "exp": now() + 7200, "nbf": now() + 3600}));
    assert!(s.get("169.254.170.23", Some(&early)).await.2.contains("token is not valid yet"), "A07");
    let other_aud = jwt(serde_json::json!({"aud": "https://kubernetes.default.svc", "exp": now() + 3600}));
    assert_eq!(s.get("169.254.170.23", Some(&other_aud)).await.0, 400, "PR #151 audience");
    assert_eq!(s.stub.calls.load(Ordering::SeqCst), 0, "nothing reached EKS Auth");
}

#[tokio::test]
async fn a09_a10_a11_upstream_errors_pass_through() {
    let s = setup(AgentConfig::default()).await;
    *s.stub.error.lock().unwrap() = Some((404, "ResourceNotFoundException"));
    let (status, _, body) = s.get("169.254.170.23", Some(&token("U1"))).await;
    assert_eq!(
        (status, body.as_str()),
        (404, "[R1]: (ResourceNotFoundException): No Pod Identity Association..., fault: client\n")
    );
    *s.stub.error.lock().unwrap() = Some((400, "AccessDeniedException"));
    assert_eq!(s.get("169.254.170.23", Some(&token("U1"))).await.0, 400);
    *s.stub.error.lock().unwrap() = None;
    *s.stub.hang.lock().unwrap() = true;
    let before = s.stub.calls.load(Ordering::SeqCst);
    let (status, _, body) = s.get("169.254.170.23", Some(&token("U2"))).await;
    assert_eq!(status, 500, "A11: {body}");
    assert_eq!(s.stub.calls.load(Ordering::SeqCst) - before, 3, "three attempts");
}

#[tokio::test]
async fn a12_cache_and_b14_hardening() {
    let s = setup(AgentConfig::default()).await;
    let (a, b) = (token("U1"), token("U2"));
    for t in [&a, &a, &b, &a] {
        assert_eq!(s.get("169.254.170.23", Some(t)).await.0, 200);
    }
    assert_eq!(s.stub.calls.load(Ordering::SeqCst), 2);
    let r = s
        .http
        .post(format!("{}/v1/credentials", s.url))
        .header("host", "169.254.170.23")
        .header("authorization", &a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405, "only GET");
    let r = s
        .http
        .get(format!("{}/v1/credentials?token={a}", s.url))
        .header("host", "169.254.170.23")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a token in the query string is ignored");
    let r = s.http.get(format!("{}/", s.url)).header("host", "169.254.170.23").send().await.unwrap();
    assert_eq!(r.status(), 404, "probes rely on 404 elsewhere");
}

#[tokio::test]
async fn a16_rate_limit_and_node_binding() {
    let config = AgentConfig {
        rate_per_second: 1,
        burst: 5,
        node_name: Some("node-1".into()),
        ..AgentConfig::default()
    };
    let s = setup(config).await;
    let elsewhere = jwt(serde_json::json!({"aud": "pods.eks.amazonaws.com", "exp": now() + 3600,
        "kubernetes.io": {"pod": {"uid": "U9"}, "node": {"name": "node-2"}}}));
    assert_eq!(s.get("169.254.170.23", Some(&elsewhere)).await.0, 403, "bound to another node");
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(s.get("169.254.170.23", Some(&token("U1"))).await);
    }
    let limited =
        statuses.iter().filter(|(status, _, body)| *status == 429 && body == "Too Many Requests\n").count();
    assert!(limited >= 4, "burst 5 (one used above) then 429: {statuses:?}");
}

/// Pods that may be deleted mid-test.
struct TogglePods(std::sync::atomic::AtomicBool);

impl rampart_identity::pod_identity::verify::PodDirectory for TogglePods {
    fn pod<'a>(
        &'a self,
        _namespace: &'a str,
        _name: &'a str,
    ) -> rampart_identity::pod_identity::BoxFuture<
        'a,
        Result<Option<rampart_identity::pod_identity::verify::PodFacts>, String>,
    > {
        Box::pin(async move {
            Ok(self.0.load(Ordering::SeqCst).then(|| rampart_identity::pod_identity::verify::PodFacts {
                uid: "U1".into(),
                service_account: "sa".into(),
                phase: "Running".into(),
                deleting: false,
            }))
        })
    }
}

/// With local validation on, forged tokens never reach EKS Auth and a deleted pod's token is
/// refused even though its credentials are cached.
#[tokio::test]
async fn local_validation_refuses_forged_tokens_and_deleted_pods_despite_the_cache() {
    use rampart_identity::pod_identity::verify::{JwksValidator, Validator};
    const KEY: &str = include_str!("../../rampart-identity/tests/data/test-sa-key.pem");
    let signing = rampart_identity::oidc::SigningKey::from_pem("key", KEY).unwrap().remove(0);
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(serde_json::json!({"keys": [signing.jwk()]})).unwrap();
    let pods = Arc::new(TogglePods(std::sync::atomic::AtomicBool::new(true)));
    let validator = JwksValidator::new("https://issuer.example".into(), jwks, Some(pods.clone()))
        .with_live_pod_ttl(Duration::ZERO);

    let setup = setup_with(AgentConfig::default(), Some(Validator::Jwks(validator))).await;
    let stub = setup.stub.clone();

    let claims = serde_json::json!({"iss": "https://issuer.example", "sub": "system:serviceaccount:ns:sa",
        "aud": ["pods.eks.amazonaws.com"], "exp": now() + 3600, "iat": now(), "nbf": now() - 1,
        "kubernetes.io": {"namespace": "ns", "pod": {"name": "p", "uid": "U1"}, "serviceaccount": {"name": "sa"}}});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(signing.kid.clone());
    let signed = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(KEY.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(setup.get("169.254.170.23", Some(&signed)).await.0, 200);
    assert_eq!(setup.get("169.254.170.23", Some(&signed)).await.0, 200, "cached");
    assert_eq!(stub.calls.load(Ordering::SeqCst), 1);
    // Same claims, not signed by the cluster: refused locally.
    let (status, _, body) = setup.get("169.254.170.23", Some(&jwt(claims.clone()))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("(InvalidTokenException)"), "{body}");
    // The pod is deleted: its cached credentials are no longer served.
    pods.0.store(false, Ordering::SeqCst);
    let (status, _, body) = setup.get("169.254.170.23", Some(&signed)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no longer exists"), "{body}");
    assert_eq!(stub.calls.load(Ordering::SeqCst), 1, "nothing reached EKS Auth");
}

/// A17: the probe is healthy only while every credentials listener answers 404 on `/`.
#[tokio::test]
async fn a17_probe_checks_every_listener() {
    use rampart_server::agent::{ProbeTargets, probe_router};
    let s = setup(AgentConfig::default()).await;
    let agent_addr: std::net::SocketAddr = s.url.trim_start_matches("http://").parse().unwrap();
    // Something else answering 200 on `/` where a listener should be.
    let impostor = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let impostor_addr = impostor.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(impostor, axum::Router::new().route("/", axum::routing::get(|| async { "hi" })))
            .await
            .unwrap()
    });
    let probe = |listeners: Vec<std::net::SocketAddr>| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/healthz", listener.local_addr().unwrap());
        let app = probe_router(ProbeTargets { listeners, http: reqwest::Client::new() }, None);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let r = reqwest::get(url).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(probe(vec![agent_addr]).await.0, 200);
    assert_eq!(
        probe(vec![agent_addr, impostor_addr]).await,
        (500, "Internal Server Error occurred\n".to_owned())
    );
}
