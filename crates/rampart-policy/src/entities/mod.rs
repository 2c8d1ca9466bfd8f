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

/// Collect entities into a store, keeping the last of any duplicate uid (`Entities` rejects
/// duplicates; an impersonated group can also be one of the requester's groups).
pub(crate) fn entity_store(mut entities: Vec<Entity>) -> Result<Entities, EntityError> {
    let mut seen = std::collections::HashSet::new();
    let mut keep = vec![true; entities.len()];
    for (i, e) in entities.iter().enumerate().rev() {
        if !seen.insert(e.uid()) {
            keep[i] = false;
        }
    }
    let mut flags = keep.into_iter();
    entities.retain(|_| flags.next().unwrap_or(true));
    Entities::from_entities(entities, None).map_err(|e| EntityError::Request(e.to_string()))
}
