//! Detection on the apiserver's own audit log: what the e2e scenarios did (and a few telling
//! actions done here) is found by `rampart audit`, while the control plane's own traffic —
//! the apiserver reconciling its default roles, leases, the controller-manager making its
//! controllers' service accounts and aggregating roles, Rampart's reads — raises nothing.

use std::process::Command;

use serde_json::Value;

use crate::admission::{BUILDERS, build, pod};
use crate::shared;

fn audit(c: &crate::Cluster, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("audit")
        .arg(c.dir.join("logs/audit.log"))
        .args(["-o", "json", "--fail-on", "critical"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn rampart_audit_on_the_real_audit_log() {
    let (_gate, c) = shared();
    c.apply(BUILDERS);
    c.namespace("e2e-detect");
    // A binding to cluster-admin, a privileged pod, and an anonymous read of secrets.
    c.admin()
        .run(&[
            "create",
            "clusterrolebinding",
            "e2e-detect-admin",
            "--clusterrole=cluster-admin",
            "--user=mallory",
        ])
        .ok();
    build(
        c,
        &["create", "-f", "-"],
        Some(&pod(
            "e2e-detect-priv",
            "e2e-detect",
            "registry.k8s.io/pause:3.10",
            "    securityContext: {privileged: true}\n",
        )),
    )
    .ok();
    // Anonymous probing of secrets: a dozen denied reads.
    for _ in 0..12 {
        let anonymous = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(c.dir.join("pki/ca.crt"))
            .arg(format!("{}/api/v1/namespaces/e2e-detect/secrets", c.var("RAMPART_E2E_API")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&anonymous.stdout), "403");
    }

    // The same token theft tried three times (with no kubelet each fails after it was
    // authorized; kubectl tries a websocket `get`, then an SPDY `create`).
    for _ in 0..3 {
        c.admin()
            .run(&[
                "exec",
                "e2e-detect-priv",
                "-n",
                "e2e-detect",
                "--",
                "cat",
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
            ])
            .fails();
    }
    // The demo's denials, run as a script would run them: a burst of 403s for sample-user.
    for _ in 0..25 {
        c.user("sample-user").run(&["get", "configmaps", "-n", "default", "--request-timeout=5s"]).fails();
    }

    // The apiserver writes the audit log asynchronously; give it a moment to flush.
    let report =
        crate::eventually("the actions are in the audit log", std::time::Duration::from_secs(60), || {
            let report = audit(c, &[]);
            let text = report.to_string();
            let missing: Vec<&str> = [
                "e2e-detect-admin",
                "e2e-detect-priv",
                "AnonymousProbing",
                "SuspiciousExecCommand",
                "denied (401/403) requests by sample-user",
            ]
            .into_iter()
            .filter(|needle| !text.contains(needle))
            .collect();
            if missing.is_empty() {
                Ok(report)
            } else {
                Err(format!(
                    "{} findings so far, none yet for {missing:?}",
                    report["findings"].as_array().map_or(0, Vec::len)
                ))
            }
        });
    let findings = report["findings"].as_array().unwrap();
    let titled = |title: &str, needle: &str| {
        findings
            .iter()
            .any(|f| f["title"] == title && f["message"].as_str().unwrap_or_default().contains(needle))
    };
    assert!(titled("Attach to cluster-admin Role", "\"name\":\"mallory\""), "{report:#}");
    let rbac_change = findings.iter().any(|f| {
        f["id"] == "rampart/RbacChanged"
            && f["message"]
                .as_str()
                .unwrap_or_default()
                .contains("clusterrolebinding e2e-detect-admin (grants cluster-admin)")
    });
    assert!(rbac_change, "{report:#}");
    assert!(titled("Create Privileged Pod", "e2e-detect-priv"), "{report:#}");
    let anonymous = |id: &str| {
        findings.iter().any(|f| {
            f["id"] == id && f["events"].as_array().unwrap().iter().any(|e| e["user"] == "system:anonymous")
        })
    };
    assert!(anonymous("rampart/SecretReadDenied"), "{report:#}");
    assert!(anonymous("rampart/AnonymousProbing"), "{report:#}");
    assert!(report["stats"]["events"].as_u64().unwrap() > 100);
    // The tries are one finding with a count (each try is two requests: websocket, then SPDY).
    let theft: Vec<&Value> = findings.iter().filter(|f| f["id"] == "rampart/SuspiciousExecCommand").collect();
    assert_eq!(theft.len(), 1, "{theft:#?}");
    let tries = theft[0]["count"].as_u64().unwrap();
    assert!(tries >= 3, "{theft:#?}");
    assert!(
        theft[0]["message"].as_str().unwrap().contains("tried to run `cat /var/run/secrets/"),
        "{theft:#?}"
    );
    // The demo's 403 burst.
    let burst = findings.iter().any(|f| {
        f["id"] == "rampart/ForbiddenSpike"
            && f["message"].as_str().unwrap_or_default().contains("denied (401/403) requests by sample-user")
    });
    assert!(burst, "{report:#}");
    // --no-group lists each occurrence.
    let each = audit(c, &["--no-group"]);
    let listed =
        each["findings"].as_array().unwrap().iter().filter(|f| f["id"] == "rampart/SuspiciousExecCommand");
    assert_eq!(listed.count() as u64, tries);

    // Quiet on the control plane: no finding made only of control-plane or Rampart traffic.
    let control_plane = |user: &str| {
        user.starts_with("system:kube-")
            || user.starts_with("system:serviceaccount:kube-system:")
            || user.starts_with("system:node:")
            || user == "system:apiserver"
            || user == "system:serviceaccount:rampart-system:rampart"
    };
    let noisy: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            let events = f["events"].as_array().unwrap();
            !events.is_empty() && events.iter().all(|e| control_plane(e["user"].as_str().unwrap_or_default()))
        })
        .collect();
    assert!(noisy.is_empty(), "control-plane traffic raised findings: {noisy:#?}");
    // Falco's rules as shipped are noisier: "Disallowed K8s User" fires on ordinary users.
    let strict = audit(c, &["--strict-falco", "--no-group"]);
    assert!(strict["findings"].as_array().unwrap().len() > each["findings"].as_array().unwrap().len());
}
