//! AdmissionReview → Cedar request (the admission webhook path).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use cedar_policy::RestrictedExpression;
use cedar_policy::{Context, Entity, EntityTypeName, Request};
use cedar_policy_core::ast::Value;
use cedar_policy_core::evaluator::RestrictedEvaluator;
use cedar_policy_core::extensions::Extensions;
use rampart_types::admission::{AdmissionRequest, Operation};
use rampart_types::workload::ImageContext;
use smol_str::SmolStr;

use super::authorization::resource_path;
use super::names::group_namespace;
use super::object::ObjectConverter;
use super::principal::{UserInfoRef, principal};
use super::{CedarRequest, Names, entity_store, uid};
use crate::EntityError;

/// The admission action hierarchy: every operation is `in k8s::admission::Action::"all"`.
/// Upstream built these entities with mangled ids so `action in …::"all"` never matched
/// (Appendix A #1).
pub const ADMISSION_OPERATIONS: [&str; 4] = ["create", "update", "delete", "connect"];

/// Caches parsed entity type names; parsing a name runs the Cedar parser, which costs more
/// than the rest of the mapping. Bounded so a stream of random CRD kinds cannot grow it.
#[derive(Debug, Default)]
pub struct TypeNameCache(RwLock<HashMap<String, EntityTypeName>>);

const TYPE_CACHE_LIMIT: usize = 4096;

impl TypeNameCache {
    fn get(&self, text: String) -> Result<EntityTypeName, EntityError> {
        if let Some(t) = self.0.read().ok().and_then(|map| map.get(&text).cloned()) {
            return Ok(t);
        }
        let parsed = EntityTypeName::from_str(&text).map_err(|_| EntityError::TypeName(text.clone()))?;
        if let Ok(mut map) = self.0.write() {
            if map.len() >= TYPE_CACHE_LIMIT {
                map.clear();
            }
            map.insert(text, parsed.clone());
        }
        Ok(parsed)
    }
}

/// The action entities (`create`, `update`, `delete`, `connect`, each in `all`).
pub fn admission_action_entities(names: &Names) -> Vec<Entity> {
    let all = names.admission("all");
    let mut out = vec![Entity::new_no_attrs(all.clone(), HashSet::new())];
    for op in ADMISSION_OPERATIONS {
        out.push(Entity::new_no_attrs(names.admission(op), HashSet::from([all.clone()])));
    }
    out
}

