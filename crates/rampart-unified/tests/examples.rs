//! The issue's examples, each through both phases: what authorization answers without the
//! objects, and what admission answers with them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use rampart_policy::entities::principal::UserInfoRef;
use rampart_unified::request::Attributes;
use rampart_unified::schema::resource_kind;
use rampart_unified::selector::Selection;
use rampart_unified::{Outcome, UnifiedTier};
use serde_json::{Value, json};

const POLICIES: &str = r#"
@id("devs-configmaps")
permit (
  principal in k8s::Group::"devs",
  action in [k8s::unified::Action::"create", k8s::unified::Action::"update", k8s::unified::Action::"patch", k8s::unified::Action::"delete"],
  resource is core::configmaps
) when { resource has namespace && resource.namespace == "dev" };

@id("no-prod-configmaps")
forbid (
  principal in k8s::Group::"devs",
  action in [k8s::unified::Action::"create", k8s::unified::Action::"update", k8s::unified::Action::"patch"],
  resource is core::configmaps
) when {
  resource has object && resource.object has metadata && resource.object.metadata has name &&
  resource.object.metadata.name like "prod*"
};

@id("team-a-deployments")
permit (
  principal in k8s::Group::"team-a",
  action in [k8s::unified::Action::"create", k8s::unified::Action::"update", k8s::unified::Action::"patch"],
  resource is apps::deployments
) when {
  resource has object && resource.object has metadata && resource.object.metadata has labels &&
  resource.object.metadata.labels.contains({"key": "team", "value": "a"}) &&
  (if resource has oldObject then
    resource.oldObject has metadata && resource.oldObject.metadata has labels &&
    resource.oldObject.metadata.labels.contains({"key": "team", "value": "a"})
   else true)
};

@id("deployer-scale")
permit (
  principal in k8s::Group::"deployers",
  action in [k8s::unified::Action::"update", k8s::unified::Action::"patch"],
  resource is apps::deployments_scale
) when {
  resource has object && resource.object has spec && resource.object.spec has replicas &&
  resource.object.spec.replicas <= 20
};

@id("node-own-pod-status")
permit (
  principal is k8s::Node,
  action in [k8s::unified::Action::"update", k8s::unified::Action::"patch"],
  resource is core::pods_status
) when {
  resource has oldObject && resource.oldObject has spec && resource.oldObject.spec has nodeName &&
  resource.oldObject.spec.nodeName == principal.name
};

@id("protected-configmaps")
forbid (
  principal,
  action in [k8s::unified::Action::"update", k8s::unified::Action::"patch", k8s::unified::Action::"delete"],
  resource is core::configmaps
) when {
  resource has oldObject && resource.oldObject has metadata && resource.oldObject.metadata has annotations &&
  resource.oldObject.metadata.annotations.contains({"key": "protected", "value": "true"})
} unless { principal in k8s::Group::"platform-admins" };
"#;

fn tier() -> UnifiedTier {
    UnifiedTier::load(POLICIES, "unified.cedar").unwrap()
}

struct Req {
    user: &'static str,
    groups: Vec<String>,
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    namespace: &'static str,
    name: &'static str,
}

fn req(
    user: &'static str,
    groups: &[&str],
    verb: &'static str,
    resource: (&'static str, &'static str, &'static str),
) -> Req {
    Req {
        user,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        verb,
        group: resource.0,
        resource: resource.1,
        subresource: resource.2,
        namespace: "dev",
        name: "",
    }
}

impl Req {
    fn attributes(&self) -> Attributes<'_> {
        Attributes {
            user: UserInfoRef { username: self.user, uid: "", groups: &self.groups, extra: None },
            verb: self.verb,
            kind: resource_kind(self.group, self.resource, self.subresource).unwrap(),
            namespace: self.namespace,
            name: self.name,
        }
    }
    fn in_namespace(mut self, namespace: &'static str) -> Self {
        self.namespace = namespace;
        self
    }
    fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }
    fn authorize(&self) -> Outcome {
        tier().explain(&self.attributes()).unwrap()
    }
    fn admit(&self, object: Option<Value>, old: Option<Value>) -> Outcome {
        tier().admit(&self.attributes(), object.as_ref(), old.as_ref()).unwrap()
    }
}

