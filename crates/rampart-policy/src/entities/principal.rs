//! The requesting identity: `k8s::User`, `k8s::ServiceAccount` or `k8s::Node`, with its groups.

use std::collections::{BTreeMap, HashMap, HashSet};

use cedar_policy::{Entity, EntityUid, RestrictedExpression};

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
fn extra_attribute(
    extra: &BTreeMap<String, Vec<String>>,
    lowercase_keys: bool,
) -> Result<RestrictedExpression, EntityError> {
    let mut records = Vec::with_capacity(extra.len());
    for (key, values) in extra {
        let key = if lowercase_keys { key.to_lowercase() } else { key.clone() };
        let values = values.iter().map(|v| RestrictedExpression::new_string(v.clone()));
        records.push(
            RestrictedExpression::new_record([
                ("key".to_owned(), RestrictedExpression::new_string(key)),
                ("values".to_owned(), RestrictedExpression::new_set(values)),
            ])
            .map_err(|e| EntityError::Request(e.to_string()))?,
        );
    }
    Ok(RestrictedExpression::new_set(records))
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
        let attrs = HashMap::from([("name".to_owned(), RestrictedExpression::new_string(g.clone()))]);
        entities.push(
            Entity::new(gid.clone(), attrs, HashSet::new())
                .map_err(|e| EntityError::Request(e.to_string()))?,
        );
        groups.push(gid);
    }
    let id = if user.uid.is_empty() { user.username } else { user.uid };
    let mut attrs = HashMap::new();
    let type_name = match classify(user.username) {
        Identity::User => {
            attrs.insert("name".to_owned(), RestrictedExpression::new_string(user.username.into()));
            &names.user
        }
        Identity::Node { name } => {
            attrs.insert("name".to_owned(), RestrictedExpression::new_string(name.into()));
            &names.node
        }
        Identity::ServiceAccount { namespace, name } => {
            attrs.insert("name".to_owned(), RestrictedExpression::new_string(name.into()));
            attrs.insert("namespace".to_owned(), RestrictedExpression::new_string(namespace.into()));
            &names.service_account
        }
    };
    if let Some(extra) = user.extra.filter(|e| !e.is_empty()) {
        attrs.insert("extra".to_owned(), extra_attribute(extra, lowercase_extra_keys)?);
    }
    let principal_uid = uid(type_name, id);
    let entity = Entity::new(principal_uid.clone(), attrs, groups.iter().cloned().collect())
        .map_err(|e| EntityError::Request(e.to_string()))?;
    entities.insert(0, entity);
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
