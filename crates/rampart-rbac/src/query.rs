//! Questions about an RBAC world as a whole: who can do something, and what does each subject
//! hold (rbac-lookup style), with risk flags.

use serde::Serialize;

use crate::authorizer::{Attributes, RbacAuthorizer};
use crate::matching::rule_allows;
use crate::model::{Binding, PolicyRule, Subject};

/// One way a subject is granted something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// `User alice`, `Group devs`, `ServiceAccount ns/name`.
    pub subject: String,
    pub subject_kind: String,
    pub subject_name: String,
    /// `ClusterRoleBinding/name` or `RoleBinding/ns/name`.
    pub binding: String,
    /// `ClusterRole/name` or `Role/name`.
    pub role: String,
    /// `cluster-wide` or the namespace.
    pub scope: String,
    /// Index of the role's first rule that grants the request (`who-can` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
}

/// A risky grant, for `lookup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Risk {
    pub subject: String,
    pub flag: &'static str,
    pub via: String,
}

fn subject_label(s: &Subject, binding_namespace: &str) -> (String, String) {
    match s.kind.as_str() {
        "ServiceAccount" => {
            let ns = if s.namespace.is_empty() { binding_namespace } else { &s.namespace };
            (format!("ServiceAccount {ns}/{}", s.name), format!("{ns}/{}", s.name))
        }
        kind => (format!("{kind} {}", s.name), s.name.clone()),
    }
}

fn has(list: &[String], v: &str) -> bool {
    list.iter().any(|x| x == "*" || x == v)
}

impl RbacAuthorizer {
    fn grants_of(&self, binding: &Binding) -> Vec<Grant> {
        let Ok((kind, _)) = self.role_rules(binding) else { return vec![] };
        binding
            .subjects
            .iter()
            .map(|s| {
                let (subject, subject_name) = subject_label(s, &binding.namespace);
                Grant {
                    subject,
                    subject_kind: s.kind.clone(),
                    subject_name,
                    binding: if binding.namespace.is_empty() {
                        format!("ClusterRoleBinding/{}", binding.name)
                    } else {
                        format!("RoleBinding/{}/{}", binding.namespace, binding.name)
                    },
                    role: format!("{kind}/{}", binding.role_ref.name),
                    scope: if binding.namespace.is_empty() {
                        "cluster-wide".into()
                    } else {
                        binding.namespace.clone()
                    },
                    rule: None,
                }
            })
            .collect()
    }

    /// Every (subject, binding) that allows `attrs`, whoever the user is: ClusterRoleBindings,
    /// then the RoleBindings of the request's namespace.
    pub fn who_can(&self, attrs: &Attributes<'_>) -> Vec<Grant> {
        let mut out = Vec::new();
        for binding in self.all_bindings(attrs.namespace) {
            if let Ok((_, rules)) = self.role_rules(binding)
                && let Some(index) = rules.iter().position(|r| rule_allows(r, attrs))
            {
                out.extend(self.grants_of(binding).into_iter().map(|g| Grant { rule: Some(index), ..g }));
            }
        }
        out
    }

    /// Every grant, optionally only for subjects whose label contains `filter`.
    pub fn lookup(&self, filter: Option<&str>) -> Vec<Grant> {
        self.all_bindings_everywhere()
            .flat_map(|b| self.grants_of(b))
            .filter(|g| filter.is_none_or(|f| g.subject.contains(f)))
            .collect()
    }

    /// Risky grants: full wildcard, escalate/bind/impersonate, cluster-wide secret reads, and
    /// bindings to system:masters / anonymous / unauthenticated.
    pub fn risks(&self, filter: Option<&str>) -> Vec<Risk> {
        let mut out = Vec::new();
        for binding in self.all_bindings_everywhere() {
            let Ok((_, rules)) = self.role_rules(binding) else { continue };
            let cluster = binding.namespace.is_empty();
            let mut flags: Vec<&'static str> = Vec::new();
            let flag = |rule: &PolicyRule, flags: &mut Vec<&'static str>| {
                if has(&rule.verbs, "*")
                    && rule.resources.iter().any(|r| r == "*")
                    && rule.api_groups.iter().any(|g| g == "*")
                {
                    flags.push("wildcard: * verbs on * resources");
                }
                for (verb, name) in [
                    ("escalate", "can escalate roles"),
                    ("bind", "can bind roles"),
                    ("impersonate", "can impersonate"),
                ] {
                    if rule.verbs.iter().any(|v| v == verb) {
                        flags.push(name);
                    }
                }
                let reads = ["get", "list", "watch"].iter().any(|v| has(&rule.verbs, v));
                if cluster && reads && has(&rule.api_groups, "") && has(&rule.resources, "secrets") {
                    flags.push("reads secrets cluster-wide");
                }
            };
            for rule in rules {
                flag(rule, &mut flags);
            }
            flags.sort_unstable();
            flags.dedup();
            for grant in self.grants_of(binding) {
                if filter.is_some_and(|f| !grant.subject.contains(f)) {
                    continue;
                }
                let mut subject_flags = flags.clone();
                match (grant.subject_kind.as_str(), grant.subject_name.as_str()) {
                    ("Group", "system:masters") => subject_flags.push("bound to system:masters"),
                    ("User", "system:anonymous") => subject_flags.push("granted to system:anonymous"),
                    ("Group", "system:unauthenticated") => {
                        subject_flags.push("granted to system:unauthenticated")
                    }
                    _ => {}
                }
                for f in subject_flags {
                    out.push(Risk {
                        subject: grant.subject.clone(),
                        flag: f,
                        via: format!("{} → {}", grant.binding, grant.role),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::World;
    use crate::{Attributes, RbacAuthorizer};

    fn world() -> RbacAuthorizer {
        let yaml = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: cluster-admin}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}, {nonResourceURLs: ["*"], verbs: ["*"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pod-reader}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: admins}
roleRef: {kind: ClusterRole, name: cluster-admin}
subjects: [{kind: Group, name: "system:masters"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: readers, namespace: dev}
roleRef: {kind: ClusterRole, name: pod-reader}
subjects: [{kind: ServiceAccount, name: app}, {kind: User, name: alice}]
"#;
        let mut w = World::default();
        w.add_yaml(yaml, "t").unwrap();
        w.authorizer()
    }

    #[test]
    fn who_can_lists_every_granting_subject_in_scope() {
        let authz = world();
        let attrs = Attributes {
            verb: "list",
            resource_request: true,
            resource: "pods",
            namespace: "dev",
            ..Default::default()
        };
        let subjects: Vec<String> = authz.who_can(&attrs).into_iter().map(|g| g.subject).collect();
        assert_eq!(subjects, ["Group system:masters", "ServiceAccount dev/app", "User alice"]);
        let prod = Attributes { namespace: "prod", ..attrs };
        assert_eq!(authz.who_can(&prod).len(), 1);
    }

    #[test]
    fn lookup_and_risks() {
        let authz = world();
        assert_eq!(authz.lookup(Some("alice")).len(), 1);
        let risks = authz.risks(None);
        let flags: Vec<&str> = risks.iter().map(|r| r.flag).collect();
        assert!(flags.contains(&"wildcard: * verbs on * resources"));
        assert!(flags.contains(&"bound to system:masters"));
        assert!(flags.contains(&"reads secrets cluster-wide"));
        assert!(risks.iter().all(|r| r.subject == "Group system:masters"), "{risks:?}");
    }
}