const CONFIGMAPS: (&str, &str, &str) = ("", "configmaps", "");
const DEPLOYMENTS: (&str, &str, &str) = ("apps", "deployments", "");

fn allowed(o: &Outcome) -> bool {
    matches!(o, Outcome::Allow { .. })
}
fn denied_by(o: &Outcome, policy: &str) -> bool {
    matches!(o, Outcome::Deny { policies } if policies.iter().any(|p| p == policy))
}

fn configmap(name: &str, annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "dev", "annotations": annotations}, "data": {"k": "v"}})
}

#[test]
fn devs_create_configmaps_in_dev_unless_named_prod() {
    let create = req("dev-1", &["devs"], "create", CONFIGMAPS);
    // Authorization cannot know the name: the forbid may still apply.
    assert!(
        matches!(create.authorize(), Outcome::Conditional { ref residuals, .. } if residuals.iter().any(|r| r.contains("prod*")))
    );
    assert!(allowed(&create.admit(Some(configmap("app", json!({}))), None)));
    assert!(denied_by(&create.admit(Some(configmap("prod-db", json!({}))), None), "no-prod-configmaps"));
    // generateName: by admission the apiserver has filled metadata.name.
    let generated = json!({"metadata": {"generateName": "prod-", "name": "prod-x7k2q", "namespace": "dev"}});
    assert!(denied_by(&create.admit(Some(generated), None), "no-prod-configmaps"));
    // Outside dev the permit cannot hold; the forbid still might, so admission decides, and
    // with a harmless name nothing applies: the next tier (RBAC) decides.
    let elsewhere = req("dev-1", &["devs"], "create", CONFIGMAPS).in_namespace("prod");
    assert!(matches!(elsewhere.authorize(), Outcome::Conditional { .. }));
    assert_eq!(elsewhere.admit(Some(configmap("app", json!({}))), None), Outcome::NoOpinion);
    // Delete carries no new object: decided at authorization.
    let delete = req("dev-1", &["devs"], "delete", CONFIGMAPS).named("app");
    assert!(
        matches!(delete.authorize(), Outcome::Conditional { .. }),
        "the protected forbid reads the stored object"
    );
    assert!(allowed(&delete.admit(None, Some(configmap("app", json!({}))))));
}

#[test]
fn team_a_deployments_keep_their_label() {
    let deployment =
        |team: &str| json!({"metadata": {"name": "web", "labels": {"team": team}}, "spec": {"replicas": 1}});
    let create = req("a-1", &["team-a"], "create", DEPLOYMENTS);
    assert!(matches!(create.authorize(), Outcome::Conditional { .. }));
    assert!(allowed(&create.admit(Some(deployment("a")), None)));
    assert_eq!(create.admit(Some(deployment("b")), None), Outcome::NoOpinion);
    let update = req("a-1", &["team-a"], "update", DEPLOYMENTS).named("web");
    assert!(allowed(&update.admit(Some(deployment("a")), Some(deployment("a")))), "a → a");
    assert_eq!(update.admit(Some(deployment("a")), Some(deployment("b"))), Outcome::NoOpinion, "b → a");
    assert_eq!(update.admit(Some(deployment("b")), Some(deployment("a"))), Outcome::NoOpinion, "a → b");
}

#[test]
fn deployers_scale_to_twenty_at_most() {
    let scale = |n: i64| json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": n}});
    let patch = req("ci", &["deployers"], "patch", ("apps", "deployments", "scale")).named("web");
    assert!(matches!(patch.authorize(), Outcome::Conditional { .. }));
    assert!(allowed(&patch.admit(Some(scale(20)), Some(scale(3)))));
    assert_eq!(patch.admit(Some(scale(21)), Some(scale(3))), Outcome::NoOpinion);
}

