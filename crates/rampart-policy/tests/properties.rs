//! Property tests: the index never changes a decision, and the request mapping holds its
//! invariants for arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use cedar_policy::{Authorizer, Decision as CedarDecision, PolicySet};
use proptest::prelude::*;
use rampart_policy::document::{DocumentKind, parse_document};
use rampart_policy::entities::object::ObjectConverter;
use rampart_policy::tier::TierDecision;
use rampart_policy::{Engine, EngineOptions};
use rampart_types::sar::{ResourceAttributes, SubjectAccessReviewSpec};

const USERS: &[&str] = &["alice", "bob", "system:serviceaccount:ns1:sa", "system:node:n1"];
const GROUPS: &[&str] = &["dev", "ops", "system:authenticated"];
const VERBS: &[&str] = &["get", "list", "create", "delete", "impersonate"];
const RESOURCES: &[&str] = &["pods", "secrets", "users", "groups"];

fn principal_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal".to_owned()),
        prop::sample::select(GROUPS).prop_map(|g| format!("principal in k8s::Group::\"{g}\"")),
        prop::sample::select(&["k8s::User", "k8s::ServiceAccount", "k8s::Node", "k8s::Group"][..])
            .prop_map(|t| format!("principal is {t}")),
        prop::sample::select(GROUPS).prop_map(|g| format!("principal is k8s::User in k8s::Group::\"{g}\"")),
        Just("principal == k8s::User::\"alice\"".to_owned()),
        Just("principal == k8s::Group::\"dev\"".to_owned()),
    ]
}

fn action_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("action".to_owned()),
        prop::sample::select(VERBS).prop_map(|v| format!("action == k8s::Action::\"{v}\"")),
        prop::sample::subsequence(VERBS, 1..3).prop_map(|vs| {
            let list: Vec<String> = vs.iter().map(|v| format!("k8s::Action::\"{v}\"")).collect();
            format!("action in [{}]", list.join(", "))
        }),
    ]
}

fn resource_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource".to_owned()),
        prop::sample::select(&["k8s::Resource", "k8s::User", "k8s::Group", "k8s::NonResourceURL"][..])
            .prop_map(|t| format!("resource is {t}")),
        Just("resource == k8s::Resource::\"/api/v1/namespaces/default/pods\"".to_owned()),
        Just("resource in k8s::Group::\"dev\"".to_owned()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        prop::sample::select(RESOURCES)
            .prop_map(|r| format!(" when {{ resource has resource && resource.resource == \"{r}\" }}")),
        prop::sample::select(USERS).prop_map(|u| format!(" when {{ principal.name == \"{u}\" }}")),
        // Errors on principals without `extra`: exercises the error path of tiers.
        Just(" when { principal.extra.contains({\"key\": \"k\", \"values\": [\"v\"]}) }".to_owned()),
    ]
}

fn policy() -> impl Strategy<Value = String> {
    (prop::bool::ANY, principal_scope(), action_scope(), resource_scope(), condition()).prop_map(
        |(permit, p, a, r, c)| format!("{} ({p}, {a}, {r}){c};", if permit { "permit" } else { "forbid" }),
    )
}

