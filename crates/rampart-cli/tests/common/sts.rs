//! STS stand-ins shared by the tests that front moto and by the `sts_stub` example (which
//! includes this file by path): the presigned-URL Authorization header moto needs, and a TLS
//! configuration for the real STS host names, signed by a throw-away CA.
#![allow(dead_code, clippy::unwrap_used)] // each user takes what it needs; test helpers fail loudly

use std::path::Path;

/// The STS hosts tokens name in these tests (global and us-east-1).
pub const STS_HOSTS: [&str; 2] = ["sts.amazonaws.com", "sts.us-east-1.amazonaws.com"];

/// The Authorization header moto reads the caller from, built from a presigned URL's query:
/// moto identifies the caller only from that header, STS itself from the query.
pub fn presigned_authorization(query: &str) -> String {
    let credential = query
        .split('&')
        .find_map(|kv| {
            kv.split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case("X-Amz-Credential")).map(|(_, v)| v)
        })
        .unwrap_or_default()
        .replace("%2F", "/");
    format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host;x-k8s-aws-id, Signature=0")
}

/// A serving configuration for [`STS_HOSTS`], signed by a new CA whose PEM is written to
/// `ca_file` (for clients to trust through `SSL_CERT_FILE`).
pub fn sts_host_tls(ca_file: &Path) -> axum_server::tls_rustls::RustlsConfig {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "rampart test STS CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(STS_HOSTS.map(String::from).to_vec()).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
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
    axum_server::tls_rustls::RustlsConfig::from_config(std::sync::Arc::new(config))
}
