//! A local STS for load tests of the IAM authenticators: answers every GetCallerIdentity at
//! once, so a benchmark measures the authenticators, not moto. Serves plain HTTP (for
//! `rampart serve --sts-endpoint`) and HTTPS with a certificate for the STS hosts, signed by a
//! CA it writes to `CA_FILE` (for aws-iam-authenticator, which calls the host a token names:
//! point that host at the TLS address in its `/etc/hosts` and trust the CA with
//! `SSL_CERT_FILE`). Every caller is `arn:aws:iam::123456789012:user/bench`.
//!
//! `cargo run --release -p rampart-cli --example sts_stub -- PLAIN_ADDR TLS_ADDR CA_FILE`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark helper: fail loudly

use std::net::SocketAddr;

use axum::http::header;

#[path = "../tests/common/sts.rs"]
mod sts;
use axum::response::IntoResponse;

const ANSWER: &str = r#"{"GetCallerIdentityResponse":{"GetCallerIdentityResult":{"Account":"123456789012","Arn":"arn:aws:iam::123456789012:user/bench","UserId":"AIDABENCHUSER"},"ResponseMetadata":{"RequestId":"bench"}}}"#;

async fn caller_identity() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], ANSWER)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [plain, tls, ca_file] = args.as_slice() else {
        panic!("usage: sts_stub PLAIN_ADDR TLS_ADDR CA_FILE");
    };
    let app = axum::Router::new().fallback(caller_identity);
    let tls_addr: SocketAddr = tls.parse().unwrap();
    let tls_config = sts::sts_host_tls(std::path::Path::new(ca_file));
    let tls_app = app.clone();
    tokio::spawn(async move {
        axum_server::bind_rustls(tls_addr, tls_config).serve(tls_app.into_make_service()).await
    });
    let listener = tokio::net::TcpListener::bind(plain).await.unwrap();
    eprintln!("STS stub on http://{plain} and https://{tls}");
    axum::serve(listener, app).await.unwrap();
}
