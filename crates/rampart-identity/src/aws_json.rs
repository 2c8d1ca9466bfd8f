//! AWS JSON 1.1 calls signed with SigV4 (`X-Amz-Target: <Service>.<Operation>`), for the few
//! AWS APIs the image layer needs: KMS `GetPublicKey` (ImagePolicy keys held in KMS) and ECR
//! `GetAuthorizationToken` (registry credentials from AWS credentials).
//!
//! The endpoint is the service's regional one unless `AWS_ENDPOINT_URL_<SERVICE>` or
//! `AWS_ENDPOINT_URL` names another (as the SDKs read them; moto in the tests).

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::SigningSettings;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::client::{AwsCredentials, ClientError, sign_request};

/// A signed JSON 1.1 client for one service in one region.
pub struct AwsJson {
    http: reqwest::Client,
    creds: AwsCredentials,
    region: String,
    /// SigV4 signing name (`kms`, `ecr`).
    service: &'static str,
    /// `X-Amz-Target` prefix (`TrentService`, `AmazonEC2ContainerRegistry_V20150921`).
    target: &'static str,
    endpoint: String,
}

impl AwsJson {
    pub fn new(
        creds: AwsCredentials,
        region: &str,
        service: &'static str,
        target: &'static str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ClientError> {
        let endpoint = env(&format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase()))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://{service}.{region}.amazonaws.com"));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Signing(e.to_string()))?;
        Ok(AwsJson { http, creds, region: region.to_owned(), service, target, endpoint })
    }

    /// One call; an AWS error comes back as `"<Operation>: <__type>: <message>"`.
    pub async fn call(&self, operation: &str, body: &Value) -> Result<Value, String> {
        let url = format!("{}/", self.endpoint.trim_end_matches('/'));
        let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_default().to_owned();
        let payload = body.to_string().into_bytes();
        let target = format!("{}.{operation}", self.target);
        let headers = [
            ("host", host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let instructions = sign_request(
            &self.creds,
            self.service,
            &self.region,
            SystemTime::now(),
            SigningSettings::default(),
            "POST",
            &url,
            &headers,
            &payload,
        )
        .map_err(|e| format!("{operation}: {e}"))?;
        let mut request = self.http.post(&url).body(payload);
        for (name, value) in headers.iter().skip(1) {
            request = request.header(*name, *value);
        }
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{operation}: {} unreachable: {}", self.endpoint, e.without_url()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("{operation}: {e}"))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let kind =
                value["__type"].as_str().unwrap_or("error").rsplit('#').next().unwrap_or("error").to_owned();
            let message = value["message"].as_str().or(value["Message"].as_str()).unwrap_or(&text).to_owned();
            return Err(format!("{operation}: {kind}: {message}"));
        }
        Ok(value)
    }
}

/// KMS `GetPublicKey`: the DER SubjectPublicKeyInfo of an asymmetric signing key.
pub async fn kms_public_key(kms: &AwsJson, key_id: &str) -> Result<Vec<u8>, String> {
    let answer = kms.call("GetPublicKey", &json!({"KeyId": key_id})).await?;
    // A key that cannot sign (an encryption key) has no signing algorithms.
    let not_signing = answer["KeyUsage"].as_str().is_some_and(|u| u != "SIGN_VERIFY")
        || answer["SigningAlgorithms"].as_array().is_some_and(|a| a.is_empty());
    if not_signing {
        return Err(format!("KMS key {key_id} is not a signing key (KeyUsage must be SIGN_VERIFY)"));
    }
    let encoded =
        answer["PublicKey"].as_str().ok_or_else(|| format!("GetPublicKey {key_id}: no PublicKey"))?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("GetPublicKey {key_id}: PublicKey is not base64: {e}"))
}

/// An ECR registry login from `GetAuthorizationToken`: the registry host, user (`AWS`),
/// password, and when it expires (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrLogin {
    pub registry: String,
    pub user: String,
    pub password: String,
    pub expires_at: Option<i64>,
}

/// ECR `GetAuthorizationToken` for the account's registry in the client's region.
pub async fn ecr_login(ecr: &AwsJson) -> Result<Vec<EcrLogin>, String> {
    let answer = ecr.call("GetAuthorizationToken", &json!({})).await?;
    let mut out = Vec::new();
    for data in answer["authorizationData"].as_array().into_iter().flatten() {
        let token =
            data["authorizationToken"].as_str().ok_or("GetAuthorizationToken: no authorizationToken")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|_| "GetAuthorizationToken: the token is not base64".to_string())?;
        let text = String::from_utf8(decoded)
            .map_err(|_| "GetAuthorizationToken: the token is not UTF-8".to_string())?;
        let (user, password) =
            text.split_once(':').ok_or("GetAuthorizationToken: the token is not user:password")?;
        let endpoint = data["proxyEndpoint"].as_str().unwrap_or_default();
        let registry =
            endpoint.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
        out.push(EcrLogin {
            registry: registry.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
            expires_at: data["expiresAt"].as_f64().map(|t| t as i64),
        });
    }
    Ok(out)
}
