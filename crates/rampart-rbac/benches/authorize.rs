//! RBAC decision latency with 10,000 ClusterRoleBindings and 10,000 RoleBindings (one
//! namespace), the indexed authorizer beside a linear scan over the same bindings (upstream's
//! algorithm, same matching functions), in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

use std::collections::HashMap;
use std::time::Instant;

#[path = "../../../bench/rust/noise_floor.rs"]
mod noise_floor;

/// The allocator `rampart serve` ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use rampart_rbac::matching::{rule_allows, subject_applies};
use rampart_rbac::model::{Binding, PolicyRule, Role, RoleRef, Subject};
use rampart_rbac::{Attributes, RbacAuthorizer, User};

const N: usize = 10_000;

fn role(name: &str, resource: &str) -> Role {
    Role {
        name: name.into(),
        rules: vec![PolicyRule {
            verbs: vec!["get".into(), "list".into()],
            api_groups: vec!["".into()],
            resources: vec![resource.into()],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn binding(name: String, namespace: &str, role: &str, subject: Subject) -> Binding {
    Binding {
        name,
        namespace: namespace.into(),
        role_ref: RoleRef { kind: "ClusterRole".into(), name: role.into() },
        subjects: vec![subject],
    }
}

fn user_subject(i: usize) -> Subject {
    Subject { kind: "User".into(), name: format!("user-{i}"), namespace: String::new() }
}

/// Upstream's algorithm: every ClusterRoleBinding, then every RoleBinding of the namespace.
fn linear(
    roles: &HashMap<String, Role>,
    crbs: &[Binding],
    rbs: &[Binding],
    user: &User<'_>,
    attrs: &Attributes<'_>,
) -> bool {
    let scan = |bindings: &[Binding], ns: &str| {
        bindings.iter().any(|b| {
            b.subjects.iter().any(|s| subject_applies(s, user, ns))
                && roles
                    .get(&b.role_ref.name)
                    .is_some_and(|r| r.rules.iter().any(|rule| rule_allows(rule, attrs)))
        })
    };
    scan(crbs, "") || scan(rbs, attrs.namespace)
}

fn percentiles(mut v: Vec<u128>) -> (u128, u128) {
    v.sort_unstable();
    (v[v.len() / 2], v[(v.len() - 1) * 99 / 100])
}

fn main() {
    let cluster_roles = vec![role("pod-reader", "pods"), role("secret-reader", "secrets")];
    let crbs: Vec<Binding> =
        (0..N).map(|i| binding(format!("crb-{i}"), "", "secret-reader", user_subject(i))).collect();
    let rbs: Vec<Binding> =
        (0..N).map(|i| binding(format!("rb-{i}"), "team", "pod-reader", user_subject(N + i))).collect();
    let roles: HashMap<String, Role> = cluster_roles.iter().map(|r| (r.name.clone(), r.clone())).collect();
    let authz = RbacAuthorizer::new(vec![], cluster_roles, rbs.clone(), crbs.clone());

    // The last RoleBinding's user: the worst case for a linear scan, a typical one for the index.
    let name = format!("user-{}", 2 * N - 1);
    let groups = vec!["system:authenticated".to_owned(), "team-a".to_owned()];
    let user = User { name: &name, groups: &groups };
    let attrs = Attributes {
        verb: "list",
        resource_request: true,
        resource: "pods",
        namespace: "team",
        ..Default::default()
    };
    assert!(authz.authorize(&user, &attrs).allowed());
    assert!(linear(&roles, &crbs, &rbs, &user, &attrs));

    let measured = noise_floor::measure(200_000, || {
        std::hint::black_box(authz.authorize(&user, &attrs));
    });
    let theirs: Vec<u128> = (0..2_000)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(linear(&roles, &crbs, &rbs, &user, &attrs));
            t.elapsed().as_nanos()
        })
        .collect();
    let (o50, o99) = percentiles(measured.calls);
    let (_, f99) = percentiles(measured.floor);
    let (t50, t99) = percentiles(theirs);
    println!("RBAC decision with {N} ClusterRoleBindings + {N} RoleBindings, nanoseconds");
    println!("  indexed      p50 {o50:>8}  p99 {o99:>8}");
    println!("  noise floor                 p99 {f99:>8}  (constant work, same median, interleaved)");
    println!("  linear scan  p50 {t50:>8}  p99 {t99:>8}");
    println!("  speed-up at p50: {:.0}x, at p99: {:.0}x", t50 as f64 / o50 as f64, t99 as f64 / o99 as f64);
}
