//! Tail latency of a full authorization decision (map + evaluate) at 10,000 policies, beside
//! plain `cedar-policy` over the same set: prints p50/p99/p99.9 and the ratio. Criterion
//! reports means; the target is stated as a p99, so it is measured here, with the allocator
//! `rampart serve` uses (mimalloc).
//!
//! The noise floor: a constant-work loop calibrated to the decision's median, timed
//! interleaved with the decisions (one each, in turn), so both see the same machine. Its p99
//! is what the machine alone adds to a job of that length; the decision's p99 beyond it is
//! Rampart's.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

mod support;

use std::hint::black_box;
use std::time::Instant;

use cedar_policy::Authorizer;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn percentiles(mut samples: Vec<u128>) -> (u128, u128, u128) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    (at(0.5), at(0.99), at(0.999))
}

/// Work that takes the same time every run: a dependent chain of multiplications.
fn constant_work(steps: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..steps {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    x
}

/// The number of steps whose median time is `target_ns`.
fn calibrate(target_ns: u128) -> u64 {
    let mut steps = 1_000u64;
    for _ in 0..3 {
        let samples = (0..2_000)
            .map(|_| {
                let t = Instant::now();
                black_box(constant_work(steps));
                t.elapsed().as_nanos()
            })
            .collect();
        let (median, _, _) = percentiles(samples);
        steps = ((steps as u128 * target_ns) / median.max(1)).max(1) as u64;
    }
    steps
}

fn main() {
    let n = 10_000;
    let spec = support::spec();
    let engine = support::engine(n);
    let plain = support::plain_set(n);
    let authorizer = Authorizer::new();

    // Warm up, and learn the decision's median for the floor.
    let warm: Vec<u128> = (0..20_000)
        .map(|_| {
            let t = Instant::now();
            black_box(engine.authorize(&spec));
            t.elapsed().as_nanos()
        })
        .collect();
    let steps = calibrate(percentiles(warm).0);

    let iterations = 200_000;
    let (mut ours, mut floor) = (Vec::with_capacity(iterations), Vec::with_capacity(iterations));
    for _ in 0..iterations {
        let t = Instant::now();
        black_box(engine.authorize(&spec));
        ours.push(t.elapsed().as_nanos());
        let t = Instant::now();
        black_box(constant_work(steps));
        floor.push(t.elapsed().as_nanos());
    }
    let plain_iterations = 300;
    let mut theirs = Vec::with_capacity(plain_iterations);
    for _ in 0..plain_iterations {
        let t = Instant::now();
        let req = engine.map_sar(&spec).unwrap();
        black_box(authorizer.is_authorized(&req.request, &plain, &req.entities));
        theirs.push(t.elapsed().as_nanos());
    }
    let (o50, o99, o999) = percentiles(ours);
    let (f50, f99, f999) = percentiles(floor);
    let (t50, t99, t999) = percentiles(theirs);
    println!("decision latency at {n} policies (map + evaluate), nanoseconds, {iterations} calls");
    println!("  rampart      p50 {o50:>9}  p99 {o99:>9}  p99.9 {o999:>9}");
    println!(
        "  noise floor  p50 {f50:>9}  p99 {f99:>9}  p99.9 {f999:>9}  (constant work, same median, interleaved)"
    );
    println!("  plain cedar  p50 {t50:>9}  p99 {t99:>9}  p99.9 {t999:>9}");
    println!("  rampart p99 / floor p99: {:.2}", o99 as f64 / f99 as f64);
    println!(
        "  speed-up over plain cedar at p50: {:.0}x, at p99: {:.0}x",
        t50 as f64 / o50 as f64,
        t99 as f64 / o99 as f64
    );
}
