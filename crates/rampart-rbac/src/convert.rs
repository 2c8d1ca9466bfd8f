//! RBAC → Cedar: one `permit` per (subject, rule) of a binding, so that the converted policies
//! allow exactly what RBAC allows under Rampart's request mapping.
//!
//! Fixes to the upstream converter (spec §5.2, Appendix A #14–18), each checked by the property
//! test that compares the RBAC tier with the converted Cedar:
//! * URL globs become real Cedar wildcards (upstream emitted a literal `\*`), and a list holding
//!   `*` means any path;
//! * `resources: ["*"]` covers subresources (upstream added `unless { resource has subresource }`,
//!   so converted cluster-admin could not `exec`); each plain resource excludes subresources on
//!   its own branch (upstream's mixed lists let `pods` allow every pods subresource);
//! * impersonation is recognised by verb and resource whatever the API group, including
//!   `serviceaccounts` (→ `k8s::ServiceAccount`) and node users (→ `k8s::Node`);
//! * policy annotations carry two-digit indexes, so ids never collide;
//! * RoleBindings never grant cluster-scoped requests (non-resource URLs, users, groups), as RBAC
//!   never consults them there.

use crate::model::{Binding, PolicyRule, Role, Subject};

fn q(s: &str) -> String {
    format!("{s:?}")
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|i| q(i)).collect::<Vec<_>>().join(", "))
}

/// `attr == "x"` for one value, `["a", "b"].contains(attr)` for several.
fn one_of(attr: &str, values: &[String]) -> String {
    match values {
        [one] => format!("{attr} == {}", q(one)),
        many => format!("{}.contains({attr})", list(many)),
    }
}

/// Escape a literal for a Cedar `like` pattern.
fn like_literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('*', "\\*")
}

/// `(scope, condition)` for a subject, or `None` when it can never match.
fn principal(subject: &Subject, binding_namespace: &str) -> Option<(String, Option<String>)> {
    match subject.kind.as_str() {
        "Group" => Some((format!("principal in k8s::Group::{}", q(&subject.name)), None)),
        "User" => {
            // Rampart types principals by username shape; follow it so the policy matches.
            let parts: Vec<&str> = subject.name.split(':').collect();
            Some(match parts.as_slice() {
                ["system", "serviceaccount", ns, name] => (
                    "principal is k8s::ServiceAccount".into(),
                    Some(format!("principal.namespace == {} && principal.name == {}", q(ns), q(name))),
                ),
                ["system", "node", name] => {
                    ("principal is k8s::Node".into(), Some(format!("principal.name == {}", q(name))))
                }
                _ => {
                    ("principal is k8s::User".into(), Some(format!("principal.name == {}", q(&subject.name))))
                }
            })
        }
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() { binding_namespace } else { &subject.namespace };
            if ns.is_empty() {
                return None;
            }
            // RBAC compares the username text. Through the username Rampart also types the
            // principal, so matching the name as a user gives the right principal type: a
            // service account normally, a plain user when a `:` in the namespace or name
            // (invalid in Kubernetes, but an authenticator may produce it) breaks the form.
            let username = format!("system:serviceaccount:{ns}:{}", subject.name);
            principal(
                &Subject { kind: "User".into(), name: username, namespace: String::new() },
                binding_namespace,
            )
        }
        _ => None,
    }
}

