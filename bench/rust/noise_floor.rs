//! The noise floor of a latency benchmark, shared by the crates' benches (`#[path]`-included).
//!
//! A p99 on a shared machine is partly the machine's: preemption, interrupts, frequency
//! changes. To tell that apart from the code's own tail, each call under test is timed next to
//! a constant-work loop calibrated to the same median, interleaved one for one so both see the
//! same machine. The loop's p99 is what the machine alone adds to a job that long; a p99 well
//! above it is the code's.
#![allow(dead_code)] // each bench uses the parts it prints

use std::hint::black_box;
use std::time::Instant;

/// Work that takes the same time every run: a dependent chain of multiplications.
fn constant_work(steps: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..steps {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    x
}

/// Nanoseconds `f` takes, call by call.
fn time(n: usize, mut f: impl FnMut()) -> Vec<u128> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos()
        })
        .collect()
}

/// The value at quantile `q` of the samples.
pub fn quantile(samples: &mut [u128], q: f64) -> u128 {
    samples.sort_unstable();
    samples[((samples.len() as f64 - 1.0) * q) as usize]
}

/// The number of constant-work steps whose median time is `target_ns`.
fn calibrate(target_ns: u128) -> u64 {
    let mut steps = 1_000u64;
    for _ in 0..3 {
        let median = quantile(
            &mut time(2_000, || {
                black_box(constant_work(steps));
            }),
            0.5,
        );
        steps = ((steps as u128 * target_ns) / median.max(1)).max(1) as u64;
    }
    steps
}

/// `f` and its noise floor, `n` calls each, interleaved (after a warm-up that also finds the
/// median the floor is calibrated to).
pub struct Measured {
    pub calls: Vec<u128>,
    pub floor: Vec<u128>,
}

pub fn measure(n: usize, mut f: impl FnMut()) -> Measured {
    let median = quantile(&mut time(n / 10 + 100, &mut f), 0.5);
    let steps = calibrate(median);
    let (mut calls, mut floor) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        f();
        calls.push(t.elapsed().as_nanos());
        let t = Instant::now();
        black_box(constant_work(steps));
        floor.push(t.elapsed().as_nanos());
    }
    Measured { calls, floor }
}

impl Measured {
    /// `name: p50 … µs, p99 … µs, p99.9 … µs; noise floor p99 … µs (ratio …)`.
    pub fn line(&mut self, name: &str) -> String {
        let us = |ns: u128| ns as f64 / 1_000.0;
        let (p50, p99, p999) = (
            quantile(&mut self.calls, 0.5),
            quantile(&mut self.calls, 0.99),
            quantile(&mut self.calls, 0.999),
        );
        let floor99 = quantile(&mut self.floor, 0.99);
        format!(
            "{name}: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs; noise floor p99 {:.1} µs (p99 / floor {:.2})",
            us(p50),
            us(p99),
            us(p999),
            us(floor99),
            p99 as f64 / floor99 as f64
        )
    }
}
