//! Wire shapes of Pod Identity: the EKS Auth `AssumeRoleForPodIdentity` response (epoch-second
//! expiration), the container-credentials JSON the SDKs read (RFC 3339), and the error type
//! that carries an EKS error code and HTTP status through agent and broker alike.

use serde::{Deserialize, Serialize};

/// The credentials an SDK's container provider reads, in upstream's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerCredentials {
    #[serde(rename = "AccessKeyId")]
    pub access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    pub secret_access_key: String,
    #[serde(rename = "Token")]
    pub token: String,
    #[serde(rename = "AccountId", skip_serializing_if = "String::is_empty")]
    pub account_id: String,
    #[serde(rename = "Expiration")]
    pub expiration: String,
    /// Unix seconds of `expiration`, for the cache.
    #[serde(skip)]
    pub expires_at: i64,
    /// `(namespace, service account)` the credentials were issued for, for the cache.
    #[serde(skip)]
    pub subject: Option<(String, String)>,
}

/// `POST /clusters/{name}/assume-role-for-pod-identity` answer (botocore model eks-auth).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssumeRoleForPodIdentityResponse {
    pub subject: Subject,
    pub audience: String,
    pub pod_identity_association: AssociationRef,
    pub assumed_role_user: AssumedRoleUser,
    pub credentials: EksAuthCredentials,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    pub namespace: String,
    pub service_account: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationRef {
    pub association_arn: String,
    pub association_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssumedRoleUser {
    pub arn: String,
    pub assume_role_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EksAuthCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Unix seconds (a JSON number, as EKS Auth sends it).
    pub expiration: i64,
}

impl AssumeRoleForPodIdentityResponse {
    /// The SDK-facing answer; the account comes from the assumed-role ARN.
    pub fn container_credentials(&self) -> ContainerCredentials {
        ContainerCredentials {
            access_key_id: self.credentials.access_key_id.clone(),
            secret_access_key: self.credentials.secret_access_key.clone(),
            token: self.credentials.session_token.clone(),
            account_id: account_of(&self.assumed_role_user.arn).to_owned(),
            expiration: crate::token::format_rfc3339(self.credentials.expiration),
            expires_at: self.credentials.expiration,
            subject: Some((self.subject.namespace.clone(), self.subject.service_account.clone())),
        }
    }
}

/// The account field of an ARN (`arn:aws:sts::123456789012:assumed-role/…` → `123456789012`).
pub fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// Who is at fault, as the agent prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    Server,
}

/// A Pod Identity failure: HTTP status, EKS error code, message. The agent renders it as
/// upstream does (`[<requestId>]: (<Code>): <message>, fault: client`); the broker as an EKS
/// Auth rest-json error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("({code}): {message}")]
pub struct PodIdentityError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
}

impl PodIdentityError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        PodIdentityError { status, code: code.into(), message: message.into(), request_id: None }
    }
    pub fn invalid_token(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidTokenException", message)
    }
    pub fn expired_token(message: impl Into<String>) -> Self {
        Self::new(400, "ExpiredTokenException", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "ResourceNotFoundException", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalServerException", message)
    }

    pub fn fault(&self) -> Fault {
        if self.status >= 500 { Fault::Server } else { Fault::Client }
    }

    /// Errors after which refreshing with the same token can never succeed (spec §2.3.6).
    pub fn is_irrecoverable(&self) -> bool {
        matches!(
            self.code.as_str(),
            "ResourceNotFoundException"
                | "ExpiredTokenException"
                | "InvalidTokenException"
                | "AccessDeniedException"
        )
    }

    /// The agent's plain-text body (without the trailing newline `http.Error` adds).
    pub fn agent_body(&self) -> String {
        let fault = match self.fault() {
            Fault::Client => "client",
            Fault::Server => "server",
        };
        format!(
            "[{}]: ({}): {}, fault: {fault}",
            self.request_id.as_deref().unwrap_or_default(),
            self.code,
            self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a18_json_field_order_and_omitted_account() {
        let c = ContainerCredentials {
            access_key_id: "some-access-key".into(),
            secret_access_key: "some-secret-key".into(),
            token: "some-token".into(),
            account_id: "some-account-id".into(),
            expiration: "1996-03-27T07:45:23.123456789Z".into(),
            expires_at: 0,
            subject: None,
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"AccessKeyId":"some-access-key","SecretAccessKey":"some-secret-key","Token":"some-token","AccountId":"some-account-id","Expiration":"1996-03-27T07:45:23.123456789Z"}"#
        );
        let no_account = ContainerCredentials { account_id: String::new(), ..c };
        assert!(!serde_json::to_string(&no_account).unwrap().contains("AccountId"));
    }

    #[test]
    fn a09_error_body_and_classes() {
        let mut e = PodIdentityError::not_found("No Pod Identity Association...");
        e.request_id = Some("R1".into());
        assert_eq!(
            e.agent_body(),
            "[R1]: (ResourceNotFoundException): No Pod Identity Association..., fault: client"
        );
        assert!(e.is_irrecoverable());
        let e = PodIdentityError::internal("boom");
        assert!(e.agent_body().ends_with("fault: server"));
        assert!(!e.is_irrecoverable());
    }

    #[test]
    fn a01_eks_auth_answer_becomes_container_credentials() {
        let r: AssumeRoleForPodIdentityResponse = serde_json::from_str(
            r#"{"subject":{"namespace":"ns","serviceAccount":"sa"},"audience":"pods.eks.amazonaws.com",
            "podIdentityAssociation":{"associationArn":"A","associationId":"a-1"},
            "assumedRoleUser":{"arn":"arn:aws:sts::123456789012:assumed-role/r/eks-c-p-uuid","assumeRoleId":"AROA..:eks-c-p-uuid"},
            "credentials":{"accessKeyId":"AK","secretAccessKey":"SK","sessionToken":"ST","expiration":1774134340}}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&r.container_credentials()).unwrap(),
            r#"{"AccessKeyId":"AK","SecretAccessKey":"SK","Token":"ST","AccountId":"123456789012","Expiration":"2026-03-21T23:05:40Z"}"#
        );
    }
}
