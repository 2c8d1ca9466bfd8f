//! The unified tier's requests: the attributes of a Kubernetes request, and the Cedar
//! principal, resource and object entities built from them, with the objects either unknown
//! (authorization) or known (admission).

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use cedar_policy::{Entities, Entity, EntityId, EntityTypeName, EntityUid};
use rampart_policy::entities::Names;
use rampart_policy::entities::object::ObjectConverter;
use rampart_policy::entities::principal::{Principal, UserInfoRef, principal};
use serde_json::Value;
use smol_str::SmolStr;

use crate::UnifiedError;
use crate::schema::{ACTION_NAMESPACE, RESOURCES, ResourceKind, VERBS};

/// What both phases know of a request: who, which verb, on what.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    pub user: UserInfoRef<'a>,
    pub verb: &'a str,
    pub kind: &'static ResourceKind,
    pub namespace: &'a str,
    /// Empty on create (the apiserver authorizes a create before the name is known).
    pub name: &'a str,
}

/// The verbs whose requests carry a new object, and those that act on a stored one.
pub fn has_object(verb: &str) -> bool {
    matches!(verb, "create" | "update" | "patch")
}
/// Reads name the stored objects they return (or, for deletecollection, delete).
pub fn has_old_object(verb: &str) -> bool {
    matches!(verb, "update" | "patch" | "delete" | "get" | "list" | "watch" | "deletecollection")
}

/// The uids every request on one resource kind uses, parsed once rather than per request.
struct KindUids {
    resource_type: EntityTypeName,
    object: EntityUid,
    old_object: EntityUid,
}

/// [`KindUids`] in [`RESOURCES`] order (`None` only if a name failed to parse, which a test
/// rules out; the slow path then reports the error).
static KIND_UIDS: LazyLock<Vec<Option<KindUids>>> = LazyLock::new(|| {
    RESOURCES
        .iter()
        .map(|kind| {
            Some(KindUids {
                resource_type: kind.type_name().parse().ok()?,
                object: parse_object_uid(kind, "object").ok()?,
                old_object: parse_object_uid(kind, "oldObject").ok()?,
            })
        })
        .collect()
});

fn kind_uids(kind: &ResourceKind) -> Option<&'static KindUids> {
    KIND_UIDS.get(kind.index()?)?.as_ref()
}

/// The action of each verb, parsed once.
static ACTIONS: LazyLock<HashMap<&'static str, EntityUid>> =
    LazyLock::new(|| VERBS.iter().filter_map(|verb| Some((*verb, parse_action(verb).ok()?))).collect());

pub(crate) fn action(verb: &str) -> Result<EntityUid, UnifiedError> {
    match ACTIONS.get(verb) {
        Some(uid) => Ok(uid.clone()),
        None => parse_action(verb),
    }
}

fn parse_action(verb: &str) -> Result<EntityUid, UnifiedError> {
    format!("{ACTION_NAMESPACE}::Action::{verb:?}").parse().map_err(|e| UnifiedError::Request(format!("{e}")))
}

/// The uid of a request's `object` or `oldObject` entity: the same for every request on a
/// kind, as only one of each is ever in a request's entities.
fn object_uid(kind: &ResourceKind, id: &str) -> Result<EntityUid, UnifiedError> {
    match (kind_uids(kind), id) {
        (Some(uids), "object") => Ok(uids.object.clone()),
        (Some(uids), "oldObject") => Ok(uids.old_object.clone()),
        _ => parse_object_uid(kind, id),
    }
}

fn parse_object_uid(kind: &ResourceKind, id: &str) -> Result<EntityUid, UnifiedError> {
    format!("{}::{id:?}", kind.kind).parse().map_err(|e| UnifiedError::Request(format!("{e}")))
}

/// The resource entity's uid (its id is the request path, for messages).
pub(crate) fn resource_uid(a: &Attributes<'_>) -> Result<EntityUid, UnifiedError> {
    let k = a.kind;
    let (slash, subresource) = if k.subresource.is_empty() { ("", "") } else { ("/", k.subresource) };
    let path = format!("/{}/{}/{}/{}{slash}{subresource}", k.group, a.namespace, k.resource, a.name);
    let resource_type = match kind_uids(k) {
        Some(uids) => uids.resource_type.clone(),
        None => k.type_name().parse().map_err(|e| UnifiedError::Request(format!("{e}")))?,
    };
    Ok(EntityUid::from_type_name_and_id(resource_type, EntityId::new(path)))
}

