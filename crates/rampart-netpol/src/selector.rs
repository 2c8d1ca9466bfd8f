//! Label selectors, matched as the apiserver matches them: `matchLabels` and every
//! `matchExpressions` term must hold; an empty selector matches everything.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .as_ref()
        .is_none_or(|wanted| wanted.iter().all(|(k, v)| labels.get(k) == Some(v)));
    by_labels
        && selector.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                // An operator the API would have refused: match nothing, never everything.
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(yaml: &str) -> LabelSelector {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn apiserver_semantics() {
        let labels: BTreeMap<String, String> =
            [("app".into(), "web".into()), ("tier".into(), "front".into())].into();
        assert!(matches(&selector("{}"), &labels), "empty selects everything");
        assert!(matches(&selector("{matchLabels: {app: web}}"), &labels));
        assert!(!matches(&selector("{matchLabels: {app: db}}"), &labels));
        assert!(matches(
            &selector("{matchExpressions: [{key: app, operator: In, values: [web, api]}]}"),
            &labels
        ));
        assert!(
            matches(&selector("{matchExpressions: [{key: env, operator: NotIn, values: [prod]}]}"), &labels),
            "NotIn holds when the key is absent"
        );
        assert!(!matches(&selector("{matchExpressions: [{key: app, operator: DoesNotExist}]}"), &labels));
        assert!(matches(&selector("{matchExpressions: [{key: tier, operator: Exists}]}"), &labels));
        assert!(!matches(
            &selector(
                "{matchLabels: {app: web}, matchExpressions: [{key: tier, operator: In, values: [back]}]}"
            ),
            &labels
        ));
        assert!(!matches(&selector("{matchExpressions: [{key: app, operator: Bogus}]}"), &labels));
    }
}
