//! The KMS plugin over its unix socket, as the apiserver calls it (gRPC, one connection):
//! Decrypt latency with the local key cached (target p99 ≤ 200 µs) beside the transport alone
//! (Status, which does no cryptography) and the noise floor; Decrypt throughput per CPU-second
//! of the whole process, client included (target ≥ 20,000 per core).
//!
//!   cargo bench -p rampart-kms --bench socket
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../../../bench/rust/noise_floor.rs"]
mod noise_floor;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_kms::envelope::Envelope;
use rampart_kms::proto::{DecryptRequest, EncryptRequest, StatusRequest};
use rampart_kms::remote::LocalKeyFile;

/// CPU seconds this process has used (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn main() {
    // The plugin on its own runtime (as its own process would be); the caller on a
    // single-threaded one, so a call is the caller, the socket and the plugin — not the
    // caller's own thread hand-offs.
    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("kms.sock");
    let envelope = Arc::new(Envelope::new(
        Arc::new(LocalKeyFile::new(&[7; 32]).unwrap()),
        Duration::from_secs(60),
        Arc::default(),
    ));
    let listener = server.block_on(async { rampart_kms::server::bind(&socket) }).unwrap();
    server.spawn(rampart_kms::server::serve(listener, envelope, std::future::pending()));
    let mut client = runtime.block_on(rampart_kms::client::connect(&socket)).unwrap();
    let sealed = runtime
        .block_on(client.encrypt(EncryptRequest { plaintext: vec![9; 32], uid: "seed".into() }))
        .unwrap()
        .into_inner();
    let request = DecryptRequest {
        ciphertext: sealed.ciphertext,
        uid: "u".into(),
        key_id: sealed.key_id,
        annotations: sealed.annotations,
    };

    let mut decrypt = noise_floor::measure(20_000, || {
        let answer = runtime.block_on(client.decrypt(request.clone())).unwrap().into_inner();
        assert_eq!(answer.plaintext.len(), 32);
    });
    let mut transport = noise_floor::measure(20_000, || {
        runtime.block_on(client.status(StatusRequest {})).unwrap();
    });
    println!("KMS v2 plugin over its unix socket (gRPC, local key cached)");
    println!("  {}", decrypt.line("Decrypt"));
    println!("  {}", transport.line("Status (the transport alone)"));

    // Throughput: 16 concurrent callers on clones of one channel, for 3 s.
    let (cpu, started) = (cpu_seconds(), Instant::now());
    let total: u64 = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(3);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (mut client, request) = (client.clone(), request.clone());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        client.decrypt(request.clone()).await.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total
    });
    let (cpu, wall) = (cpu_seconds() - cpu, started.elapsed().as_secs_f64());
    println!(
        "  Decrypt throughput: {:.0}/s over {wall:.1} s with 16 callers; {:.0} per CPU-second (client and server in this process, {cpu:.1} CPU-s)",
        total as f64 / wall,
        total as f64 / cpu
    );
}
