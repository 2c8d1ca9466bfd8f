//! The network analysis at cluster scale, beside network-config-analyzer on the same input in
//! the same run: 2,000 workloads in 100 namespaces under 1,000 NetworkPolicies (a default-deny
//! per namespace, tiers allowed to talk in order, monitoring from one namespace, DNS and HTTPS
//! egress except to the metadata endpoint, named ports throughout).
//!
//! - the full matrix — reading the manifests, indexing, every pair — on one core, best and
//!   median of 5 (target ≤ 2 s), and NCA's `--connectivity` on the same files;
//! - one `reach` query with its explanation after loading, p50/p99 beside the noise floor
//!   (target ≤ 100 µs).
//!
//!   cargo bench -p rampart-netpol --bench matrix
//!
//! NCA comes from `.venv-nca` (scripts/test.sh installs it) or `RAMPART_NCA_BIN`; it is given
//! `RAMPART_BENCH_NCA_TIMEOUT` seconds (default 900) and reported as slower than that if it
//! has not finished.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/support/nca_report.rs"]
mod nca_report;
#[path = "../../../bench/rust/noise_floor.rs"]
mod noise_floor;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rampart_netpol::analysis::Analysis;
use rampart_netpol::reach::{Endpoint, explain};
use rampart_netpol::world::World;

const NAMESPACES: usize = 100;
const PER_NAMESPACE: usize = 20;
const TIERS: [&str; 4] = ["web", "api", "db", "cache"];

/// The cluster as two YAML streams: namespaces and workloads, policies.
fn cluster() -> (String, String) {
    let mut workloads = String::new();
    let mut policies = String::new();
    for n in 0..NAMESPACES {
        let ns = format!("team-{n:03}");
        let kind = if n == 0 {
            "monitoring"
        } else if n == 1 {
            "dns"
        } else {
            "app"
        };
        writeln!(
            workloads,
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{kind: {kind}, group: g{}}}}}\n---",
            n % 10
        )
        .unwrap();
        for w in 0..PER_NAMESPACE {
            let tier = TIERS[w % TIERS.len()];
            writeln!(
                workloads,
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: w{w:02}, namespace: {ns}, labels: {{app: a{w:02}, tier: {tier}}}}}\nspec: {{containers: [{{name: c, image: app, ports: [{{name: http, containerPort: {}}}, {{name: metrics, containerPort: 9090}}]}}]}}\n---",
                8000 + w % 5
            )
            .unwrap();
        }
        let policy = |name: &str, spec: &str| {
            format!(
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {spec}\n---\n"
            )
        };
        policies += &policy("default-deny", "{podSelector: {}, policyTypes: [Ingress, Egress]}");
        policies += &policy(
            "dns-and-https",
            "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {matchLabels: {kind: dns}}}], ports: [{protocol: UDP, port: 53}, {port: 53}]}, {to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/24]}}, {ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}}], ports: [{port: 443}]}]}",
        );
        policies += &policy(
            "monitoring",
            "{podSelector: {}, policyTypes: [Ingress], ingress: [{from: [{namespaceSelector: {matchLabels: {kind: monitoring}}}], ports: [{port: metrics}]}]}",
        );
        for pair in TIERS.windows(2) {
            policies += &policy(
                &format!("{}-to-{}", pair[0], pair[1]),
                &format!(
                    "{{podSelector: {{matchLabels: {{tier: {to}}}}}, ingress: [{{from: [{{podSelector: {{matchLabels: {{tier: {from}}}}}}}], ports: [{{port: http}}]}}]}}",
                    from = pair[0],
                    to = pair[1]
                ),
            );
            policies += &policy(
                &format!("{}-from-{}", pair[0], pair[1]),
                &format!(
                    "{{podSelector: {{matchLabels: {{tier: {from}}}}}, policyTypes: [Egress], egress: [{{to: [{{podSelector: {{matchLabels: {{tier: {to}}}}}}}], ports: [{{port: 8000, endPort: 8004}}]}}]}}",
                    from = pair[0],
                    to = pair[1]
                ),
            );
        }
        // DNS answers everyone; monitoring scrapes everyone; the others take web traffic from
        // their group.
        policies += &match kind {
            "dns" => policy(
                "dns-from-all",
                "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}}], ports: [{protocol: UDP, port: 53}, {port: 53}]}]}",
            ),
            "monitoring" => policy(
                "scrape",
                "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {}}], ports: [{port: metrics}]}]}",
            ),
            _ => policy(
                "group-web",
                &format!(
                    "{{podSelector: {{matchLabels: {{tier: web}}}}, ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{group: g{}}}}}, podSelector: {{matchExpressions: [{{key: tier, operator: In, values: [web, api]}}]}}}}], ports: [{{port: http}}]}}]}}",
                    n % 10
                ),
            ),
        };
    }
    (workloads, policies)
}

