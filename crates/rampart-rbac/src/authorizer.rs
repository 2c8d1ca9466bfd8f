//! The RBAC authorizer, indexed by subject.
//!
//! Upstream lists every ClusterRoleBinding, then every RoleBinding of the request's namespace,
//! and for each takes the first subject that applies to the user. Here bindings are indexed by
//! the keys a user can match — `User:<name>`, `Group:<name>` per group, `SA:<ns>/<name>` — and
//! visited in their original order, so decisions and reason strings are the same while the
//! cost depends only on the bindings that name the requester.

use std::collections::HashMap;

use crate::matching::{rule_allows, subject_applies};
use crate::model::{Binding, PolicyRule, Role, Subject};

/// The requesting user, as the authenticator produced it (RBAC adds no groups).
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    pub name: &'a str,
    pub groups: &'a [String],
}

/// What is being asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub resource_request: bool,
    pub api_group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub path: &'a str,
}

/// RBAC never denies: it allows, or has no opinion (with error text when roles were missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow { reason: String },
    NoOpinion { reason: String },
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow { reason } | Decision::NoOpinion { reason } => reason,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SubjectKey {
    User(String),
    Group(String),
    ServiceAccount(String, String),
}

fn subject_keys(subject: &Subject, binding_namespace: &str) -> Option<SubjectKey> {
    match subject.kind.as_str() {
        "User" => Some(SubjectKey::User(subject.name.clone())),
        "Group" => Some(SubjectKey::Group(subject.name.clone())),
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() { binding_namespace } else { &subject.namespace };
            (!ns.is_empty()).then(|| SubjectKey::ServiceAccount(ns.to_owned(), subject.name.clone()))
        }
        _ => None,
    }
}

/// Bindings of one scope (all ClusterRoleBindings, or one namespace's RoleBindings), indexed.
#[derive(Debug, Clone, Default)]
struct BindingIndex {
    bindings: Vec<Binding>,
    by_subject: HashMap<SubjectKey, Vec<usize>>,
}

