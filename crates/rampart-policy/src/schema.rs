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

/// Strict-mode validation messages for a policy set (empty when it validates).
pub fn validate(schema: &Schema, policies: &PolicySet) -> Vec<String> {
    let result = Validator::new(schema.clone()).validate(policies, ValidationMode::Strict);
    result.validation_errors().map(|e| format!("{}: {e}", e.policy_id())).collect()
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
        let bad = PolicySet::from_str(
            r#"permit(principal, action == k8s::Action::"get", resource is k8s::Resource) when { resource.name == "x" };"#,
        ).unwrap();
        assert_eq!(validate(&schema, &bad).len(), 1);
    }
}
