//! The default roles and bindings kube-apiserver creates (`kubernetes.io/bootstrapping:
//! rbac-defaults`): cluster-admin, the aggregated admin/edit/view, and the discovery roles.
//!
//! admin/edit/view are built as upstream builds them — empty ClusterRoles aggregating
//! `system:aggregate-to-{admin,edit,view}` — with the rules of the spec's edit/view tables (the
//! same rows the EKS Edit/View access policies list). Clusters that customised their defaults
//! should load their own objects instead (`--rbac-from-cluster`).

use std::collections::BTreeMap;

use crate::access_policies::{edit_rules, rule, view_rules};
use crate::manifest::World;
use crate::model::{AggregationRule, Binding, LabelSelector, PolicyRule, Role, RoleRef, Subject};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    out.insert("kubernetes.io/bootstrapping".into(), "rbac-defaults".into());
    out
}

fn cluster_role(name: &str, label_pairs: &[(&str, &str)], rules: Vec<PolicyRule>) -> Role {
    Role { name: name.into(), labels: labels(label_pairs), rules, ..Default::default() }
}

fn aggregated(name: &str, label_pairs: &[(&str, &str)], selector_label: &str) -> Role {
    Role {
        name: name.into(),
        labels: labels(label_pairs),
        rules: vec![],
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: vec![LabelSelector {
                match_labels: BTreeMap::from([(selector_label.to_owned(), "true".to_owned())]),
                ..Default::default()
            }],
        }),
        ..Default::default()
    }
}

fn urls(verbs: &[&str], urls: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        non_resource_urls: urls.iter().map(|u| (*u).to_owned()).collect(),
        ..Default::default()
    }
}

fn binding(name: &str, role: &str, groups: &[&str]) -> Binding {
    Binding {
        name: name.into(),
        namespace: String::new(),
        role_ref: RoleRef { kind: "ClusterRole".into(), name: role.into() },
        subjects: groups
            .iter()
            .map(|g| Subject { kind: "Group".into(), name: (*g).to_owned(), namespace: String::new() })
            .collect(),
    }
}

/// The bootstrap ClusterRoles and ClusterRoleBindings.
pub fn world() -> World {
    const AGG_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
    const AGG_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
    const AGG_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";
    let view = view_rules();
    let edit_only: Vec<PolicyRule> = edit_rules().into_iter().filter(|r| !view.contains(r)).collect();
    let cluster_roles = vec![
        cluster_role("cluster-admin", &[], vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])]),
        aggregated("admin", &[], AGG_ADMIN),
        aggregated("edit", &[(AGG_ADMIN, "true")], AGG_EDIT),
        aggregated("view", &[(AGG_EDIT, "true")], AGG_VIEW),
        cluster_role(
            "system:aggregate-to-admin",
            &[(AGG_ADMIN, "true")],
            vec![
                rule(
                    &["rbac.authorization.k8s.io"],
                    &["roles", "rolebindings"],
                    &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                ),
                rule(&["authorization.k8s.io"], &["localsubjectaccessreviews"], &["create"]),
            ],
        ),
        cluster_role("system:aggregate-to-edit", &[(AGG_EDIT, "true")], edit_only),
        cluster_role("system:aggregate-to-view", &[(AGG_VIEW, "true")], view),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                rule(&["authentication.k8s.io"], &["selfsubjectreviews"], &["create"]),
            ],
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![urls(&["get"], &["/healthz", "/livez", "/readyz", "/version", "/version/"])],
        ),
    ];
    World {
        cluster_roles,
        roles: vec![],
        cluster_role_bindings: vec![
            binding("cluster-admin", "cluster-admin", &["system:masters"]),
            binding("system:basic-user", "system:basic-user", &["system:authenticated"]),
            binding("system:discovery", "system:discovery", &["system:authenticated"]),
            binding(
                "system:public-info-viewer",
                "system:public-info-viewer",
                &["system:authenticated", "system:unauthenticated"],
            ),
        ],
        role_bindings: vec![],
    }
}

impl World {
    /// Add the bootstrap roles and bindings (objects of the same name already present win, as
    /// a cluster's own customised defaults would).
    pub fn with_bootstrap(mut self) -> Self {
        let defaults = world();
        for r in defaults.cluster_roles {
            if !self.cluster_roles.iter().any(|x| x.name == r.name) {
                self.cluster_roles.push(r);
            }
        }
        for b in defaults.cluster_role_bindings {
            if !self.cluster_role_bindings.iter().any(|x| x.name == b.name) {
                self.cluster_role_bindings.push(b);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attributes, User};

    fn allowed(
        world: &crate::RbacAuthorizer,
        user: &str,
        groups: &[&str],
        verb: &str,
        resource: &str,
        ns: &str,
    ) -> bool {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        let attrs =
            Attributes { verb, resource_request: true, resource, namespace: ns, ..Default::default() };
        world.authorize(&User { name: user, groups: &groups }, &attrs).allowed()
    }

    #[test]
    fn aggregation_nests_view_in_edit_in_admin() {
        let mut w = world();
        w.role_bindings = ["admin", "edit", "view"]
            .iter()
            .map(|r| Binding {
                name: format!("{r}-b"),
                namespace: "ns".into(),
                role_ref: RoleRef { kind: "ClusterRole".into(), name: (*r).into() },
                subjects: vec![Subject {
                    kind: "User".into(),
                    name: format!("{r}-user"),
                    namespace: String::new(),
                }],
            })
            .collect();
        let authz = w.authorizer();
        assert!(allowed(&authz, "view-user", &[], "list", "pods", "ns"));
        assert!(!allowed(&authz, "view-user", &[], "get", "secrets", "ns"));
        assert!(allowed(&authz, "edit-user", &[], "get", "secrets", "ns"));
        let roles = |user: &str| {
            let attrs = Attributes {
                verb: "create",
                resource_request: true,
                api_group: "rbac.authorization.k8s.io",
                resource: "roles",
                namespace: "ns",
                ..Default::default()
            };
            authz.authorize(&User { name: user, groups: &[] }, &attrs).allowed()
        };
        assert!(roles("admin-user") && !roles("edit-user"));
        assert!(allowed(&authz, "admin-user", &[], "list", "pods", "ns"));
        assert!(!allowed(&authz, "edit-user", &[], "list", "pods", "other"));
        let admin = authz.cluster_role("admin").unwrap();
        let edit = authz.cluster_role("edit").unwrap();
        assert!(edit.rules.iter().all(|r| admin.rules.contains(r)));
    }

    #[test]
    fn discovery_and_masters() {
        let authz = world().authorizer();
        let attrs =
            Attributes { verb: "get", resource_request: false, path: "/apis/apps", ..Default::default() };
        let groups = vec!["system:authenticated".to_owned()];
        assert!(authz.authorize(&User { name: "u", groups: &groups }, &attrs).allowed());
        assert!(allowed(&authz, "root", &["system:masters"], "delete", "nodes", ""));
    }
}
