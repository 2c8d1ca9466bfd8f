//! `authorization.k8s.io/v1` SubjectAccessReview: the authorization webhook's request and reply.

pub use k8s_openapi::api::authorization::v1::{
    FieldSelectorAttributes, LabelSelectorAttributes, NonResourceAttributes, ResourceAttributes,
    SubjectAccessReview, SubjectAccessReviewSpec,
};
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    FieldSelectorRequirement, LabelSelectorRequirement,
};
use serde::Serialize;

use super::{DecodeError, decode_json};
use crate::Decision;

/// Decode a SubjectAccessReview as the apiserver sends it.
pub fn decode(bytes: &[u8]) -> Result<SubjectAccessReview, DecodeError> {
    decode_json("SubjectAccessReview", bytes)
}

/// The `status` the webhook answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SarStatus {
    pub allowed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub denied: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub evaluation_error: String,
}

impl SarStatus {
    /// Status for a decision with its reason string and optional evaluation error.
    pub fn new(decision: Decision, reason: String, evaluation_error: String) -> Self {
        SarStatus {
            allowed: decision == Decision::Allow,
            denied: decision == Decision::Deny,
            reason,
            evaluation_error,
        }
    }
}

/// The full reply body. The spec is not echoed: the apiserver reads only `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SarResponse {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub status: SarStatus,
}

impl SarResponse {
    pub fn new(status: SarStatus) -> Self {
        SarResponse { api_version: "authorization.k8s.io/v1", kind: "SubjectAccessReview", status }
    }

    /// The reply for a body that could not be decoded: NoOpinion, so RBAC still decides,
    /// with the decoder's message as the evaluation error (as the Go webhook does).
    /// A request refused outright (over a limit, unreadable): denied, with the reason, so the
    /// apiserver neither allows it nor passes it on to the next authorizer.
    pub fn refused(message: String) -> Self {
        SarResponse::new(SarStatus {
            allowed: false,
            denied: true,
            reason: "refused by Rampart".into(),
            evaluation_error: message,
        })
    }

    pub fn decode_failure(err: &DecodeError) -> Self {
        SarResponse::new(SarStatus {
            allowed: false,
            denied: false,
            reason: "Encountered decoding error".into(),
            evaluation_error: format!("failed parsing request body: {err}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_selectors_from_the_wire() {
        let body = br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview",
          "spec":{"user":"u","groups":["g"],"resourceAttributes":{"verb":"list","resource":"pods",
          "labelSelector":{"requirements":[{"key":"owner","operator":"In","values":["u"]}]}}}}"#;
        let sar = decode(body).unwrap();
        let ra = sar.spec.resource_attributes.unwrap();
        let reqs = ra.label_selector.unwrap().requirements.unwrap();
        assert_eq!(reqs[0].operator, "In");
    }

    #[test]
    fn decode_error_names_the_field() {
        let body = br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview",
          "spec":{"user":"u","groups":"not-a-list"}}"#;
        let err = decode(body).unwrap_err();
        assert_eq!(err.path, "spec.groups");
        assert!(err.to_string().contains("spec.groups"), "{err}");
    }

    #[test]
    fn response_shapes_match_the_go_webhook() {
        let allow = SarResponse::new(SarStatus::new(Decision::Allow, "r".into(), String::new()));
        assert_eq!(
            serde_json::to_string(&allow).unwrap(),
            r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","status":{"allowed":true,"reason":"r"}}"#
        );
        let deny = SarResponse::new(SarStatus::new(Decision::Deny, "r".into(), String::new()));
        assert!(serde_json::to_string(&deny).unwrap().contains(r#""allowed":false,"denied":true"#));
        let none = SarResponse::new(SarStatus::new(Decision::NoOpinion, String::new(), String::new()));
        assert!(serde_json::to_string(&none).unwrap().ends_with(r#""status":{"allowed":false}}"#));
    }
}