fn action(verbs: &[String]) -> String {
    if verbs.iter().any(|v| v == "*") {
        return "action".into();
    }
    let mut unique: Vec<&String> = Vec::new();
    for v in verbs {
        if !unique.contains(&v) {
            unique.push(v);
        }
    }
    match unique.as_slice() {
        [one] => format!("action == k8s::Action::{}", q(one)),
        many => format!(
            "action in [{}]",
            many.iter().map(|v| format!("k8s::Action::{}", q(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn and(parts: Vec<String>) -> Option<String> {
    let parts: Vec<String> = parts.into_iter().filter(|p| !p.is_empty()).collect();
    (!parts.is_empty()).then(|| parts.join(" && "))
}

fn or(parts: Vec<String>) -> String {
    if parts.len() == 1 { parts.into_iter().collect() } else { format!("({})", parts.join(" || ")) }
}

/// Condition on `resource.resource`/`subresource` for a rule's resources (`None` = any).
fn resources_condition(resources: &[String]) -> Option<String> {
    if resources.iter().any(|r| r == "*") {
        return None;
    }
    let branches: Vec<String> = resources
        .iter()
        .map(|r| match r.split_once('/') {
            None => format!("resource.resource == {} && !(resource has subresource)", q(r)),
            Some(("*", sub)) => format!("resource has subresource && resource.subresource == {}", q(sub)),
            Some((res, sub)) => format!(
                "resource.resource == {} && resource has subresource && resource.subresource == {}",
                q(res),
                q(sub)
            ),
        })
        .collect();
    Some(if branches.is_empty() { "false".into() } else { or(branches) })
}

fn non_resource_condition(urls: &[String]) -> Option<String> {
    if urls.iter().any(|u| u == "*") {
        return None;
    }
    let branches: Vec<String> = urls
        .iter()
        .map(|u| {
            if u.ends_with('*') {
                format!(
                    "resource.path like \"{}*\"",
                    like_literal(u.trim_end_matches('*')).replace('"', "\\\"")
                )
            } else {
                format!("resource.path == {}", q(u))
            }
        })
        .collect();
    Some(or(branches))
}

fn has_group(groups: &[String], g: &str) -> bool {
    groups.iter().any(|x| x == "*" || x == g)
}

/// Impersonation targets granted by a rule: `(resource scope, condition)` alternatives.
fn impersonation(rule: &PolicyRule, binding_namespace: &str) -> Vec<(String, Option<String>)> {
    let verbs_ok = rule.verbs.iter().any(|v| v == "*" || v == "impersonate");
    if !verbs_ok {
        return vec![];
    }
    let names = &rule.resource_names;
    let grants = |r: &str| rule.resources.iter().any(|x| x == "*" || x == r);
    let core = has_group(&rule.api_groups, "");
    let authn = has_group(&rule.api_groups, "authentication.k8s.io");
    let cluster = binding_namespace.is_empty();
    let mut out = Vec::new();
    let name_cond = |attr: &str| (!names.is_empty()).then(|| one_of(attr, names));
    if cluster && core && grants("users") {
        out.push(("resource is k8s::User".into(), name_cond("resource.name")));
        let nodes: Vec<String> = names
            .iter()
            .filter(|n| n.split(':').count() == 3 && n.starts_with("system:node:"))
            .cloned()
            .collect();
        if names.is_empty() {
            out.push(("resource is k8s::Node".into(), None));
        } else if !nodes.is_empty() {
            let ids: Vec<String> = nodes.iter().map(|n| format!("k8s::Node::{}", q(n))).collect();
            out.push(("resource is k8s::Node".into(), Some(format!("resource in [{}]", ids.join(", ")))));
        }
    }
    if cluster && core && grants("groups") {
        out.push(("resource is k8s::Group".into(), name_cond("resource.name")));
    }
    if core && grants("serviceaccounts") {
        let ns = (!cluster).then(|| format!("resource.namespace == {}", q(binding_namespace)));
        out.push((
            "resource is k8s::ServiceAccount".into(),
            and([ns, name_cond("resource.name")].into_iter().flatten().collect()),
        ));
    }
    if cluster && authn && grants("uids") {
        let cond = (!names.is_empty()).then(|| {
            format!(
                "resource in [{}]",
                names.iter().map(|n| format!("k8s::PrincipalUID::{}", q(n))).collect::<Vec<_>>().join(", ")
            )
        });
        out.push(("resource is k8s::PrincipalUID".into(), cond));
    }
    if cluster && authn {
        // `userextras/<key>` arrives as resource userextras, subresource <key>.
        let any_key = rule.resources.iter().any(|r| r == "*");
        let mut keys: Vec<String> = rule
            .resources
            .iter()
            .filter_map(|r| r.strip_prefix("userextras/").or_else(|| r.strip_prefix("*/")))
            .map(str::to_owned)
            .collect();
        keys.dedup();
        if any_key || !keys.is_empty() {
            let key_cond = (!any_key).then(|| one_of("resource.key", &keys));
            let value_cond = (!names.is_empty())
                .then(|| format!("resource has value && {}", one_of("resource.value", names)));
            out.push((
                "resource is k8s::Extra".into(),
                and([key_cond, value_cond].into_iter().flatten().collect()),
            ));
        }
    }
    out
}

/// Convert one binding with its role into Cedar policy text (empty when nothing can match).
pub fn convert(binding: &Binding, role: &Role) -> String {
    let namespaced = !binding.namespace.is_empty();
    let (binding_kind, role_kind) = if namespaced {
        ("roleBinding", if role.namespace.is_empty() { "clusterRole" } else { "role" })
    } else {
        ("clusterRoleBinding", "clusterRole")
    };
    let mut out = Vec::new();
    for (pi, subject) in binding.subjects.iter().enumerate() {
        let Some((principal_scope, principal_cond)) = principal(subject, &binding.namespace) else {
            continue;
        };
        for (ri, rule) in role.rules.iter().enumerate() {
            let mut annotations = format!(
                "@{binding_kind}({})\n@{role_kind}({})\n@subject(\"{pi:02}\")\n@policyRule(\"{ri:02}\")\n",
                q(&binding.name),
                q(&role.name)
            );
            if namespaced {
                annotations.push_str(&format!("@namespace({})\n", q(&binding.namespace)));
            }
            let rule_action = action(&rule.verbs);
            let impersonate = "action == k8s::Action::\"impersonate\"".to_owned();
            let mut emit = |action: &str, resource_scope: &str, condition: Option<String>| {
                let when = and([principal_cond.clone(), condition].into_iter().flatten().collect());
                let body = match when {
                    Some(w) => format!(
                        "permit (\n    {principal_scope},\n    {action},\n    {resource_scope}\n) when {{\n    {w}\n}};"
                    ),
                    None => {
                        format!("permit (\n    {principal_scope},\n    {action},\n    {resource_scope}\n);")
                    }
                };
                out.push(format!("{annotations}{body}"));
            };
            // Non-resource URLs are cluster-scoped: only ClusterRoleBindings grant them.
            if !rule.non_resource_urls.is_empty() && !namespaced {
                emit(
                    &rule_action,
                    "resource is k8s::NonResourceURL",
                    non_resource_condition(&rule.non_resource_urls),
                );
            }
            // Identity targets only occur in impersonation requests.
            for (scope, cond) in impersonation(rule, &binding.namespace) {
                emit(&impersonate, &scope, cond);
            }
            if !rule.resources.is_empty() && !rule.api_groups.is_empty() {
                let groups = (!rule.api_groups.iter().any(|g| g == "*"))
                    .then(|| one_of("resource.apiGroup", &rule.api_groups));
                let names = (!rule.resource_names.is_empty()).then(|| {
                    format!("resource has name && {}", one_of("resource.name", &rule.resource_names))
                });
                let ns = namespaced.then(|| {
                    format!("resource has namespace && resource.namespace == {}", q(&binding.namespace))
                });
                let cond = and([groups, resources_condition(&rule.resources), names, ns]
                    .into_iter()
                    .flatten()
                    .collect());
                emit(&rule_action, "resource is k8s::Resource", cond);
            }
        }
    }
    if out.is_empty() {
        return String::new();
    }
    format!("// {}\n{}\n", binding.name, out.join("\n\n"))
}

/// Convert every binding of a world (ClusterRoleBindings, then RoleBindings, in order), with
/// ClusterRoles aggregated first. Bindings whose role is missing are skipped and listed.
pub fn convert_world(world: &crate::manifest::World) -> (String, Vec<String>) {
    let mut cluster_roles = world.cluster_roles.clone();
    crate::aggregate::aggregate(&mut cluster_roles);
    let mut text = Vec::new();
    let mut missing = Vec::new();
    for b in world.cluster_role_bindings.iter().chain(&world.role_bindings) {
        let role = match b.role_ref.kind.as_str() {
            "Role" => world.roles.iter().find(|r| r.name == b.role_ref.name && r.namespace == b.namespace),
            _ => cluster_roles.iter().find(|r| r.name == b.role_ref.name),
        };
        match role {
            Some(role) => {
                let converted = convert(b, role);
                if !converted.is_empty() {
                    text.push(converted);
                }
            }
            None => missing.push(format!(
                "{} {:?}: {} {:?} not found",
                if b.namespace.is_empty() { "ClusterRoleBinding" } else { "RoleBinding" },
                b.name,
                b.role_ref.kind,
                b.role_ref.name
            )),
        }
    }
    (text.join("\n"), missing)
}
