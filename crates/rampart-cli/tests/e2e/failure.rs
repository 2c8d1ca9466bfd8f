//! Scenario 6: failure and recovery. Policy edits reach kubectl within the reload interval; a
//! half-written or emptied file never drops a forbid; with Rampart stopped the control plane
//! and system:masters keep working while other users get the documented failure policy
//! (denied); with Rampart back, normal answers return.

use std::time::Duration;

use crate::admission::{BUILDERS, builder_creates_configmap};
use crate::{Cluster, eventually, exclusive};

const FORBID: &str = r#"// Written by tests/e2e/failure.rs.
@id("e2e-failure-no-configmaps")
forbid (
    principal in k8s::Group::"e2e-builders",
    action == k8s::Action::"create",
    resource is k8s::Resource
) when {
    resource.resource == "configmaps" && resource has namespace && resource.namespace == "e2e-failure"
};
"#;

fn builder_creates(c: &Cluster) -> Result<(), String> {
    builder_creates_configmap(c, "e2e-failure")
}

const NODE: &str = "apiVersion: v1\nkind: Node\nmetadata: {name: e2e-node}\n";

fn lease(name: &str, namespace: &str) -> String {
    format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {{holderIdentity: {name}, leaseDurationSeconds: 40, renewTime: '{}'}}\n",
        "2026-01-01T00:00:00.000000Z"
    )
}

fn event(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Event\nmetadata: {{name: {name}, namespace: e2e-failure}}\ninvolvedObject: {{kind: Pod, name: web, namespace: e2e-failure}}\nreason: Scheduled\nmessage: e2e\ntype: Normal\n"
    )
}

#[test]
fn policy_edits_outages_and_recovery_through_kubectl() {
    let (_gate, c) = exclusive();
    c.apply(BUILDERS);
    c.namespace("e2e-failure");
    builder_creates(c).unwrap();
    let file = c.policies().join("failure.cedar");

    // A policy edit takes effect within the reload interval (plus the apiserver's 10 s cache).
    std::fs::write(&file, FORBID).unwrap();
    let err = eventually("the new forbid applies", Duration::from_secs(30), || match builder_creates(c) {
        Ok(()) => Err("still allowed".into()),
        Err(e) => Ok(e),
    });
    assert!(err.contains("forbidden by policy e2e-failure-no-configmaps (failure.cedar:2:1)"), "{err}");

    // A half-written file does not parse: the previous policies keep serving.
    std::fs::write(&file, &FORBID[..FORBID.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(builder_creates(c).is_err(), "a half-written file must not drop the forbid");

    // An emptied file parses as nothing: the reload is refused, reported, and the forbid stays.
    std::fs::write(&file, "").unwrap();
    let ready = eventually("the refusal is reported", Duration::from_secs(10), || {
        let ready = c.rampart_get("/readyz");
        if ready.contains("refused") { Ok(ready) } else { Err(ready) }
    });
    assert!(ready.contains("failure.cedar"), "{ready}");
    assert!(c.rampart_get("/metrics").contains("rampart_policy_reloads_total{result=\"refused\"}"));
    std::thread::sleep(Duration::from_secs(11));
    assert!(builder_creates(c).is_err(), "an emptied file must not drop the forbid");

    // Deleting the file on purpose removes the forbid.
    std::fs::remove_file(&file).unwrap();
    eventually("the forbid is gone", Duration::from_secs(30), || builder_creates(c));

    // Rampart stops (and is started again even if an assertion below fails, so the tests
    // waiting for the control plane find it whole).
    c.script("rampart-stop");
    let _restart = RestartOnDrop(c);
    // system:masters: authorization and admission both bypass Rampart.
    c.admin().run(&["get", "namespaces"]).ok();
    c.admin().run(&["create", "configmap", "during-outage", "-n", "e2e-failure"]).ok();
    // A node registers, heartbeats its lease and writes events (Node authorizer, NodeRestriction).
    c.user("node").stdin(NODE).run(&["create", "-f", "-"]).ok();
    c.user("node").stdin(&lease("e2e-node", "kube-node-lease")).run(&["apply", "-f", "-"]).ok();
    c.user("node").run(&["get", "node", "e2e-node"]).ok();
    // The scheduler and the controller manager: leader-election leases, reads, events.
    c.user("kube-scheduler").stdin(&lease("kube-scheduler", "kube-system")).run(&["create", "-f", "-"]).ok();
    c.user("kube-scheduler").run(&["get", "pods", "-A"]).ok();
    c.user("kube-scheduler").stdin(&event("scheduled-during-outage")).run(&["create", "-f", "-"]).ok();
    c.user("kube-controller-manager")
        .stdin(&lease("kube-controller-manager", "kube-system"))
        .run(&["create", "-f", "-"])
        .ok();
    c.user("kube-controller-manager")
        .stdin(&event("controller-during-outage"))
        .run(&["create", "-f", "-"])
        .ok();
    // Everyone else: refused. Authorization fails closed (failurePolicy Deny) once the
    // apiserver's cached allow expires; a request still allowed from that cache meets the
    // validating webhook, which fails closed too (failurePolicy Fail).
    let err = eventually("other users are refused", Duration::from_secs(30), || match builder_creates(c) {
        Ok(()) => Err("still allowed".into()),
        Err(e) => Ok(e),
    });
    assert!(
        err.contains("forbidden")
            || err.contains("failed calling webhook \"vpolicy.rampart.dev\"")
            || err.contains("failed calling webhook \"unified.rampart.dev\""),
        "{err}"
    );

    // Rampart is back: normal answers return.
    drop(_restart);
    eventually("normal answers return", Duration::from_secs(30), || builder_creates(c));
    c.admin().run(&["delete", "node", "e2e-node"]).ok();

    // A revoked permission: the live sources keep their last good state (requests are still
    // answered), and /readyz and the metrics say which source is stale until it is restored.
    c.admin().run(&["delete", "clusterrolebinding", "rampart"]).ok();
    let ready = eventually("the stale source is reported", Duration::from_secs(20), || {
        let ready = c.rampart_get("/readyz");
        if ready.contains("namespaces from the cluster is stale") { Ok(ready) } else { Err(ready) }
    });
    assert!(ready.contains("forbidden") || ready.contains("403"), "{ready}");
    assert!(c.rampart_get("/metrics").contains("rampart_live_source_errors_total{source=\"namespaces\"}"));
    builder_creates(c).unwrap();
    let bootstrap = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/cluster/bootstrap.yaml");
    c.admin().run(&["apply", "-f", bootstrap.to_str().unwrap()]).ok();
    eventually("the source recovers", Duration::from_secs(20), || {
        let ready = c.rampart_get("/readyz");
        if ready.contains("stale") { Err(ready) } else { Ok(()) }
    });
}

/// Starts Rampart again when dropped, unless it already serves.
struct RestartOnDrop<'a>(&'a Cluster);

impl Drop for RestartOnDrop<'_> {
    fn drop(&mut self) {
        if !self.0.rampart_get("/healthz").starts_with("ok") {
            self.0.script("rampart-start");
        }
    }
}
