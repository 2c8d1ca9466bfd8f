//! The `AssumeRoleForPodIdentity` client the agent uses: EKS Auth itself (SigV4, signing name
//! `eks-auth`, with the node's credentials) or a Rampart broker (same wire protocol; the pod
//! token is the credential, so the request is not signed). Transport failures and 5xx answers
//! are retried (3 attempts, as the AWS SDK's standard retryer does); every failure comes back
//! as a [`PodIdentityError`] with EKS's code and status.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::SigningSettings;

use super::broker::CredentialSource;
use super::wire::{AssumeRoleForPodIdentityResponse, ContainerCredentials, PodIdentityError};

/// The default EKS Auth endpoint of a region (dual-stack `api.aws`, as the botocore model says).
pub fn default_endpoint(region: &str) -> String {
    format!("https://eks-auth.{region}.api.aws")
}

/// How requests are authenticated.
pub enum Signing {
    /// SigV4 with these credentials (EKS Auth).
    SigV4 { region: String, credentials: Arc<dyn CredentialSource> },
    /// None (a Rampart broker: it validates the pod token itself).
    Unsigned,
}

/// An EKS Auth (or broker) client for one cluster.
pub struct EksAuthClient {
    http: reqwest::Client,
    endpoint: String,
    cluster_name: String,
    signing: Signing,
    attempts: u32,
}

impl EksAuthClient {
    /// `timeout` bounds each attempt (upstream: 1 s). `http` may carry a private CA for a
    /// broker's certificate; redirects must be off (the caller builds it).
    pub fn new(http: reqwest::Client, endpoint: String, cluster_name: String, signing: Signing) -> Self {
        EksAuthClient {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            cluster_name,
            signing,
            attempts: 3,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Exchange a pod's token for credentials.
    pub async fn credentials(&self, token: &str) -> Result<ContainerCredentials, PodIdentityError> {
        let mut last = PodIdentityError::internal("no attempt made");
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt) + fastrand::u64(..50)))
                    .await;
            }
            match self.attempt(token).await {
                Ok(c) => return Ok(c),
                Err(e) if e.status >= 500 => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    async fn attempt(&self, token: &str) -> Result<ContainerCredentials, PodIdentityError> {
        let url = format!("{}/clusters/{}/assume-role-for-pod-identity", self.endpoint, self.cluster_name);
        let body = serde_json::json!({ "token": token }).to_string();
        let mut request = self.http.post(&url).header("content-type", "application/json");
        if let Signing::SigV4 { region, credentials } = &self.signing {
            let creds = credentials
                .credentials()
                .await
                .map_err(|e| PodIdentityError::internal(format!("node has no AWS credentials: {e}")))?;
            let host =
                url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_default().to_owned();
            let headers = [("host", host.as_str()), ("content-type", "application/json")];
            let instructions = crate::client::sign_request(
                &creds,
                "eks-auth",
                region,
                SystemTime::now(),
                SigningSettings::default(),
                "POST",
                &url,
                &headers,
                body.as_bytes(),
            )
            .map_err(|e| PodIdentityError::internal(e.to_string()))?;
            for (name, value) in instructions.headers() {
                request = request.header(name, value);
            }
        }
        let response = request.body(body).send().await.map_err(|e| {
            PodIdentityError::internal(format!("calling {}: {}", self.endpoint, e.without_url()))
        })?;
        let status = response.status().as_u16();
        let request_id = header(&response, "x-amzn-requestid");
        let error_type = header(&response, "x-amzn-errortype");
        let text = response.text().await.map_err(|e| PodIdentityError::internal(e.to_string()))?;
        if status != 200 {
            return Err(api_error(status, error_type, request_id, &text));
        }
        let parsed: AssumeRoleForPodIdentityResponse = serde_json::from_str(&text)
            .map_err(|e| PodIdentityError::internal(format!("invalid response from server: {e}")))?;
        Ok(parsed.container_credentials())
    }
}

impl EksAuthClient {
    /// A Rampart broker's association versions (`GET /associations`), to drop cached
    /// credentials of changed associations. EKS Auth has no such call.
    pub async fn association_versions(
        &self,
    ) -> Result<std::collections::BTreeMap<String, String>, PodIdentityError> {
        #[derive(serde::Deserialize)]
        struct Versions {
            associations: std::collections::BTreeMap<String, String>,
        }
        let response =
            self.http.get(format!("{}/associations", self.endpoint)).send().await.map_err(|e| {
                PodIdentityError::internal(format!("calling {}: {}", self.endpoint, e.without_url()))
            })?;
        if !response.status().is_success() {
            return Err(PodIdentityError::internal(format!(
                "{}/associations: HTTP {}",
                self.endpoint,
                response.status()
            )));
        }
        let versions: Versions =
            response.json().await.map_err(|e| PodIdentityError::internal(e.to_string()))?;
        Ok(versions.associations)
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// A rest-json error: the code from `x-amzn-ErrorType` (before any `:`) or the body's
/// `__type`/`code`, the message from the body.
fn api_error(
    status: u16,
    error_type: Option<String>,
    request_id: Option<String>,
    text: &str,
) -> PodIdentityError {
    let body: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let field = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let code = error_type
        .or_else(|| field("__type"))
        .or_else(|| field("code"))
        .map(|c| c.split(':').next().unwrap_or_default().rsplit('#').next().unwrap_or_default().to_owned())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| if status >= 500 { "InternalServerException" } else { "UnknownError" }.to_owned());
    let message = field("message").or_else(|| field("Message")).unwrap_or_else(|| text.trim().to_owned());
    PodIdentityError { status, code, message, request_id }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_json_errors_keep_code_status_and_request_id() {
        let e = api_error(
            404,
            Some("ResourceNotFoundException:http://internal.amazon.com/".into()),
            Some("R1".into()),
            r#"{"message":"No Pod Identity Association..."}"#,
        );
        assert_eq!(
            e.agent_body(),
            "[R1]: (ResourceNotFoundException): No Pod Identity Association..., fault: client"
        );
        let e = api_error(
            400,
            None,
            None,
            r#"{"__type":"com.amazonaws.eksauth#AccessDeniedException","message":"no"}"#,
        );
        assert_eq!((e.status, e.code.as_str()), (400, "AccessDeniedException"));
        let e = api_error(502, None, None, "Bad Gateway");
        assert_eq!((e.code.as_str(), e.message.as_str()), ("InternalServerException", "Bad Gateway"));
    }
}
