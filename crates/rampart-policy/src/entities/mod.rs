//! Request mapping: Kubernetes reviews → Cedar requests and entity stores.
//!
//! The mapping is the one cedar-access-control-for-k8s defines (so its policies keep working),
//! with the upstream bugs of the spec's Appendix A fixed; the README lists each deviation.

pub mod admission;
pub mod authorization;
pub mod names;
pub mod object;
pub mod principal;
pub mod selectors;
pub mod workload;

use cedar_policy::{Entities, Entity, EntityId, EntityTypeName, EntityUid, Request};

pub use names::Names;

use crate::EntityError;

/// A Cedar request plus the facts the policy index needs to pick candidate policies.
#[derive(Debug, Clone)]
pub struct CedarRequest {
    pub request: Request,
    pub entities: Entities,
    pub principal: EntityUid,
    /// The groups the principal is a member of (its only ancestors).
    pub groups: Vec<EntityUid>,
    pub action: EntityUid,
    pub resource: EntityUid,
}

/// Build an entity uid; any string is a valid id.
pub fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}

/// An entity with already-converted attribute values and no parents (an object under
/// admission). Cedar's public constructor takes expressions and evaluates them; values skip
/// that, and share their strings and records with other uses of the same object.
pub fn value_entity(
    uid: EntityUid,
    attrs: impl IntoIterator<Item = (smol_str::SmolStr, cedar_policy_core::ast::Value)>,
) -> Entity {
    let core = cedar_policy_core::ast::Entity::new_with_attr_partial_value(
        uid.as_ref().clone(),
        attrs.into_iter().map(|(k, v)| (k, v.into())),
        Default::default(),
        Default::default(),
        std::iter::empty(),
    );
    Entity::from(core)
}

/// Collect entities into a store, keeping the last of any duplicate uid unless that would drop
/// parents (`Entities` rejects duplicates; an impersonated group can also be one of the
/// requester's groups, an impersonated service account the requester itself).
///
/// The Kubernetes model's hierarchy is one level deep (principal → its groups, admission
/// action → `all`; groups, resources and `all` have no parents), so every ancestor set is
/// already transitively closed. The store is therefore built without cedar's transitive
/// closure pass, which costs more than all the rest of the mapping. Callers must keep to that
/// shape: only [`principal`](principal::principal) and the admission action entities have
/// parents, and their parents have none.
pub fn entity_store(entities: Vec<Entity>) -> Result<Entities, EntityError> {
    use cedar_policy_core::entities::{Entities as CoreEntities, NoEntitiesSchema, TCComputation};
    use cedar_policy_core::extensions::Extensions;

    // Later duplicates win (a request's own entities override defaults), except that an
    // entity with parents is never replaced by one without: a service account impersonating
    // itself yields a target entity with the principal's uid, and dropping the principal's
    // group memberships would turn a grant into a denial.
    let mut index: std::collections::HashMap<EntityUid, usize> =
        std::collections::HashMap::with_capacity(entities.len());
    let mut unique: Vec<cedar_policy_core::ast::Entity> = Vec::with_capacity(entities.len());
    for e in entities.into_iter().rev() {
        let core = e.as_ref();
        match index.get(&e.uid()) {
            None => {
                index.insert(e.uid(), unique.len());
                unique.push(core.clone());
            }
            Some(&at) => {
                if unique[at].ancestors().next().is_none() && core.ancestors().next().is_some() {
                    unique[at] = core.clone();
                }
            }
        }
    }
    CoreEntities::from_entities(
        unique,
        None::<&NoEntitiesSchema>,
        TCComputation::AssumeAlreadyComputed,
        Extensions::all_available(),
    )
    .map(Entities::from)
    .map_err(|e| EntityError::Request(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn store_keeps_the_last_duplicate_and_membership_works_without_a_closure_pass() {
        let group = EntityUid::from_str(r#"k8s::Group::"g""#).unwrap();
        let user = EntityUid::from_str(r#"k8s::User::"u""#).unwrap();
        let attrs = |v: &str| {
            std::collections::HashMap::from([(
                "name".to_owned(),
                cedar_policy::RestrictedExpression::new_string(v.into()),
            )])
        };
        let entities = vec![
            Entity::new(user.clone(), attrs("u"), [group.clone()].into()).unwrap(),
            Entity::new(group.clone(), attrs("first"), Default::default()).unwrap(),
            Entity::new(group.clone(), attrs("last"), Default::default()).unwrap(),
        ];
        let store = entity_store(entities).unwrap();
        assert_eq!(store.len(), 2);
        let g = store.get(&group).unwrap().to_json_value().unwrap();
        assert_eq!(g["attrs"]["name"], "last");
        let policies =
            cedar_policy::PolicySet::from_str(r#"permit(principal in k8s::Group::"g", action, resource);"#)
                .unwrap();
        let req = Request::new(
            user,
            EntityUid::from_str(r#"k8s::Action::"get""#).unwrap(),
            group,
            cedar_policy::Context::empty(),
            None,
        )
        .unwrap();
        let resp = cedar_policy::Authorizer::new().is_authorized(&req, &policies, &store);
        assert_eq!(resp.decision(), cedar_policy::Decision::Allow);
    }

    #[test]
    fn a_duplicate_without_parents_never_replaces_one_with_parents() {
        let group = EntityUid::from_str(r#"k8s::Group::"system:authenticated""#).unwrap();
        let sa = EntityUid::from_str(r#"k8s::ServiceAccount::"system:serviceaccount:ns1:sa1""#).unwrap();
        let entities = vec![
            Entity::new_no_attrs(sa.clone(), [group.clone()].into()),
            Entity::new_no_attrs(group.clone(), Default::default()),
            // The impersonation target: the same service account, no parents.
            Entity::new_no_attrs(sa.clone(), Default::default()),
        ];
        let store = entity_store(entities).unwrap();
        assert!(store.is_ancestor_of(&group, &sa));
    }
}
