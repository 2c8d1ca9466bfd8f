//! Loading RBAC objects from Kubernetes manifests: multi-document YAML (or JSON), `List` kinds,
//! `kubectl get roles,rolebindings,clusterroles,clusterrolebindings -A -o yaml` output.

use serde::Deserialize;
use serde_yaml::Value;

use crate::RbacAuthorizer;
use crate::model::{AggregationRule, Binding, PolicyRule, Role, RoleRef, Subject};

/// RBAC objects in lister order.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub roles: Vec<Role>,
    pub cluster_roles: Vec<Role>,
    pub role_bindings: Vec<Binding>,
    pub cluster_role_bindings: Vec<Binding>,
}

/// A manifest that could not be read, with its location.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ManifestError {
    pub location: String,
    pub message: String,
}

fn field<T: serde::de::DeserializeOwned + Default>(
    v: &Value,
    key: &str,
    location: &str,
) -> Result<T, ManifestError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(T::default()),
        Some(x) => serde_yaml::from_value(x.clone())
            .map_err(|e| ManifestError { location: location.to_owned(), message: format!("{key}: {e}") }),
    }
}

fn meta(v: &Value, key: &str) -> String {
    v.get("metadata").and_then(|m| m.get(key)).and_then(Value::as_str).unwrap_or_default().to_owned()
}

impl World {
    /// Add every RBAC object of a YAML text; other kinds are skipped.
    pub fn add_yaml(&mut self, text: &str, source: &str) -> Result<(), ManifestError> {
        for (n, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let location = format!("{source} (document {})", n + 1);
            let value = Value::deserialize(doc)
                .map_err(|e| ManifestError { location: location.clone(), message: e.to_string() })?;
            let items = match value.get("items").and_then(Value::as_sequence) {
                Some(items) => items.clone(),
                None => vec![value],
            };
            for item in items {
                self.add_object(&item, &location)?;
            }
        }
        Ok(())
    }

    fn add_object(&mut self, v: &Value, location: &str) -> Result<(), ManifestError> {
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
        let location = format!("{location} {kind} {:?}", meta(v, "name"));
        match kind {
            "Role" | "ClusterRole" => {
                let role = Role {
                    name: meta(v, "name"),
                    namespace: if kind == "Role" { meta(v, "namespace") } else { String::new() },
                    labels: v
                        .get("metadata")
                        .map(|m| field(m, "labels", &location))
                        .transpose()?
                        .unwrap_or_default(),
                    rules: field::<Vec<PolicyRule>>(v, "rules", &location)?,
                    aggregation_rule: field::<Option<AggregationRule>>(v, "aggregationRule", &location)?,
                };
                if kind == "Role" { self.roles.push(role) } else { self.cluster_roles.push(role) }
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                let binding = Binding {
                    name: meta(v, "name"),
                    namespace: if kind == "RoleBinding" { meta(v, "namespace") } else { String::new() },
                    role_ref: field::<RoleRef>(v, "roleRef", &location)?,
                    subjects: field::<Vec<Subject>>(v, "subjects", &location)?,
                };
                if kind == "RoleBinding" {
                    self.role_bindings.push(binding)
                } else {
                    self.cluster_role_bindings.push(binding)
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Read every `.yaml`/`.yml`/`.json` file under `paths` (directories recursively, in name
    /// order).
    pub fn from_paths(paths: &[std::path::PathBuf]) -> Result<Self, ManifestError> {
        let mut world = World::default();
        let mut stack: Vec<std::path::PathBuf> = paths.iter().rev().cloned().collect();
        while let Some(p) = stack.pop() {
            let io = |e: std::io::Error| ManifestError {
                location: p.display().to_string(),
                message: e.to_string(),
            };
            if p.is_dir() {
                let mut entries: Vec<std::path::PathBuf> = std::fs::read_dir(&p)
                    .map_err(io)?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|e| {
                        e.is_dir()
                            || matches!(e.extension().and_then(|x| x.to_str()), Some("yaml" | "yml" | "json"))
                    })
                    .collect();
                entries.sort();
                stack.extend(entries.into_iter().rev());
            } else {
                let text = std::fs::read_to_string(&p).map_err(io)?;
                world.add_yaml(&text, &p.display().to_string())?;
            }
        }
        Ok(world)
    }

    /// Build the authorizer (aggregating ClusterRoles).
    pub fn authorizer(self) -> RbacAuthorizer {
        RbacAuthorizer::new(self.roles, self.cluster_roles, self.role_bindings, self.cluster_role_bindings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attributes, User};

    #[test]
    fn reads_kubectl_output() {
        let yaml = r#"
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: reader, labels: {a: b}}
  rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: rb, namespace: dev}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}
  subjects: [{kind: ServiceAccount, name: app}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
"#;
        let mut world = World::default();
        world.add_yaml(yaml, "rbac.yaml").unwrap();
        let authz = world.authorizer();
        let groups = vec![];
        let d = authz.authorize(
            &User { name: "system:serviceaccount:dev:app", groups: &groups },
            &Attributes {
                verb: "get",
                resource_request: true,
                resource: "pods",
                namespace: "dev",
                ..Default::default()
            },
        );
        assert_eq!(
            d.reason(),
            r#"RBAC: allowed by RoleBinding "rb/dev" of ClusterRole "reader" to ServiceAccount "app/dev""#
        );
        let bad = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: n}\nrules: 7\n";
        let err = World::default().add_yaml(bad, "bad.yaml").unwrap_err();
        assert!(err.to_string().contains("rules"), "{err}");
    }
}
