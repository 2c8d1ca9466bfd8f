//! Property: for random RBAC worlds and requests, the RBAC authorizer and the Cedar policies
//! converted from the same bindings give the same answer (Allow vs no Allow).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use cedar_policy::Authorizer;
use proptest::prelude::*;
use rampart_policy::document::{DocumentKind, parse_document};
use rampart_policy::tier::TierDecision;
use rampart_policy::{Engine, EngineOptions};
use rampart_rbac::convert::convert;
use rampart_rbac::model::{Binding, PolicyRule, Role, RoleRef, Subject};
use rampart_rbac::{Attributes, RbacAuthorizer, User};
use rampart_types::sar::{NonResourceAttributes, ResourceAttributes, SubjectAccessReviewSpec};

const VERBS: &[&str] = &["get", "list", "create", "impersonate", "*"];
const GROUPS: &[&str] = &["", "apps", "authentication.k8s.io", "*"];
const RESOURCES: &[&str] = &[
    "pods",
    "pods/log",
    "*/status",
    "secrets",
    "users",
    "groups",
    "serviceaccounts",
    "uids",
    "userextras/k1",
    "*/k1",
    "*",
];
const NAMES: &[&str] = &["a", "sa1", "system:node:n1", "v1"];
const URLS: &[&str] = &["/healthz", "/healthz*", "/apis/*", "*"];
const USERS: &[&str] = &["alice", "system:serviceaccount:ns1:sa1", "system:node:n1", "bob"];
const USER_GROUPS: &[&str] = &["dev", "ops", "system:authenticated"];
const NAMESPACES: &[&str] = &["ns1", "ns2"];

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
    prop::sample::select(items)
}

fn strings_in(
    items: &'static [&'static str],
    range: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Vec<String>> {
    prop::sample::subsequence(items, range).prop_map(|v| v.into_iter().map(String::from).collect())
}

/// One to `max` distinct items (rules need at least one verb, group and resource to grant).
fn strings(items: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<String>> {
    strings_in(items, 1..=max)
}

fn rule() -> impl Strategy<Value = PolicyRule> {
    prop_oneof![
        (strings(VERBS, 2), strings(GROUPS, 2), strings(RESOURCES, 3), strings_in(NAMES, 0..=1)).prop_map(
            |(verbs, api_groups, resources, resource_names)| PolicyRule {
                verbs,
                api_groups,
                resources,
                resource_names,
                ..Default::default()
            }
        ),
        (strings(VERBS, 2), strings(URLS, 2)).prop_map(|(verbs, non_resource_urls)| PolicyRule {
            verbs,
            non_resource_urls,
            ..Default::default()
        }),
    ]
}

fn subject() -> impl Strategy<Value = Subject> {
    prop_oneof![
        // Most requests come from authenticated users: keep many bindings relevant.
        3 => Just(Subject { kind: "Group".into(), name: "system:authenticated".into(), namespace: String::new() }),
        1 => pick(USERS).prop_map(|n| Subject { kind: "User".into(), name: n.into(), namespace: String::new() }),
        1 => pick(USER_GROUPS).prop_map(|n| Subject { kind: "Group".into(), name: n.into(), namespace: String::new() }),
        1 => (pick(&["", "ns1", "ns2"][..]))
            .prop_map(|ns| Subject { kind: "ServiceAccount".into(), name: "sa1".into(), namespace: ns.into() }),
    ]
}

#[derive(Debug, Clone)]
struct World {
    cluster_roles: Vec<Role>,
    roles: Vec<Role>,
    crbs: Vec<Binding>,
    rbs: Vec<Binding>,
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(prop::collection::vec(rule(), 1..3), 1..3),
        prop::collection::vec(prop::collection::vec(rule(), 1..3), 0..2),
        prop::collection::vec((0usize..3, prop::collection::vec(subject(), 1..3)), 1..4),
        prop::collection::vec(
            (0usize..3, any::<bool>(), pick(NAMESPACES), prop::collection::vec(subject(), 1..3)),
            0..3,
        ),
    )
        .prop_map(|(cr_rules, r_rules, crbs, rbs)| {
            let cluster_roles: Vec<Role> = cr_rules
                .into_iter()
                .enumerate()
                .map(|(i, rules)| Role { name: format!("cr{i}"), rules, ..Default::default() })
                .collect();
            let roles: Vec<Role> = r_rules
                .into_iter()
                .enumerate()
                .map(|(i, rules)| Role {
                    name: format!("r{i}"),
                    namespace: "ns1".into(),
                    rules,
                    ..Default::default()
                })
                .collect();
            let crbs = crbs
                .into_iter()
                .enumerate()
                .map(|(i, (role, subjects))| Binding {
                    name: format!("crb{i}"),
                    namespace: String::new(),
                    role_ref: RoleRef { kind: "ClusterRole".into(), name: format!("cr{role}") },
                    subjects,
                })
                .collect();
            let rbs = rbs
                .into_iter()
                .enumerate()
                .map(|(i, (role, to_role, ns, subjects))| Binding {
                    name: format!("rb{i}"),
                    namespace: ns.into(),
                    role_ref: if to_role {
                        RoleRef { kind: "Role".into(), name: format!("r{role}") }
                    } else {
                        RoleRef { kind: "ClusterRole".into(), name: format!("cr{role}") }
                    },
                    subjects,
                })
                .collect();
            World { cluster_roles, roles, crbs, rbs }
        })
}

#[derive(Debug, Clone)]
struct Request {
    user: String,
    groups: Vec<String>,
    verb: String,
    resource_request: bool,
    group: String,
    resource: String,
    subresource: String,
    name: String,
    namespace: String,
    path: String,
}

