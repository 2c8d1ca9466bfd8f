//! Label selectors, matched as the apiserver matches them: `matchLabels` and every
//! `matchExpressions` term must hold; an empty selector matches everything. One matcher for
//! RBAC aggregation rules and NetworkPolicy selectors alike.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether one `matchExpressions` term holds. An operator the API would have refused
/// matches nothing, never everything.
pub fn requirement_holds(
    labels: &BTreeMap<String, String>,
    key: &str,
    operator: &str,
    values: &[String],
) -> bool {
    let value = labels.get(key);
    match operator {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// Whether `labels` satisfy a Kubernetes `LabelSelector`.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v))
        && selector
            .match_expressions
            .iter()
            .flatten()
            .all(|e| requirement_holds(labels, &e.key, &e.operator, e.values.as_deref().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(json: serde_json::Value) -> LabelSelector {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn apiserver_semantics() {
        use serde_json::json;
        let labels: BTreeMap<String, String> =
            [("app".into(), "web".into()), ("tier".into(), "front".into())].into();
        assert!(selector_matches(&selector(json!({})), &labels), "empty selects everything");
        assert!(selector_matches(&selector(json!({"matchLabels": {"app": "web"}})), &labels));
        assert!(!selector_matches(&selector(json!({"matchLabels": {"app": "db"}})), &labels));
        let expression = |key: &str, operator: &str, values: &[&str]| {
            selector(json!({"matchExpressions": [{"key": key, "operator": operator, "values": values}]}))
        };
        assert!(selector_matches(&expression("app", "In", &["web", "api"]), &labels));
        assert!(
            selector_matches(&expression("env", "NotIn", &["prod"]), &labels),
            "NotIn holds when the key is absent"
        );
        assert!(!selector_matches(&expression("app", "DoesNotExist", &[]), &labels));
        assert!(selector_matches(&expression("tier", "Exists", &[]), &labels));
        assert!(!selector_matches(&expression("app", "Bogus", &[]), &labels));
        let both = selector(
            json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}]}),
        );
        assert!(!selector_matches(&both, &labels));
    }
}
