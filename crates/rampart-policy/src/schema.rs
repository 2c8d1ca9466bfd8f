//! The embedded Cedar schema for Kubernetes.
//!
//! It is the upstream `k8s-full.cedarschema` of cedar-access-control-for-k8s (Apache-2.0):
//! the `k8s` authorization namespace, the `k8s::admission` actions and the object types of
//! core, apps, batch, rbac, networking, policy, storage and the other built-in groups.
//! Evaluation never uses it (CRD kinds and custom verbs must still evaluate); it is for
//! validating policies and for `rampart schema`.

use cedar_policy::{PolicySet, Schema, ValidationMode, Validator};

/// The schema text, as printed by `rampart schema`.
pub const K8S_SCHEMA: &str = include_str!("../schema/k8s.cedarschema");

/// Parse the embedded schema.
pub fn k8s_schema() -> Result<Schema, String> {
    parse_schema(K8S_SCHEMA)
}

/// Parse a schema in Cedar's human-readable syntax.
pub fn parse_schema(text: &str) -> Result<Schema, String> {
    Schema::from_cedarschema_str(text).map(|(s, _warnings)| s).map_err(|e| format!("{e:?}"))
}

/// One strict-mode validation failure.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaIssue {
    /// The policy that fails.
    pub policy_id: String,
    /// Byte offset of the failing expression in the text the policy was parsed from.
    pub offset: Option<usize>,
    /// What is wrong and, when Cedar knows, how to fix it.
    pub message: String,
}

/// Strict-mode validation failures of a policy set (empty when it validates), each once,
/// ordered by policy and position so repeated loads print them identically (Cedar's own
/// order follows hash maps).
pub fn validate(schema: &Schema, policies: &PolicySet) -> Vec<SchemaIssue> {
    use miette::Diagnostic;
    let result = Validator::new(schema.clone()).validate(policies, ValidationMode::Strict);
    let mut issues: Vec<SchemaIssue> = result
        .validation_errors()
        .map(|e| {
            let policy_id = e.policy_id().to_string();
            let text = e.to_string();
            // Cedar's text starts "for policy `<id>`, "; the caller names the policy itself.
            let prefix = format!("for policy `{policy_id}`, ");
            let mut message = text.strip_prefix(&prefix).unwrap_or(&text).to_owned();
            if let Some(help) = e.help() {
                message = format!("{message} ({help})");
            }
            let offset = e.labels().and_then(|mut labels| labels.next()).map(|l| l.offset());
            SchemaIssue { policy_id, offset, message }
        })
        .collect();
    issues.sort();
    issues.dedup();
    issues
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn embedded_schema_parses_and_has_the_core_namespaces() {
        let schema = k8s_schema().unwrap();
        let types: Vec<String> = schema.entity_types().map(|t| t.to_string()).collect();
        for t in [
            "k8s::User",
            "core::v1::Pod",
            "apps::v1::Deployment",
            "rbac::v1::ClusterRole",
            "batch::v1::Job",
            "networking::v1::NetworkPolicy",
        ] {
            assert!(types.iter().any(|x| x == t), "missing {t}");
        }
    }

    #[test]
    fn validation_flags_unguarded_optional_attributes() {
        let schema = k8s_schema().unwrap();
        let ok = PolicySet::from_str(
            r#"permit(principal, action == k8s::Action::"get", resource is k8s::Resource) when { resource has name && resource.name == "x" };"#,
        ).unwrap();
        assert!(validate(&schema, &ok).is_empty());
        let text = r#"permit(principal, action == k8s::Action::"get", resource is k8s::Resource) when { resource.name == "x" };"#;
        let bad = PolicySet::from_str(text).unwrap();
        let issues = validate(&schema, &bad);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].policy_id, "policy0");
        assert_eq!(issues[0].offset, text.find("resource.name"));
        assert!(issues[0].message.starts_with("unable to guarantee safety"), "{}", issues[0].message);
        assert!(issues[0].message.contains("has name"), "help is kept: {}", issues[0].message);
    }

    #[test]
    fn issues_come_in_source_order_every_time() {
        let schema = k8s_schema().unwrap();
        let text = r#"forbid(principal, action == k8s::Action::"get", resource is k8s::Resource)
            when { resource.namespace == "y" && resource.name == "z" && resource.subresource == "s" };"#;
        let bad = PolicySet::from_str(text).unwrap();
        let first = validate(&schema, &bad);
        assert_eq!(first.len(), 3);
        let offsets: Vec<_> = first.iter().map(|i| i.offset.unwrap()).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
        for _ in 0..20 {
            assert_eq!(validate(&schema, &bad), first);
        }
    }
}
