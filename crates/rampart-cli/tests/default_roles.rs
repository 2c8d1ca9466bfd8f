//! The default roles through `rampart can-i`: for every default ClusterRole of the newest
//! release (aggregated ones with their aggregated rules), a user bound to it is asked every
//! (verb, resource) the role grants — each must be "yes" — and a sample it does not grant —
//! "no". e2e/default_roles.rs asks `kubectl auth can-i` the same on the real control plane.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

/// `(role, verb, can-i resource argument)` for every grant of every default ClusterRole that
/// `can-i` can name (no resourceNames, no wildcards), and the number of rules left out.
pub fn grants() -> (Vec<(String, String, String)>, usize) {
    let world = rampart_rbac::bootstrap::world(rampart_rbac::bootstrap::DEFAULT_VERSION).unwrap();
    let names: Vec<String> = world.cluster_roles.iter().map(|r| r.name.clone()).collect();
    let authz = world.authorizer();
    let mut out = Vec::new();
    let mut left_out = 0;
    for name in names {
        let role = authz.cluster_role(&name).unwrap();
        for rule in &role.rules {
            if !rule.resource_names.is_empty() || !rule.non_resource_urls.is_empty() {
                left_out += 1;
                continue;
            }
            let Some(group) = rule.api_groups.first().filter(|g| *g != "*") else {
                left_out += 1;
                continue;
            };
            for resource in rule.resources.iter().filter(|r| !r.contains('*')) {
                let (plural, sub) =
                    resource.split_once('/').map_or((resource.as_str(), None), |(r, s)| (r, Some(s)));
                let mut arg = if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") };
                if let Some(sub) = sub {
                    arg = format!("{arg}/{sub}");
                }
                for verb in rule.verbs.iter().filter(|v| *v != "*") {
                    out.push((name.clone(), verb.clone(), arg.clone()));
                }
            }
        }
    }
    (out, left_out)
}

fn user(role: &str) -> String {
    format!("u-{}", role.replace(':', "-"))
}

#[test]
fn can_i_says_yes_to_every_grant_of_every_default_role_and_no_beyond() {
    let (grants, left_out) = grants();
    assert!(grants.len() > 500, "{} grants", grants.len());
    let dir = tempfile::tempdir().unwrap();
    let rbac = dir.path().join("bindings.yaml");
    let mut roles: Vec<&str> = grants.iter().map(|(r, _, _)| r.as_str()).collect();
    roles.dedup();
    let bindings: String = roles
        .iter()
        .map(|r| {
            format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: sweep-{}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: \"{r}\"}}\nsubjects: [{{kind: User, name: {}, apiGroup: rbac.authorization.k8s.io}}]\n---\n",
                user(r),
                user(r)
            )
        })
        .collect();
    std::fs::write(&rbac, bindings).unwrap();
    let can_i = |verb: &str, resource: &str, who: &str| {
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args([
                "can-i",
                verb,
                resource,
                "--as",
                who,
                "--rbac",
                rbac.to_str().unwrap(),
                "--bootstrap-roles",
            ])
            .output()
            .unwrap()
    };
    // Two thousand processes: four at a time.
    let wrong: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = grants
            .chunks(grants.len().div_ceil(4))
            .map(|chunk| {
                let can_i = &can_i;
                scope.spawn(move || {
                    let mut wrong = Vec::new();
                    for (role, verb, resource) in chunk {
                        let out = can_i(verb, resource, &user(role));
                        if out.status.code() != Some(0) {
                            wrong.push(format!(
                                "{role}: can-i {verb} {resource} → {:?} {}{}",
                                out.status.code(),
                                String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default(),
                                String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or_default()
                            ));
                        }
                    }
                    wrong
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert!(
        wrong.is_empty(),
        "{} of {} grants answered otherwise (left out {left_out} rules with names, URLs or wildcards):\n{}",
        wrong.len(),
        grants.len(),
        wrong.join("\n")
    );
    // And what none of them grant a plain user: a sample of refusals.
    for (verb, resource, role) in [
        ("delete", "nodes", "view"),
        ("create", "serviceaccounts/token", "view"),
        ("get", "secrets", "view"),
        ("escalate", "clusterroles.rbac.authorization.k8s.io", "admin"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", "edit"),
        ("update", "nodes/status", "system:node-proxier"),
    ] {
        let out = can_i(verb, resource, &user(role));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{role} must not {verb} {resource}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// The audit question the hand-written table got wrong: who can mint service-account tokens.
#[test]
fn who_can_lists_the_editors_who_can_mint_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let rbac = dir.path().join("edit.yaml");
    std::fs::write(
        &rbac,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: devs-edit, namespace: team}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\nsubjects: [{kind: Group, name: devs, apiGroup: rbac.authorization.k8s.io}]\n",
    )
    .unwrap();
    for version in rampart_rbac::bootstrap::VERSIONS {
        let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args([
                "who-can",
                "create",
                "serviceaccounts/token",
                "-n",
                "team",
                "--rbac",
                rbac.to_str().unwrap(),
            ])
            .args(["--bootstrap-roles", "--kubernetes-version", version])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Group devs") && text.contains("RoleBinding/team/devs-edit"),
            "{version}: {text}"
        );
    }
}