/// The principal: its uid, its groups' uids and its entities (user or service account or
/// node, and its groups).
pub(crate) fn principal_entities(names: &Names, a: &Attributes<'_>) -> Result<Principal, UnifiedError> {
    principal(names, a.user, false).map_err(|e| UnifiedError::Request(e.to_string()))
}

/// The resource entity: the request's attributes, and references to the objects the verb has.
/// The same entity in both phases, so the phases agree on everything but the objects.
pub(crate) fn resource_entity(a: &Attributes<'_>) -> Result<Entity, UnifiedError> {
    use cedar_policy_core::ast::Value as CedarValue;
    let text = |s: &str| CedarValue::from(s.to_owned());
    let mut attrs: Vec<(SmolStr, CedarValue)> = vec![
        ("apiGroup".into(), text(a.kind.group)),
        ("resource".into(), text(a.kind.resource)),
        ("subresource".into(), text(a.kind.subresource)),
    ];
    if !a.namespace.is_empty() {
        attrs.push(("namespace".into(), text(a.namespace)));
    }
    if !a.name.is_empty() {
        attrs.push(("name".into(), text(a.name)));
    }
    for (id, present) in [("object", has_object(a.verb)), ("oldObject", has_old_object(a.verb))] {
        if present {
            attrs.push((id.into(), CedarValue::from(object_uid(a.kind, id)?.as_ref().clone())));
        }
    }
    Ok(rampart_policy::entities::value_entity(resource_uid(a)?, attrs))
}

/// The entities of the partial phase: the principal and the resource. The objects are left
/// out, and typed partial evaluation treats a missing entity as one whose attributes are
/// unknown: exactly what authorization knows of them.
pub(crate) fn partial_entities(principal: &[Entity], a: &Attributes<'_>) -> Result<Entities, UnifiedError> {
    let mut all = principal.to_vec();
    all.push(resource_entity(a)?);
    rampart_policy::entities::entity_store(all).map_err(|e| UnifiedError::Request(e.to_string()))
}

/// The concrete entities for the admission phase: the same principal and resource, and the
/// objects converted as the admission tier converts them.
pub(crate) fn full_entities(
    principal: Vec<Entity>,
    a: &Attributes<'_>,
    object: Option<&Value>,
    old_object: Option<&Value>,
) -> Result<Entities, UnifiedError> {
    let mut all = principal;
    all.push(resource_entity(a)?);
    let converter = ObjectConverter { group_namespace: a.kind.group_namespace(), kind: kind_name(a.kind) };
    for (id, present, value) in
        [("object", has_object(a.verb), object), ("oldObject", has_old_object(a.verb), old_object)]
    {
        if !present {
            continue;
        }
        let fields: BTreeMap<SmolStr, cedar_policy_core::ast::Value> = match value.filter(|v| !v.is_null()) {
            Some(v) => {
                converter.fields(v).map_err(|e| UnifiedError::Request(e.to_string()))?.into_iter().collect()
            }
            None => BTreeMap::new(),
        };
        all.push(rampart_policy::entities::value_entity(object_uid(a.kind, id)?, fields));
    }
    rampart_policy::entities::entity_store(all).map_err(|e| UnifiedError::Request(e.to_string()))
}

/// `Pod` of `core::v1::Pod`: the kind as the object converter's key/value table names it.
fn kind_name(kind: &ResourceKind) -> &'static str {
    kind.kind.rsplit("::").next().unwrap_or(kind.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_verb_has_its_uids_parsed_once() {
        assert!(KIND_UIDS.iter().all(Option::is_some));
        assert_eq!(ACTIONS.len(), VERBS.len());
        let kind = crate::schema::resource_kind("apps", "deployments", "scale").unwrap();
        assert_eq!(
            object_uid(kind, "oldObject").unwrap().to_string(),
            r#"autoscaling::v1::Scale::"oldObject""#
        );
        assert_eq!(action("create").unwrap().to_string(), r#"k8s::unified::Action::"create""#);
        assert_eq!(action("escalate").unwrap().to_string(), r#"k8s::unified::Action::"escalate""#);
    }

    #[test]
    fn the_resource_uid_is_the_request_path() {
        let groups = Vec::new();
        let a = Attributes {
            user: UserInfoRef { username: "u", uid: "", groups: &groups, extra: None },
            verb: "update",
            kind: crate::schema::resource_kind("apps", "deployments", "scale").unwrap(),
            namespace: "dev",
            name: "web",
        };
        assert_eq!(
            resource_uid(&a).unwrap().to_string(),
            r#"apps::deployments_scale::"/apps/dev/deployments/web/scale""#
        );
    }
}