fn request() -> impl Strategy<Value = SubjectAccessReviewSpec> {
    (
        prop::sample::select(USERS),
        prop::sample::subsequence(GROUPS, 0..3),
        prop::sample::select(VERBS),
        prop::sample::select(RESOURCES),
        prop::option::of(prop::sample::select(&["default", "kube-system"][..])),
        prop::option::of(Just("dev")),
    )
        .prop_map(|(user, groups, verb, resource, ns, name)| SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_owned()),
                version: Some("v1".into()),
                resource: Some(resource.to_owned()),
                namespace: ns.map(str::to_owned),
                name: name.map(str::to_owned),
                ..Default::default()
            }),
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The indexed tier decides exactly as plain Cedar over the whole set: same decision,
    /// same determining policies, same erroring policies.
    #[test]
    fn index_agrees_with_plain_cedar(policies in prop::collection::vec(policy(), 1..24), spec in request()) {
        let text = policies.join("\n");
        let loaded = parse_document(&DocumentKind::Memory { name: "p".into() }, &text).unwrap();
        let engine = Engine::new(vec![("t".into(), loaded)], EngineOptions::default()).unwrap();
        let req = engine.map_sar(&spec).unwrap();
        let ours = engine.tiers()[0].evaluate(&Authorizer::new(), &req);
        let plain = PolicySet::from_str(&text).unwrap();
        let theirs = Authorizer::new().is_authorized(&req.request, &plain, &req.entities);
        let mut their_reasons: Vec<String> = theirs.diagnostics().reason().map(|p| p.to_string()).collect();
        their_reasons.sort();
        let our_reasons: Vec<String> = ours.diagnostic.reasons.iter().map(|r| r.policy.clone()).collect();
        prop_assert_eq!(our_reasons, their_reasons);
        let their_errors = theirs.diagnostics().errors().count();
        prop_assert_eq!(ours.diagnostic.errors.len(), their_errors);
        let expected = match (theirs.decision(), theirs.diagnostics().reason().next().is_some(), their_errors > 0) {
            (CedarDecision::Allow, _, _) => TierDecision::Allow,
            (CedarDecision::Deny, true, _) => TierDecision::Deny,
            (CedarDecision::Deny, false, true) => TierDecision::Error,
            (CedarDecision::Deny, false, false) => TierDecision::NoMatch,
        };
        prop_assert_eq!(ours.decision, expected);
    }

    /// Service accounts are recognised exactly when the username has the four-part form, and
    /// their namespace and name are the two last parts.
    #[test]
    fn service_account_classification(ns in "[a-z0-9:-]{0,8}", name in "[a-z0-9:-]{0,8}") {
        let user = format!("system:serviceaccount:{ns}:{name}");
        let text = format!(
            "permit (principal is k8s::ServiceAccount, action, resource) when {{ principal.namespace == \"{ns}\" && principal.name == \"{name}\" }};"
        );
        let loaded = parse_document(&DocumentKind::Memory { name: "p".into() }, &text).unwrap();
        let engine = Engine::new(vec![("t".into(), loaded)], EngineOptions::default()).unwrap();
        let spec = SubjectAccessReviewSpec {
            user: Some(user.clone()),
            resource_attributes: Some(ResourceAttributes { verb: Some("get".into()), resource: Some("pods".into()), ..Default::default() }),
            ..Default::default()
        };
        let allowed = engine.authorize(&spec).decision == rampart_types::Decision::Allow;
        prop_assert_eq!(allowed, user.matches(':').count() == 3);
    }

    /// The resource id is the apiserver path: every non-empty part in order, nothing else.
    #[test]
    fn resource_path_shape(group in "[a-z.]{0,6}", ns in "[a-z]{0,5}", name in "[a-z]{0,5}", sub in "[a-z]{0,4}") {
        let path = rampart_policy::entities::authorization::resource_path(&group, "v1", &ns, "pods", &name, &sub);
        let mut expected = if group.is_empty() { "/api/v1".to_owned() } else { format!("/apis/{group}/v1") };
        if !ns.is_empty() { expected.push_str(&format!("/namespaces/{ns}")); }
        expected.push_str("/pods");
        for part in [&name, &sub] { if !part.is_empty() { expected.push('/'); expected.push_str(part); } }
        prop_assert_eq!(path, expected);
    }

    /// Arbitrary JSON objects convert or fail cleanly; they never panic.
    #[test]
    fn object_conversion_is_total(value in arb_json()) {
        let converter = ObjectConverter { group_namespace: "core", kind: "Pod" };
        let _ = converter.fields(&value);
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "[a-z0-9./:]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(&["labels", "podIP", "extra", "data", "spec", "x", "ip", "hostIPs"][..])
                    .prop_map(String::from),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

use std::str::FromStr;
