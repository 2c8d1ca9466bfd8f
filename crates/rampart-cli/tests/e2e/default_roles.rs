//! The default RBAC objects against the real control plane: what kube-apiserver v1.36 created,
//! and kube-controller-manager aggregated into admin/edit/view, is exactly Rampart's embedded
//! data for 1.36 after Rampart's own aggregation (roles with their rules in order, labels and
//! aggregation rules; bindings with their subjects). For a user bound to each default
//! ClusterRole, `kubectl auth can-i` and `rampart can-i --bootstrap-roles` agree on a sample of
//! the role's grants — every resource of every rule for the aggregated roles — and on a
//! refusal.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use rampart_rbac::manifest::World;

use crate::{eventually, exclusive};

/// Name → (labels, rules, aggregation rule) of ClusterRoles, and name → (roleRef, subjects)
/// of bindings, as comparable text.
fn shape(world: &World) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut roles = BTreeMap::new();
    for r in world.cluster_roles.iter().chain(&world.roles) {
        // In order: the aggregation controller's order is part of what must match.
        let rules: Vec<String> = r.rules.iter().map(|x| format!("{x:?}")).collect();
        let labels: BTreeMap<_, _> =
            r.labels.iter().filter(|(k, _)| !k.starts_with("kubernetes.io/metadata")).collect();
        roles.insert(
            format!("{}/{}", r.namespace, r.name),
            format!("{labels:?} {rules:?} {:?}", r.aggregation_rule),
        );
    }
    let mut bindings = BTreeMap::new();
    for b in world.cluster_role_bindings.iter().chain(&world.role_bindings) {
        let mut subjects: Vec<String> = b.subjects.iter().map(|s| format!("{s:?}")).collect();
        subjects.sort();
        bindings.insert(format!("{}/{}", b.namespace, b.name), format!("{:?} {subjects:?}", b.role_ref));
    }
    (roles, bindings)
}

