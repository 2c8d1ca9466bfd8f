//! Scenario 3: Cedar tiers over the apiserver's own RBAC. A Cedar forbid beats an RBAC grant; a
//! Cedar permit grants what RBAC does not; and `kubectl auth can-i` (the real chain: Node,
//! Rampart, RBAC) agrees with `rampart can-i --rbac-from-cluster` and with `rampart who-can` on
//! the same cluster state, and `rampart lookup` finds the bindings `kubectl get` shows.

use std::process::Command;

use crate::shared;

// Plain Roles, not the aggregated admin/edit/view: without a controller-manager nothing
// aggregates those ClusterRoles, so the apiserver would see them empty.
const RBAC: &str = "
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: developer, namespace: e2e-authz}
rules:
- {apiGroups: [''], resources: [pods, pods/log, configmaps, secrets, services], verbs: ['*']}
- {apiGroups: [apps], resources: [deployments, deployments/scale], verbs: ['*']}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: developers, namespace: e2e-authz}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: developer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: e2e-devs}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: config-reader, namespace: e2e-authz}
rules: [{apiGroups: [''], resources: [configmaps], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: config-readers, namespace: e2e-authz}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: config-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: carl}]
";

/// (user, groups) asked about.
const USERS: [(&str, &[&str]); 4] =
    [("dana", &["e2e-devs"]), ("audrey", &["e2e-auditors"]), ("carl", &[]), ("nobody", &[])];

/// (verb, resource as kubectl reads it, namespace).
const REQUESTS: [(&str, &str, &str); 12] = [
    ("get", "po", "e2e-authz"),
    ("create", "deploy", "e2e-authz"),
    ("get", "cm/settings", "e2e-authz"),
    ("get", "secrets", "e2e-authz"),
    ("delete", "secrets", "e2e-authz"),
    ("create", "secrets", "e2e-authz"),
    ("list", "pods", "e2e-authz"),
    ("get", "pods/log", "e2e-authz"),
    ("create", "deployments.apps", "e2e-authz"),
    ("list", "configmaps", "e2e-authz"),
    ("list", "pods", "default"),
    ("get", "secrets", "default"),
];

#[test]
fn cedar_over_rbac_and_can_i_agrees_with_kubectl() {
    let (_gate, c) = shared();
    c.namespace("e2e-authz");
    c.apply(RBAC);

    // Cedar forbid over an RBAC grant, seen through kubectl.
    let dana = |args: &[&str]| c.as_user("dana", &["e2e-devs"], args);
    dana(&["get", "configmaps", "-n", "e2e-authz"]).ok();
    let err = dana(&["get", "secrets", "-n", "e2e-authz"]).fails();
    assert!(err.contains("forbidden by policy e2e-devs-no-secrets (authorization.cedar:"), "{err}");
    // Cedar permit beyond RBAC.
    c.as_user("audrey", &["e2e-auditors"], &["get", "pods", "-n", "e2e-authz"]).ok();
    c.as_user("audrey", &["e2e-auditors"], &["get", "configmaps", "-n", "e2e-authz"]).fails();

    let mut rows = Vec::new();
    let mut disagreements = Vec::new();
    // Who may, per request, by `rampart who-can` (RBAC grants minus Cedar forbids, plus the
    // subjects Cedar permits name).
    let who_can: Vec<Vec<String>> = REQUESTS
        .iter()
        .map(|(verb, resource, namespace)| {
            let out = rampart(c, &["who-can", verb, resource, "-n", namespace, "-o", "json"], true);
            let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            rows.as_array()
                .unwrap()
                .iter()
                .filter(|r| !r["cedar"].as_str().unwrap_or_default().starts_with("removed"))
                .map(|r| r["subject"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    for (user, groups) in USERS {
        for (i, (verb, resource, namespace)) in REQUESTS.into_iter().enumerate() {
            let mut args = vec!["auth", "can-i", verb, resource, "-n", namespace];
            let as_user = format!("--as={user}");
            args.push(&as_user);
            let group_flags: Vec<String> = groups.iter().map(|g| format!("--as-group={g}")).collect();
            args.extend(group_flags.iter().map(String::as_str));
            let kubectl = c.admin().run(&args).ok;

            let mut can_i = vec!["can-i", verb, resource, "-n", namespace, "--as", user];
            can_i.extend(groups.iter().flat_map(|g| ["--as-group", g]));
            let out = rampart(c, &can_i, true);
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "rampart can-i failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let rampart = out.status.code() == Some(0);
            let named = std::iter::once(format!("User {user}"))
                .chain(groups.iter().chain(&["system:authenticated"]).map(|g| format!("Group {g}")));
            let who = named.into_iter().any(|subject| who_can[i].contains(&subject));
            rows.push(format!(
                "{user:7} {verb:7} {resource:18} {namespace:10} kubectl={kubectl} who-can={who} rampart={rampart}"
            ));
            if kubectl != rampart || kubectl != who {
                disagreements.push(rows.last().cloned().unwrap_or_default());
            }
        }
    }
    assert!(rows.len() >= 30, "the table must hold at least 30 requests");
    assert!(
        disagreements.is_empty(),
        "kubectl auth can-i, rampart can-i and rampart who-can disagree:\n{}",
        disagreements.join("\n")
    );
    // The table is not trivially uniform: both answers occur, and the Cedar rules show.
    let yes = |needle: &str| rows.iter().any(|r| r.contains(needle) && r.ends_with("rampart=true"));
    assert!(yes("dana    list    configmaps"));
    assert!(!yes("dana    get     secrets            e2e-authz"));
    assert!(yes("audrey  list    pods               e2e-authz"));
    assert!(!yes("nobody"));

    // lookup: the bindings naming a subject are those `kubectl get` shows, bootstrap ones too.
    let listed = c.admin().run(&["get", "rolebindings,clusterrolebindings", "-A", "-o", "json"]).json();
    for subject in ["User carl", "Group e2e-devs", "Group system:authenticated", "Group system:masters"] {
        let (kind, name) = subject.split_once(' ').unwrap();
        let mut expected: Vec<String> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| {
                b["subjects"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s["kind"] == kind && s["name"] == name))
            })
            .map(|b| {
                let meta = &b["metadata"];
                match meta["namespace"].as_str() {
                    Some(ns) => format!("RoleBinding/{ns}/{}", meta["name"].as_str().unwrap()),
                    None => format!("ClusterRoleBinding/{}", meta["name"].as_str().unwrap()),
                }
            })
            .collect();
        let out = rampart(c, &["lookup", subject, "-o", "json"], false);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut found: Vec<String> = report["grants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["subject"] == subject)
            .map(|g| g["binding"].as_str().unwrap().to_owned())
            .collect();
        expected.sort();
        found.sort();
        found.dedup();
        assert!(!expected.is_empty(), "{subject}: the cluster binds it somewhere");
        assert_eq!(found, expected, "{subject}: rampart lookup and kubectl get disagree");
    }
}

/// `rampart` against this cluster's RBAC (and with `policies`, the running Rampart's tiers).
fn rampart(c: &crate::Cluster, args: &[&str], policies: bool) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.args(args).arg("--rbac-from-cluster").arg("--kubeconfig").arg(c.dir.join("users/admin.kubeconfig"));
    if policies {
        let tiers = c.dir.join("policies");
        cmd.arg("-p").arg(tiers.join("e2e")).arg("-p").arg(tiers.join("demo"));
    }
    cmd.output().unwrap()
}
