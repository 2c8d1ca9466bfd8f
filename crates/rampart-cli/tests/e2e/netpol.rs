//! `rampart netpol` on the real apiserver: NetworkPolicies applied with kubectl, read back with
//! `--from-cluster`, give the connections the API defines — the same as from a `kubectl get -o
//! yaml` snapshot — and the apiserver itself settles the two points where
//! network-config-analyzer reads the API otherwise (see crates/rampart-netpol/tests/nca.rs).

use std::process::Command;

use serde_json::Value;

use crate::shared;

const OBJECTS: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: e2e-np-shop, labels: {team: shop}}
---
apiVersion: v1
kind: Namespace
metadata: {name: e2e-np-client}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: e2e-np-shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: e2e-np-client}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: e2e-np-shop, labels: {app: web}}
spec: {containers: [{name: app, image: registry.k8s.io/pause:3.10, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: e2e-np-shop, labels: {app: db}}
spec: {containers: [{name: app, image: registry.k8s.io/pause:3.10, ports: [{name: pg, containerPort: 5432}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: curl, namespace: e2e-np-client, labels: {app: curl}}
spec: {containers: [{name: app, image: registry.k8s.io/pause:3.10}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: e2e-np-shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: e2e-np-shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: e2e-np-client}}}]
      ports: [{port: http}]
  egress:
    - to: [{podSelector: {matchLabels: {app: db}}}]
      ports: [{port: 5432}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: e2e-np-shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: pg}]}]
---
# Only `egress: []` and no policyTypes: the apiserver defaults policyTypes to Ingress alone.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: empty-egress, namespace: e2e-np-client}
spec: {podSelector: {matchLabels: {app: nobody}}, egress: []}
---
# Egress rules in a policy typed Ingress alone: accepted (NCA refuses the file).
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: typed-ingress, namespace: e2e-np-client}
spec: {podSelector: {matchLabels: {app: nobody}}, policyTypes: [Ingress], egress: [{to: [{podSelector: {}}]}]}
";

fn rampart(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rampart")).args(args).output().unwrap()
}

/// The matrix's pairs between this test's endpoints (other tests share the cluster).
fn ours(json: &[u8]) -> Vec<(String, String, String)> {
    let rows: Value = serde_json::from_slice(json).unwrap();
    let mut out: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["from"].as_str().unwrap().to_owned(),
                r["to"].as_str().unwrap().to_owned(),
                r["ports"].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(s, d, _)| s.starts_with("e2e-np-") && d.starts_with("e2e-np-"))
        .collect();
    out.sort();
    out
}

#[test]
fn netpol_reads_the_cluster_and_agrees_with_a_snapshot() {
    let (_gate, c) = shared();
    c.apply(OBJECTS);

    // The apiserver's defaulting, which NCA reads otherwise.
    let defaulted =
        c.admin().run(&["get", "networkpolicy", "empty-egress", "-n", "e2e-np-client", "-o", "json"]).json();
    assert_eq!(defaulted["spec"]["policyTypes"], serde_json::json!(["Ingress"]), "{defaulted}");
    let kept =
        c.admin().run(&["get", "networkpolicy", "typed-ingress", "-n", "e2e-np-client", "-o", "json"]).json();
    assert_eq!(kept["spec"]["policyTypes"], serde_json::json!(["Ingress"]));
    assert!(kept["spec"]["egress"].is_array(), "accepted with its egress rules: {kept}");

    let kubeconfig = c.dir.join("users/admin.kubeconfig");
    let kubeconfig = kubeconfig.to_str().unwrap();
    let live = rampart(&["netpol", "matrix", "--from-cluster", "--kubeconfig", kubeconfig, "-o", "json"]);
    assert!(live.status.success(), "{}", String::from_utf8_lossy(&live.stderr));
    let live = ours(&live.stdout);
    let expected: Vec<(String, String, String)> = [
        ("e2e-np-client/curl", "e2e-np-shop/web", "TCP 8080"),
        ("e2e-np-shop/web", "e2e-np-shop/db", "TCP 5432"),
    ]
    .iter()
    .map(|(s, d, p)| (s.to_string(), d.to_string(), p.to_string()))
    .collect();
    assert_eq!(live, expected, "only what the policies allow, named ports resolved");

    let snapshot = c.admin().run(&["get", "namespaces,pods,networkpolicies", "-A", "-o", "yaml"]).ok();
    let file = c.dir.join("netpol-snapshot.yaml");
    std::fs::write(&file, snapshot).unwrap();
    let from_file = rampart(&["netpol", "matrix", "-f", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(ours(&from_file.stdout), live, "the live read and the snapshot agree");

    let why = rampart(&[
        "netpol",
        "reach",
        "e2e-np-client/curl",
        "e2e-np-shop/db",
        "--from-cluster",
        "--kubeconfig",
        kubeconfig,
    ]);
    assert_eq!(why.status.code(), Some(1), "denied exits 1");
    let text = String::from_utf8_lossy(&why.stdout);
    assert!(
        text.contains("isolated by e2e-np-shop/db, e2e-np-shop/default-deny; no rule allows it"),
        "{text}"
    );
}
