//! Token parsing and every pre-STS check, on the upstream vector (target ≤ 10 µs).
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_identity::host::HostVerifier;
use rampart_identity::token::verify;

const TOKEN: &str = "k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtd2VzdC0yLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BU0lBUjJURzQ0VjZBUzNaWkU3QyUyRjIwMjMwNDI4JTJGdXMtd2VzdC0yJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyMzA0MjhUMDAwMDAwWiZYLUFtei1FeHBpcmVzPTYwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCUzQngtazhzLWF3cy1pZCZYLUFtei1TaWduYXR1cmU9ZTIxMWRiYTc3YWJhOWRjNDRiMGI2YmUzOGI4ZWFhZDA5MjU5OWM1MTU3ZjYzMTQ0NDRjNWI5ZDg1NzQ3ZjVjZQ";

fn bench(c: &mut Criterion) {
    let hosts = HostVerifier::new("aws", "");
    verify(TOKEN, &hosts, 1_682_640_060).unwrap();
    c.bench_function("token/verify (cached host)", |b| {
        b.iter(|| verify(std::hint::black_box(TOKEN), &hosts, 1_682_640_060))
    });
    c.bench_function("token/verify (cold host check)", |b| {
        b.iter(|| verify(std::hint::black_box(TOKEN), &HostVerifier::new("aws", ""), 1_682_640_060))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
