//! `admission.k8s.io/v1` AdmissionReview: the admission webhook's request and reply.
//!
//! Objects stay raw JSON (`serde_json::Value`): policies may look at any field, including
//! fields of CRDs no schema knows, and nothing may be dropped on the way.

pub use k8s_openapi::api::authentication::v1::UserInfo;
use serde::{Deserialize, Serialize};

use super::{DecodeError, decode_json};

/// The operation being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    /// The Cedar action id for this operation (`k8s::admission::Action::"<id>"`).
    pub fn action_id(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Connect => "connect",
        }
    }
}

/// `group`, `version`, `kind` of the object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    pub kind: String,
}

/// `group`, `version`, `resource` of the request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroupVersionResource {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    pub resource: String,
}

/// The part of an AdmissionRequest that Rampart uses; unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    #[serde(default)]
    pub sub_resource: Option<String>,
    /// The resource as the client asked for it, before any conversion: what was authorized.
    #[serde(default)]
    pub request_resource: Option<GroupVersionResource>,
    #[serde(default)]
    pub request_sub_resource: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: Operation,
    pub user_info: UserInfo,
    #[serde(default)]
    pub object: Option<serde_json::Value>,
    #[serde(default)]
    pub old_object: Option<serde_json::Value>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// An AdmissionReview as the apiserver sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    pub api_version: String,
    pub kind: String,
    pub request: AdmissionRequest,
}

/// Decode an AdmissionReview. Also checks `apiVersion`/`kind`, because a v1beta1 review
/// decoded as v1 would silently lose meaning.
pub fn decode(bytes: &[u8]) -> Result<AdmissionReview, DecodeError> {
    let review: AdmissionReview = decode_json("AdmissionReview", bytes)?;
    if review.api_version != "admission.k8s.io/v1" {
        return Err(DecodeError {
            kind: "AdmissionReview",
            path: "apiVersion".into(),
            message: format!(
                "unsupported apiVersion {:?}; configure the webhook with admissionReviewVersions: [v1]",
                review.api_version
            ),
        });
    }
    if review.kind != "AdmissionReview" {
        return Err(DecodeError {
            kind: "AdmissionReview",
            path: "kind".into(),
            message: format!("expected kind AdmissionReview, got {:?}", review.kind),
        });
    }
    Ok(review)
}

/// Best-effort recovery of `request.uid` from a body that failed to decode, so that even the
/// error reply can be matched to its request by the apiserver.
pub fn salvage_uid(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.pointer("/request/uid").and_then(|u| u.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// `status` of a response (a `metav1.Status` subset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ResponseStatus {
    pub code: u16,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The webhook's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ResponseStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub audit_annotations: std::collections::BTreeMap<String, String>,
    /// Base64 of an RFC 6902 JSON patch (mutating webhooks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// `"JSONPatch"` whenever `patch` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
}

impl AdmissionResponse {
    /// Allow the request.
    pub fn allow(uid: impl Into<String>) -> Self {
        AdmissionResponse {
            uid: uid.into(),
            allowed: true,
            status: None,
            warnings: vec![],
            audit_annotations: Default::default(),
            patch: None,
            patch_type: None,
        }
    }

    /// Reject the request with an HTTP-like status code and a message the user will see.
    pub fn reject(uid: impl Into<String>, code: u16, message: impl Into<String>) -> Self {
        let reason = match code {
            400 => "BadRequest",
            403 => "Forbidden",
            500 => "InternalError",
            _ => "",
        };
        AdmissionResponse {
            uid: uid.into(),
            allowed: false,
            status: Some(ResponseStatus { code, message: message.into(), reason: reason.into() }),
            warnings: vec![],
            audit_annotations: Default::default(),
            patch: None,
            patch_type: None,
        }
    }

    /// Allow the request with a JSON patch, given already base64-encoded.
    pub fn allow_with_patch(uid: impl Into<String>, patch_base64: String) -> Self {
        AdmissionResponse {
            patch: Some(patch_base64),
            patch_type: Some("JSONPatch".into()),
            ..Self::allow(uid)
        }
    }

    /// Wrap into a full AdmissionReview reply body.
    pub fn into_review(self) -> AdmissionReviewResponse {
        AdmissionReviewResponse {
            api_version: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            response: self,
        }
    }
}

/// A full AdmissionReview reply body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReviewResponse {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: AdmissionResponse,
}

#[cfg(test)]
mod tests {
    use super::*;

    const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
      "request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"ConfigMap"},
      "resource":{"group":"","version":"v1","resource":"configmaps"},"name":"c","namespace":"default",
      "operation":"CREATE","userInfo":{"username":"alice","groups":["g"]},
      "object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"x-unknown":{"kept":1}},
      "oldObject":null,"dryRun":false,"options":{"kind":"CreateOptions"}}}"#;

    #[test]
    fn decodes_a_full_review_and_keeps_unknown_object_fields() {
        let review = decode(REVIEW.as_bytes()).unwrap();
        assert_eq!(review.request.operation, Operation::Create);
        assert_eq!(review.request.object.unwrap()["x-unknown"]["kept"], 1);
        assert!(review.request.old_object.is_none());
    }

    #[test]
    fn bad_operation_is_named() {
        let body = REVIEW.replace("\"CREATE\"", "\"EXPLODE\"");
        let err = decode(body.as_bytes()).unwrap_err();
        assert_eq!(err.path, "request.operation");
        assert_eq!(salvage_uid(body.as_bytes()), "u1");
    }

    #[test]
    fn wrong_version_is_rejected_with_a_hint() {
        let body = REVIEW.replace("admission.k8s.io/v1", "admission.k8s.io/v1beta1");
        let err = decode(body.as_bytes()).unwrap_err();
        assert_eq!(err.path, "apiVersion");
        assert!(err.message.contains("admissionReviewVersions"));
    }

    #[test]
    fn rejection_serializes_status() {
        let r = AdmissionResponse::reject("u", 403, "no").into_review();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["response"]["status"]["code"], 403);
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    }
}
