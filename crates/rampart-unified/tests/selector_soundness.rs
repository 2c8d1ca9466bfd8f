//! The selector evaluator against Cedar itself: for random label and field selectors, random
//! residual conditions and random stored pods, whenever the abstract evaluation says a
//! condition is true (or never true) for every object a selection can return, Cedar's own
//! evaluation of it on every such pod agrees. Objects are filtered by the selectors with the
//! apiserver's matching rules (a `!=` or `notin` matches an object without the label or field).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::BTreeMap;

use cedar_policy::{Context, Entities, EntityUid, EvalResult, Expression, Request};
use proptest::prelude::*;
use rampart_types::sar::{FieldSelectorRequirement, LabelSelectorRequirement};
use rampart_unified::schema::resource_kind;
use rampart_unified::selector::{Selection, Truth, residual_truth};
use serde_json::json;

const OBJECT: &str = "core::v1::Pod::\"oldObject\"";

/// A stored pod, as far as the conditions read it.
#[derive(Debug, Clone)]
struct Pod {
    labels: Option<BTreeMap<String, String>>,
    /// `None`: no `spec`; `Some(None)`: a spec without `nodeName`.
    node: Option<Option<String>>,
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![Just("a".to_owned()), Just("b".to_owned())]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just("team".to_owned()), Just("tier".to_owned())]
}

fn node() -> impl Strategy<Value = String> {
    prop_oneof![Just("n1".to_owned()), Just("n2".to_owned()), Just(String::new())]
}

fn pod() -> impl Strategy<Value = Pod> {
    let labels = proptest::option::of(proptest::collection::btree_map(key(), value(), 0..3));
    let node = proptest::option::of(proptest::option::of(node()));
    (labels, node).prop_map(|(labels, node)| Pod { labels, node })
}

fn label_requirement() -> impl Strategy<Value = LabelSelectorRequirement> {
    let operator = prop_oneof![Just("In"), Just("NotIn"), Just("Exists"), Just("DoesNotExist")];
    (key(), operator, proptest::collection::btree_set(value(), 1..3)).prop_map(|(key, operator, values)| {
        let values = matches!(operator, "In" | "NotIn").then(|| values.into_iter().collect());
        LabelSelectorRequirement { key, operator: operator.to_owned(), values }
    })
}

fn field_requirement() -> impl Strategy<Value = FieldSelectorRequirement> {
    (prop_oneof![Just("In"), Just("NotIn")], node()).prop_map(|(operator, v)| FieldSelectorRequirement {
        key: "spec.nodeName".into(),
        operator: operator.into(),
        values: Some(vec![v]),
    })
}

/// Conditions over the stored pod, in Cedar syntax, guarded or not.
fn condition() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("true".to_owned()),
        Just(format!("{OBJECT}.metadata has labels")),
        Just(format!("{OBJECT} has spec")),
        Just(format!("{OBJECT}.spec has nodeName")),
        (key(), value()).prop_map(|(k, v)| format!(
            "{OBJECT}.metadata.labels.contains({{\"key\": \"{k}\", \"value\": \"{v}\"}})"
        )),
        node().prop_map(|n| format!("{OBJECT}.spec.nodeName == \"{n}\"")),
        node().prop_map(|n| format!("\"{n}\" != {OBJECT}.spec.nodeName")),
    ];
    atom.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| format!("!({c})")),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| format!("({l}) && ({r})")),
            (inner.clone(), inner).prop_map(|(l, r)| format!("({l}) || ({r})")),
        ]
    })
}

/// The apiserver's label matching.
fn labels_match(pod: &Pod, requirements: &[LabelSelectorRequirement]) -> bool {
    let empty = BTreeMap::new();
    let labels = pod.labels.as_ref().unwrap_or(&empty);
    requirements.iter().all(|r| {
        let values = r.values.as_deref().unwrap_or_default();
        let value = labels.get(&r.key);
        match r.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            _ => value.is_none(),
        }
    })
}

/// The apiserver's field matching: an unset `spec.nodeName` is the empty string.
fn fields_match(pod: &Pod, requirements: &[FieldSelectorRequirement]) -> bool {
    let node = pod.node.clone().flatten().unwrap_or_default();
    requirements.iter().all(|r| {
        let v = r.values.as_deref().and_then(|v| v.first()).cloned().unwrap_or_default();
        if r.operator == "In" { node == v } else { node != v }
    })
}

/// Cedar's evaluation of `condition` on `pod`: `Some(bool)`, or `None` for an error.
fn cedar(condition: &str, pod: &Pod) -> Option<bool> {
    let mut metadata = json!({"name": "p"});
    if let Some(labels) = &pod.labels {
        let set: Vec<_> = labels.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        metadata["labels"] = json!(set);
    }
    let mut attrs = json!({"metadata": metadata});
    if let Some(node) = &pod.node {
        attrs["spec"] = match node {
            Some(n) => json!({"nodeName": n}),
            None => json!({}),
        };
    }
    let entities = Entities::from_json_value(
        json!([{"uid": {"type": "core::v1::Pod", "id": "oldObject"}, "attrs": attrs, "parents": []}]),
        None,
    )
    .unwrap();
    let uid: EntityUid = r#"k8s::User::"u""#.parse().unwrap();
    let request = Request::new(uid.clone(), uid.clone(), uid, Context::empty(), None).unwrap();
    let expression: Expression = condition.parse().unwrap();
    match cedar_policy::eval_expression(&request, &entities, &expression) {
        Ok(EvalResult::Bool(b)) => Some(b),
        Ok(other) => panic!("{condition} is not boolean: {other:?}"),
        Err(_) => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn a_proven_or_refuted_condition_holds_on_every_selected_pod(
        condition in condition(),
        labels in proptest::collection::vec(label_requirement(), 0..3),
        fields in proptest::collection::vec(field_requirement(), 0..2),
        pods in proptest::collection::vec(pod(), 1..24),
    ) {
        let kind = resource_kind("", "pods", "").unwrap();
        let policy = format!("permit (principal, action, resource) when {{ {condition} }};").parse().unwrap();
        let truth = residual_truth(&policy, kind, Selection { labels: &labels, fields: &fields });
        for pod in pods.iter().filter(|p| labels_match(p, &labels) && fields_match(p, &fields)) {
            let concrete = cedar(&condition, pod);
            match truth {
                Truth::True => prop_assert_eq!(concrete, Some(true), "proven, yet not true on {:?}", pod),
                Truth::False => prop_assert_ne!(concrete, Some(true), "refuted, yet true on {:?}", pod),
                Truth::Unknown => {}
            }
        }
    }
}

/// The generator reaches both verdicts, so the property above is not vacuous.
#[test]
fn the_generator_reaches_proofs_and_refutations() {
    let kind = resource_kind("", "pods", "").unwrap();
    let team = |op: &str| LabelSelectorRequirement {
        key: "team".into(),
        operator: op.into(),
        values: Some(vec!["a".into()]),
    };
    let contains = format!("{OBJECT}.metadata.labels.contains({{\"key\": \"team\", \"value\": \"a\"}})");
    let policy = format!("permit (principal, action, resource) when {{ {contains} }};").parse().unwrap();
    let judge = |labels: &[LabelSelectorRequirement]| {
        residual_truth(&policy, kind, Selection { labels, fields: &[] })
    };
    assert_eq!(judge(&[team("In")]), Truth::True);
    assert_eq!(judge(&[team("NotIn")]), Truth::False);
}
