//! The default roles and bindings kube-apiserver creates (`kubernetes.io/bootstrapping:
//! rbac-defaults`), exactly as each supported release ships them: upstream's own golden files
//! (`data/bootstrap/v<minor>.yaml`, from k8s.io/kubernetes at that tag; `scripts/bootstrap-roles.sh`
//! regenerates and `--check`s them, and the e2e test compares the newest with what the real
//! apiserver created). cluster-admin, the aggregated admin/edit/view (filled from the
//! `system:aggregate-to-*` roles by Rampart's aggregation, as kube-controller-manager does), the
//! discovery and controller roles, and their bindings.
//!
//! The EKS access policies keep their own rule lists (`access_policies`): they are documented
//! by EKS, not derived from these roles.

use crate::manifest::World;

/// Supported releases, newest first; the first is the default.
pub const VERSIONS: [&str; 3] = ["1.36", "1.35", "1.34"];

/// The release whose defaults `--bootstrap-roles` uses unless told otherwise.
pub const DEFAULT_VERSION: &str = VERSIONS[0];

fn data(version: &str) -> Option<&'static str> {
    Some(match version {
        "1.36" => include_str!("../data/bootstrap/v1.36.yaml"),
        "1.35" => include_str!("../data/bootstrap/v1.35.yaml"),
        "1.34" => include_str!("../data/bootstrap/v1.34.yaml"),
        _ => return None,
    })
}

/// A release Rampart has no defaults for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no default RBAC objects for Kubernetes {0:?}: use one of {versions}", versions = VERSIONS.join(", "))]
pub struct UnknownVersion(pub String);

/// `1.36`, `v1.36` or `1.36.3` → `1.36`.
pub fn minor(version: &str) -> String {
    let v = version.trim_start_matches('v');
    let mut parts = v.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => v.to_string(),
    }
}

/// The default ClusterRoles, ClusterRoleBindings, Roles and RoleBindings of a release.
pub fn world(version: &str) -> Result<World, UnknownVersion> {
    let minor = minor(version);
    let text = data(&minor).ok_or_else(|| UnknownVersion(version.to_string()))?;
    let mut world = World::default();
    // The embedded data is checked by this crate's tests; a parse failure is a build defect.
    world
        .add_yaml(text, &format!("kube-apiserver v{minor} defaults"))
        .map_err(|_| UnknownVersion(version.to_string()))?;
    Ok(world)
}

impl World {
    /// Add the newest release's defaults (objects of the same name already present win, as a
    /// cluster's own customised defaults would).
    pub fn with_bootstrap(self) -> Self {
        match self.clone().with_bootstrap_version(DEFAULT_VERSION) {
            Ok(w) => w,
            Err(_) => self,
        }
    }

    /// Add a release's defaults; same-named objects already present win.
    pub fn with_bootstrap_version(mut self, version: &str) -> Result<Self, UnknownVersion> {
        let defaults = world(version)?;
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
        for r in defaults.roles {
            if !self.roles.iter().any(|x| x.name == r.name && x.namespace == r.namespace) {
                self.roles.push(r);
            }
        }
        for b in defaults.role_bindings {
            if !self.role_bindings.iter().any(|x| x.name == b.name && x.namespace == b.namespace) {
                self.role_bindings.push(b);
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Binding, RoleRef, Subject};
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
        let mut w = world(DEFAULT_VERSION).unwrap();
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
        let authz = world(DEFAULT_VERSION).unwrap().authorizer();
        let attrs =
            Attributes { verb: "get", resource_request: false, path: "/apis/apps", ..Default::default() };
        let groups = vec!["system:authenticated".to_owned()];
        assert!(authz.authorize(&User { name: "u", groups: &groups }, &attrs).allowed());
        assert!(allowed(&authz, "root", &["system:masters"], "delete", "nodes", ""));
    }

    fn edit_user(version: &str) -> crate::RbacAuthorizer {
        let mut w = world(version).unwrap();
        for role in ["edit", "admin", "view"] {
            w.role_bindings.push(Binding {
                name: format!("{role}-b"),
                namespace: "ns".into(),
                role_ref: RoleRef { kind: "ClusterRole".into(), name: role.into() },
                subjects: vec![Subject {
                    kind: "User".into(),
                    name: format!("{role}-user"),
                    namespace: String::new(),
                }],
            });
        }
        w.authorizer()
    }

    #[test]
    fn every_release_parses_and_carries_what_a_security_team_relies_on() {
        for version in VERSIONS {
            let w = world(version).unwrap();
            assert!(w.cluster_roles.len() > 60 && w.cluster_role_bindings.len() > 40, "{version}");
            let authz = edit_user(version);
            let can = |user: &str, verb: &str, group: &str, resource: &str, sub: &str| {
                let attrs = Attributes {
                    verb,
                    resource_request: true,
                    api_group: group,
                    resource,
                    subresource: sub,
                    namespace: "ns",
                    ..Default::default()
                };
                authz.authorize(&User { name: user, groups: &[] }, &attrs).allowed()
            };
            // The grants the hand-written table missed (issue #22).
            assert!(can("edit-user", "create", "", "serviceaccounts", "token"), "{version}: mint tokens");
            assert!(can("edit-user", "create", "", "pods", "eviction"), "{version}");
            assert!(can("admin-user", "create", "", "serviceaccounts", "token"), "{version}");
            assert!(can("view-user", "list", "", "pods", ""), "{version}");
            assert!(!can("view-user", "create", "", "serviceaccounts", "token"), "{version}");
            assert!(!can("view-user", "get", "", "secrets", ""), "{version}");
        }
        assert_eq!(minor("v1.36.3"), "1.36");
        assert!(world("1.20").unwrap_err().to_string().contains("use one of 1.36, 1.35, 1.34"));
    }
}
