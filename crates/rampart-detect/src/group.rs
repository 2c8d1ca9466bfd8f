//! Repeated findings folded into one: the same finding by the same user on the same object
//! (request path, query aside; any verb, so kubectl's websocket `get` and SPDY `create` of one
//! exec are one) is one line with a count, not a page of copies.
//! A scanner probing one secret a hundred times, or a CI job re-applying the same binding on
//! every run, is one thing to look at.

use std::collections::HashMap;

use serde::Serialize;

use crate::finding::Finding;

/// One finding and how often it repeated.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grouped<T> {
    /// The first occurrence (its events show where to look).
    #[serde(flatten)]
    pub first: T,
    pub count: u64,
    /// The time of the last occurrence, as written in the log.
    pub last_seen: String,
}

/// What makes two findings the same: finding id, user and object — the request path, and the
/// object's name, which a create carries only in `objectRef` (two ClusterRoleBindings created
/// by one user are two findings, not one).
pub fn key(f: &Finding) -> (String, String, String) {
    let (user, object) = f
        .events
        .first()
        .map(|e| {
            let path = e.request_uri().split('?').next().unwrap_or_default();
            let name = e.object();
            let object = if name.is_empty() || path.ends_with(&format!("/{name}")) {
                path.to_owned()
            } else {
                format!("{path}/{name}")
            };
            (e.user(), object)
        })
        .unwrap_or_default();
    (f.id.to_string(), user.to_owned(), object)
}

/// Fold `items` (in report order) by [`key`] of `finding(item)`, keeping the first of each
/// group in its place.
pub fn group<T>(items: Vec<T>, finding: impl Fn(&T) -> &Finding) -> Vec<Grouped<T>> {
    let mut index: HashMap<(String, String, String), usize> = HashMap::new();
    let mut out: Vec<Grouped<T>> = Vec::new();
    for item in items {
        let f = finding(&item);
        let time = f.events.first().map(|e| e.time().to_owned()).unwrap_or_default();
        match index.get(&key(f)).and_then(|&i| out.get_mut(i)) {
            Some(g) => {
                g.count += 1;
                // RFC 3339 times of one log compare as text.
                if time > g.last_seen {
                    g.last_seen = time;
                }
            }
            None => {
                index.insert(key(f), out.len());
                out.push(Grouped { first: item, count: 1, last_seen: time });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Family, Severity, Tactic};

    fn finding(id: &str, user: &str, uri: &str, time: &str) -> Finding {
        let raw = format!(
            r#"{{"kind":"Event","auditID":"{time}","stageTimestamp":"{time}","stage":"ResponseComplete","verb":"get","requestURI":"{uri}","user":{{"username":"{user}"}},"responseStatus":{{"code":403}}}}"#
        );
        let e = crate::event::test_event(&raw);
        Finding::new(id, Family::Rampart, Severity::High, Tactic::Discovery, id, "m", "r", &e)
    }

    #[test]
    fn folds_the_same_finding_user_and_object() {
        let items = vec![
            finding(
                "SecretReadDenied",
                "anon",
                "/api/v1/namespaces/a/secrets/x?watch=1",
                "2026-01-01T00:00:01Z",
            ),
            finding("SecretReadDenied", "bob", "/api/v1/namespaces/a/secrets/x", "2026-01-01T00:00:02Z"),
            finding("SecretReadDenied", "anon", "/api/v1/namespaces/a/secrets/x", "2026-01-01T00:00:05Z"),
            finding("SecretReadDenied", "anon", "/api/v1/namespaces/a/secrets/y", "2026-01-01T00:00:03Z"),
        ];
        let grouped = group(items, |f| f);
        let summary: Vec<(&str, u64, &str)> =
            grouped.iter().map(|g| (g.first.events[0].user(), g.count, g.last_seen.as_str())).collect();
        assert_eq!(
            summary,
            [
                ("anon", 2, "2026-01-01T00:00:05Z"),
                ("bob", 1, "2026-01-01T00:00:02Z"),
                ("anon", 1, "2026-01-01T00:00:03Z")
            ]
        );
    }

    #[test]
    fn creates_of_two_objects_are_two_findings() {
        let create = |name: &str| {
            let raw = format!(
                r#"{{"kind":"Event","auditID":"{name}","stageTimestamp":"2026-01-01T00:00:01Z","stage":"ResponseComplete","verb":"create","requestURI":"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings","objectRef":{{"resource":"clusterrolebindings","name":"{name}","apiGroup":"rbac.authorization.k8s.io"}},"user":{{"username":"admin"}},"responseStatus":{{"code":201}}}}"#
            );
            let e = crate::event::test_event(&raw);
            Finding::new(
                "RbacChanged",
                Family::Rampart,
                Severity::High,
                Tactic::Persistence,
                "t",
                "m",
                "r",
                &e,
            )
        };
        let grouped = group(vec![create("a"), create("b"), create("a")], |f| f);
        let counts: Vec<(&str, u64)> =
            grouped.iter().map(|g| (g.first.events[0].object(), g.count)).collect();
        assert_eq!(counts, [("a", 2), ("b", 1)]);
    }
}
