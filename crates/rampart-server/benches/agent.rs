//! A cached credentials request through the Pod Identity agent over loopback HTTP, beside the
//! same client calling a bare axum handler that returns a fixed credentials JSON (the floor
//! any HTTP credentials endpoint pays), in the same run. Criterion reports the means; the p50
//! and p99 of 20,000 sequential requests are printed after, each beside its noise floor
//! (bench/rust/noise_floor.rs). Target: p99 ≤ 1 ms.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

use std::time::{SystemTime, UNIX_EPOCH};

#[path = "../../../bench/rust/noise_floor.rs"]
mod noise_floor;

/// The allocator `rampart serve` and `rampart agent` ship with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use rampart_identity::pod_identity::cache::{CacheConfig, CredentialCache};
use rampart_identity::pod_identity::eks_auth::{EksAuthClient, Signing};
use rampart_server::agent::{Agent, AgentConfig, credentials_router};

const ANSWER: &str = r#"{"subject":{"namespace":"ns","serviceAccount":"sa"},"audience":"pods.eks.amazonaws.com","podIdentityAssociation":{"associationArn":"A","associationId":"a-1"},"assumedRoleUser":{"arn":"arn:aws:sts::123456789012:assumed-role/r/s","assumeRoleId":"AROA:s"},"credentials":{"accessKeyId":"AK","secretAccessKey":"SK","sessionToken":"ST","expiration":4102444800}}"#;
const CREDS: &str = r#"{"AccessKeyId":"AK","SecretAccessKey":"SK","Token":"ST","AccountId":"123456789012","Expiration":"2100-01-01T00:00:00Z"}"#;

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn token() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let enc = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        enc(serde_json::json!({"alg": "RS256", "kid": "k"})),
        enc(
            serde_json::json!({"aud": ["pods.eks.amazonaws.com"], "exp": now + 86400, "iat": now, "nbf": now,
            "iss": "https://oidc.example.com", "sub": "system:serviceaccount:ns:sa",
            "kubernetes.io": {"namespace": "ns", "pod": {"name": "p", "uid": "U1"}, "serviceaccount": {"name": "sa", "uid": "S"}}})
        )
    )
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (agent_url, bare_url) = rt.block_on(async {
        let upstream =
            axum::Router::new().fallback(|| async { ([("content-type", "application/json")], ANSWER) });
        let upstream_url = serve(upstream).await;
        let client = EksAuthClient::new(reqwest::Client::new(), upstream_url, "c".into(), Signing::Unsigned);
        // The limiter still runs on every request; its quota is raised so the loop is not throttled.
        let config = AgentConfig { rate_per_second: 10_000_000, burst: 10_000_000, ..AgentConfig::default() };
        let agent = Agent::new(config, CredentialCache::new(CacheConfig::default()), client);
        let bare = axum::Router::new().route(
            "/v1/credentials",
            axum::routing::get(|| async { ([("content-type", "application/json")], CREDS) }),
        );
        (serve(credentials_router(agent)).await, serve(bare).await)
    });
    let http = reqwest::Client::new();
    let token = token();
    let request = |url: &str| {
        let req = http
            .get(format!("{url}/v1/credentials"))
            .header("host", "169.254.170.23")
            .header("authorization", &token);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap()
        }
    };
    rt.block_on(request(&agent_url)); // fill the cache
    let mut group = c.benchmark_group("agent");
    group.bench_function("bare_http_credentials_baseline", |b| b.iter(|| rt.block_on(request(&bare_url))));
    group.bench_function("cached_credentials_request", |b| b.iter(|| rt.block_on(request(&agent_url))));
    group.finish();
    for (name, url) in [("baseline", &bare_url), ("agent", &agent_url)] {
        let mut measured = noise_floor::measure(20_000, || {
            rt.block_on(request(url));
        });
        println!("{} over 20,000 requests", measured.line(name));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
