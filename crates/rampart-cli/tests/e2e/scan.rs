//! `rampart scan --from-cluster` on the real cluster gives the same verdicts, offenders and
//! score as a `kubectl get -o yaml` snapshot of it.

use std::process::Command;

use serde_json::Value;

use crate::exclusive;

const KINDS: &str = "namespaces,pods,serviceaccounts,services,deployments,daemonsets,statefulsets,replicasets,\
                     jobs,cronjobs,networkpolicies,ingresses,roles,clusterroles,rolebindings,clusterrolebindings";

fn scan(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("scan")
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn scan_from_the_cluster_agrees_with_a_kubectl_snapshot() {
    // Exclusive: both reads must see the same cluster state.
    let (_gate, c) = exclusive();
    let mut snapshot = c.admin().run(&["get", KINDS, "-A", "-o", "yaml"]).ok();
    // The admin network policy tiers are CRDs the netpol test may have installed.
    let admin = c.admin().run(&["get", "adminnetworkpolicies", "-o", "yaml"]);
    if admin.ok {
        snapshot.push_str("\n---\n");
        snapshot.push_str(&admin.stdout);
    }
    let aws_auth = c.admin().run(&["get", "configmap", "aws-auth", "-n", "kube-system", "-o", "yaml"]);
    if aws_auth.ok {
        snapshot.push_str("\n---\n");
        snapshot.push_str(&aws_auth.stdout);
    }
    let file = c.dir.join("snapshot.yaml");
    std::fs::write(&file, snapshot).unwrap();
    let from_file = scan(&[file.to_str().unwrap()]);
    let kubeconfig = c.dir.join("users/admin.kubeconfig");
    let live = scan(&["--from-cluster", "--kubeconfig", kubeconfig.to_str().unwrap()]);
    let verdicts = |r: &Value| -> Vec<(String, String, Vec<String>)> {
        let mut v: Vec<_> = r["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                let mut offenders: Vec<String> =
                    x["offenders"].as_array().unwrap().iter().map(|o| o.to_string()).collect();
                offenders.sort();
                (x["id"].as_str().unwrap().to_owned(), x["status"].as_str().unwrap().to_owned(), offenders)
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(verdicts(&live), verdicts(&from_file));
    assert_eq!(live["score"], from_file["score"]);
    assert!(live["results"].as_array().unwrap().len() > 10);
}
