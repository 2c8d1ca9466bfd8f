//! Scenario 1: the seed talk's demo through kubectl. sample-user (client certificate, groups
//! sample-group and requires-labels) meets the upstream demo's `label-enforcement-policy`; every
//! denial kubectl prints names the deciding policy.

use crate::shared;

const ROLE: &str = "
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: demo-configmap-reader, namespace: default}
rules: [{apiGroups: [''], resources: [configmaps], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: demo-configmap-reader, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: demo-configmap-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: sample-user}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: demo-other-config, namespace: default, labels: {owner: some-user}}
data: {greeting: hello}
";

#[test]
fn the_talks_demo_through_kubectl() {
    // Exclusive: the other demo test applies and deletes the same objects in `default`.
    let (_gate, c) = crate::exclusive();
    // kubectl label and edit read the object first: RBAC grants sample-user `get` (the demo's
    // policy permits only create, list, watch, update, patch and delete).
    c.apply(ROLE);
    let user = || c.user("sample-user");

    // 1. A list without the owner label selector: the authorization forbid.
    let err = user().run(&["get", "configmaps", "-n", "default"]).fails();
    assert!(
        err.contains("cannot list resource \"configmaps\"")
            && err.contains("forbidden by policy label-enforcement-policy1 (label-enforcement-policy:21:1)"),
        "{err}"
    );
    assert!(!err.contains("\"reasons\""), "the denial must read as text, not JSON: {err}");

    // 2. The same list with -l owner=sample-user is allowed.
    user().run(&["get", "configmaps", "-n", "default", "-l", "owner=sample-user"]).ok();

    // 3. Create without an owner label: the admission forbid.
    let err = user().run(&["create", "configmap", "demo-sample-config", "-n", "default"]).fails();
    assert!(
        err.contains("admission webhook \"vpolicy.rampart.dev\" denied the request")
            && err.contains("label-enforcement-policy2 (label-enforcement-policy:34:1)"),
        "{err}"
    );

    // 4. Create with the owner label: allowed, and stored.
    let own = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo-sample-config, namespace: default, labels: {owner: sample-user}}\ndata: {greeting: hello}\n";
    user().stdin(own).run(&["create", "-f", "-"]).ok();
    c.admin().run(&["get", "configmap", "demo-sample-config", "-n", "default"]).ok();

    // 5. Labelling someone else's object to take it over: the oldObject forbid.
    let err = user()
        .run(&[
            "label",
            "configmap",
            "demo-other-config",
            "-n",
            "default",
            "owner=sample-user",
            "--overwrite",
        ])
        .fails();
    assert!(err.contains("label-enforcement-policy3 (label-enforcement-policy:46:1)"), "{err}");

    // 6. kubectl edit of someone else's object (the editor is a sed script): refused too.
    let err = user()
        .env("KUBE_EDITOR", "sed -i s/hello/bye/")
        .run(&["edit", "configmap", "demo-other-config", "-n", "default"])
        .fails();
    assert!(err.contains("label-enforcement-policy"), "{err}");

    // 7. Editing one's own object is allowed.
    user()
        .env("KUBE_EDITOR", "sed -i s/hello/bye/")
        .run(&["edit", "configmap", "demo-sample-config", "-n", "default"])
        .ok();
    let data = c
        .admin()
        .run(&["get", "configmap", "demo-sample-config", "-n", "default", "-o", "jsonpath={.data.greeting}"])
        .ok();
    assert_eq!(data, "bye");
    c.admin().run(&["delete", "configmap", "demo-sample-config", "demo-other-config", "-n", "default"]).ok();
}

#[test]
fn rampart_demo_runs_against_the_real_cluster() {
    let (_gate, c) = shared();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["demo", "--kubeconfig"])
        .arg(c.dir.join("users/admin.kubeconfig"))
        .args(["--namespace", "default"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Every request was decided as in the talk."), "{stdout}");
    assert!(stdout.contains("label-enforcement-policy1"), "{stdout}");
}
