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

criterion_group!(benches, decode, entities, evaluation);
criterion_main!(benches);
