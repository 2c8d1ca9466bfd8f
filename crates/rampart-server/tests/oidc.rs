//! The OIDC issuer endpoints over HTTP: discovery and JWKS as STS fetches them, and a clear
//! 404 when no issuer is configured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

mod common;

use std::sync::Arc;

use rampart_identity::oidc::{Issuer, SigningKey};
use rampart_server::{AppState, Metrics};
use serde_json::Value;

const KEY: &str = include_str!("../../rampart-identity/tests/fixtures/oidc/sa.key");

async fn server(issuer: Option<Issuer>) -> (rampart_server::serve::RunningServer, tempfile::TempDir) {
    let (live, dir) = common::permit_all();
    let state = AppState::from_parts(live, Arc::new(Metrics::new()), None, None, None, issuer);
    (common::serve(state), dir)
}

#[tokio::test]
async fn discovery_points_at_the_jwks_which_publishes_only_the_public_key() {
    let issuer =
        Issuer::new("https://oidc.example.com/c1", SigningKey::from_pem("sa.key", KEY).unwrap()).unwrap();
    let (server, _dir) = server(Some(issuer)).await;
    let client = reqwest::Client::new();
    let discovery: Value = client
        .get(format!("{}/.well-known/openid-configuration", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], "https://oidc.example.com/c1");
    assert_eq!(discovery["jwks_uri"], "https://oidc.example.com/c1/openid/v1/jwks");
    assert_eq!(discovery["id_token_signing_alg_values_supported"][0], "RS256");
    let resp = client.get(format!("{}/openid/v1/jwks", server.url())).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/jwk-set+json");
    let jwks: Value = resp.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kid"], "pvqU2G2qoOlETl5WaA_R_IQUcurlt4Jv6zpLLKtvJpQ");
    assert_eq!(key["kty"], "RSA");
    let mut fields: Vec<&String> = key.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["alg", "e", "kid", "kty", "n", "use"], "no private parameter may leak");
}

#[tokio::test]
async fn without_an_issuer_the_endpoints_say_how_to_enable_them() {
    let (server, _dir) = server(None).await;
    let resp = reqwest::get(format!("{}/openid/v1/jwks", server.url())).await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("--oidc-issuer"));
}
