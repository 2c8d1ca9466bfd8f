//! Shared fixtures for the engine benchmarks: a synthetic policy set shaped like converted
//! RBAC plus a few cluster-wide guards, and one request to which a handful apply.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

use std::str::FromStr;

use cedar_policy::PolicySet;
use rampart_policy::document::{DocumentKind, parse_document};
use rampart_policy::{Engine, EngineOptions};
use rampart_types::sar;

/// `n` policies: per-team permits and forbids keyed on a group, verb and resource type, plus
/// three global policies that apply to every request.
pub fn policy_text(n: usize) -> String {
    let mut text = String::from(
        "forbid (principal, action, resource is k8s::Resource) when { resource.resource == \"secrets\" && !(resource has namespace) };\n\
         permit (principal in k8s::Group::\"system:authenticated\", action == k8s::Action::\"get\", resource is k8s::NonResourceURL);\n\
         forbid (principal, action == k8s::Action::\"delete\", resource is k8s::Resource) when { resource has namespace && resource.namespace == \"kube-system\" };\n",
    );
    let verbs = ["get", "list", "watch", "create", "update", "patch", "delete"];
    for i in 3..n {
        let verb = verbs[i % verbs.len()];
        let effect = if i % 10 == 0 { "forbid" } else { "permit" };
        text.push_str(&format!(
            "{effect} (principal in k8s::Group::\"team-{t}\", action == k8s::Action::\"{verb}\", resource is k8s::Resource) \
             when {{ resource has namespace && resource.namespace == \"ns-{t}\" && resource.resource == \"pods\" }};\n",
            t = i / verbs.len()
        ));
    }
    text
}

pub fn engine(n: usize) -> Engine {
    let policies = parse_document(&DocumentKind::Memory { name: "bench".into() }, &policy_text(n)).unwrap();
    Engine::new(vec![("bench".into(), policies)], EngineOptions::default()).unwrap()
}

pub fn plain_set(n: usize) -> PolicySet {
    PolicySet::from_str(&policy_text(n)).unwrap()
}

/// A `get pods` by a member of team-1 (and two unrelated groups).
pub const SAR: &str = r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{
  "user":"alice","uid":"u-1","groups":["team-1","other","system:authenticated"],
  "extra":{"authentication.kubernetes.io/pod-name":["p"]},
  "resourceAttributes":{"verb":"get","group":"","version":"v1","resource":"pods","namespace":"ns-1","name":"web-0"}}}"#;

pub fn spec() -> sar::SubjectAccessReviewSpec {
    sar::decode(SAR.as_bytes()).unwrap().spec
}