#[test]
fn a_node_patches_only_its_own_pods_status() {
    let pod = |node: &str| json!({"metadata": {"name": "p"}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}});
    let patch = req("system:node:node-1", &["system:nodes"], "patch", ("", "pods", "status")).named("p");
    assert!(matches!(patch.authorize(), Outcome::Conditional { .. }));
    assert!(allowed(&patch.admit(Some(pod("node-1")), Some(pod("node-1")))));
    assert_eq!(patch.admit(Some(pod("node-1")), Some(pod("node-2"))), Outcome::NoOpinion);
}

#[test]
fn protected_configmaps_change_only_by_platform_admins() {
    let protected = configmap("settings", json!({"protected": "true"}));
    let update = req("dev-1", &["devs"], "update", CONFIGMAPS).named("settings");
    assert!(denied_by(
        &update.admit(Some(configmap("settings", json!({}))), Some(protected.clone())),
        "protected-configmaps"
    ));
    let admin = req("root", &["platform-admins"], "update", CONFIGMAPS).named("settings");
    // Platform admins are outside the forbid whatever the object. Cedar's partial evaluation
    // keeps `… && false` as a residual (the left side might error), so authorization may
    // still say Conditional; admission then finds nothing applies.
    assert!(matches!(admin.authorize(), Outcome::NoOpinion | Outcome::Conditional { .. }));
    assert_eq!(admin.admit(Some(configmap("settings", json!({}))), Some(protected)), Outcome::NoOpinion);
}

#[test]
fn reads_and_deletecollection_are_never_conditional() {
    for verb in ["get", "list", "watch", "deletecollection"] {
        let r = req("dev-1", &["devs"], verb, CONFIGMAPS);
        let outcome = r.authorize();
        assert!(!matches!(outcome, Outcome::Conditional { .. }), "{verb}: {outcome:?}");
    }
}

#[test]
fn update_without_patch_is_refused_at_load_with_its_position() {
    let text =
        "\n\npermit (principal, action == k8s::unified::Action::\"update\", resource is core::configmaps);";
    let err = UnifiedTier::load(text, "u.cedar").unwrap_err().to_string();
    assert!(err.starts_with("u.cedar:3:1: names update without patch"), "{err}");
}

#[test]
fn policies_that_do_not_validate_are_refused() {
    let text = "permit (principal, action == k8s::unified::Action::\"get\", resource is core::configmaps) when { resource.name == \"x\" };";
    let err = UnifiedTier::load(text, "u.cedar").unwrap_err().to_string();
    assert!(err.contains("u.cedar:1:1") && err.contains("unified schema"), "{err}");
}

