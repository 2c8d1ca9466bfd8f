//! The RBAC conformance worlds of `tests/fixtures/rbac-cases.yaml`: every authorizer case
//! gives the expected decision, and the exact reason string where one is given.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use rampart_rbac::model::{AggregationRule, Binding, PolicyRule, Role, RoleRef, Subject};
use rampart_rbac::{Attributes, RbacAuthorizer, User};
use serde_yaml::Value;

const CASES: &str = include_str!("fixtures/rbac-cases.yaml");

fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn list<T: serde::de::DeserializeOwned>(v: &Value, key: &str) -> Vec<T> {
    v.get(key).cloned().map(|x| serde_yaml::from_value(x).unwrap()).unwrap_or_default()
}

fn role(r: &Value) -> Role {
    Role {
        name: s(r, "name"),
        namespace: s(r, "namespace"),
        labels: r.get("labels").cloned().map(|l| serde_yaml::from_value(l).unwrap()).unwrap_or_default(),
        rules: list::<PolicyRule>(r, "rules"),
        aggregation_rule: r
            .get("aggregationRule")
            .cloned()
            .map(|a| serde_yaml::from_value::<AggregationRule>(a).unwrap()),
    }
}

fn roles(world: &Value, key: &str) -> Vec<Role> {
    world.get(key).and_then(Value::as_sequence).into_iter().flatten().map(role).collect()
}

fn bindings(world: &Value, key: &str) -> Vec<Binding> {
    world
        .get(key)
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|b| Binding {
            name: s(b, "name"),
            namespace: s(b, "namespace"),
            role_ref: serde_yaml::from_value::<RoleRef>(b["roleRef"].clone()).unwrap(),
            subjects: list::<Subject>(b, "subjects"),
        })
        .collect()
}

pub fn world_authorizer(world: &Value) -> RbacAuthorizer {
    RbacAuthorizer::new(
        roles(world, "roles"),
        roles(world, "clusterRoles"),
        bindings(world, "roleBindings"),
        bindings(world, "clusterRoleBindings"),
    )
}

#[test]
fn every_authorizer_case_agrees() {
    let doc: Value = serde_yaml::from_str(CASES).unwrap();
    let mut count = 0;
    let mut failures = Vec::new();
    for world in doc["worlds"].as_sequence().unwrap() {
        let authz = world_authorizer(world);
        if let Some(expected) = world.get("expectedAggregatedRules").and_then(Value::as_mapping) {
            for (name, rules) in expected {
                let upstream: Vec<PolicyRule> = serde_yaml::from_value(rules.clone()).unwrap();
                // A documented deviation (src/aggregate.rs): the controller replaces an
                // aggregated role's rules, Rampart keeps the rules the role shows (a partial
                // dump must not lose grants) and adds the aggregated ones after them.
                let shown = roles(world, "clusterRoles")
                    .into_iter()
                    .find(|r| r.name == name.as_str().unwrap())
                    .map(|r| r.rules)
                    .unwrap_or_default();
                let mut want = shown;
                for rule in upstream {
                    if !want.contains(&rule) {
                        want.push(rule);
                    }
                }
                assert_eq!(
                    authz.cluster_role(name.as_str().unwrap()).unwrap().rules,
                    want,
                    "aggregation of {name:?}"
                );
            }
        }
        for case in world["cases"].as_sequence().unwrap() {
            count += 1;
            let id = s(case, "id");
            let groups: Vec<String> = list(&case["user"], "groups");
            let name = s(&case["user"], "name");
            let a = &case["attrs"];
            let (verb, group, resource, sub, obj, ns, path) = (
                s(a, "verb"),
                s(a, "apiGroup"),
                s(a, "resource"),
                s(a, "subresource"),
                s(a, "name"),
                s(a, "namespace"),
                s(a, "path"),
            );
            let attrs = Attributes {
                verb: &verb,
                resource_request: a["resourceRequest"].as_bool().unwrap(),
                api_group: &group,
                resource: &resource,
                subresource: &sub,
                name: &obj,
                namespace: &ns,
                path: &path,
            };
            let decision = authz.authorize(&User { name: &name, groups: &groups }, &attrs);
            let want_allowed = case["allowed"].as_bool().unwrap();
            if decision.allowed() != want_allowed {
                failures.push(format!("{id}: want allowed={want_allowed}, got {decision:?}"));
            }
            if let Some(reason) = case.get("reason").and_then(Value::as_str)
                && decision.reason() != reason
            {
                failures.push(format!("{id}: want reason {reason:?}, got {:?}", decision.reason()));
            }
        }
    }
    assert_eq!(count, 150);
    assert!(failures.is_empty(), "{} of {count} cases differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_escalation_case_agrees() {
    use rampart_rbac::escalation::Write;
    let doc: Value = serde_yaml::from_str(CASES).unwrap();
    let worlds: Vec<&Value> = doc["worlds"]
        .as_sequence()
        .unwrap()
        .iter()
        .chain(doc["escalationWorlds"].as_sequence().unwrap())
        .collect();
    let mut failures = Vec::new();
    let cases = doc["escalationCases"].as_sequence().unwrap();
    assert_eq!(cases.len(), 16);
    for case in cases {
        let id = s(case, "id");
        let world = worlds.iter().find(|w| s(w, "name") == s(case, "world")).unwrap();
        let authz = world_authorizer(world);
        let groups: Vec<String> = list(&case["user"], "groups");
        let user_name = s(&case["user"], "name");
        let user = User { name: &user_name, groups: &groups };
        let ns = s(case, "namespace");
        let object = &case["object"];
        let role = role(object);
        let role_ref: RoleRef =
            object.get("roleRef").cloned().map(|r| serde_yaml::from_value(r).unwrap()).unwrap_or_default();
        let name = s(object, "name");
        let write = match s(case, "op").as_str() {
            "createRole" => Write::CreateRole { namespace: &ns, role: &role },
            "createClusterRole" => Write::CreateClusterRole { role: &role },
            "createRoleBinding" => {
                Write::CreateRoleBinding { namespace: &ns, name: &name, role_ref: &role_ref }
            }
            "createClusterRoleBinding" => {
                Write::CreateClusterRoleBinding { name: &name, role_ref: &role_ref }
            }
            other => panic!("unknown op {other}"),
        };
        let result = authz.check_write(&user, &write);
        let want = case["allowed"].as_bool().unwrap();
        if result.is_ok() != want {
            failures.push(format!("{id}: want allowed={want}, got {result:?}"));
        }
        if let (Some(needle), Err(message)) = (case.get("messageContains").and_then(Value::as_str), &result)
            && !message.contains(needle)
        {
            failures.push(format!("{id}: message {message:?} lacks {needle:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
