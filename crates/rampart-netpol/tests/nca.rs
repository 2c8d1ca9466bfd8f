//! Differential test against network-config-analyzer (IBM, PyPI), the anchor: on the same
//! manifests, every connection between workloads, and between workloads and the named external
//! addresses, must be the same port set in both. NCA runs from `.venv-nca` (scripts/test.sh
//! installs it; it pins a PyYAML that moto's venv cannot share); missing, the test fails under
//! RAMPART_REQUIRE_AWS_PEERS (CI) and is skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_netpol::reach::connections;
use rampart_netpol::world::World;

mod support;

fn nca() -> Option<PathBuf> {
    let nca = nca_bin();
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

use support::nca_report::{Matrix, matrix_of, nca_bin, nca_command};

fn read_report(path: &Path, stderr: &[u8]) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("nca wrote no {}: {e}\n{}", path.display(), String::from_utf8_lossy(stderr))
    })
}

fn theirs(nca: &Path, world: &World, workloads: &str, policies: &str) -> Matrix {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("workloads.yaml"), workloads).unwrap();
    std::fs::write(dir.path().join("policies.yaml"), policies).unwrap();
    let out = nca_command(nca, dir.path(), "out.txt").output().unwrap();
    matrix_of(world, &read_report(&dir.path().join("out.txt"), &out.stderr))
}

/// Where the two matrices differ, one line per pair.
fn differences(ours: &Matrix, theirs: &Matrix) -> Vec<String> {
    let keys: std::collections::BTreeSet<_> = ours.keys().chain(theirs.keys()).collect();
    keys.into_iter()
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
        .collect()
}

const WORKLOADS: &str = include_str!("../../rampart-cli/tests/fixtures/netpol/workloads.yaml");

fn agree(policies: &str) {
    agree_on(WORKLOADS, policies, &[("metadata", "169.254.169.254/32"), ("dns", "8.8.8.8/32")]);
}

fn agree_on(workloads: &str, policies: &str, externals: &[(&str, &str)]) {
    let Some(nca) = nca() else { return };
    let mut world = World::default();
    world.add_manifests("workloads.yaml", workloads).unwrap();
    world.add_manifests("policies.yaml", policies).unwrap();
    world.externals = externals.iter().map(|(n, c)| (n.to_string(), c.parse().unwrap())).collect();
    let (ours, theirs) = (connections(&world), theirs(&nca, &world, workloads, policies));
    assert!(!ours.is_empty() || !theirs.is_empty(), "a case where nothing connects tests little");
    let differences = differences(&ours, &theirs);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Every example policy of the Kubernetes documentation's NetworkPolicy page, one set at a
/// time (fixtures/k8s-docs, with its source and licence).
#[test]
fn the_kubernetes_documentation_examples_agree() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/k8s-docs"));
    let workloads = std::fs::read_to_string(dir.join("workloads.yaml")).unwrap();
    let externals = [("docker", "172.17.0.5/32"), ("excepted", "172.17.1.5/32"), ("subnet", "10.0.0.7/32")];
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") && !path.ends_with("workloads.yaml") {
            agree_on(&workloads, &std::fs::read_to_string(&path).unwrap(), &externals);
            seen += 1;
        }
    }
    assert_eq!(seen, 10, "every example read");
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

/// Clusters per NCA run: big enough that Python's start-up is paid rarely, small enough that
/// two runs keep both cores busy and a crash names a short list of cases.
const CHUNK: usize = 200;

/// Runs NCA once on the scheme of `cases` (one network configuration and one connectivity
/// query per case directory `c{n}`), returning its stderr for the failure message.
fn run_scheme(nca: &Path, dir: &Path, chunk: usize, cases: std::ops::Range<usize>) -> Vec<u8> {
    let mut configs = String::from("networkConfigList:\n");
    let mut queries = String::from("queries:\n");
    for n in cases {
        configs += &format!(
            "  - {{name: c{n}, namespaceList: c{n}/w.yaml, podList: c{n}/w.yaml, networkPolicyList: [c{n}/p.yaml]}}\n"
        );
        queries += &format!(
            "  - {{name: q{n}, connectivityMap: [c{n}], outputConfiguration: {{outputFormat: txt_no_fw_rules, outputPath: c{n}/out.txt}}}}\n"
        );
    }
    let scheme = format!("scheme{chunk}.yaml");
    std::fs::write(dir.join(&scheme), configs + &queries).unwrap();
    Command::new(nca).args(["--scheme", &scheme]).current_dir(dir).output().unwrap().stderr
}

