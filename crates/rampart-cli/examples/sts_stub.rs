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
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let hosts = vec!["sts.amazonaws.com".to_owned(), "sts.us-east-1.amazonaws.com".to_owned()];
    let cert = rcgen::CertificateParams::new(hosts).unwrap().signed_by(&key, &issuer).unwrap();
    std::fs::write(ca_file, ca.pem()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let app = axum::Router::new().fallback(caller_identity);
    let tls_addr: SocketAddr = tls.parse().unwrap();
    let tls_config = axum_server::tls_rustls::RustlsConfig::from_config(std::sync::Arc::new(config));
    let tls_app = app.clone();
    tokio::spawn(async move {
        axum_server::bind_rustls(tls_addr, tls_config).serve(tls_app.into_make_service()).await
    });
    let listener = tokio::net::TcpListener::bind(plain).await.unwrap();
    eprintln!("STS stub on http://{plain} and https://{tls}");
    axum::serve(listener, app).await.unwrap();
}
