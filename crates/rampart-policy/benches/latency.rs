//! Tail latency of a full authorization decision (map + evaluate) at 10,000 policies, beside
//! plain `cedar-policy` over the same set: prints p50/p99/p99.9 and the ratio. Criterion
//! reports means; the target is stated as a p99, so it is measured here, with the allocator
//! `rampart serve` uses (mimalloc).
//!
//! Beside it, the noise floor (bench/rust/noise_floor.rs): constant work of the same median,
//! timed interleaved with the decisions.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

#[path = "../../../bench/rust/noise_floor.rs"]
mod noise_floor;
mod support;

use std::hint::black_box;
use std::time::Instant;

use cedar_policy::Authorizer;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn percentiles(mut samples: Vec<u128>) -> (u128, u128, u128) {
    (
        noise_floor::quantile(&mut samples, 0.5),
        noise_floor::quantile(&mut samples, 0.99),
        noise_floor::quantile(&mut samples, 0.999),
    )
}

fn main() {
    let n = 10_000;
    let spec = support::spec();
    let engine = support::engine(n);
    let plain = support::plain_set(n);
    let authorizer = Authorizer::new();

    let iterations = 200_000;
    let measured = noise_floor::measure(iterations, || drop(black_box(engine.authorize(&spec))));
    let plain_iterations = 300;
    let mut theirs = Vec::with_capacity(plain_iterations);
    for _ in 0..plain_iterations {
        let t = Instant::now();
        let req = engine.map_sar(&spec).unwrap();
        black_box(authorizer.is_authorized(&req.request, &plain, &req.entities));
        theirs.push(t.elapsed().as_nanos());
    }
    let (o50, o99, o999) = percentiles(measured.calls);
    let (f50, f99, f999) = percentiles(measured.floor);
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
