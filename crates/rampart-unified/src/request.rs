//! The unified tier's requests: the attributes of a Kubernetes request, and the Cedar
//! principal, resource and object entities built from them, with the objects either unknown
//! (authorization) or known (admission).

use std::collections::BTreeMap;

use cedar_policy::{Entities, Entity, EntityUid};
use rampart_policy::entities::Names;
use rampart_policy::entities::object::ObjectConverter;
use rampart_policy::entities::principal::{UserInfoRef, principal};
use serde_json::{Value, json};
use smol_str::SmolStr;

use crate::UnifiedError;
use crate::schema::{ACTION_NAMESPACE, ResourceKind};

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
pub fn has_old_object(verb: &str) -> bool {
    matches!(verb, "update" | "patch" | "delete")
}

pub(crate) fn action(verb: &str) -> Result<EntityUid, UnifiedError> {
    format!("{ACTION_NAMESPACE}::Action::{verb:?}").parse().map_err(|e| UnifiedError::Request(format!("{e}")))
}

fn object_uid(kind: &ResourceKind, id: &str) -> Result<EntityUid, UnifiedError> {
    format!("{}::{id:?}", kind.kind).parse().map_err(|e| UnifiedError::Request(format!("{e}")))
}

/// The resource entity's uid (its id is the request path, for messages).
pub(crate) fn resource_uid(a: &Attributes<'_>) -> Result<EntityUid, UnifiedError> {
    let path = format!(
        "/{}/{}/{}/{}{}",
        a.kind.group,
        a.namespace,
        a.kind.resource,
        a.name,
        if a.kind.subresource.is_empty() { String::new() } else { format!("/{}", a.kind.subresource) }
    );
    format!("{}::{path:?}", a.kind.type_name()).parse().map_err(|e| UnifiedError::Request(format!("{e}")))
}

/// The principal's entities (user or service account or node, and its groups).
pub(crate) fn principal_entities(
    names: &Names,
    a: &Attributes<'_>,
) -> Result<(EntityUid, Vec<Entity>), UnifiedError> {
    let p = principal(names, a.user, false).map_err(|e| UnifiedError::Request(e.to_string()))?;
    Ok((p.uid, p.entities))
}

/// The resource entity's attributes as entity JSON (the same in both phases, so the phases'
/// entities are consistent).
pub(crate) fn resource_json(a: &Attributes<'_>) -> Result<Value, UnifiedError> {
    let mut attrs = serde_json::Map::new();
    attrs.insert("apiGroup".into(), json!(a.kind.group));
    attrs.insert("resource".into(), json!(a.kind.resource));
    attrs.insert("subresource".into(), json!(a.kind.subresource));
    if !a.namespace.is_empty() {
        attrs.insert("namespace".into(), json!(a.namespace));
    }
    if !a.name.is_empty() {
        attrs.insert("name".into(), json!(a.name));
    }
    let reference = |id: &str| -> Result<Value, UnifiedError> {
        let uid = object_uid(a.kind, id)?;
        Ok(json!({"__entity": {"type": uid.type_name().to_string(), "id": uid.id().unescaped()}}))
    };
    if has_object(a.verb) {
        attrs.insert("object".into(), reference("object")?);
    }
    if has_old_object(a.verb) {
        attrs.insert("oldObject".into(), reference("oldObject")?);
    }
    let uid = resource_uid(a)?;
    Ok(
        json!({"uid": {"type": uid.type_name().to_string(), "id": uid.id().unescaped()}, "attrs": attrs, "parents": [], "tags": {}}),
    )
}

/// Entity JSON for the partial phase: the principal and resource known, each object present
/// with its attributes unknown.
pub(crate) fn partial_entities_json(principal: &[Entity], a: &Attributes<'_>) -> Result<Value, UnifiedError> {
    let mut all = Vec::new();
    for e in principal {
        let mut v = e.to_json_value().map_err(|e| UnifiedError::Request(e.to_string()))?;
        if v.get("tags").is_none() {
            v["tags"] = json!({});
        }
        all.push(v);
    }
    all.push(resource_json(a)?);
    for (id, present) in [("object", has_object(a.verb)), ("oldObject", has_old_object(a.verb))] {
        if present {
            let uid = object_uid(a.kind, id)?;
            // No "attrs": unknown until admission.
            all.push(
                json!({"uid": {"type": uid.type_name().to_string(), "id": id}, "parents": [], "tags": {}}),
            );
        }
    }
    Ok(Value::Array(all))
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
    let resource =
        Entity::from_json_value(resource_json(a)?, None).map_err(|e| UnifiedError::Request(e.to_string()))?;
    all.push(resource);
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
    Entities::from_entities(all, None).map_err(|e| UnifiedError::Request(e.to_string()))
}

/// `Pod` of `core::v1::Pod`: the kind as the object converter's key/value table names it.
fn kind_name(kind: &ResourceKind) -> &'static str {
    kind.kind.rsplit("::").next().unwrap_or(kind.kind)
}
