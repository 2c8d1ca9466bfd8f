//! Criterion benches: decode, entity building and evaluation at 10…10,000 policies, each
//! evaluation beside plain `cedar-policy` `is_authorized` over the same set and request.
//! The ratio (plain / Rampart) is the figure reported in the README.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

mod support;

use std::hint::black_box;

use cedar_policy::Authorizer;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rampart_types::sar;

fn decode(c: &mut Criterion) {
    c.bench_function("decode/sar", |b| b.iter(|| sar::decode(black_box(support::SAR.as_bytes())).unwrap()));
}

fn entities(c: &mut Criterion) {
    let engine = support::engine(10);
    let spec = support::spec();
    c.bench_function("entities/sar", |b| b.iter(|| engine.map_sar(black_box(&spec)).unwrap()));
}

fn evaluation(c: &mut Criterion) {
    let spec = support::spec();
    let mut group = c.benchmark_group("evaluate");
    for n in [10usize, 100, 1_000, 10_000] {
        let engine = support::engine(n);
        let req = engine.map_sar(&spec).unwrap();
        let plain = support::plain_set(n);
        let authorizer = Authorizer::new();
        // Same answer from both, or the comparison is meaningless.
        let ours = engine.evaluate_tiers(&req);
        let theirs = authorizer.is_authorized(&req.request, &plain, &req.entities);
        assert_eq!(ours.diagnostic.reasons.len(), theirs.diagnostics().reason().count());
        group.bench_with_input(BenchmarkId::new("rampart", n), &n, |b, _| {
            b.iter(|| engine.evaluate_tiers(black_box(&req)))
        });
        group.bench_with_input(BenchmarkId::new("plain-cedar", n), &n, |b, _| {
            b.iter(|| authorizer.is_authorized(black_box(&req.request), &plain, &req.entities))
        });
        group.bench_with_input(BenchmarkId::new("rampart-end-to-end", n), &n, |b, _| {
            b.iter(|| engine.authorize(black_box(&spec)))
        });
    }
    group.finish();
}

/// The upstream demo policies (the load test's policy set, minus the synthetic ones) and the
/// load test's request: a label-selected list by a user in `requires-labels`.
fn demo(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies/demo");
    let mut sources = rampart_policy::store::PolicySources::new(vec![dir.into()], Default::default());
    sources.validation = rampart_policy::store::Validation::Off;
    let engine = sources.load().unwrap().engine;
    let body = include_bytes!("../../../bench/sar.json");
    let spec = sar::decode(body).unwrap().spec;
    let req = engine.map_sar(&spec).unwrap();
    let evaluated: usize =
        engine.tiers().iter().map(|t| t.evaluate(&Authorizer::new(), &req).evaluated).sum();
    eprintln!("demo request: {evaluated} candidate policies of {}", engine.policy_count());
    c.bench_function("demo/decode+authorize", |b| {
        b.iter(|| engine.authorize(&sar::decode(black_box(body)).unwrap().spec))
    });
    c.bench_function("demo/evaluate", |b| b.iter(|| engine.evaluate_tiers(black_box(&req))));
    let mut all = cedar_policy::PolicySet::new();
    for p in engine.tiers().iter().flat_map(|t| &t.policies) {
        all.add(p.policy.clone()).unwrap();
    }
    let authorizer = Authorizer::new();
    c.bench_function("demo/plain-cedar", |b| {
        b.iter(|| authorizer.is_authorized(black_box(&req.request), &all, &req.entities))
    });
}

criterion_group!(benches, decode, entities, evaluation, demo);
criterion_main!(benches);
