//! Unified policies at 10,000 policies, beside today's two-policy formulation of the same
//! intents (an authorization permit plus an admission forbid per team) in the same run:
//!
//! * authorization: the unified tier's partial evaluation vs the indexed engine's SAR;
//! * admission: the unified completion of a conditional create vs the engine's admission.
//!
//! The floor is one plain Cedar evaluation of a one-policy set. After criterion's means, each
//! path's p99 over 20,000 calls is printed (the targets are p99s).
//!
//!     cargo bench -p rampart-unified --bench unified
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

use std::hint::black_box;

/// The allocator `rampart serve` ships with.
#[path = "../../../bench/rust/noise_floor.rs"]
mod noise_floor;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_policy::document::{DocumentKind, parse_document};
use rampart_policy::entities::principal::UserInfoRef;
use rampart_policy::{Engine, EngineOptions};
use rampart_unified::UnifiedTier;
use rampart_unified::request::Attributes;
use rampart_unified::schema::{RESOURCES, resource_kind};
use serde_json::json;

const N: usize = 10_000;

/// Team `t` may create/update/patch/delete resources of one type in its namespace, unless the
/// object is named `prod*`: a permit and a forbid per team, over every resource type.
fn unified_text() -> String {
    let mut text = String::new();
    for t in 0..N / 2 {
        let kind = &RESOURCES[t % RESOURCES.len()];
        let ty = kind.type_name();
        text.push_str(&format!(
            "permit (principal in k8s::Group::\"team-{t}\", action in [k8s::unified::Action::\"create\", k8s::unified::Action::\"update\", k8s::unified::Action::\"patch\", k8s::unified::Action::\"delete\"], resource is {ty}) when {{ resource has namespace && resource.namespace == \"ns-{t}\" }};\n\
             forbid (principal in k8s::Group::\"team-{t}\", action in [k8s::unified::Action::\"create\", k8s::unified::Action::\"update\", k8s::unified::Action::\"patch\"], resource is {ty}) when {{ resource has object && resource.object has metadata && resource.object.metadata has name && resource.object.metadata.name like \"prod*\" }};\n"
        ));
    }
    text
}

/// The same intents as today's engine needs them: a permit in authorization, a forbid in
/// admission.
fn two_policy_text() -> String {
    let mut text = String::new();
    for t in 0..N / 2 {
        let kind = &RESOURCES[t % RESOURCES.len()];
        let (ns, k) = kind.kind.rsplit_once("::").unwrap();
        text.push_str(&format!(
            "permit (principal in k8s::Group::\"team-{t}\", action in [k8s::Action::\"create\", k8s::Action::\"update\", k8s::Action::\"patch\", k8s::Action::\"delete\"], resource is k8s::Resource) when {{ resource has namespace && resource.namespace == \"ns-{t}\" && resource.resource == \"{r}\" }};\n\
             forbid (principal in k8s::Group::\"team-{t}\", action in [k8s::admission::Action::\"create\", k8s::admission::Action::\"update\"], resource is {ns}::{k}) when {{ resource has metadata && resource.metadata has name && resource.metadata.name like \"prod*\" }};\n",
            r = kind.resource,
        ));
    }
    text
}

fn bench(c: &mut Criterion) {
    let tier = UnifiedTier::load(&unified_text(), "bench.cedar").unwrap();
    let policies =
        parse_document(&DocumentKind::Memory { name: "bench".into() }, &two_policy_text()).unwrap();
    let engine = Engine::new(vec![("bench".into(), policies)], EngineOptions::default()).unwrap();

    // team-44 works on configmaps (44 % 22 == 0) in ns-44.
    let groups = vec!["team-44".to_owned(), "system:authenticated".to_owned()];
    let attributes = Attributes {
        user: UserInfoRef { username: "alice", uid: "", groups: &groups, extra: None },
        verb: "create",
        kind: resource_kind("", "configmaps", "").unwrap(),
        namespace: "ns-44",
        name: "",
    };
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "ns-44", "labels": {"app": "web"}}, "data": {"k": "v"}});
    let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
        "user": "alice", "groups": groups, "resourceAttributes": {"verb": "create", "version": "v1", "resource": "configmaps", "namespace": "ns-44"}}});
    let spec = rampart_types::sar::decode(sar.to_string().as_bytes()).unwrap().spec;
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "name": "app", "namespace": "ns-44", "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": groups}, "object": object}});
    let admission = rampart_types::admission::decode(review.to_string().as_bytes()).unwrap().request;

    assert!(matches!(tier.authorize(&attributes).unwrap(), rampart_unified::Outcome::Conditional { .. }));
    assert!(matches!(
        tier.admit(&attributes, Some(&object), None).unwrap(),
        rampart_unified::Outcome::Allow { .. }
    ));
    assert_eq!(engine.authorize(&spec).decision, rampart_types::Decision::Allow);

    let mut group = c.benchmark_group("unified-10k");
    group.bench_function("authorize/unified (partial evaluation)", |b| {
        b.iter(|| tier.authorize(black_box(&attributes)).unwrap())
    });
    group.bench_function("authorize/two-policy (indexed engine)", |b| {
        b.iter(|| engine.authorize(black_box(&spec)))
    });
    group.bench_function("admit/unified (completion)", |b| {
        b.iter(|| tier.admit(black_box(&attributes), Some(black_box(&object)), None).unwrap())
    });
    group.bench_function("admit/two-policy (indexed engine)", |b| {
        b.iter(|| engine.admit(black_box(&admission)))
    });
    let floor = cedar_policy::PolicySet::from_policies([cedar_policy::Policy::parse(
        None,
        "permit(principal, action, resource);",
    )
    .unwrap()])
    .unwrap();
    let request = cedar_policy::Request::new(
        r#"k8s::User::"a""#.parse().unwrap(),
        r#"k8s::Action::"get""#.parse().unwrap(),
        r#"k8s::Resource::"r""#.parse().unwrap(),
        cedar_policy::Context::empty(),
        None,
    )
    .unwrap();
    let entities = cedar_policy::Entities::empty();
    group.bench_function("floor: one plain Cedar evaluation", |b| {
        b.iter(|| cedar_policy::Authorizer::new().is_authorized(black_box(&request), &floor, &entities))
    });
    group.finish();

    // Criterion reports means; the targets are p99s. Each path timed call by call, beside
    // its noise floor (bench/rust/noise_floor.rs).
    for (name, f) in [
        ("authorize/unified", &(|| drop(black_box(tier.authorize(&attributes)))) as &dyn Fn()),
        ("authorize/two-policy", &|| drop(black_box(engine.authorize(&spec)))),
        ("admit/unified", &|| drop(black_box(tier.admit(&attributes, Some(&object), None)))),
        ("admit/two-policy", &|| drop(black_box(engine.admit(&admission)))),
    ] {
        println!("{}", noise_floor::measure(20_000, f).line(name));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