fn request() -> impl Strategy<Value = Request> {
    let identity = || {
        (pick(USERS), strings_in(&USER_GROUPS[..2], 0..=2)).prop_map(|(u, mut g)| {
            g.push("system:authenticated".into());
            (u, g)
        })
    };
    let resource = (
        pick(&["get", "list", "create", "impersonate"][..]),
        pick(&["pods", "secrets", "users", "groups", "serviceaccounts", "uids", "userextras"][..]),
        pick(&["", "log", "status", "k1"][..]),
        pick(&["", "a", "sa1", "system:node:n1", "v1"][..]),
        pick(&["", "ns1", "ns2"][..]),
        pick(&["", "apps"][..]),
    );
    prop_oneof![
        (identity(), resource).prop_map(|((user, groups), (verb, res, sub, name, ns, group))| {
            // Impersonation requests carry the API's own group, namespace and subresource rules.
            let impersonation = verb == "impersonate";
            let (group, ns, sub) = match (impersonation, res) {
                (true, "users" | "groups") => ("", "", ""),
                (true, "serviceaccounts") => ("", if ns.is_empty() { "ns1" } else { ns }, ""),
                (true, "uids") => ("authentication.k8s.io", "", ""),
                (true, "userextras") => ("authentication.k8s.io", "", "k1"),
                _ => (group, ns, sub),
            };
            Request {
                user: user.into(),
                groups,
                verb: verb.into(),
                resource_request: true,
                group: group.into(),
                resource: res.into(),
                subresource: sub.into(),
                name: name.into(),
                namespace: ns.into(),
                path: String::new(),
            }
        }),
        (
            identity(),
            pick(&["get", "post"][..]),
            pick(&["/healthz", "/healthz/etcd", "/healthzfoo", "/apis", "/apis/v1"][..])
        )
            .prop_map(|((user, groups), verb, path)| Request {
                user: user.into(),
                groups,
                verb: verb.into(),
                resource_request: false,
                group: String::new(),
                resource: String::new(),
                subresource: String::new(),
                name: String::new(),
                namespace: String::new(),
                path: path.into(),
            }),
    ]
}

fn converted(world: &World) -> String {
    let mut text = String::new();
    for b in world.crbs.iter().chain(&world.rbs) {
        let role = match b.role_ref.kind.as_str() {
            "Role" => world.roles.iter().find(|r| r.name == b.role_ref.name && r.namespace == b.namespace),
            _ => world.cluster_roles.iter().find(|r| r.name == b.role_ref.name),
        };
        if let Some(role) = role {
            text.push_str(&convert(b, role));
            text.push('\n');
        }
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn rbac_and_converted_cedar_agree(world in world(), req in request()) {
        let authz = RbacAuthorizer::new(world.roles.clone(), world.cluster_roles.clone(), world.rbs.clone(), world.crbs.clone());
        let attrs = Attributes {
            verb: &req.verb, resource_request: req.resource_request, api_group: &req.group, resource: &req.resource,
            subresource: &req.subresource, name: &req.name, namespace: &req.namespace, path: &req.path,
        };
        let rbac_allows = authz.authorize(&User { name: &req.user, groups: &req.groups }, &attrs).allowed();

        let text = converted(&world);
        let policies = parse_document(&DocumentKind::Memory { name: "converted".into() }, &text)
            .unwrap_or_else(|e| panic!("converted policies do not parse: {e:?}\n{text}"));
        let engine = Engine::new(vec![("converted".into(), policies)], EngineOptions::default()).unwrap();
        let non = |s: &String| (!s.is_empty()).then(|| s.clone());
        let mut spec = SubjectAccessReviewSpec { user: Some(req.user.clone()), groups: Some(req.groups.clone()), ..Default::default() };
        if req.resource_request {
            spec.resource_attributes = Some(ResourceAttributes {
                verb: Some(req.verb.clone()), group: Some(req.group.clone()), version: Some("v1".into()),
                resource: Some(req.resource.clone()), subresource: non(&req.subresource), name: non(&req.name),
                namespace: non(&req.namespace), ..Default::default()
            });
        } else {
            spec.non_resource_attributes = Some(NonResourceAttributes { path: Some(req.path.clone()), verb: Some(req.verb.clone()) });
        }
        let mapped = engine.map_sar(&spec).unwrap();
        let outcome = engine.tiers()[0].evaluate(&Authorizer::new(), &mapped);
        prop_assert!(outcome.diagnostic.errors.is_empty(), "converted policy errored: {:?}\n{text}", outcome.diagnostic.errors);
        let cedar_allows = outcome.decision == TierDecision::Allow;
        // `RAMPART_PROPTEST_STATS=1 cargo test … -- --nocapture` shows how often RBAC allows,
        // to keep the generator from drifting into worlds where nothing is ever granted.
        if std::env::var_os("RAMPART_PROPTEST_STATS").is_some() {
            eprintln!("STAT allowed={rbac_allows}");
        }
        prop_assert_eq!(rbac_allows, cedar_allows, "request {:?}\npolicies:\n{}", req, text);
    }
}

/// The converter goldens parse and pass strict validation against the Kubernetes schema.
#[test]
fn converter_goldens_validate_strictly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rampart-rbac/tests/golden");
    let schema = rampart_policy::schema::k8s_schema().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "cedar") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let set =
            cedar_policy::PolicySet::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let errors = rampart_policy::schema::validate(&schema, &set);
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        checked += 1;
    }
    assert_eq!(checked, 13);
}

use std::str::FromStr;
