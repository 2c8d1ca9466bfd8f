//! Decisions and the reason strings that explain them.
//!
//! The reason format is the JSON encoding of cedar-go's `Diagnostic` struct, which the Go
//! webhook puts into `SubjectAccessReview.status.reason` and the apiserver copies into 403
//! messages and audit logs. Keeping it byte-identical lets existing log parsers keep working.

use serde::{Deserialize, Serialize};

/// The three answers an authorization webhook can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Decision {
    /// Explicitly allowed; the apiserver stops asking.
    Allow,
    /// Explicitly denied; the apiserver answers 403 at once.
    Deny,
    /// No policy applied; the apiserver asks the next authorizer (usually RBAC).
    NoOpinion,
}

impl Decision {
    /// Lower-case label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::NoOpinion => "no_opinion",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decision::Allow => "Allow",
            Decision::Deny => "Deny",
            Decision::NoOpinion => "NoOpinion",
        })
    }
}

/// Where a policy starts in its source document.
///
/// `offset` is a 0-based byte offset, `line` is 1-based and `column` is a 1-based count of
/// characters within the line, as cedar-go reports them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct SourcePosition {
    pub filename: String,
    pub offset: usize,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for SourcePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.filename, self.line, self.column)
    }
}

/// A policy that determined a decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PolicyRef {
    pub policy: String,
    pub position: SourcePosition,
}

/// A policy whose evaluation failed, with the evaluator's message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PolicyErrorRef {
    pub policy: String,
    pub position: SourcePosition,
    pub message: String,
}

/// The deciding tier's diagnostics: satisfied policies and evaluation errors.
///
/// Serializes as `{"reasons":[…],"errors":[…]}` with each key omitted when empty, exactly as
/// cedar-go does. Reasons are kept sorted by policy id so the string is deterministic (Go's
/// order is random map iteration).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Diagnostic {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<PolicyRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<PolicyErrorRef>,
}

impl Diagnostic {
    /// True when neither reasons nor errors were recorded.
    pub fn is_empty(&self) -> bool {
        self.reasons.is_empty() && self.errors.is_empty()
    }

    /// The Go-compatible reason string for `SubjectAccessReview.status.reason`.
    pub fn to_reason_string(&self) -> String {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The Go-compatible admission denial message: the bare JSON array of reasons.
    pub fn to_admission_message(&self) -> String {
        serde_json::to_string(&self.reasons).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(filename: &str, offset: usize, line: usize, column: usize) -> SourcePosition {
        SourcePosition { filename: filename.into(), offset, line, column }
    }

    #[test]
    fn reason_string_is_byte_compatible_with_cedar_go() {
        let d = Diagnostic {
            reasons: vec![PolicyRef {
                policy: "first-policy1-uid".into(),
                position: pos("first-policy", 312, 11, 1),
            }],
            errors: vec![],
        };
        assert_eq!(
            d.to_reason_string(),
            r#"{"reasons":[{"policy":"first-policy1-uid","position":{"filename":"first-policy","offset":312,"line":11,"column":1}}]}"#
        );
        assert_eq!(
            d.to_admission_message(),
            r#"[{"policy":"first-policy1-uid","position":{"filename":"first-policy","offset":312,"line":11,"column":1}}]"#
        );
    }

    #[test]
    fn errors_key_follows_reasons_and_empty_keys_are_omitted() {
        let d = Diagnostic {
            reasons: vec![],
            errors: vec![PolicyErrorRef {
                policy: "p".into(),
                position: pos("f", 0, 1, 1),
                message: "boom".into(),
            }],
        };
        assert_eq!(
            d.to_reason_string(),
            r#"{"errors":[{"policy":"p","position":{"filename":"f","offset":0,"line":1,"column":1},"message":"boom"}]}"#
        );
        assert_eq!(Diagnostic::default().to_reason_string(), "{}");
    }
}
