//! The default RBAC objects against the real apiserver: what kube-apiserver v1.36 created is
//! exactly Rampart's embedded data for 1.36 (roles with their rules, labels and aggregation
//! rules; bindings with their subjects), and for a user bound to each default role that has
//! rules of its own `kubectl auth can-i` and `rampart can-i --bootstrap-roles` agree on a
//! sample of the role's grants and on a refusal. admin/edit/view are left to the offline sweep (tests/default_roles.rs): without a
//! controller-manager nothing aggregates them here, so the apiserver sees them empty.

use std::collections::BTreeMap;
use std::process::Command;

use rampart_rbac::manifest::World;

use crate::exclusive;

/// Name → (labels, rules, aggregation rule) of ClusterRoles, and name → (roleRef, subjects)
/// of bindings, as comparable text.
fn shape(world: &World) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut roles = BTreeMap::new();
    for r in world.cluster_roles.iter().chain(&world.roles) {
        let mut rules: Vec<String> = r.rules.iter().map(|x| format!("{x:?}")).collect();
        rules.sort();
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
    world.add_yaml(&live, "apiserver").unwrap();
    let version = c.admin().run(&["version", "-o", "json"]).json();
    let minor = rampart_rbac::bootstrap::minor(version["serverVersion"]["gitVersion"].as_str().unwrap());
    let embedded = rampart_rbac::bootstrap::world(&minor).unwrap();
    let ((live_roles, live_bindings), (our_roles, our_bindings)) = (shape(&world), shape(&embedded));
    let differ = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| -> Vec<String> {
        a.keys()
            .chain(b.keys())
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| format!("{k}:\n  apiserver {:?}\n  rampart   {:?}", a.get(k), b.get(k)))
            .collect()
    };
    let (roles, bindings) = (differ(&live_roles, &our_roles), differ(&live_bindings, &our_bindings));
    assert!(live_roles.len() > 60, "{} roles", live_roles.len());
    assert!(
        roles.is_empty() && bindings.is_empty(),
        "v{minor} defaults drift:\n{}\n{}",
        roles.join("\n"),
        bindings.join("\n")
    );

    // kubectl and rampart on users bound to default roles that carry their own rules.
    // Every default ClusterRole that carries rules of its own (admin/edit/view are empty here).
    let sample_roles: Vec<String> = embedded
        .cluster_roles
        .iter()
        .filter(|r| r.aggregation_rule.is_none() && !r.rules.is_empty())
        .map(|r| r.name.clone())
        .collect();
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
        let rules = &authz.cluster_role(role).unwrap().rules;
        let mut questions: Vec<(String, String, String)> = rules
            .iter()
            .filter(|r| r.resource_names.is_empty() && r.non_resource_urls.is_empty())
            .filter_map(|r| {
                Some((r.verbs.first()?.clone(), r.resources.first()?.clone(), r.api_groups.first()?.clone()))
            })
            .filter(|(v, res, g)| v != "*" && !res.contains('*') && g != "*")
            .take(4)
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
    assert!(asked > 200, "{asked} questions");
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}
