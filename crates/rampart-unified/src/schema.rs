//! The unified schema: one action per verb, one resource type per API group, resource and
//! subresource, each carrying the request's attributes and, where the verb has them, the new
//! object (`object`) and the stored one (`oldObject`), typed as the admission kinds of the
//! embedded Kubernetes schema.

use std::sync::LazyLock;

use cedar_policy::Schema;

use crate::UnifiedError;

/// One resource the unified model knows: where it lives and the kind of its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceKind {
    /// API group (`""` for core).
    pub group: &'static str,
    pub version: &'static str,
    /// Plural resource name.
    pub resource: &'static str,
    /// Subresource (`""` for the resource itself).
    pub subresource: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// The Cedar type of its objects in the Kubernetes schema.
    pub kind: &'static str,
    /// The resource's own Cedar type, e.g. `apps::deployments_scale`: the group's namespace
    /// and the resource, `_` and the subresource. Written out rather than formatted so that
    /// requests never build it (a test checks each against the rule).
    pub cedar_type: &'static str,
}

impl ResourceKind {
    /// The Cedar namespace of its group: `core` for the core group, else the group's first
    /// label (`apps`, `batch`, `rbac` for `rbac.authorization.k8s.io`), as the Kubernetes
    /// schema names its kinds.
    pub fn group_namespace(&self) -> &'static str {
        if self.group.is_empty() { "core" } else { self.group.split('.').next().unwrap_or(self.group) }
    }

    /// The resource's own Cedar type, e.g. `apps::deployments_scale`.
    pub fn type_name(&self) -> &'static str {
        self.cedar_type
    }

    /// The resource's index in [`RESOURCES`], for tables built once per kind.
    pub fn index(&self) -> Option<usize> {
        RESOURCES
            .iter()
            .position(|r| std::ptr::eq(r, self))
            .or_else(|| RESOURCES.iter().position(|r| r == self))
    }
}

const fn rk(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    subresource: &'static str,
    namespaced: bool,
    kind: &'static str,
    cedar_type: &'static str,
) -> ResourceKind {
    ResourceKind { group, version, resource, subresource, namespaced, kind, cedar_type }
}

/// The resources unified policies can name. A request for any other resource is outside the
/// unified tier (it answers NoOpinion and the next tier decides).
pub static RESOURCES: &[ResourceKind] = &[
    rk("", "v1", "configmaps", "", true, "core::v1::ConfigMap", "core::configmaps"),
    rk("", "v1", "secrets", "", true, "core::v1::Secret", "core::secrets"),
    rk("", "v1", "pods", "", true, "core::v1::Pod", "core::pods"),
    rk("", "v1", "pods", "status", true, "core::v1::Pod", "core::pods_status"),
    rk("", "v1", "services", "", true, "core::v1::Service", "core::services"),
    rk("", "v1", "serviceaccounts", "", true, "core::v1::ServiceAccount", "core::serviceaccounts"),
    rk("", "v1", "namespaces", "", false, "core::v1::Namespace", "core::namespaces"),
    rk("", "v1", "nodes", "", false, "core::v1::Node", "core::nodes"),
    rk("apps", "v1", "deployments", "", true, "apps::v1::Deployment", "apps::deployments"),
    rk("apps", "v1", "deployments", "scale", true, "autoscaling::v1::Scale", "apps::deployments_scale"),
    rk("apps", "v1", "statefulsets", "", true, "apps::v1::StatefulSet", "apps::statefulsets"),
    rk("apps", "v1", "statefulsets", "scale", true, "autoscaling::v1::Scale", "apps::statefulsets_scale"),
    rk("apps", "v1", "daemonsets", "", true, "apps::v1::DaemonSet", "apps::daemonsets"),
    rk("apps", "v1", "replicasets", "", true, "apps::v1::ReplicaSet", "apps::replicasets"),
    rk("batch", "v1", "jobs", "", true, "batch::v1::Job", "batch::jobs"),
    rk("batch", "v1", "cronjobs", "", true, "batch::v1::CronJob", "batch::cronjobs"),
    rk("rbac.authorization.k8s.io", "v1", "roles", "", true, "rbac::v1::Role", "rbac::roles"),
    rk(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "",
        true,
        "rbac::v1::RoleBinding",
        "rbac::rolebindings",
    ),
    rk(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "",
        false,
        "rbac::v1::ClusterRole",
        "rbac::clusterroles",
    ),
    rk(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "",
        false,
        "rbac::v1::ClusterRoleBinding",
        "rbac::clusterrolebindings",
    ),
    rk(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "",
        true,
        "networking::v1::NetworkPolicy",
        "networking::networkpolicies",
    ),
    rk("networking.k8s.io", "v1", "ingresses", "", true, "networking::v1::Ingress", "networking::ingresses"),
];