/// The random corpus: `RAMPART_NCA_CASES` clusters (1,000 by default) from the generators the
/// property tests use, given to NCA as scheme files of [`CHUNK`] clusters each, two at a time.
#[test]
fn a_thousand_random_clusters_agree_with_network_config_analyzer() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    let Some(nca) = nca() else { return };
    let cases: usize = std::env::var("RAMPART_NCA_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let mut runner = TestRunner::deterministic();
    let mut worlds = Vec::new();
    for n in 0..cases {
        let (namespaces, policies) = support::cluster().new_tree(&mut runner).unwrap().current();
        let policies: Vec<_> = policies.into_iter().map(support::as_nca_accepts).collect();
        let prefix = format!("c{n}-");
        let (workloads, policies) =
            (support::render_workloads(&prefix, &namespaces), support::render_policies(&prefix, &policies));
        let case = dir.path().join(format!("c{n}"));
        std::fs::create_dir(&case).unwrap();
        std::fs::write(case.join("w.yaml"), &workloads).unwrap();
        std::fs::write(case.join("p.yaml"), &policies).unwrap();
        let mut world = World::default();
        world.add_manifests("w.yaml", &workloads).unwrap();
        world.add_manifests("p.yaml", &policies).unwrap();
        world.externals =
            support::EXTERNALS.iter().map(|(n, c)| (n.to_string(), c.parse().unwrap())).collect();
        worlds.push((world, workloads, policies));
    }
    let chunks: Vec<usize> = (0..cases.div_ceil(CHUNK)).collect();
    let stderr: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let runs: Vec<_> = chunks
            .chunks(chunks.len().div_ceil(2).max(1))
            .map(|mine| {
                let (nca, dir) = (&nca, dir.path());
                scope.spawn(move || {
                    mine.iter()
                        .map(|&c| run_scheme(nca, dir, c, c * CHUNK..((c + 1) * CHUNK).min(cases)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        runs.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    let mut failures = Vec::new();
    for (n, (world, workloads, policies)) in worlds.iter().enumerate() {
        let report = read_report(&dir.path().join(format!("c{n}/out.txt")), &stderr[n / CHUNK]);
        let differences = differences(&connections(world), &matrix_of(world, &report));
        if !differences.is_empty() {
            failures.push(format!(
                "case {n}:\n{}\n--- workloads\n{workloads}--- policies\n{policies}",
                differences.join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} clusters disagree:\n{}",
        failures.len(),
        failures.join("\n=====\n")
    );
}

// Where NCA differs from the API, pinned: if a release fixes one, this test fails and the
// README's comparison is updated. semantics.rs shows the API's answer for each.

/// NCA refuses what the apiserver accepts: egress rules in a policy typed Ingress alone.
#[test]
fn nca_refuses_rules_outside_policy_types() {
    let Some(nca) = nca() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.yaml"), WORKLOADS).unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\nspec: {podSelector: {}, policyTypes: [Ingress], egress: [{}]}\n",
    )
    .unwrap();
    let out = Command::new(nca)
        .args(["--connectivity", "p.yaml", "--pod_list", "w.yaml", "--ns_list", "w.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("egress field but no \"Egress\" in its policyTypes"), "{stderr}");
}

fn nca_matrix(policies: &str) -> Option<(Matrix, Matrix)> {
    let nca = nca()?;
    let mut world = World::default();
    world.add_manifests("workloads.yaml", WORKLOADS).unwrap();
    world.add_manifests("policies.yaml", policies).unwrap();
    Some((connections(&world), theirs(&nca, &world, WORKLOADS, policies)))
}

/// NCA reads `egress: []` without policyTypes as an egress policy.
#[test]
fn nca_isolates_egress_for_an_empty_egress_list() {
    let Some((ours, theirs)) = nca_matrix(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\nspec: {podSelector: {}, egress: []}\n",
    ) else {
        return;
    };
    let key = ("a/web".to_string(), "b/client".to_string());
    assert!(ours[&key].is_all());
    assert!(!theirs.contains_key(&key), "NCA: {:?}", theirs.get(&key));
}

/// NCA evaluates Exists in a peer's podSelector over the policy's namespace only.
#[test]
fn nca_looks_for_exists_only_in_the_policy_namespace() {
    let Some((ours, theirs)) = nca_matrix(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\nspec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {team: b}}, podSelector: {matchExpressions: [{key: app, operator: Exists}]}}]}]}\n",
    ) else {
        return;
    };
    let key = ("b/client".to_string(), "a/web".to_string());
    assert!(ours[&key].is_all());
    assert!(!theirs.contains_key(&key), "NCA: {:?}", theirs.get(&key));
}
