//! Tail latency of a full authorization decision (map + evaluate) at 10,000 policies,
//! beside plain `cedar-policy` over the same set: prints p50/p99/p99.9 and the ratio.
//! Criterion reports means; the target is stated as a p99, so it is measured here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

mod support;

use std::time::Instant;

use cedar_policy::Authorizer;

fn percentiles(mut samples: Vec<u128>) -> (u128, u128, u128) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    (at(0.5), at(0.99), at(0.999))
}

fn main() {
    let n = 10_000;
    let spec = support::spec();
    let engine = support::engine(n);
    let plain = support::plain_set(n);
    let authorizer = Authorizer::new();

    let iterations = 200_000;
    let mut ours = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        std::hint::black_box(engine.authorize(&spec));
        ours.push(t.elapsed().as_nanos());
    }
    let plain_iterations = 300;
    let mut theirs = Vec::with_capacity(plain_iterations);
    for _ in 0..plain_iterations {
        let t = Instant::now();
        let req = engine.map_sar(&spec).unwrap();
        std::hint::black_box(authorizer.is_authorized(&req.request, &plain, &req.entities));
        theirs.push(t.elapsed().as_nanos());
    }
    let (o50, o99, o999) = percentiles(ours);
    let (t50, t99, t999) = percentiles(theirs);
    println!("decision latency at {n} policies (map + evaluate), nanoseconds");
    println!("  rampart      p50 {o50:>9}  p99 {o99:>9}  p99.9 {o999:>9}");
    println!("  plain cedar  p50 {t50:>9}  p99 {t99:>9}  p99.9 {t999:>9}");
    println!("  speed-up at p50: {:.0}x, at p99: {:.0}x", t50 as f64 / o50 as f64, t99 as f64 / o99 as f64);
}
