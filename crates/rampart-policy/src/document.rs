//! Policy documents: parse a text into policies with stable ids and source positions.
//!
//! Ids and position file names follow the Go project so reason strings stay byte-compatible:
//!
//! | source | policy id | position filename |
//! |---|---|---|
//! | in-memory document | `policy<i>` | the document name |
//! | `.cedar` file | `<file>.policy<i>` | the file name |
//! | `cedar.k8s.aws/v1alpha1` `Policy` object | `<name><i>-<uid>` (`<name><i>` without uid) | `metadata.name` |

use std::str::FromStr;

use cedar_policy::{Effect, Policy, PolicyId, PolicySet};
use miette::Diagnostic;
use rampart_types::SourcePosition;

use crate::source::{SliceLocator, line_column};

/// Where a document came from, which decides policy ids and position file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentKind {
    /// A named in-memory document (tests, the built-in admission tier).
    Memory { name: String },
    /// A `.cedar` file, by base name.
    CedarFile { file_name: String },
    /// The `spec.content` of a `Policy` object.
    PolicyObject { name: String, uid: Option<String> },
}

impl DocumentKind {
    fn policy_id(&self, index: usize) -> String {
        match self {
            DocumentKind::Memory { .. } => format!("policy{index}"),
            DocumentKind::CedarFile { file_name } => format!("{file_name}.policy{index}"),
            DocumentKind::PolicyObject { name, uid: Some(uid) } => format!("{name}{index}-{uid}"),
            DocumentKind::PolicyObject { name, uid: None } => format!("{name}{index}"),
        }
    }

    /// The file name recorded in positions.
    pub fn filename(&self) -> &str {
        match self {
            DocumentKind::Memory { name } => name,
            DocumentKind::CedarFile { file_name } => file_name,
            DocumentKind::PolicyObject { name, .. } => name,
        }
    }
}

/// Whether a policy's result counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyMode {
    /// The policy decides.
    Enforce,
    /// `@mode("audit")`: evaluated and reported ("would deny"), never enforced.
    Audit,
}

/// One parsed policy with everything needed to evaluate and explain it.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    pub id: String,
    pub position: SourcePosition,
    pub effect: Effect,
    pub mode: PolicyMode,
    /// The policy, re-identified with `id`.
    pub policy: Policy,
    /// A set holding just this policy: the unit of evaluation after indexing.
    pub single: PolicySet,
    /// `@description("…")`, if any; shown in CLI output.
    pub description: Option<String>,
    /// `@id("…")`, if any: how messages for people name the policy.
    pub label: Option<String>,
    /// `@reason("…")`, if any: shown to a denied user after the policy's name.
    pub message: Option<String>,
}

/// A document that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parse `text` into policies named after `kind`.
pub fn parse_document(kind: &DocumentKind, text: &str) -> Result<Vec<LoadedPolicy>, ParseFailure> {
    let parsed = PolicySet::from_str(text).map_err(|errs| {
        let offset = errs.labels().and_then(|mut labels| labels.next()).map(|l| l.offset());
        let (line, column) = offset.map_or((1, 1), |o| line_column(text, o));
        let message = errs
            .iter()
            .map(|e| match e.help() {
                Some(help) => format!("{e} ({help})"),
                None => e.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        ParseFailure { line, column, message }
    })?;
    let mut locator = SliceLocator::new(text);
    let mut out = Vec::new();
    // `PolicySet::from_str` names policies policy0..N in document order.
    for index in 0.. {
        let Some(policy) = parsed.policy(&PolicyId::new(format!("policy{index}"))) else { break };
        let (offset, line, column) =
            policy.to_cedar().and_then(|slice| locator.locate(&slice)).unwrap_or((0, 1, 1));
        let position = SourcePosition { filename: kind.filename().to_owned(), offset, line, column };
        let mode = match policy.annotation("mode") {
            None | Some("enforce") => PolicyMode::Enforce,
            Some("audit") => PolicyMode::Audit,
            Some(other) => {
                return Err(ParseFailure {
                    line,
                    column,
                    message: format!("unknown @mode({other:?}); use @mode(\"enforce\") or @mode(\"audit\")"),
                });
            }
        };
        let id = kind.policy_id(index);
        let renamed = policy.new_id(PolicyId::new(&id));
        let mut single = PolicySet::new();
        single.add(renamed.clone()).map_err(|e| ParseFailure { line, column, message: e.to_string() })?;
        out.push(LoadedPolicy {
            id,
            position,
            effect: policy.effect(),
            mode,
            description: policy.annotation("description").map(str::to_owned),
            label: policy.annotation("id").map(str::to_owned),
            message: policy.annotation("reason").map(str::to_owned),
            policy: renamed,
            single,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_positions_follow_the_go_project() {
        let text = "// first\npermit(principal, action == k8s::Action::\"list\", resource);\n\n@description(\"second\")\npermit(principal in k8s::Group::\"admin\", action == k8s::Action::\"get\", resource);";
        let kind = DocumentKind::CedarFile { file_name: "a.cedar".into() };
        let policies = parse_document(&kind, text).unwrap();
        assert_eq!(policies.len(), 2);
        assert_eq!(policies[1].id, "a.cedar.policy1");
        assert_eq!(
            policies[1].position,
            SourcePosition { filename: "a.cedar".into(), offset: 70, line: 4, column: 1 }
        );
        assert_eq!(policies[1].description.as_deref(), Some("second"));
    }

    #[test]
    fn policy_object_ids() {
        let kind = DocumentKind::PolicyObject { name: "p".into(), uid: Some("uid".into()) };
        let policies = parse_document(&kind, "permit(principal, action, resource);").unwrap();
        assert_eq!(policies[0].id, "p0-uid");
        assert_eq!(policies[0].position.filename, "p");
    }

    #[test]
    fn parse_errors_carry_line_and_column() {
        let kind = DocumentKind::Memory { name: "m".into() };
        let err = parse_document(
            &kind,
            "permit(principal, action, resource);\n  permit(principal, actoin, resource);",
        )
        .unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.column > 1, "{err:?}");
    }

    #[test]
    fn audit_mode_and_typos() {
        let kind = DocumentKind::Memory { name: "m".into() };
        let p = parse_document(&kind, "@mode(\"audit\") forbid(principal, action, resource);").unwrap();
        assert_eq!(p[0].mode, PolicyMode::Audit);
        let err = parse_document(&kind, "@mode(\"audti\") forbid(principal, action, resource);").unwrap_err();
        assert!(err.message.contains("audti"));
    }
}
