//! SubjectAccessReview → Cedar request (the authorization webhook path).

use std::collections::{HashMap, HashSet};

use cedar_policy::{Context, Entity, EntityUid, Request, RestrictedExpression};
use rampart_types::sar::{ResourceAttributes, SubjectAccessReviewSpec};

use super::principal::{Identity, UserInfoRef, classify, principal};
use super::selectors::{field_requirements, label_requirements};
use super::{CedarRequest, Names, entity_store, uid};
use crate::EntityError;

/// The apiserver path of a resource request: `/api/v1/namespaces/default/pods/p/log`.
/// Selectors are never part of it; an empty version gives `//`, as upstream.
pub fn resource_path(
    group: &str,
    version: &str,
    namespace: &str,
    resource: &str,
    name: &str,
    subresource: &str,
) -> String {
    let mut p = String::with_capacity(64);
    if group.is_empty() {
        p.push_str("/api");
    } else {
        p.push_str("/apis/");
        p.push_str(group);
    }
    p.push('/');
    p.push_str(version);
    if !namespace.is_empty() {
        p.push_str("/namespaces/");
        p.push_str(namespace);
    }
    for part in [resource, name, subresource] {
        if !part.is_empty() {
            p.push('/');
            p.push_str(part);
        }
    }
    p
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

fn entity(uid: EntityUid, attrs: HashMap<String, RestrictedExpression>) -> Result<Entity, EntityError> {
    Entity::new(uid, attrs, HashSet::new()).map_err(|e| EntityError::Request(e.to_string()))
}

/// The impersonation target of `verb: impersonate`, or `None` when the resource is not one
/// of the identity kinds (then it is an ordinary `k8s::Resource`; upstream built an entity
/// with an empty type, Appendix A #19).
fn impersonation_target(names: &Names, ra: &ResourceAttributes) -> Result<Option<Entity>, EntityError> {
    let name = ra.name.as_deref().unwrap_or_default();
    let namespace = ra.namespace.as_deref().unwrap_or_default();
    let target = match ra.resource.as_deref().unwrap_or_default() {
        "users" => match classify(name) {
            Identity::Node { name: node } => {
                entity(uid(&names.node, name), HashMap::from([("name".into(), string(node))]))?
            }
            _ => entity(uid(&names.user, name), HashMap::from([("name".into(), string(name))]))?,
        },
        "groups" => entity(uid(&names.group, name), HashMap::from([("name".into(), string(name))]))?,
        "serviceaccounts" => entity(
            uid(&names.service_account, &format!("system:serviceaccount:{namespace}:{name}")),
            HashMap::from([("name".into(), string(name)), ("namespace".into(), string(namespace))]),
        )?,
        "uids" => Entity::new_no_attrs(uid(&names.principal_uid, name), HashSet::new()),
        "userextras" => {
            let key = ra.subresource.as_deref().unwrap_or_default();
            let mut attrs = HashMap::from([("key".into(), string(key))]);
            if !name.is_empty() {
                attrs.insert("value".into(), string(name));
            }
            entity(uid(&names.extra, key), attrs)?
        }
        _ => return Ok(None),
    };
    Ok(Some(target))
}

fn resource_entity(names: &Names, ra: &ResourceAttributes) -> Result<Entity, EntityError> {
    let s = |o: &Option<String>| o.as_deref().unwrap_or_default().to_owned();
    let (group, version, namespace) = (s(&ra.group), s(&ra.version), s(&ra.namespace));
    let (resource, name, subresource) = (s(&ra.resource), s(&ra.name), s(&ra.subresource));
    let path = resource_path(&group, &version, &namespace, &resource, &name, &subresource);
    let mut attrs = HashMap::with_capacity(7);
    attrs.insert("apiGroup".to_owned(), RestrictedExpression::new_string(group));
    attrs.insert("resource".to_owned(), RestrictedExpression::new_string(resource));
    for (key, value) in [("namespace", namespace), ("name", name), ("subresource", subresource)] {
        if !value.is_empty() {
            attrs.insert(key.to_owned(), RestrictedExpression::new_string(value));
        }
    }
    if let Some(labels) = ra.label_selector.as_ref().and_then(label_requirements) {
        attrs.insert("labelSelector".to_owned(), labels);
    }
    if let Some(fields) = ra.field_selector.as_ref().and_then(field_requirements) {
        attrs.insert("fieldSelector".to_owned(), fields);
    }
    entity(uid(&names.resource, &path), attrs)
}

/// Map a SubjectAccessReview spec to a Cedar request.
pub fn from_sar(names: &Names, spec: &SubjectAccessReviewSpec) -> Result<CedarRequest, EntityError> {
    let groups = spec.groups.as_deref().unwrap_or_default();
    let user = UserInfoRef {
        username: spec.user.as_deref().unwrap_or_default(),
        uid: spec.uid.as_deref().unwrap_or_default(),
        groups,
        extra: spec.extra.as_ref(),
    };
    let principal = principal(names, user, true)?;
    let (verb, resource) = match (&spec.non_resource_attributes, &spec.resource_attributes) {
        // Non-resource attributes win when both are present, as upstream.
        (Some(nra), _) => {
            let path = nra.path.as_deref().unwrap_or_default();
            let e =
                entity(uid(&names.non_resource_url, path), HashMap::from([("path".into(), string(path))]))?;
            (nra.verb.as_deref().unwrap_or_default(), e)
        }
        (None, Some(ra)) => {
            let verb = ra.verb.as_deref().unwrap_or_default();
            let target = if verb == "impersonate" { impersonation_target(names, ra)? } else { None };
            let e = match target {
                Some(t) => t,
                None => resource_entity(names, ra)?,
            };
            (verb, e)
        }
        (None, None) => {
            return Err(EntityError::Request(
                "spec has neither resourceAttributes nor nonResourceAttributes".into(),
            ));
        }
    };
    let action = names.verb(verb);
    let resource_uid = resource.uid();
    let mut entities = principal.entities;
    entities.push(resource);
    let request =
        Request::new(principal.uid.clone(), action.clone(), resource_uid.clone(), Context::empty(), None)
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
    use rampart_types::sar;

    fn spec(json: &str) -> SubjectAccessReviewSpec {
        let body = format!(
            r#"{{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{json}}}"#
        );
        sar::decode(body.as_bytes()).unwrap().spec
    }

    fn entity_json(req: &CedarRequest, uid: &EntityUid) -> serde_json::Value {
        req.entities.get(uid).unwrap().to_json_value().unwrap()
    }

    #[test]
    fn paths() {
        assert_eq!(resource_path("", "v1", "", "pods", "", ""), "/api/v1/pods");
        assert_eq!(
            resource_path("apps", "v1", "kube-system", "deployments", "coredns", ""),
            "/apis/apps/v1/namespaces/kube-system/deployments/coredns"
        );
        assert_eq!(
            resource_path("", "v1", "default", "pods", "mypod", "logs"),
            "/api/v1/namespaces/default/pods/mypod/logs"
        );
        assert_eq!(resource_path("", "", "", "pods", "", ""), "/api//pods");
    }

    #[test]
    fn e1_resource_with_namespace() {
        let names = Names::new().unwrap();
        let req = from_sar(
            &names,
            &spec(
                r#"{"user":"test-user","uid":"1234567890","groups":["test-group"],
            "extra":{"attr1":["value1"]},"resourceAttributes":{"verb":"get","version":"v1","resource":"pods",
            "namespace":"default","name":"test-pod"}}"#,
            ),
        )
        .unwrap();
        assert_eq!(req.principal.to_string(), r#"k8s::User::"1234567890""#);
        assert_eq!(req.resource.to_string(), r#"k8s::Resource::"/api/v1/namespaces/default/pods/test-pod""#);
        assert_eq!(req.action.to_string(), r#"k8s::Action::"get""#);
        let r = entity_json(&req, &req.resource);
        assert_eq!(
            r["attrs"],
            serde_json::json!({"apiGroup":"","namespace":"default","resource":"pods","name":"test-pod"})
        );
    }

    #[test]
    fn e3_non_resource_overrides() {
        let names = Names::new().unwrap();
        let req = from_sar(
            &names,
            &spec(
                r#"{"user":"u","nonResourceAttributes":{"verb":"get","path":"/metrics"},
            "resourceAttributes":{"verb":"list","resource":"pods"}}"#,
            ),
        )
        .unwrap();
        assert_eq!(req.resource.to_string(), r#"k8s::NonResourceURL::"/metrics""#);
        assert_eq!(entity_json(&req, &req.resource)["attrs"]["path"], "/metrics");
    }

    #[test]
    fn e5_service_account_principal() {
        let names = Names::new().unwrap();
        let req = from_sar(
            &names,
            &spec(
                r#"{"user":"system:serviceaccount:foo:bar","uid":"1234567890",
            "groups":["system:serviceaccounts","system:serviceaccounts:default","system:authenticated"],
            "resourceAttributes":{"verb":"get","resource":"pods"}}"#,
            ),
        )
        .unwrap();
        assert_eq!(req.principal.to_string(), r#"k8s::ServiceAccount::"1234567890""#);
        assert_eq!(req.groups.len(), 3);
        let p = entity_json(&req, &req.principal);
        assert_eq!(p["attrs"]["namespace"], "foo");
        assert_eq!(p["attrs"]["name"], "bar");
    }

    #[test]
    fn impersonation_targets() {
        let names = Names::new().unwrap();
        let cases = [
            (r#""resource":"users","name":"system:node:n1""#, r#"k8s::Node::"system:node:n1""#),
            (r#""resource":"users","name":"bob""#, r#"k8s::User::"bob""#),
            (r#""resource":"groups","name":"test-group""#, r#"k8s::Group::"test-group""#),
            (
                r#""resource":"serviceaccounts","namespace":"ns","name":"sa""#,
                r#"k8s::ServiceAccount::"system:serviceaccount:ns:sa""#,
            ),
            (
                r#""group":"authentication.k8s.io","resource":"uids","name":"1234""#,
                r#"k8s::PrincipalUID::"1234""#,
            ),
            (
                r#""group":"authentication.k8s.io","resource":"userextras","subresource":"k","name":"v""#,
                r#"k8s::Extra::"k""#,
            ),
            (r#""resource":"pods","name":"p""#, r#"k8s::Resource::"/api//pods/p""#),
        ];
        for (attrs, expected) in cases {
            let req = from_sar(&names, &spec(&format!(
                r#"{{"user":"u","groups":["test-group"],"resourceAttributes":{{"verb":"impersonate",{attrs}}}}}"#
            ))).unwrap();
            assert_eq!(req.resource.to_string(), expected, "{attrs}");
        }
    }

    #[test]
    fn missing_attributes_is_an_error() {
        let names = Names::new().unwrap();
        assert!(from_sar(&names, &spec(r#"{"user":"u"}"#)).is_err());
    }
}
