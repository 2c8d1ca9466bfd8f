//! Matching one rule against one request, and one subject against one user, exactly as
//! `k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac` does (case-sensitive string equality).

use crate::authorizer::{Attributes, User};
use crate::model::{PolicyRule, Subject};

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|x| x == "*" || x == value)
}

/// Does `rule` allow the request?
pub fn rule_allows(rule: &PolicyRule, attrs: &Attributes<'_>) -> bool {
    if !has(&rule.verbs, attrs.verb) {
        return false;
    }
    if !attrs.resource_request {
        return rule.non_resource_urls.iter().any(|u| {
            u == "*"
                || u == attrs.path
                || (u.ends_with('*') && attrs.path.starts_with(u.trim_end_matches('*')))
        });
    }
    if !has(&rule.api_groups, attrs.api_group) {
        return false;
    }
    let resource_ok = rule.resources.iter().any(|r| {
        if r == "*" {
            return true;
        }
        if attrs.subresource.is_empty() {
            return r == attrs.resource;
        }
        // `resource/subresource` exactly, or `*/subresource`.
        r.strip_prefix(attrs.resource).and_then(|rest| rest.strip_prefix('/')) == Some(attrs.subresource)
            || r.strip_prefix("*/") == Some(attrs.subresource)
    });
    resource_ok && (rule.resource_names.is_empty() || rule.resource_names.iter().any(|n| n == attrs.name))
}

/// Does `subject` of a binding in `binding_namespace` ("" for ClusterRoleBindings) name `user`?
pub fn subject_applies(subject: &Subject, user: &User<'_>, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() { binding_namespace } else { &subject.namespace };
            !ns.is_empty()
                && user
                    .name
                    .strip_prefix("system:serviceaccount:")
                    .and_then(|rest| rest.strip_prefix(ns))
                    .and_then(|rest| rest.strip_prefix(':'))
                    == Some(subject.name.as_str())
        }
        _ => false,
    }
}
