//! RBAC as a tier of the engine, before or after the Cedar tiers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use rampart_policy::store::{PolicySources, Validation};
use rampart_policy::{Engine, EngineOptions};
use rampart_types::{Decision, sar};

const RBAC: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n\
rules: [{apiGroups: [''], resources: [pods, secrets], verbs: [get, list]}]\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: readers}\n\
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}\nsubjects: [{kind: Group, name: devs}]\n";

const CEDAR: &str =
    "forbid (principal, action, resource is k8s::Resource) when { resource.resource == \"secrets\" };";

fn engine(rbac_first: bool) -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cedar")).unwrap();
    std::fs::write(dir.path().join("cedar/p.cedar"), CEDAR).unwrap();
    std::fs::write(dir.path().join("rbac.yaml"), RBAC).unwrap();
    let mut sources = PolicySources::new(vec![dir.path().join("cedar")], EngineOptions::default());
    sources.validation = Validation::Off;
    sources.rbac = vec![dir.path().join("rbac.yaml")];
    sources.rbac_first = rbac_first;
    (sources.load().unwrap().engine, dir)
}

fn ask(engine: &Engine, resource: &str) -> (Decision, String, Option<String>) {
    let body = format!(
        r#"{{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{{"user":"alice","groups":["devs"],
        "resourceAttributes":{{"verb":"get","version":"v1","resource":"{resource}","namespace":"default","name":"x"}}}}}}"#
    );
    let v = engine.authorize(&sar::decode(body.as_bytes()).unwrap().spec);
    (v.decision, v.reason, v.tier)
}

#[test]
fn rbac_after_cedar_cedar_forbids_win() {
    let (engine, _dir) = engine(false);
    let (d, reason, tier) = ask(&engine, "pods");
    assert_eq!(d, Decision::Allow);
    assert_eq!(
        reason,
        r#"RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "reader" to Group "devs""#
    );
    assert_eq!(tier.as_deref(), Some("rbac"));
    assert_eq!(ask(&engine, "secrets").0, Decision::Deny);
    assert_eq!(ask(&engine, "configmaps").0, Decision::NoOpinion);
}

#[test]
fn rbac_first_grants_win() {
    let (engine, _dir) = engine(true);
    assert_eq!(ask(&engine, "secrets").0, Decision::Allow);
    assert_eq!(ask(&engine, "configmaps").0, Decision::NoOpinion);
}

#[test]
fn eks_access_policies_are_an_allow_only_tier() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cedar")).unwrap();
    std::fs::write(dir.path().join("cedar/p.cedar"), CEDAR).unwrap();
    std::fs::write(
        dir.path().join("entries.yaml"),
        "accessEntries:\n- principalArn: arn:aws:iam::111122223333:role/dev\n  username: alice\n  accessPolicies:\n\
         \x20 - policyArn: arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy\n    accessScope: {type: namespace, namespaces: [def*]}\n",
    )
    .unwrap();
    let mut sources = PolicySources::new(vec![dir.path().join("cedar")], EngineOptions::default());
    sources.validation = Validation::Off;
    sources.access_entries = Some(dir.path().join("entries.yaml"));
    let engine = sources.load().unwrap().engine;
    let (d, reason, tier) = ask(&engine, "configmaps");
    assert_eq!(d, Decision::Allow);
    assert!(reason.contains("AmazonEKSEditPolicy"), "{reason}");
    assert_eq!(tier.as_deref(), Some("eks-access-policies"));
    // Cedar still forbids secrets before the access-policy tier.
    assert_eq!(ask(&engine, "secrets").0, Decision::Deny);
}
