//! The requesting identity: `k8s::User`, `k8s::ServiceAccount` or `k8s::Node`, with its groups.

use std::collections::{BTreeMap, HashSet};

use cedar_policy::{Entity, EntityUid};
use cedar_policy_core::ast::Value;
use smol_str::SmolStr;

use super::{Names, uid};
use crate::EntityError;

/// Who is asking, as the apiserver describes them.
#[derive(Debug, Clone, Copy)]
pub struct UserInfoRef<'a> {
    pub username: &'a str,
    pub uid: &'a str,
    pub groups: &'a [String],
    pub extra: Option<&'a BTreeMap<String, Vec<String>>>,
}

/// The principal's uid, its group uids, and the entities (principal first, then groups).
pub struct Principal {
    pub uid: EntityUid,
    pub groups: Vec<EntityUid>,
    pub entities: Vec<Entity>,
}

/// How a username is classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity<'a> {
    User,
    /// `system:node:<name>` with exactly two colons.
    Node {
        name: &'a str,
    },
    /// `system:serviceaccount:<ns>:<name>` with exactly three colons.
    ServiceAccount {
        namespace: &'a str,
        name: &'a str,
    },
}

/// Classify a username the way the Go webhook does.
pub fn classify(username: &str) -> Identity<'_> {
    let parts: Vec<&str> = username.split(':').collect();
    match parts.as_slice() {
        ["system", "node", name] => Identity::Node { name },
        ["system", "serviceaccount", namespace, name] => Identity::ServiceAccount { namespace, name },
        _ => Identity::User,
    }
}

/// `extra` as `Set<{key, values: Set<String>}>`. SubjectAccessReview keys are lower-cased,
/// as kube-apiserver does before authorizing; AdmissionReview keys are used as-is.
fn extra_attribute(extra: &BTreeMap<String, Vec<String>>, lowercase_keys: bool) -> Value {
    let records = extra.iter().map(|(key, values)| {
        let key = if lowercase_keys { key.to_lowercase() } else { key.clone() };
        let values = Value::set(values.iter().map(|v| Value::from(v.clone())), None);
        Value::record([("key", Value::from(key)), ("values", values)], None)
    });
    Value::set(records, None)
}

/// An entity with attribute values built directly: every request builds these, and going
/// through `RestrictedExpression`s (parsed and evaluated per attribute) cost most of that.
fn entity(uid: &EntityUid, attrs: Vec<(SmolStr, Value)>, parents: &[EntityUid]) -> Entity {
    Entity::from(cedar_policy_core::ast::Entity::new_with_attr_partial_value(
        uid.as_ref().clone(),
        attrs.into_iter().map(|(k, v)| (k, v.into())),
        HashSet::new(),
        parents.iter().map(|p| p.as_ref().clone()).collect(),
        std::iter::empty(),
    ))
}

/// Build the principal entity. Its id is the user's `uid` when set (service-account tokens
/// carry the SA object's UID), else the username; policies should match by attribute.
pub fn principal(
    names: &Names,
    user: UserInfoRef<'_>,
    lowercase_extra_keys: bool,
) -> Result<Principal, EntityError> {
    let mut entities = Vec::with_capacity(user.groups.len() + 1);
    let mut groups = Vec::with_capacity(user.groups.len());
    for g in user.groups {
        let gid = uid(&names.group, g);
        groups.push(gid);
    }
    let id = if user.uid.is_empty() { user.username } else { user.uid };
    let text = |s: &str| Value::from(s.to_owned());
    let mut attrs: Vec<(SmolStr, Value)> = Vec::with_capacity(3);
    let type_name = match classify(user.username) {
        Identity::User => {
            attrs.push(("name".into(), text(user.username)));
            &names.user
        }
        Identity::Node { name } => {
            attrs.push(("name".into(), text(name)));
            &names.node
        }
        Identity::ServiceAccount { namespace, name } => {
            attrs.push(("name".into(), text(name)));
            attrs.push(("namespace".into(), text(namespace)));
            &names.service_account
        }
    };
    if let Some(extra) = user.extra.filter(|e| !e.is_empty()) {
        attrs.push(("extra".into(), extra_attribute(extra, lowercase_extra_keys)));
    }
    let principal_uid = uid(type_name, id);
    entities.push(entity(&principal_uid, attrs, &groups));
    for (g, gid) in user.groups.iter().zip(&groups) {
        entities.push(entity(gid, vec![("name".into(), text(g))], &[]));
    }
    Ok(Principal { uid: principal_uid, groups, entities })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_requires_exact_colon_counts() {
        assert_eq!(classify("system:node:n1"), Identity::Node { name: "n1" });
        assert_eq!(classify("system:node:n1:x"), Identity::User);
        assert_eq!(
            classify("system:serviceaccount:ns:sa"),
            Identity::ServiceAccount { namespace: "ns", name: "sa" }
        );
        assert_eq!(classify("system:serviceaccount:ns"), Identity::User);
        assert_eq!(classify("alice"), Identity::User);
    }

    #[test]
    fn principal_json_matches_the_worked_example() {
        let names = Names::new().unwrap();
        let extra = BTreeMap::from([("Attr1".to_owned(), vec!["value1".to_owned()])]);
        let groups = vec!["test-group".to_owned()];
        let p = principal(
            &names,
            UserInfoRef { username: "test-user", uid: "1234567890", groups: &groups, extra: Some(&extra) },
            true,
        )
        .unwrap();
        assert_eq!(p.uid.to_string(), "k8s::User::\"1234567890\"");
        let json = p.entities[0].to_json_value().unwrap();
        assert_eq!(json["attrs"]["name"], "test-user");
        assert_eq!(json["attrs"]["extra"][0]["key"], "attr1");
        assert_eq!(json["parents"][0]["id"], "test-group");
    }
}
