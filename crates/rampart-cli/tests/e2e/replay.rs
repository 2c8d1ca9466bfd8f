//! Policy replay on the apiserver's own audit log: a window of real traffic — Cedar denials
//! and grants, RBAC, label-selected lists, anonymous probes, the break-glass admin, a kubelet,
//! the controller manager and Rampart's own reads — decided again by `rampart replay` with the
//! policies and RBAC that produced it changes nothing; a candidate forbid shows exactly whom it
//! would lock out.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::{Cluster, exclusive};

const RBAC: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: e2e-replay}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: config-reader, namespace: e2e-replay}
rules: [{apiGroups: [''], resources: [configmaps], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: replayers, namespace: e2e-replay}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: config-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: e2e-replayers}]
";

const RITA: (&str, &[&str]) = ("rita", &["e2e-devs", "e2e-replayers"]);

/// `rampart replay` of `log` with the running Rampart's tiers (plus `extra` first) and the
/// cluster's RBAC.
fn replay(c: &Cluster, log: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let policies = c.dir.join("policies");
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("replay")
        .args(extra)
        .arg("-p")
        .arg(policies.join("e2e"))
        .arg("-p")
        .arg(policies.join("demo"))
        .args(["-p", "cluster:", "--rbac-from-cluster", "--kubeconfig"])
        .arg(c.dir.join("users/admin.kubeconfig"))
        .args(["-o", "json"])
        .arg(log)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code(), report, stderr)
}

/// An anonymous GET of `path`; its HTTP status.
fn anonymous(c: &Cluster, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(c.dir.join("pki/ca.crt"))
        .arg(format!("{}{path}", c.var("RAMPART_E2E_API")))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn replay_of_the_real_log_changes_nothing_and_a_candidate_forbid_shows_its_lockouts() {
    // Exclusive: nobody else edits policies or RBAC while the window is written.
    let (_gate, c) = exclusive();
    c.apply(RBAC);
    c.apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: e2e-replay}\n");
    let (user, groups) = RITA;
    // RBAC is read from the apiserver's informer cache: wait until the binding is in force, so
    // the window holds no answer given before it was.
    crate::eventually("rita's RoleBinding is in force", Duration::from_secs(20), || {
        let yes = c.as_user(user, groups, &["auth", "can-i", "get", "configmaps", "-n", "e2e-replay"]).ok;
        if yes { Ok(()) } else { Err("not yet".to_owned()) }
    });

    let log = c.dir.join("logs/audit.log");
    let start = std::fs::metadata(&log).unwrap().len();

    // The window: every kind of decision the chain makes.
    c.as_user(user, groups, &["get", "configmaps", "-n", "e2e-replay"]).ok(); // RBAC
    c.as_user(user, groups, &["get", "secrets", "-n", "e2e-authz"]).fails(); // Cedar forbid over RBAC
    c.as_user(user, groups, &["get", "pods", "-n", "e2e-replay"]).fails(); // nothing allows it
    c.as_user("ray", &["e2e-auditors"], &["get", "pods", "-n", "e2e-authz"]).ok(); // Cedar permit
    c.user("sample-user").run(&["get", "configmaps", "-n", "default"]).fails(); // the demo's forbid
    c.user("sample-user").run(&["get", "configmaps", "-n", "default", "-l", "owner=sample-user"]).ok();
    assert_eq!(anonymous(c, "/healthz"), "200"); // RBAC's public-info-viewer
    assert_eq!(anonymous(c, "/api/v1/namespaces/e2e-replay/secrets"), "403");
    c.admin().run(&["get", "secrets", "-n", "e2e-replay"]).ok(); // system:masters
    c.user("node").run(&["get", "secrets", "-n", "e2e-replay"]).fails(); // the Node authorizer
    c.user("kube-controller-manager").run(&["get", "serviceaccounts", "-n", "e2e-replay"]); // RBAC only
    c.admin().run(&["get", "configmap", "replay-window-end", "-n", "e2e-replay", "--ignore-not-found"]).ok();

    let window = c.dir.join("logs/replay-window.log");
    crate::eventually("the window is in the audit log", Duration::from_secs(20), || {
        let mut file = std::fs::File::open(&log).unwrap();
        file.seek(SeekFrom::Start(start)).unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        if text.contains("replay-window-end") {
            std::fs::write(&window, &text).unwrap();
            Ok(())
        } else {
            Err("not flushed yet".to_owned())
        }
    });

    let (code, report, stderr) = replay(c, &window, &[]);
    let stats = &report["stats"];
    assert_eq!(
        code,
        Some(0),
        "replaying the policies that produced the log changed decisions:\n{report:#}\n{stderr}"
    );
    assert_eq!(stats["changed"], 0, "{report:#}");
    assert!(stats["requests"].as_u64().unwrap() >= 12, "{stats}");
    assert!(stats["outside"].as_u64().unwrap() >= 2, "system:masters and the kubelet: {stats}");

    // A candidate tier that forbids what e2e-replayers do today: rita's reads become denials,
    // attributed to the candidate's policy, and nothing else changes.
    let candidate = tempfile::tempdir().unwrap();
    std::fs::write(
        candidate.path().join("candidate.cedar"),
        "@id(\"no-replayers\")\nforbid (principal in k8s::Group::\"e2e-replayers\", action, resource is k8s::Resource);\n",
    )
    .unwrap();
    let (code, report, stderr) = replay(c, &window, &["-p", candidate.path().to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    let changes = report["changes"].as_array().unwrap();
    assert!(!changes.is_empty() && changes.iter().all(|g| g["user"] == "rita"), "{report:#}");
    assert!(
        changes.iter().any(|g| g["change"] == "allowed-to-denied"
            && g["decidedBy"].as_str().unwrap().starts_with("no-replayers (")
            && g["requests"].as_array().unwrap().iter().any(|r| r == "list configmaps -n e2e-replay")),
        "{report:#}"
    );
}
