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
    /// The policy's `@id("…")` annotation, shown instead of the generated id in messages for
    /// people. Not part of the Go-compatible JSON.
    #[serde(skip)]
    pub label: Option<String>,
    /// The policy's `@reason("…")` annotation: what a denied user reads, after the policy's
    /// name. Not part of the Go-compatible JSON.
    #[serde(skip)]
    pub message: Option<String>,
}

impl PolicyRef {
    /// `@id` where the policy has one, else its generated id, with where it is:
    /// `deny-prod-configmaps (org/admission.cedar:12:1)`.
    pub fn describe(&self) -> String {
        let name = self.label.as_deref().unwrap_or(&self.policy);
        if self.position.filename.is_empty() {
            name.to_owned()
        } else {
            format!("{name} ({})", self.position)
        }
    }
}

/// How reasons are written into SubjectAccessReview and AdmissionReview responses, which
/// kubectl shows users and the apiserver writes to audit logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReasonFormat {
    /// cedar-go's `Diagnostic` JSON, byte for byte (for log parsers written against the Go
    /// webhook).
    #[default]
    CedarGo,
    /// A sentence naming each deciding policy by `@id` (or id) and `file:line:col`.
    Text,
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

    /// A sentence for people: `forbidden by policy a (f:3:1)`, `allowed by policies a (…), b (…)`;
    /// evaluation errors are named after the reasons.
    pub fn to_text(&self, outcome: &str) -> String {
        let names = |refs: Vec<String>| refs.join(", ");
        let mut text = match self.reasons.len() {
            0 => String::new(),
            1 => format!("{outcome} by policy {}", self.reasons[0].describe()),
            _ => format!(
                "{outcome} by policies {}",
                names(self.reasons.iter().map(PolicyRef::describe).collect())
            ),
        };
        let mut messages: Vec<&str> = Vec::new();
        for m in self.reasons.iter().filter_map(|r| r.message.as_deref()) {
            if !messages.contains(&m) {
                messages.push(m);
            }
        }
        if !messages.is_empty() {
            text.push_str(": ");
            text.push_str(&messages.join("; "));
        }
        for e in &self.errors {
            if !text.is_empty() {
                text.push_str("; ");
            }
            text.push_str(&format!(
                "policy {} ({}) could not be evaluated: {}",
                e.policy, e.position, e.message
            ));
        }
        text
    }

    /// The authorization reason in `format`.
    pub fn reason(&self, format: ReasonFormat, outcome: &str) -> String {
        match format {
            ReasonFormat::CedarGo => self.to_reason_string(),
            ReasonFormat::Text => self.to_text(outcome),
        }
    }

    /// The admission denial message in `format`.
    pub fn admission_message(&self, format: ReasonFormat) -> String {
        match format {
            ReasonFormat::CedarGo => self.to_admission_message(),
            ReasonFormat::Text => self.to_text("forbidden"),
        }
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
                label: Some("not-in-the-json".into()),
                message: None,
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

    #[test]
    fn text_reasons_name_policies_by_id_annotation_and_position() {
        let mut d = Diagnostic {
            reasons: vec![PolicyRef {
                policy: "org.policy0".into(),
                position: pos("org.cedar", 0, 3, 1),
                label: None,
                message: None,
            }],
            errors: vec![],
        };
        assert_eq!(d.to_text("forbidden"), "forbidden by policy org.policy0 (org.cedar:3:1)");
        d.reasons.push(PolicyRef {
            policy: "org.policy1".into(),
            position: pos("org.cedar", 9, 7, 1),
            label: Some("no-prod".into()),
            message: None,
        });
        assert_eq!(
            d.admission_message(ReasonFormat::Text),
            "forbidden by policies org.policy0 (org.cedar:3:1), no-prod (org.cedar:7:1)"
        );
        assert!(d.reason(ReasonFormat::CedarGo, "forbidden").starts_with("{\"reasons\""));
    }

    #[test]
    fn a_reason_annotation_is_what_the_denied_user_reads() {
        let d = Diagnostic {
            reasons: vec![PolicyRef {
                policy: "org.policy4".into(),
                position: pos("org.cedar", 0, 12, 1),
                label: Some("no-prod-configmaps".into()),
                message: Some("ConfigMaps named prod-* are managed by the release pipeline".into()),
            }],
            errors: vec![],
        };
        assert_eq!(
            d.admission_message(ReasonFormat::Text),
            "forbidden by policy no-prod-configmaps (org.cedar:12:1): ConfigMaps named prod-* are managed by \
             the release pipeline"
        );
        assert!(!d.to_reason_string().contains("release pipeline"), "the Go-compatible JSON is unchanged");
    }
}
