//! Differential test against network-config-analyzer (IBM, PyPI), the anchor: on the same
//! manifests, every connection between workloads, and between workloads and the named external
//! addresses, must be the same port set in both. NCA runs from `.venv-nca` (scripts/test.sh
//! installs it; it pins a PyYAML that moto's venv cannot share); missing, the test fails under
//! RAMPART_REQUIRE_AWS_PEERS (CI) and is skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use ipnet::IpNet;
use rampart_netpol::ports::PortSet;
use rampart_netpol::reach::connections;
use rampart_netpol::world::World;
use serde_json::Value;

fn nca() -> Option<PathBuf> {
    let venv = std::env::var("RAMPART_NCA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv-nca/bin")));
    let nca = venv.join("nca");
    if nca.exists() {
        return Some(nca);
    }
    assert!(
        std::env::var_os("RAMPART_REQUIRE_AWS_PEERS").is_none(),
        "network-config-analyzer is required: {}",
        nca.display()
    );
    None
}

type Matrix = BTreeMap<(String, String), PortSet>;

fn connection(value: &Value) -> PortSet {
    let mut set = PortSet::none();
    for c in value.as_array().into_iter().flatten() {
        if c.as_str() == Some("All connections") {
            return PortSet::all();
        }
        let protocol = c["protocols"].as_str().unwrap_or("TCP");
        let ports = c["dst_ports"].as_array().cloned().unwrap_or_default();
        if ports.is_empty() {
            set = set.union(&PortSet::range(protocol, 1, u16::MAX));
        }
        for p in ports {
            let (lo, hi) = match &p {
                Value::Number(n) => (n.as_u64().unwrap() as u16, n.as_u64().unwrap() as u16),
                Value::String(s) => {
                    let (a, b) = s.split_once('-').unwrap_or((s, s));
                    (a.parse().unwrap(), b.parse().unwrap())
                }
                other => panic!("NCA port {other}"),
            };
            set = set.union(&PortSet::range(protocol, lo, hi));
        }
    }
    set
}

/// One side of an NCA row: the workloads (`ns/name`) and externals it names.
fn side(world: &World, row: &Value, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(namespaces) = row[format!("{prefix}_ns")].as_array() {
        let pods: Vec<&str> =
            row[format!("{prefix}_pods")].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        for ns in namespaces.iter().map(|n| n.as_str().unwrap()) {
            for w in world.workloads.iter().filter(|w| w.namespace == ns) {
                if pods.contains(&"*") || pods.contains(&w.name.as_str()) {
                    out.push(w.id());
                }
            }
        }
    }
    if let Some(blocks) = row[format!("{prefix}_ip_block")].as_array() {
        let blocks: Vec<IpNet> = blocks.iter().filter_map(|b| b.as_str()?.parse().ok()).collect();
        for (n, net) in &world.externals {
            if blocks.iter().any(|b| b.contains(net)) {
                out.push(n.clone());
            }
        }
    }
    out
}

fn theirs(nca: &PathBuf, world: &World, workloads: &str, policies: &str) -> Matrix {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("workloads.yaml"), workloads).unwrap();
    std::fs::write(dir.path().join("policies.yaml"), policies).unwrap();
    let out = Command::new(nca)
        .args([
            "--connectivity",
            "policies.yaml",
            "--pod_list",
            "workloads.yaml",
            "--ns_list",
            "workloads.yaml",
        ])
        .args(["--output_format", "json", "--file_out", "out.json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(dir.path().join("out.json").exists(), "nca: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&std::fs::read(dir.path().join("out.json")).unwrap()).unwrap();
    let mut matrix = Matrix::new();
    for row in report[0]["explanation"][0]["rules"].as_array().into_iter().flatten() {
        let ports = connection(&row["connection"]);
        for s in side(world, row, "src") {
            for d in side(world, row, "dst") {
                let both_external = world.workload(&s).is_none() && world.workload(&d).is_none();
                if s != d && !both_external {
                    let entry = matrix.entry((s.clone(), d)).or_default();
                    *entry = entry.union(&ports);
                }
            }
        }
    }
    matrix
}

const WORKLOADS: &str = include_str!("../../rampart-cli/tests/fixtures/netpol/workloads.yaml");

fn agree(policies: &str) {
    let Some(nca) = nca() else { return };
    let mut world = World::default();
    world.add_manifests("workloads.yaml", WORKLOADS).unwrap();
    world.add_manifests("policies.yaml", policies).unwrap();
    world.externals = vec![
        ("metadata".into(), "169.254.169.254/32".parse().unwrap()),
        ("dns".into(), "8.8.8.8/32".parse().unwrap()),
    ];
    let (ours, theirs) = (connections(&world), theirs(&nca, &world, WORKLOADS, policies));
    let keys: std::collections::BTreeSet<_> = ours.keys().chain(theirs.keys()).collect();
    let differences: Vec<String> = keys
        .into_iter()
        .filter(|k| ours.get(*k) != theirs.get(*k))
        .map(|k| {
            format!(
                "{} → {}: rampart {:?}, nca {:?}",
                k.0,
                k.1,
                ours.get(k).map(|p| p.to_string()),
                theirs.get(k).map(|p| p.to_string())
            )
        })
        .collect();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn the_fixture_agrees_with_network_config_analyzer() {
    agree(include_str!("../../rampart-cli/tests/fixtures/netpol/policies.yaml"));
}

#[test]
fn intersections_ranges_and_protocols_agree() {
    agree(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: a}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: b}}, podSelector: {matchLabels: {app: client}}}], ports: [{port: 8000, endPort: 8100}, {protocol: UDP, port: 53}]}]
",
    );
}

#[test]
fn egress_defaults_and_ip_blocks_agree() {
    agree(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: e, namespace: b}
spec:
  podSelector: {matchLabels: {app: client}}
  egress:
    - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}}]
      ports: [{port: 443}]
    - to: [{podSelector: {}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: i, namespace: a}
spec:
  podSelector: {}
  ingress: [{from: [{ipBlock: {cidr: 8.8.0.0/16}}]}, {from: [{namespaceSelector: {}}], ports: [{port: http}, {port: pg}]}]
",
    );
}