/// The resource kind of a request, if the unified model knows it.
pub fn resource_kind(group: &str, resource: &str, subresource: &str) -> Option<&'static ResourceKind> {
    RESOURCES.iter().find(|r| r.group == group && r.resource == resource && r.subresource == subresource)
}

/// The Kubernetes verbs, one action each.
pub const VERBS: &[&str] =
    &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "connect"];

/// The namespace of the unified actions: `k8s::unified::Action::"create"`.
pub const ACTION_NAMESPACE: &str = "k8s::unified";

/// The schema fragment the unified tier adds to the embedded Kubernetes schema.
pub fn fragment() -> String {
    let mut by_namespace: std::collections::BTreeMap<&str, Vec<&ResourceKind>> = Default::default();
    for r in RESOURCES {
        by_namespace.entry(r.group_namespace()).or_default().push(r);
    }
    let mut out = String::new();
    for (namespace, resources) in &by_namespace {
        out.push_str(&format!("namespace {namespace} {{\n"));
        for r in resources {
            let local = r.type_name().rsplit("::").next().unwrap_or(r.type_name());
            out.push_str(&format!(
                "\t@doc(\"{}{}{}\")\n\tentity {local} = {{\n\t\t\"apiGroup\": __cedar::String,\n\t\t\"resource\": __cedar::String,\n\t\t\"subresource\": __cedar::String,\n\t\t\"namespace\"?: __cedar::String,\n\t\t\"name\"?: __cedar::String,\n\t\t\"object\"?: {kind},\n\t\t\"oldObject\"?: {kind}\n\t}};\n",
                if r.group.is_empty() { String::new() } else { format!("{}/", r.group) },
                r.resource,
                if r.subresource.is_empty() { String::new() } else { format!("/{}", r.subresource) },
                kind = r.kind,
            ));
        }
        out.push_str("}\n");
    }
    let resources: Vec<&str> = RESOURCES.iter().map(ResourceKind::type_name).collect();
    out.push_str(&format!("namespace {ACTION_NAMESPACE} {{\n"));
    for verb in VERBS {
        out.push_str(&format!(
            "\taction \"{verb}\" appliesTo {{\n\t\tprincipal: [k8s::User, k8s::ServiceAccount, k8s::Node],\n\t\tresource: [{}],\n\t\tcontext: {{}}\n\t}};\n",
            resources.join(", ")
        ));
    }
    out.push_str("}\n");
    out
}

/// The whole unified schema text: the embedded Kubernetes schema plus [`fragment`], as
/// `rampart schema --unified` prints it.
pub fn schema_text() -> String {
    format!("{}\n{}", rampart_policy::schema::K8S_SCHEMA, fragment())
}

static SCHEMA: LazyLock<Result<Schema, String>> = LazyLock::new(|| {
    Schema::from_cedarschema_str(&schema_text()).map(|(s, _)| s).map_err(|e| format!("{e:?}"))
});

/// The parsed unified schema (parsed once).
pub fn schema() -> Result<&'static Schema, UnifiedError> {
    SCHEMA.as_ref().map_err(|e| UnifiedError::Schema(e.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parses_and_names_each_resource_once() {
        let schema = schema().unwrap();
        let types: Vec<String> = schema.entity_types().map(ToString::to_string).collect();
        for t in ["core::configmaps", "core::pods_status", "apps::deployments_scale", "rbac::clusterroles"] {
            assert_eq!(types.iter().filter(|x| *x == t).count(), 1, "{t}");
        }
        let actions: Vec<String> = schema.actions().map(ToString::to_string).collect();
        for verb in VERBS {
            assert!(
                actions.contains(&format!("{ACTION_NAMESPACE}::Action::\"{verb}\"")),
                "{verb}: {actions:?}"
            );
        }
    }

    #[test]
    fn each_cedar_type_follows_the_naming_rule() {
        for r in RESOURCES {
            let local = if r.subresource.is_empty() {
                r.resource.to_owned()
            } else {
                format!("{}_{}", r.resource, r.subresource)
            };
            assert_eq!(r.cedar_type, format!("{}::{local}", r.group_namespace()));
            assert_eq!(r.index().map(|i| &RESOURCES[i]), Some(r));
        }
        let copy = RESOURCES[3];
        assert_eq!(copy.index(), Some(3), "a copy is found by value");
    }

    #[test]
    fn lookups_distinguish_subresources() {
        assert_eq!(resource_kind("apps", "deployments", "scale").unwrap().kind, "autoscaling::v1::Scale");
        assert_eq!(resource_kind("apps", "deployments", "").unwrap().kind, "apps::v1::Deployment");
        assert!(resource_kind("", "configmaps", "status").is_none());
    }
}