impl BindingIndex {
    fn push(&mut self, binding: Binding) {
        let i = self.bindings.len();
        for s in &binding.subjects {
            if let Some(key) = subject_keys(s, &binding.namespace) {
                let list = self.by_subject.entry(key).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        self.bindings.push(binding);
    }

    /// Bindings that may name `user`, in their original order.
    fn candidates(&self, user: &User<'_>) -> Vec<usize> {
        let mut out = Vec::new();
        let mut add = |key: SubjectKey| {
            if let Some(v) = self.by_subject.get(&key) {
                out.extend_from_slice(v);
            }
        };
        add(SubjectKey::User(user.name.to_owned()));
        for g in user.groups {
            add(SubjectKey::Group(g.clone()));
        }
        if let Some((ns, name)) =
            user.name.strip_prefix("system:serviceaccount:").and_then(|r| r.split_once(':'))
        {
            add(SubjectKey::ServiceAccount(ns.to_owned(), name.to_owned()));
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// An RBAC world: roles, cluster roles and bindings, ready to answer.
#[derive(Debug, Clone, Default)]
pub struct RbacAuthorizer {
    cluster_roles: HashMap<String, Role>,
    roles: HashMap<(String, String), Role>,
    cluster_bindings: BindingIndex,
    role_bindings: HashMap<String, BindingIndex>,
}

fn describe_subject(s: &Subject, binding_namespace: &str) -> String {
    match s.kind.as_str() {
        "ServiceAccount" => {
            let ns = if s.namespace.is_empty() { binding_namespace } else { &s.namespace };
            format!("ServiceAccount \"{}/{ns}\"", s.name)
        }
        kind => format!("{kind} \"{}\"", s.name),
    }
}

impl RbacAuthorizer {
    /// Build from objects in lister order. ClusterRoles are aggregated first.
    pub fn new(
        roles: Vec<Role>,
        mut cluster_roles: Vec<Role>,
        role_bindings: Vec<Binding>,
        cluster_role_bindings: Vec<Binding>,
    ) -> Self {
        crate::aggregate::aggregate(&mut cluster_roles);
        let mut a = RbacAuthorizer::default();
        for r in cluster_roles {
            a.cluster_roles.insert(r.name.clone(), r);
        }
        for r in roles {
            a.roles.insert((r.namespace.clone(), r.name.clone()), r);
        }
        for b in cluster_role_bindings {
            a.cluster_bindings.push(b);
        }
        for b in role_bindings {
            a.role_bindings.entry(b.namespace.clone()).or_default().push(b);
        }
        a
    }

    /// The rules a binding grants (with the role kind), or the lookup error text upstream reports.
    pub fn role_rules(&self, binding: &Binding) -> Result<(&str, &[PolicyRule]), String> {
        let name = &binding.role_ref.name;
        match binding.role_ref.kind.as_str() {
            "ClusterRole" => self
                .cluster_roles
                .get(name)
                .map(|r| ("ClusterRole", r.rules.as_slice()))
                .ok_or_else(|| format!("clusterrole.rbac.authorization.k8s.io \"{name}\" not found")),
            "Role" if !binding.namespace.is_empty() => self
                .roles
                .get(&(binding.namespace.clone(), name.clone()))
                .map(|r| ("Role", r.rules.as_slice()))
                .ok_or_else(|| format!("role.rbac.authorization.k8s.io \"{name}\" not found")),
            kind => Err(format!("unsupported role reference kind: \"{kind}\"")),
        }
    }

    fn visit(
        &self,
        index: &BindingIndex,
        context_namespace: &str,
        user: &User<'_>,
        attrs: &Attributes<'_>,
        errors: &mut Vec<String>,
    ) -> Option<String> {
        for i in index.candidates(user) {
            let Some(binding) = index.bindings.get(i) else { continue };
            let Some(subject) = binding.subjects.iter().find(|s| subject_applies(s, user, context_namespace))
            else {
                continue;
            };
            let (kind, rules) = match self.role_rules(binding) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if rules.iter().any(|r| rule_allows(r, attrs)) {
                let source = if binding.namespace.is_empty() {
                    format!("ClusterRoleBinding \"{}\"", binding.name)
                } else {
                    format!("RoleBinding \"{}/{}\"", binding.name, binding.namespace)
                };
                return Some(format!(
                    "RBAC: allowed by {source} of {kind} \"{}\" to {}",
                    binding.role_ref.name,
                    describe_subject(subject, &binding.namespace)
                ));
            }
        }
        None
    }

    /// Decide a request.
    pub fn authorize(&self, user: &User<'_>, attrs: &Attributes<'_>) -> Decision {
        let mut errors = Vec::new();
        if let Some(reason) = self.visit(&self.cluster_bindings, "", user, attrs, &mut errors) {
            return Decision::Allow { reason };
        }
        // RoleBindings only for namespaced requests, and only those of the request's namespace.
        if let Some(index) = self.role_bindings.get(attrs.namespace).filter(|_| !attrs.namespace.is_empty())
            && let Some(reason) = self.visit(index, attrs.namespace, user, attrs, &mut errors)
        {
            return Decision::Allow { reason };
        }
        let mut unique: Vec<String> = Vec::new();
        for e in errors {
            if !unique.contains(&e) {
                unique.push(e);
            }
        }
        let reason = match unique.as_slice() {
            [] => String::new(),
            [one] => format!("RBAC: {one}"),
            many => format!("RBAC: [{}]", many.join(", ")),
        };
        Decision::NoOpinion { reason }
    }

    /// Every rule granted to `user` in `namespace` ("" = cluster scope only): all applicable
    /// ClusterRoleBindings plus the namespace's RoleBindings, without short-circuit.
    pub fn rules_for(&self, user: &User<'_>, namespace: &str) -> Vec<PolicyRule> {
        self.grants_for(user, namespace).into_iter().map(|(_, rule)| rule).collect()
    }

    /// Like [`RbacAuthorizer::rules_for`], each rule with where it comes from
    /// (`ClusterRoleBinding/x → ClusterRole/y`).
    pub fn grants_for(&self, user: &User<'_>, namespace: &str) -> Vec<(String, PolicyRule)> {
        let mut out = Vec::new();
        let mut scopes = vec![(&self.cluster_bindings, "")];
        if let Some(index) = self.role_bindings.get(namespace).filter(|_| !namespace.is_empty()) {
            scopes.push((index, namespace));
        }
        for (index, context) in scopes {
            for i in index.candidates(user) {
                let Some(b) = index.bindings.get(i) else { continue };
                if b.subjects.iter().any(|s| subject_applies(s, user, context))
                    && let Ok((kind, rules)) = self.role_rules(b)
                {
                    let source = if b.namespace.is_empty() {
                        format!("ClusterRoleBinding/{} → {kind}/{}", b.name, b.role_ref.name)
                    } else {
                        format!("RoleBinding/{}/{} → {kind}/{}", b.namespace, b.name, b.role_ref.name)
                    };
                    out.extend(rules.iter().map(|r| (source.clone(), r.clone())));
                }
            }
        }
        out
    }

    /// The rules a role reference points to, as a binding in `namespace` would resolve it.
    pub fn referenced_rules(
        &self,
        role_ref: &crate::model::RoleRef,
        namespace: &str,
    ) -> Result<Vec<PolicyRule>, String> {
        let probe = Binding {
            name: String::new(),
            namespace: namespace.to_owned(),
            role_ref: role_ref.clone(),
            subjects: vec![],
        };
        self.role_rules(&probe).map(|(_, rules)| rules.to_vec())
    }

    /// ClusterRoleBindings, then the RoleBindings of `namespace` (none for ""), in order.
    pub fn all_bindings<'a>(&'a self, namespace: &str) -> impl Iterator<Item = &'a Binding> + 'a {
        let namespaced = if namespace.is_empty() { None } else { self.role_bindings.get(namespace) };
        self.cluster_bindings.bindings.iter().chain(namespaced.into_iter().flat_map(|i| i.bindings.iter()))
    }

    /// Every binding of the world: ClusterRoleBindings, then RoleBindings by namespace name.
    pub fn all_bindings_everywhere(&self) -> impl Iterator<Item = &Binding> {
        let mut namespaces: Vec<&String> = self.role_bindings.keys().collect();
        namespaces.sort();
        self.cluster_bindings.bindings.iter().chain(
            namespaces
                .into_iter()
                .filter_map(|ns| self.role_bindings.get(ns))
                .flat_map(|i| i.bindings.iter()),
        )
    }

    /// The cluster roles after aggregation (for inspection and `lookup`).
    pub fn cluster_role(&self, name: &str) -> Option<&Role> {
        self.cluster_roles.get(name)
    }
}
