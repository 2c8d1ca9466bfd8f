//! Privilege-escalation prevention on writes to roles and bindings, as the RBAC registry does
//! it: a user may create a role only with permissions they hold (or with `escalate`), and bind
//! a role only if they hold its permissions (or have `bind` on it).

use crate::authorizer::{Attributes, RbacAuthorizer, User};
use crate::model::{PolicyRule, Role, RoleRef};

/// A write to an RBAC object.
#[derive(Debug, Clone)]
pub enum Write<'a> {
    CreateRole { namespace: &'a str, role: &'a Role },
    CreateClusterRole { role: &'a Role },
    CreateRoleBinding { namespace: &'a str, name: &'a str, role_ref: &'a RoleRef },
    CreateClusterRoleBinding { name: &'a str, role_ref: &'a RoleRef },
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// One atomic permission: a single verb on a single (group, resource[, name]) or URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Atom {
    group: Option<String>,
    resource: Option<String>,
    url: Option<String>,
    name: Option<String>,
    verb: String,
}

fn atoms(rule: &PolicyRule) -> Vec<Atom> {
    let mut out = Vec::new();
    for verb in &rule.verbs {
        for group in &rule.api_groups {
            for resource in &rule.resources {
                let names: Vec<Option<String>> = if rule.resource_names.is_empty() {
                    vec![None]
                } else {
                    rule.resource_names.iter().cloned().map(Some).collect()
                };
                for name in names {
                    out.push(Atom {
                        group: Some(group.clone()),
                        resource: Some(resource.clone()),
                        url: None,
                        name,
                        verb: verb.clone(),
                    });
                }
            }
        }
        for url in &rule.non_resource_urls {
            out.push(Atom {
                group: None,
                resource: None,
                url: Some(url.clone()),
                name: None,
                verb: verb.clone(),
            });
        }
    }
    out
}

fn has(list: &[String], v: &str) -> bool {
    list.iter().any(|x| x == "*" || x == v)
}

/// Does one owner rule cover one atom (component-helpers policy comparator)?
fn covers(owner: &PolicyRule, atom: &Atom) -> bool {
    if !has(&owner.verbs, &atom.verb) {
        return false;
    }
    if let Some(url) = &atom.url {
        return owner
            .non_resource_urls
            .iter()
            .any(|o| o == "*" || o == url || (o.ends_with('*') && url.starts_with(o.trim_end_matches('*'))));
    }
    let (Some(group), Some(resource)) = (&atom.group, &atom.resource) else { return false };
    let resource_ok = owner.resources.iter().any(|o| {
        o == "*"
            || o == resource
            || resource.split_once('/').is_some_and(|(_, sub)| o.strip_prefix("*/") == Some(sub))
    });
    let name_ok = owner.resource_names.is_empty()
        || atom.name.as_ref().is_some_and(|n| owner.resource_names.contains(n));
    has(&owner.api_groups, group) && resource_ok && name_ok
}

fn quote_list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>().join(" "))
}

/// Uncovered atoms, compacted (atoms differing only in verb merged) and rendered like Go.
fn render_uncovered(mut missing: Vec<Atom>) -> String {
    missing.sort();
    let mut lines: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(first) = missing.get(i) {
        let mut verbs = vec![first.verb.clone()];
        let mut j = i + 1;
        while let Some(next) = missing.get(j).filter(|n| {
            (&n.group, &n.resource, &n.url, &n.name)
                == (&first.group, &first.resource, &first.url, &first.name)
        }) {
            verbs.push(next.verb.clone());
            j += 1;
        }
        let mut parts = Vec::new();
        if let Some(g) = &first.group {
            parts.push(format!("APIGroups:{}", quote_list(std::slice::from_ref(g))));
        }
        if let Some(r) = &first.resource {
            parts.push(format!("Resources:{}", quote_list(std::slice::from_ref(r))));
        }
        if let Some(u) = &first.url {
            parts.push(format!("NonResourceURLs:{}", quote_list(std::slice::from_ref(u))));
        }
        if let Some(n) = &first.name {
            parts.push(format!("ResourceNames:{}", quote_list(std::slice::from_ref(n))));
        }
        parts.push(format!("Verbs:{}", quote_list(&verbs)));
        lines.push(format!("{{{}}}", parts.join(", ")));
        i = j;
    }
    lines.sort();
    lines.dedup();
    lines.join("\n")
}