#[test]
fn the_readme_unified_examples_load() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```cedar\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default())
        .filter(|block| block.contains("k8s::unified::"))
        .collect();
    assert!(!blocks.is_empty(), "the README's unified example was found");
    for block in blocks {
        UnifiedTier::load(block, "README.md").unwrap_or_else(|e| panic!("{e}\n{block}"));
    }
}

#[test]
fn a_forbid_that_can_error_is_refused_at_load() {
    let text = "permit (principal, action, resource);\nforbid (principal, action == k8s::unified::Action::\"create\", resource is apps::deployments_scale)\nwhen { resource has object && resource.object has spec && resource.object.spec has replicas && resource.object.spec.replicas + 1 > 21 };";
    let err = UnifiedTier::load(text, "u.cedar").unwrap_err().to_string();
    assert!(err.starts_with("u.cedar:2:1: this forbid can error (`+`"), "{err}");
}

#[test]
fn a_list_is_allowed_only_when_its_selector_proves_the_policies() {
    let text = r#"
@id("team-a-secrets")
permit (principal in k8s::Group::"team-a",
        action in [k8s::unified::Action::"list", k8s::unified::Action::"watch"],
        resource is core::secrets)
when { resource has namespace && resource.namespace == "shared" &&
       resource has oldObject && resource.oldObject has metadata && resource.oldObject.metadata has labels &&
       resource.oldObject.metadata.labels.contains({"key": "team", "value": "a"}) };

@id("no-restricted-secrets")
forbid (principal, action in [k8s::unified::Action::"list", k8s::unified::Action::"watch"],
        resource is core::secrets)
when { resource has oldObject && resource.oldObject has metadata && resource.oldObject.metadata has labels &&
       resource.oldObject.metadata.labels.contains({"key": "tier", "value": "restricted"}) };
"#;
    let tier = UnifiedTier::load(text, "secrets.cedar").unwrap();
    let groups = vec!["team-a".to_owned()];
    let a = Attributes {
        user: UserInfoRef { username: "a-1", uid: "", groups: &groups, extra: None },
        verb: "list",
        kind: resource_kind("", "secrets", "").unwrap(),
        namespace: "shared",
        name: "",
    };
    let requirement = |key: &str, operator: &str, value: &str| rampart_types::sar::LabelSelectorRequirement {
        key: key.into(),
        operator: operator.into(),
        values: Some(vec![value.into()]),
    };
    let team_a = requirement("team", "In", "a");
    let not_restricted = requirement("tier", "NotIn", "restricted");
    // -l team=a,tier!=restricted: every object it can return satisfies the permit, none the forbid.
    assert_eq!(
        tier.authorize_selected(&a, labels(&[team_a.clone(), not_restricted.clone()])).unwrap(),
        Outcome::Allow { policies: vec!["team-a-secrets".into()] }
    );
    // -l team=a alone: a restricted secret may be among them.
    assert_eq!(
        tier.authorize_selected(&a, labels(&[team_a])).unwrap(),
        Outcome::Deny { policies: vec!["no-restricted-secrets".into()] }
    );
    // Without a selector the forbid may hold: denied, never conditional.
    assert!(matches!(tier.authorize(&a).unwrap(), Outcome::Deny { .. }));
    // -l tier!=restricted alone proves nothing about team: no opinion.
    assert_eq!(tier.authorize_selected(&a, labels(&[not_restricted])).unwrap(), Outcome::NoOpinion);
}

fn labels(labels: &[rampart_types::sar::LabelSelectorRequirement]) -> Selection<'_> {
    Selection { labels, fields: &[] }
}

#[test]
fn a_node_lists_only_its_own_pods_by_field_selector() {
    let text = r#"
@id("node-own-pods")
permit (principal is k8s::Node,
        action in [k8s::unified::Action::"list", k8s::unified::Action::"watch"],
        resource is core::pods)
when { resource has oldObject && resource.oldObject has spec && resource.oldObject.spec has nodeName &&
       resource.oldObject.spec.nodeName == principal.name };
"#;
    let tier = UnifiedTier::load(text, "nodes.cedar").unwrap();
    let groups = vec!["system:nodes".to_owned()];
    let a = Attributes {
        user: UserInfoRef { username: "system:node:node-1", uid: "", groups: &groups, extra: None },
        verb: "list",
        kind: resource_kind("", "pods", "").unwrap(),
        namespace: "",
        name: "",
    };
    let node = |operator: &str, value: &str| rampart_types::sar::FieldSelectorRequirement {
        key: "spec.nodeName".into(),
        operator: operator.into(),
        values: Some(vec![value.into()]),
    };
    let fields = |f: &[rampart_types::sar::FieldSelectorRequirement]| -> Outcome {
        tier.authorize_selected(&a, Selection { labels: &[], fields: f }).unwrap()
    };
    // --field-selector spec.nodeName=node-1: only its own pods.
    assert_eq!(fields(&[node("In", "node-1")]), Outcome::Allow { policies: vec!["node-own-pods".into()] });
    // Another node's pods, all pods, or "not node-2": not proven.
    assert_eq!(fields(&[node("In", "node-2")]), Outcome::NoOpinion);
    assert_eq!(fields(&[node("NotIn", "node-2")]), Outcome::NoOpinion);
    assert_eq!(tier.authorize(&a).unwrap(), Outcome::NoOpinion);
}