fn load(workloads: &str, policies: &str) -> World {
    let mut world = World::default();
    world.add_manifests("workloads.yaml", workloads).unwrap();
    world.add_manifests("policies.yaml", policies).unwrap();
    world.externals = vec![
        ("metadata".into(), "169.254.169.254/32".parse().unwrap()),
        ("vpc".into(), "10.1.2.3/32".parse().unwrap()),
        ("public".into(), "8.8.8.8/32".parse().unwrap()),
    ];
    world
}

/// NCA's wall time on the same files, or `None` past the timeout.
fn nca(dir: &Path, timeout: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut child = nca_report::nca_command(&nca_report::nca_bin(), dir, "nca.txt")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/test.sh installs it)", nca_report::nca_bin().display()));
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success() && dir.join("nca.txt").exists(), "nca failed");
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn main() {
    let (workloads, policies) = cluster();
    let world = load(&workloads, &policies);
    assert_eq!((world.workloads.len(), world.policies.len()), (2_000, 1_000));

    let mut runs: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let world = load(&workloads, &policies);
            let matrix = Analysis::new(&world).matrix();
            std::hint::black_box(matrix.connections().count());
            start.elapsed()
        })
        .collect();
    runs.sort();
    let analysis = Analysis::new(&world);
    let matrix = analysis.matrix();
    let pairs = matrix.connections().count();
    let start = Instant::now();
    let groups = rampart_netpol::group::groups(&matrix).len();
    let grouping = start.elapsed();
    println!(
        "matrix of {} workloads in {NAMESPACES} namespaces under {} policies ({pairs} connected pairs): best {:.2} s, median {:.2} s, worst {:.2} s (target ≤ 2 s)",
        world.workloads.len(),
        world.policies.len(),
        runs[0].as_secs_f64(),
        runs[2].as_secs_f64(),
        runs[4].as_secs_f64()
    );
    println!("grouped for the table and pictures into {groups} groups in {:.2} s", grouping.as_secs_f64());

    let ends: Vec<Endpoint> = (0..world.workloads.len()).map(Endpoint::Workload).collect();
    let mut i = 0usize;
    let mut measured = noise_floor::measure(20_000, || {
        i = i.wrapping_add(7919);
        let (s, d) = (ends[i % ends.len()], ends[(i / 3 + 1) % ends.len()]);
        let reach = analysis.reach(s, d);
        std::hint::black_box(explain(&world, s, d, &reach));
    });
    println!("{}", measured.line("reach with its explanation (target p99 ≤ 100 µs)"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("workloads.yaml"), &workloads).unwrap();
    std::fs::write(dir.path().join("policies.yaml"), &policies).unwrap();
    let timeout = Duration::from_secs(
        std::env::var("RAMPART_BENCH_NCA_TIMEOUT").ok().and_then(|s| s.parse().ok()).unwrap_or(900),
    );
    match nca(dir.path(), timeout) {
        Some(theirs) => {
            let report = std::fs::read_to_string(dir.path().join("nca.txt")).unwrap();
            let (ours, theirs_matrix) = (matrix.by_name(), nca_report::matrix_of(&world, &report));
            let differing = ours
                .keys()
                .chain(theirs_matrix.keys())
                .filter(|k| ours.get(*k) != theirs_matrix.get(*k))
                .count();
            println!(
                "network-config-analyzer on the same files: {:.1} s; Rampart's median is {:.0}× faster; pairs that differ: {differing}",
                theirs.as_secs_f64(),
                theirs.as_secs_f64() / runs[2].as_secs_f64()
            );
        }
        None => println!(
            "network-config-analyzer on the same files: not finished in {} s; Rampart's median is more than {:.0}× faster",
            timeout.as_secs(),
            timeout.as_secs_f64() / runs[2].as_secs_f64()
        ),
    }
}
