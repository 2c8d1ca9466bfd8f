//! The Cedar type and action names of the Kubernetes model, parsed once.

use std::str::FromStr;

use cedar_policy::{EntityTypeName, EntityUid};

use crate::EntityError;
use crate::entities::uid;

/// Entity type names used by the mapping (namespace `k8s` and `k8s::admission`).
#[derive(Debug, Clone)]
pub struct Names {
    pub user: EntityTypeName,
    pub group: EntityTypeName,
    pub service_account: EntityTypeName,
    pub node: EntityTypeName,
    pub extra: EntityTypeName,
    pub principal_uid: EntityTypeName,
    pub resource: EntityTypeName,
    pub non_resource_url: EntityTypeName,
    pub action: EntityTypeName,
    pub admission_action: EntityTypeName,
}

fn type_name(s: &str) -> Result<EntityTypeName, EntityError> {
    EntityTypeName::from_str(s).map_err(|_| EntityError::TypeName(s.to_owned()))
}

impl Names {
    pub fn new() -> Result<Self, EntityError> {
        Ok(Names {
            user: type_name("k8s::User")?,
            group: type_name("k8s::Group")?,
            service_account: type_name("k8s::ServiceAccount")?,
            node: type_name("k8s::Node")?,
            extra: type_name("k8s::Extra")?,
            principal_uid: type_name("k8s::PrincipalUID")?,
            resource: type_name("k8s::Resource")?,
            non_resource_url: type_name("k8s::NonResourceURL")?,
            action: type_name("k8s::Action")?,
            admission_action: type_name("k8s::admission::Action")?,
        })
    }

    /// `k8s::Action::"<verb>"`.
    pub fn verb(&self, verb: &str) -> EntityUid {
        uid(&self.action, verb)
    }

    /// `k8s::admission::Action::"<op>"`.
    pub fn admission(&self, op: &str) -> EntityUid {
        uid(&self.admission_action, op)
    }
}

/// The Cedar namespace for an API group, as the schema generator names it:
/// `""` → `core`; `apps` → `apps`; `rbac.authorization.k8s.io` → `rbac`;
/// `cedar.k8s.aws` → `aws::k8s::cedar`; `-` becomes `_`.
///
/// The Go webhook used the raw group (`rbac.authorization.k8s.io::v1::Role`), which no policy
/// can name, so forbids on dotted groups silently never matched (Appendix A #2).
pub fn group_namespace(group: &str) -> String {
    if group.is_empty() {
        return "core".to_owned();
    }
    if !group.contains('.') {
        return group.replace('-', "_");
    }
    if let Some(first) = group.strip_suffix(".k8s.io").and_then(|g| g.split('.').next()) {
        return first.replace('-', "_");
    }
    group.split('.').rev().map(|l| l.replace('-', "_")).collect::<Vec<_>>().join("::")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_namespaces_match_the_schema_generator() {
        assert_eq!(group_namespace(""), "core");
        assert_eq!(group_namespace("apps"), "apps");
        assert_eq!(group_namespace("rbac.authorization.k8s.io"), "rbac");
        assert_eq!(group_namespace("flowcontrol.apiserver.k8s.io"), "flowcontrol");
        assert_eq!(group_namespace("networking.k8s.io"), "networking");
        assert_eq!(group_namespace("cedar.k8s.aws"), "aws::k8s::cedar");
        assert_eq!(group_namespace("cert-manager.io"), "io::cert_manager");
    }

    #[test]
    fn names_parse() {
        let n = Names::new().unwrap();
        assert_eq!(n.verb("get").to_string(), "k8s::Action::\"get\"");
        assert_eq!(n.admission("create").to_string(), "k8s::admission::Action::\"create\"");
    }
}