#[test]
fn the_apiservers_defaults_are_the_embedded_data_and_can_i_agrees_with_kubectl() {
    // Exclusive: hundreds of impersonated SubjectAccessReviews through the apiserver and
    // Rampart's webhook would slow the other tests' requests past their timeouts.
    let (_gate, c) = exclusive();
    let version = c.admin().run(&["version", "-o", "json"]).json();
    let minor = rampart_rbac::bootstrap::minor(version["serverVersion"]["gitVersion"].as_str().unwrap());
    let embedded = rampart_rbac::bootstrap::world(&minor).unwrap();
    let mut aggregated = embedded.clone();
    rampart_rbac::aggregate::aggregate(&mut aggregated.cluster_roles);
    let (our_roles, our_bindings) = shape(&aggregated);
    let differ = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| -> Vec<String> {
        a.keys()
            .chain(b.keys())
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| format!("{k}:\n  apiserver {:?}\n  rampart   {:?}", a.get(k), b.get(k)))
            .collect()
    };
    // The controller-manager aggregates in the background: wait for its fixed point.
    eventually(&format!("the v{minor} defaults to match"), Duration::from_secs(60), || {
        let live = c
            .admin()
            .run(&[
                "get",
                "clusterroles,clusterrolebindings,roles,rolebindings",
                "-A",
                "-l",
                "kubernetes.io/bootstrapping=rbac-defaults",
                "-o",
                "yaml",
            ])
            .ok();
        let mut world = World::default();
        world.add_yaml(&live, "apiserver").map_err(|e| e.to_string())?;
        let (live_roles, live_bindings) = shape(&world);
        let (roles, bindings) = (differ(&live_roles, &our_roles), differ(&live_bindings, &our_bindings));
        if live_roles.len() < 60 {
            return Err(format!("only {} roles", live_roles.len()));
        }
        if roles.is_empty() && bindings.is_empty() {
            Ok(())
        } else {
            Err(format!("drift:\n{}\n{}", roles.join("\n"), bindings.join("\n")))
        }
    });
    let admin_rules =
        aggregated.cluster_roles.iter().find(|r| r.name == "admin").map_or(0, |r| r.rules.len());
    assert!(admin_rules > 20, "admin has {admin_rules} rules after aggregation");

    // kubectl and rampart on users bound to every default ClusterRole with rules.
    let sample_roles: Vec<String> =
        aggregated.cluster_roles.iter().filter(|r| !r.rules.is_empty()).map(|r| r.name.clone()).collect();
    for role in ["admin", "edit", "view", "cluster-admin"] {
        assert!(sample_roles.iter().any(|r| r == role), "{role} is not sampled");
    }
    assert!(sample_roles.len() > 50, "{} roles", sample_roles.len());
    let bindings: String = sample_roles
        .iter()
        .map(|r| {
            let user = format!("e2e-default-{}", r.replace(':', "-"));
            format!("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {user}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: \"{r}\"}}\nsubjects: [{{kind: User, name: {user}, apiGroup: rbac.authorization.k8s.io}}]\n---\n")
        })
        .collect();
    c.apply(&bindings);
    let rbac = c.dir.join("default-role-bindings.yaml");
    std::fs::write(&rbac, &bindings).unwrap();
    let authz = embedded.authorizer();
    let mut asked = 0;
    let mut disagree = Vec::new();
    for role in &sample_roles {
        let user = format!("e2e-default-{}", role.replace(':', "-"));
        let aggregated_role = authz.cluster_role(role).unwrap();
        // The aggregated roles are what audits ask about (who may mint tokens, evict pods, …):
        // every resource of every rule. The others: the first grant of four rules.
        let per_role = if aggregated_role.aggregation_rule.is_some() { usize::MAX } else { 4 };
        let mut questions: Vec<(String, String, String)> = aggregated_role
            .rules
            .iter()
            .filter(|r| r.resource_names.is_empty() && r.non_resource_urls.is_empty())
            .flat_map(|r| {
                let (verb, group) = (r.verbs.first().cloned(), r.api_groups.first().cloned());
                let take = if per_role == usize::MAX { r.resources.len() } else { 1 };
                r.resources
                    .iter()
                    .take(take)
                    .filter_map(move |res| Some((verb.clone()?, res.clone(), group.clone()?)))
            })
            .filter(|(v, res, g)| v != "*" && !res.contains('*') && g != "*")
            .take(per_role)
            .collect();
        questions.push(("delete".into(), "nodes".into(), String::new()));
        for (verb, resource, group) in questions {
            let (plural, sub) = resource.split_once('/').map_or((resource.as_str(), ""), |(r, s)| (r, s));
            let typed = if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") };
            let mut kubectl = vec!["auth", "can-i", verb.as_str(), typed.as_str(), "--as", user.as_str()];
            if !sub.is_empty() {
                kubectl.extend(["--subresource", sub]);
            }
            let answer = c.admin().run(&kubectl);
            // A resource this apiserver does not serve (a beta API off by default, such as
            // leasecandidates): kubectl cannot resolve it and answers for another resource.
            if answer.stderr.contains("doesn't have a resource type") {
                continue;
            }
            let theirs = answer.stdout.trim().to_string();
            let arg = if sub.is_empty() { typed.clone() } else { format!("{typed}/{sub}") };
            let ours = Command::new(env!("CARGO_BIN_EXE_rampart"))
                .args([
                    "can-i",
                    &verb,
                    &arg,
                    "--as",
                    &user,
                    "--rbac",
                    rbac.to_str().unwrap(),
                    "--bootstrap-roles",
                    "--kubernetes-version",
                    &minor,
                ])
                .output()
                .unwrap();
            let ours = String::from_utf8_lossy(&ours.stdout).lines().next().unwrap_or_default().to_string();
            asked += 1;
            if ours != theirs {
                disagree.push(format!("{user}: {verb} {arg}: kubectl {theirs:?}, rampart {ours:?}"));
            }
        }
    }
    assert!(asked > 400, "{asked} questions");
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));

    // The audit question the aggregated roles answer, read from the live cluster: who may mint
    // service-account tokens, evict pods or take leases — edit and admin users may, view users
    // may not.
    for (verb, resource) in [
        ("create", "serviceaccounts/token"),
        ("create", "pods/eviction"),
        ("update", "leases.coordination.k8s.io"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["who-can", verb, resource, "-n", "default", "-o", "json", "--rbac-from-cluster"])
            .arg("--kubeconfig")
            .arg(c.dir.join("users/admin.kubeconfig"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let subjects: Vec<&str> =
            rows.as_array().unwrap().iter().filter_map(|r| r["subject"].as_str()).collect();
        let listed = |user: &str| subjects.iter().any(|s| s.contains(user));
        assert!(
            listed("e2e-default-admin") && listed("e2e-default-edit") && !listed("e2e-default-view"),
            "who-can {verb} {resource}: {subjects:?}"
        );
    }
}
