//! Image verification at admission, against a real registry with cosign-signed images:
//!
//! - a pod of 3 containers whose images are cached (target: ≤ 50 µs p99 added), beside the
//!   noise floor and beside the same pod verified uncached (every call to the registry);
//! - 100 concurrent admissions of new pods sharing one uncached image (target: exactly one
//!   registry verification).
//!
//! Needs the signing peers (`scripts/peers.sh`, `apt-get install docker-registry`):
//!   cargo bench -p rampart-images --bench verification
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../../../bench/rust/noise_floor.rs"]
mod noise_floor;
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_images::admission::ImageAdmitter;
use rampart_images::registry::Credentials;
use rampart_images::verify::CacheSettings;
use serde_json::json;

fn admitter(registry: &support::Registry, cache: CacheSettings) -> ImageAdmitter {
    let spec = "  authorities:\n    - name: release\n      key: {file: trusted.pub}\n";
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(support::admitter(registry, spec, cache, Duration::from_secs(10)))
}

fn main() {
    let registry = support::Registry::start();
    registry.keypair("trusted");
    let images: Vec<String> = (0..3)
        .map(|i| {
            let name = format!("bench/app{i}:v1");
            registry.push(&name, &format!("content {i}"));
            registry.sign("trusted", &name, &[]);
            format!("{}/{name}", registry.host)
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let pod = support::pod(&images);
    let none = Credentials::default();

    // Cached: the images as the mutating webhook leaves them (pinned), verified once.
    let cached = admitter(&registry, CacheSettings::default());
    let first = runtime.block_on(cached.admit("default", &pod, None, &none));
    assert!(first.denial.is_none());
    let pinned: Vec<String> =
        first.patch.iter().map(|op| op["value"].as_str().unwrap().to_string()).collect();
    let pinned_pod = support::pod(&pinned);
    let mut measured = noise_floor::measure(10_000, || {
        let answer = runtime.block_on(cached.admit("default", &pinned_pod, None, &none));
        assert!(answer.denial.is_none());
    });
    let mut tagged = noise_floor::measure(10_000, || {
        let answer = runtime.block_on(cached.admit("default", &pod, None, &none));
        assert!(answer.denial.is_none() && answer.patch.len() == 3);
    });
    // Uncached: every call verifies all three against the registry (a cache that keeps nothing).
    let uncached = admitter(&registry, CacheSettings { capacity: 0, ..CacheSettings::default() });
    let t = Instant::now();
    let rounds = 200;
    for _ in 0..rounds {
        assert!(runtime.block_on(uncached.admit("default", &pinned_pod, None, &none)).denial.is_none());
    }
    let uncached_us = t.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    println!(
        "Image verification at admission: a pod of 3 signed images, against docker-registry on loopback"
    );
    println!("  {}", measured.line("cached (pinned digests)"));
    println!("  {}", tagged.line("cached (tags, pinned in the answer)"));
    println!(
        "  uncached, every image verified at the registry: mean {uncached_us:.0} µs ({:.0}× the cached p50)",
        uncached_us / (noise_floor::quantile(&mut measured.calls, 0.5) as f64 / 1000.0)
    );

    // 100 concurrent admissions of new pods sharing one uncached image.
    let shared = Arc::new(admitter(&registry, CacheSettings::default()));
    let image = images[0].clone();
    let t = Instant::now();
    runtime.block_on(async {
        let pods = (0..100).map(|i| {
            let (shared, image) = (shared.clone(), image.clone());
            tokio::spawn(async move {
                let pod = json!({"kind": "Pod", "metadata": {"name": format!("p{i}")}, "spec": {"containers": [{"name": "c", "image": image}]}});
                shared.admit("default", &pod, None, &Credentials::default()).await
            })
        });
        for answer in futures::future::join_all(pods).await {
            assert!(answer.unwrap().denial.is_none());
        }
    });
    println!(
        "  100 concurrent new pods sharing one uncached image: {} registry verification(s), all answered in {:.1} ms",
        shared.verifier.registry_verifications(),
        t.elapsed().as_secs_f64() * 1e3
    );
}