impl RbacAuthorizer {
    fn allowed(&self, user: &User<'_>, verb: &str, resource: &str, name: &str, namespace: &str) -> bool {
        let attrs = Attributes {
            verb,
            resource_request: true,
            api_group: RBAC_GROUP,
            resource,
            name,
            namespace,
            ..Default::default()
        };
        self.authorize(user, &attrs).allowed()
    }

    fn escalation_error(
        &self,
        user: &User<'_>,
        object: &str,
        owner: &[PolicyRule],
        wanted: &[PolicyRule],
    ) -> Option<String> {
        let missing: Vec<Atom> =
            wanted.iter().flat_map(atoms).filter(|a| !owner.iter().any(|o| covers(o, a))).collect();
        if missing.is_empty() {
            return None;
        }
        Some(format!(
            "{object} is forbidden: user {:?} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            user.name,
            quote_list(user.groups),
            render_uncovered(missing)
        ))
    }

    /// Would RBAC let `user` perform `write`? `Err` carries the API server's message.
    /// (Authorization of the write itself uses this RBAC world only; the escalate/bind checks
    /// upstream consult the whole authorizer chain.)
    pub fn check_write(&self, user: &User<'_>, write: &Write<'_>) -> Result<(), String> {
        if user.groups.iter().any(|g| g == "system:masters") {
            return Ok(());
        }
        let (resource, namespace, name) = match write {
            Write::CreateRole { namespace, role } => ("roles", *namespace, role.name.as_str()),
            Write::CreateClusterRole { role } => ("clusterroles", "", role.name.as_str()),
            Write::CreateRoleBinding { namespace, name, .. } => ("rolebindings", *namespace, *name),
            Write::CreateClusterRoleBinding { name, .. } => ("clusterrolebindings", "", *name),
        };
        let object = format!("{resource}.{RBAC_GROUP} {name:?}");
        if !self.allowed(user, "create", resource, "", namespace) {
            return Err(format!(
                "{object} is forbidden: User {:?} cannot create resource {resource:?} in API group {RBAC_GROUP:?}",
                user.name
            ));
        }
        match write {
            Write::CreateRole { role, .. } | Write::CreateClusterRole { role } => {
                if self.allowed(user, "escalate", resource, "", namespace) {
                    return Ok(());
                }
                let owner = self.rules_for(user, namespace);
                if role.aggregation_rule.is_some() {
                    let full = [
                        PolicyRule {
                            verbs: vec!["*".into()],
                            api_groups: vec!["*".into()],
                            resources: vec!["*".into()],
                            ..Default::default()
                        },
                        PolicyRule {
                            verbs: vec!["*".into()],
                            non_resource_urls: vec!["*".into()],
                            ..Default::default()
                        },
                    ];
                    if let Some(e) = self.escalation_error(user, &object, &owner, &full) {
                        return Err(format!(
                            "must have cluster-admin privileges to use an aggregationRule: {e}"
                        ));
                    }
                }
                self.escalation_error(user, &object, &owner, &role.rules).map_or(Ok(()), Err)
            }
            Write::CreateRoleBinding { role_ref, .. } | Write::CreateClusterRoleBinding { role_ref, .. } => {
                let role_resource = if role_ref.kind == "Role" { "roles" } else { "clusterroles" };
                if self.allowed(user, "bind", role_resource, &role_ref.name, namespace) {
                    return Ok(());
                }
                let rules = self.referenced_rules(role_ref, namespace)?;
                let owner = self.rules_for(user, namespace);
                self.escalation_error(user, &object, &owner, &rules).map_or(Ok(()), Err)
            }
        }
    }
}
