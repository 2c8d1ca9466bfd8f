//! Unified policies (e2e/cluster/unified): one policy per intent, decided partly when the
//! apiserver authorizes and finished when it admits, seen as kubectl shows it. No RBAC grants
//! these users anything: every allow comes from a unified permit.

use crate::{Cluster, shared};

fn kubectl_as(c: &Cluster, user: &str, group: &str, args: &[&str], stdin: Option<&str>) -> crate::Out {
    let as_user = format!("--as={user}");
    let as_group = format!("--as-group={group}");
    let mut all = vec![as_user.as_str(), as_group.as_str()];
    all.extend_from_slice(args);
    match stdin {
        Some(text) => c.admin().stdin(text).run(&all),
        None => c.admin().run(&all),
    }
}

/// What kubectl prints for a unified denial. Both of Rampart's validating webhooks finish a
/// conditional answer (the unified one exists for the requests the general one skips), so
/// either may be the one named.
const DENIED: &str = "denied the request: denied by unified policy";

fn deployment(name: &str, team: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: e2e-unified, labels: {{team: {team}}}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n      - {{name: app, image: registry.k8s.io/pause:3.10}}\n"
    )
}

#[test]
fn one_policy_decides_at_authorization_and_admission() {
    let (_gate, c) = shared();
    c.namespace("e2e-unified");
    let dev = |args: &[&str], stdin: Option<&str>| kubectl_as(c, "dev-1", "e2e-devs", args, stdin);

    // kubectl auth can-i sees the emulation's "yes": the create is allowed on condition.
    assert_eq!(dev(&["auth", "can-i", "create", "configmaps", "-n", "e2e-unified"], None).ok().trim(), "yes");
    assert_eq!(
        dev(&["auth", "can-i", "create", "configmaps", "-n", "e2e-elsewhere"], None).stdout.trim(),
        "no"
    );

    // The condition is finished at admission with the object.
    dev(&["create", "configmap", "app", "-n", "e2e-unified"], None).ok();
    let err = dev(&["create", "configmap", "prod-db", "-n", "e2e-unified"], None).fails();
    assert!(
        err.contains(&format!(
            "{DENIED} e2e-no-prod-configmaps: prod ConfigMaps are written by the release pipeline only"
        )),
        "{err}"
    );
    // generateName: the name is only known at admission.
    let generated =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: prod-, namespace: e2e-unified}\n";
    let err = dev(&["create", "-f", "-"], Some(generated)).fails();
    assert!(err.contains("e2e-no-prod-configmaps"), "{err}");

    // A protected ConfigMap: devs cannot change or delete it, platform admins can.
    let admin = |args: &[&str]| kubectl_as(c, "root-1", "e2e-platform-admins", args, None);
    admin(&["create", "configmap", "locked", "-n", "e2e-unified"]).ok();
    admin(&["annotate", "configmap", "locked", "-n", "e2e-unified", "protected=true"]).ok();
    let err = dev(&["label", "configmap", "locked", "-n", "e2e-unified", "x=y"], None).fails();
    assert!(
        err.contains(&format!("{DENIED} e2e-protected-configmaps: this ConfigMap is protected")),
        "{err}"
    );
    let err = dev(&["delete", "configmap", "locked", "-n", "e2e-unified"], None).fails();
    assert!(err.contains("e2e-protected-configmaps"), "{err}");
    admin(&["label", "configmap", "locked", "-n", "e2e-unified", "x=y"]).ok();
    admin(&["delete", "configmap", "locked", "-n", "e2e-unified"]).ok();

    // Team a: Deployments must carry team=a when created and before and after every change.
    let team_a = |args: &[&str], stdin: Option<&str>| kubectl_as(c, "a-1", "e2e-team-a", args, stdin);
    let err = team_a(&["create", "-f", "-"], Some(&deployment("web-b", "b"))).fails();
    assert!(err.contains("denied the request"), "{err}");
    team_a(&["create", "-f", "-"], Some(&deployment("web", "a"))).ok();
    team_a(&["label", "deployment", "web", "-n", "e2e-unified", "tier=front"], None).ok();
    let err =
        team_a(&["label", "deployment", "web", "-n", "e2e-unified", "team=b", "--overwrite"], None).fails();
    assert!(err.contains("denied the request"), "{err}");

    // Lists are answered at authorization: only a label selector that proves the permit and
    // refutes the forbid for every secret it can return is allowed (the apiserver sends the
    // selector in the SubjectAccessReview).
    team_a(&["get", "secrets", "-n", "e2e-unified", "-l", "team=a,tier!=restricted"], None).ok();
    let err = team_a(&["get", "secrets", "-n", "e2e-unified", "-l", "team=a"], None).fails();
    assert!(err.contains("denied by unified policy e2e-no-restricted-secrets"), "{err}");
    let err = team_a(&["get", "secrets", "-n", "e2e-unified"], None).fails();
    assert!(err.contains("forbidden"), "{err}");

    // A field selector proves a condition on a field: a node agent lists only the pods on its
    // own node.
    let agent = |args: &[&str]| kubectl_as(c, "e2e-node-1", "e2e-node-agents", args, None);
    agent(&["get", "pods", "-A", "--field-selector", "spec.nodeName=e2e-node-1"]).ok();
    for selector in [&["--field-selector", "spec.nodeName=e2e-node-2"][..], &[]] {
        let err = agent(&[&["get", "pods", "-A"][..], selector].concat()).fails();
        assert!(err.contains("forbidden"), "{err}");
    }

    // A deployer scales, to at most 20 replicas.
    let deployer = |args: &[&str]| kubectl_as(c, "deployer-1", "e2e-deployers", args, None);
    deployer(&["scale", "deployment", "web", "-n", "e2e-unified", "--replicas=5"]).ok();
    let err = deployer(&["scale", "deployment", "web", "-n", "e2e-unified", "--replicas=30"]).fails();
    assert!(err.contains("denied the request"), "{err}");
    let replicas = c
        .admin()
        .run(&["get", "deployment", "web", "-n", "e2e-unified", "-o", "jsonpath={.spec.replicas}"])
        .ok();
    assert_eq!(replicas.trim(), "5");
}