/// Map an AdmissionRequest to a Cedar request.
///
/// The resource entity's type is `<group>::<version>::<Kind>` from `request.kind` (so
/// `deployments/scale` is `autoscaling::v1::Scale`, as the schema names it); its id is the
/// request path. On UPDATE the old object is a second entity of the same type (id = the
/// review uid), referenced as `resource.oldObject`, and also `context.oldObject`.
///
/// `images`, when image verification ran, becomes `context.images` (see [`ImageContext`]).
pub fn from_admission(
    names: &Names,
    types: &TypeNameCache,
    req: &AdmissionRequest,
    images: Option<&ImageContext>,
) -> Result<CedarRequest, EntityError> {
    let user = UserInfoRef {
        username: req.user_info.username.as_deref().unwrap_or_default(),
        uid: req.user_info.uid.as_deref().unwrap_or_default(),
        groups: req.user_info.groups.as_deref().unwrap_or_default(),
        extra: req.user_info.extra.as_ref(),
    };
    let principal = principal(names, user, false)?;
    let action = names.admission(req.operation.action_id());

    let source = match req.operation {
        Operation::Delete => req.old_object.as_ref(),
        _ => req.object.as_ref(),
    }
    .filter(|v| !v.is_null())
    .ok_or(EntityError::MissingObject(req.operation.action_id()))?;

    let group_ns = group_namespace(&req.kind.group);
    let type_name = types.get(format!("{group_ns}::{}::{}", req.kind.version, req.kind.kind))?;
    let converter = ObjectConverter { group_namespace: &group_ns, kind: &req.kind.kind };
    let path = resource_path(
        &req.resource.group,
        &req.resource.version,
        req.namespace.as_deref().unwrap_or_default(),
        &req.resource.resource,
        req.name.as_deref().unwrap_or_default(),
        req.sub_resource.as_deref().unwrap_or_default(),
    );
    let resource_uid = uid(&type_name, &path);
    let mut attrs: BTreeMap<SmolStr, Value> = converter.fields(source)?.into_iter().collect();

    let mut entities = principal.entities;
    let mut context: BTreeMap<SmolStr, Value> = BTreeMap::new();
    if let Some(facts) = super::workload::facts(source)? {
        let facts = RestrictedEvaluator::new(Extensions::all_available())
            .interpret(facts.as_ref().as_borrowed())
            .map_err(|e| EntityError::Object(e.to_string()))?;
        context.insert(SmolStr::new_static("workload"), facts);
    }
    if let Some(images) = images {
        let set = |items: &[String]| {
            RestrictedExpression::new_set(items.iter().map(|i| RestrictedExpression::new_string(i.clone())))
        };
        let record = RestrictedExpression::new_record([
            ("verified".to_owned(), set(&images.verified)),
            ("unverified".to_owned(), set(&images.unverified)),
            ("signers".to_owned(), set(&images.signers)),
            ("attestations".to_owned(), set(&images.attestations)),
        ])
        .map_err(|e| EntityError::Object(e.to_string()))?;
        let value = RestrictedEvaluator::new(Extensions::all_available())
            .interpret(record.as_ref().as_borrowed())
            .map_err(|e| EntityError::Object(e.to_string()))?;
        context.insert(SmolStr::new_static("images"), value);
    }
    if let (Operation::Update, Some(old)) = (req.operation, req.old_object.as_ref().filter(|v| !v.is_null()))
    {
        // One conversion, two uses: cloning the top-level map shares every value in it
        // (strings, records and sets are reference-counted), so nothing large is copied.
        let old_fields: BTreeMap<SmolStr, Value> = converter.fields(old)?.into_iter().collect();
        let old_uid = uid(&type_name, &req.uid);
        entities.push(super::value_entity(old_uid.clone(), old_fields.clone()));
        context.insert(SmolStr::new_static("oldObject"), Value::record_arc(Arc::new(old_fields), None));
        attrs.insert(SmolStr::new_static("oldObject"), Value::from(old_uid.as_ref().clone()));
    }
    entities.push(super::value_entity(resource_uid.clone(), attrs));
    entities.extend(admission_action_entities(names));
    let context = Context::from(cedar_policy_core::ast::Context::Value(Arc::new(context)));
    let request = Request::new(principal.uid.clone(), action.clone(), resource_uid.clone(), context, None)
        .map_err(|e| EntityError::Request(e.to_string()))?;
    Ok(CedarRequest {
        request,
        entities: entity_store(entities)?,
        principal: principal.uid,
        groups: principal.groups,
        action,
        resource: resource_uid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_types::admission;

    fn review(op: &str, kind: &str, group: &str, object: &str, old: &str) -> AdmissionRequest {
        let body = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"rev-1",
            "kind":{{"group":"{group}","version":"v1","kind":"{kind}"}},
            "resource":{{"group":"{group}","version":"v1","resource":"things"}},"name":"n","namespace":"default",
            "operation":"{op}","userInfo":{{"username":"alice","groups":["g"]}},"object":{object},"oldObject":{old}}}}}"#
        );
        admission::decode(body.as_bytes()).unwrap().request
    }

    #[test]
    fn dotted_groups_use_schema_names() {
        let names = Names::new().unwrap();
        let cache = TypeNameCache::default();
        let req =
            review("CREATE", "ClusterRole", "rbac.authorization.k8s.io", r#"{"kind":"ClusterRole"}"#, "null");
        let c = from_admission(&names, &cache, &req, None).unwrap();
        assert_eq!(
            c.resource.to_string(),
            r#"rbac::v1::ClusterRole::"/apis/rbac.authorization.k8s.io/v1/namespaces/default/things/n""#
        );
    }

    #[test]
    fn update_links_the_old_object() {
        let names = Names::new().unwrap();
        let cache = TypeNameCache::default();
        let req = review("UPDATE", "ConfigMap", "", r#"{"data":{"a":"1"}}"#, r#"{"data":{"a":"0"}}"#);
        let c = from_admission(&names, &cache, &req, None).unwrap();
        let r = c.entities.get(&c.resource).unwrap().to_json_value().unwrap();
        assert_eq!(r["attrs"]["oldObject"]["__entity"]["id"], "rev-1");
        assert!(c.request.context().is_some());
    }

    #[test]
    fn delete_uses_the_old_object_and_requires_one() {
        let names = Names::new().unwrap();
        let cache = TypeNameCache::default();
        let req = review("DELETE", "ConfigMap", "", "null", r#"{"data":{"a":"0"}}"#);
        let c = from_admission(&names, &cache, &req, None).unwrap();
        let r = c.entities.get(&c.resource).unwrap().to_json_value().unwrap();
        assert_eq!(r["attrs"]["data"][0]["value"], "0");
        let missing = review("DELETE", "ConfigMap", "", "null", "null");
        assert_eq!(
            from_admission(&names, &cache, &missing, None).unwrap_err(),
            EntityError::MissingObject("delete")
        );
    }
}
