//! Policy objects from the cluster (cedar-access-control-for-k8s's main store): a `Policy`
//! applied with kubectl decides within seconds, carries a Ready condition written by the
//! elected replica, a Policy that would not load is refused at `kubectl apply` time with the
//! Cedar error and line:col, only policy admins may write them, and a delete removes them.

use std::time::Duration;

use crate::admission::{BUILDERS, build, builder_creates_configmap};
use crate::{Cluster, eventually, shared};

const POLICY: &str = r#"apiVersion: cedar.k8s.aws/v1alpha1
kind: Policy
metadata: {name: e2e-objects-no-configmaps}
spec:
  validation: {enforced: true}
  content: |
    @id("e2e-objects-no-configmaps")
    forbid (
        principal in k8s::Group::"e2e-builders",
        action == k8s::Action::"create",
        resource is k8s::Resource
    ) when {
        resource.resource == "configmaps" && resource has namespace && resource.namespace == "e2e-objects"
    };
"#;

/// kubectl as a member of the policy-admin group (deploy/policies/rbac.yaml).
fn policy_admin(c: &Cluster, args: &[&str], stdin: &str) -> crate::Out {
    let mut all = vec!["--as=paula", "--as-group=rampart:policy-admins"];
    all.extend_from_slice(args);
    c.admin().stdin(stdin).run(&all)
}

fn builder_creates(c: &Cluster) -> Result<(), String> {
    builder_creates_configmap(c, "e2e-objects")
}

#[test]
fn policy_objects_from_the_cluster() {
    let (_gate, c) = shared();
    c.apply(BUILDERS);
    c.namespace("e2e-objects");
    builder_creates(c).unwrap();

    // Only policy admins write Policies.
    let err = build(c, &["apply", "-f", "-"], Some(POLICY)).fails();
    assert!(err.contains("forbidden"), "{err}");

    // Applied by a policy admin: decides within seconds (plus the apiserver's 10 s cache).
    policy_admin(c, &["apply", "-f", "-"], POLICY).ok();
    let err = eventually("the Policy object decides", Duration::from_secs(30), || match builder_creates(c) {
        Ok(()) => Err("still allowed".into()),
        Err(e) => Ok(e),
    });
    assert!(
        err.contains("forbidden by policy e2e-objects-no-configmaps (e2e-objects-no-configmaps:1:1)"),
        "{err}"
    );

    // Its status condition, written by the elected replica.
    let ready = eventually("the Ready condition is written", Duration::from_secs(20), || {
        let out = c
            .admin()
            .run(&["get", "policy", "e2e-objects-no-configmaps", "-o", "jsonpath={.status.conditions[0].status} {.status.conditions[0].observedGeneration} {.status.conditions[0].message}"])
            .ok();
        if out.starts_with("True 1 ") { Ok(out) } else { Err(out) }
    });
    assert!(ready.contains("1 policies loaded"), "{ready}");

    // A Policy that does not parse is refused at apply time, for every writer (system:masters
    // too), with Cedar's error and its line:col.
    let broken =
        POLICY.replace("e2e-objects-no-configmaps}", "e2e-objects-broken}").replace("forbid (", "forbid ((");
    let err = policy_admin(c, &["apply", "-f", "-"], &broken).fails();
    assert!(err.contains("denied the request: this Policy would not load"), "{err}");
    assert!(err.contains("spec.content:2:"), "{err}");
    let err = c.admin().stdin(&broken).run(&["apply", "-f", "-"]).fails();
    assert!(err.contains("this Policy would not load"), "{err}");
    // One that parses but fails strict schema validation (enforced: true) is refused too.
    let unknown = POLICY
        .replace("e2e-objects-no-configmaps}", "e2e-objects-unvalidated}")
        .replace("resource.resource ==", "resource.no_such_attribute ==");
    let err = policy_admin(c, &["apply", "-f", "-"], &unknown).fails();
    assert!(err.contains("this Policy would not load") && err.contains("no_such_attribute"), "{err}");
    // It names where, and that the object (not the server's --validation) made it an error.
    assert!(err.contains("spec.content:") && err.contains("enforced by its Policy object's"), "{err}");

    // Deleting the object removes its policies.
    policy_admin(c, &["delete", "policy", "e2e-objects-no-configmaps"], "").ok();
    eventually("the deleted Policy stops deciding", Duration::from_secs(30), || builder_creates(c));
}
