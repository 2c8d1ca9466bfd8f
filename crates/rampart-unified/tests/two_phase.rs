//! Property: for random unified policy sets and random write requests with objects, the
//! index (by verb, resource type and principal) changes no decision, and the two
//! phases (partial evaluation at authorization, finished at admission) reach exactly the
//! decision of one full evaluation; an Allow names exactly the same permits, and a Deny
//! made at authorization names forbids the full evaluation also names. Deciding writes by the
//! policies' shapes never contradicts Cedar's partial evaluator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use proptest::prelude::*;
use rampart_policy::entities::principal::UserInfoRef;
use rampart_unified::request::Attributes;
use rampart_unified::schema::resource_kind;
use rampart_unified::{Outcome, UnifiedTier};
use serde_json::json;

const GROUPS: &[&str] = &["devs", "ops", "auditors"];
const VERBS: &[&str] = &["create", "update", "patch", "delete"];
const NAMESPACES: &[&str] = &["dev", "prod"];
const NAMES: &[&str] = &["app", "prod-db", "settings"];

/// One condition a policy may put on the request or its objects.
fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("true".to_owned()),
        prop::sample::select(NAMESPACES).prop_map(|n| format!("resource has namespace && resource.namespace == \"{n}\"")),
        prop::sample::select(&["prod*", "app", "s*"][..]).prop_map(|p| format!(
            "resource has object && resource.object has metadata && resource.object.metadata has name && resource.object.metadata.name like \"{p}\""
        )),
        prop::sample::select(&["a", "b"][..]).prop_map(|t| format!(
            "resource has object && resource.object has metadata && resource.object.metadata has labels && resource.object.metadata.labels.contains({{\"key\": \"team\", \"value\": \"{t}\"}})"
        )),
        Just("resource has oldObject && resource.oldObject has metadata && resource.oldObject.metadata has annotations && resource.oldObject.metadata.annotations.contains({\"key\": \"protected\", \"value\": \"true\"})".to_owned()),
        Just("resource has oldObject && resource.oldObject has data && resource.oldObject.data.contains({\"key\": \"k\", \"value\": \"v\"})".to_owned()),
    ]
}

fn policy() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::option::of(prop::sample::select(&["k8s::Group::\"devs\"", "k8s::Group::\"ops\"", "k8s::Group::\"auditors\"", "k8s::User::\"someone\""][..])),
        prop::sample::subsequence(vec!["create", "update+patch", "delete"], 1..=3),
        condition(),
        condition(),
        any::<bool>(),
    )
        .prop_map(|(permit, group, verbs, when, also, negate)| {
            let actions: Vec<String> = verbs
                .iter()
                .flat_map(|v| v.split('+'))
                .map(|v| format!("k8s::unified::Action::\"{v}\""))
                .collect();
            let principal = group.map_or("principal".to_owned(), |g| format!("principal in {g}"));
            let clause = if negate { "unless" } else { "when" };
            format!(
                "{} ({principal}, action in [{}], resource is core::configmaps) when {{ {when} }} {clause} {{ {also} }};",
                if permit { "permit" } else { "forbid" },
                actions.join(", ")
            )
        })
}

#[derive(Debug, Clone)]
struct Case {
    groups: Vec<String>,
    verb: &'static str,
    namespace: &'static str,
    name: &'static str,
    team: &'static str,
    old_protected: bool,
    old_data: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::subsequence(GROUPS.to_vec(), 0..=2),
        prop::sample::select(VERBS),
        prop::sample::select(NAMESPACES),
        prop::sample::select(NAMES),
        prop::sample::select(&["a", "b"][..]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(groups, verb, namespace, name, team, old_protected, old_data)| Case {
            groups: groups.into_iter().map(str::to_owned).collect(),
            verb,
            namespace,
            name,
            team,
            old_protected,
            old_data,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn two_phases_agree_with_one_full_evaluation(policies in prop::collection::vec(policy(), 1..6), c in case()) {
        let text = policies.join("\n");
        let tier = UnifiedTier::load(&text, "p.cedar").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let a = Attributes {
            user: UserInfoRef { username: "someone", uid: "", groups: &c.groups, extra: None },
            verb: c.verb,
            kind: resource_kind("", "configmaps", "").unwrap(),
            namespace: c.namespace,
            name: if c.verb == "create" { "" } else { c.name },
        };
        let object = json!({"metadata": {"name": c.name, "namespace": c.namespace, "labels": {"team": c.team}}, "data": {"k": "x"}});
        let annotations = if c.old_protected { json!({"protected": "true"}) } else { json!({}) };
        let data = if c.old_data { json!({"k": "v"}) } else { json!({"k": "w"}) };
        let old = json!({"metadata": {"name": c.name, "namespace": c.namespace, "annotations": annotations}, "data": data});
        let new_object = matches!(c.verb, "create" | "update" | "patch").then_some(&object);
        let old_object = matches!(c.verb, "update" | "patch" | "delete").then_some(&old);

        let full = tier.evaluate_unindexed(&a, new_object, old_object).unwrap();
        prop_assert_eq!(&tier.evaluate(&a, new_object, old_object).unwrap(), &full, "the index changed a decision\n{}", text);
        let authorized = tier.authorize(&a).unwrap();
        let two_phase = match &authorized {
            Outcome::Conditional { .. } => tier.admit(&a, new_object, old_object).unwrap(),
            other => other.clone(),
        };
        // Writes are decided by the policies' shapes; the partial evaluator (which `explain`
        // uses) must never contradict them where both are definite.
        let partial = tier.explain(&a).unwrap();
        let definite = |o: &Outcome| !matches!(o, Outcome::Conditional { .. });
        if definite(&authorized) && definite(&partial) {
            let kind = |o: &Outcome| std::mem::discriminant(o);
            prop_assert_eq!(kind(&authorized), kind(&partial), "by shape {:?}, partially {:?}\n{}", authorized, partial, text);
        }
        match (&two_phase, &full) {
            (Outcome::Deny { policies: early }, Outcome::Deny { policies: all }) => {
                prop_assert!(!early.is_empty() && early.iter().all(|p| all.contains(p)), "{early:?} ⊄ {all:?}\n{text}");
            }
            _ => prop_assert_eq!(&two_phase, &full, "authorization said {:?}\n{}", authorized, text),
        }
    }
}
