//! Amazon EKS access policies and access entries, as an allow-only authorizer.
//!
//! An access entry binds an IAM principal — seen by Kubernetes as a username, and through the
//! authenticator's `extra` (`canonicalArn`, `arn`) — to managed access policies, each at cluster
//! scope or in listed namespaces (globs such as `dev-*`). Like EKS, the permissions are allow-only
//! and unioned with RBAC; a request no entry allows gets no opinion.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::authorizer::{Attributes, Decision, User};
use crate::matching::rule_allows;
use crate::model::PolicyRule;
use rampart_types::sso::SsoRole;

pub(crate) fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect();
    PolicyRule { api_groups: s(groups), resources: s(resources), verbs: s(verbs), ..Default::default() }
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

/// The read rows shared by the View and Edit policies.
pub(crate) fn view_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
            READ,
        ),
        rule(&["autoscaling"], &["horizontalpodautoscalers", "horizontalpodautoscalers/status"], READ),
        rule(&["batch"], &["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
        rule(&["discovery.k8s.io"], &["endpointslices"], READ),
        rule(
            &["extensions"],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
            ],
            READ,
        ),
        rule(&["networking.k8s.io"], &["ingresses", "ingresses/status", "networkpolicies"], READ),
        rule(&["policy"], &["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
        rule(
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
                "namespaces",
            ],
            READ,
        ),
    ]
}

pub(crate) fn edit_rules() -> Vec<PolicyRule> {
    let mut rules = view_rules();
    rules.extend([
        rule(
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
            WRITE,
        ),
        rule(&["autoscaling"], &["horizontalpodautoscalers"], WRITE),
        rule(&["batch"], &["cronjobs", "jobs"], WRITE),
        rule(
            &["extensions"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "ingresses",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
            ],
            WRITE,
        ),
        rule(&["networking.k8s.io"], &["ingresses", "networkpolicies"], WRITE),
        rule(&["policy"], &["poddisruptionbudgets"], WRITE),
        rule(
            &[""],
            &["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"],
            READ,
        ),
        rule(
            &[""],
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
            WRITE,
        ),
        rule(&[""], &["serviceaccounts"], &["impersonate"]),
    ]);
    rules
}

/// The rules of a managed access policy, by name or ARN (`…:cluster-access-policy/<Name>`).
pub fn policy_rules(policy: &str) -> Option<Vec<PolicyRule>> {
    let name = policy.rsplit('/').next().unwrap_or(policy);
    Some(match name {
        "AmazonEKSClusterAdminPolicy" => vec![
            rule(&["*"], &["*"], &["*"]),
            PolicyRule { verbs: vec!["*".into()], non_resource_urls: vec!["*".into()], ..Default::default() },
        ],
        "AmazonEKSAdminPolicy" => {
            let mut rules = edit_rules();
            rules.push(rule(
                &["rbac.authorization.k8s.io"],
                &["roles", "rolebindings"],
                &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            ));
            rules.push(rule(&["authorization.k8s.io"], &["localsubjectaccessreviews"], &["create"]));
            rules
        }
        "AmazonEKSEditPolicy" => edit_rules(),
        "AmazonEKSViewPolicy" => view_rules(),
        "AmazonEKSAdminViewPolicy" => vec![rule(&["*"], &["*"], READ)],
        "AmazonEKSHybridPolicy" => vec![rule(&["*"], &["nodes"], &["list"])],
        _ => return None,
    })
}

/// `accessScope` of an association.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccessScope {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Association {
    pub policy_arn: String,
    pub access_scope: AccessScope,
}

/// An access entry, API-shaped.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntry {
    /// Empty when `sso` names an IAM Identity Center permission set instead.
    #[serde(default)]
    pub principal_arn: String,
    /// An Identity Center permission set (`permissionSetName`, `accountID`, …): every role
    /// Identity Center makes for it.
    #[serde(default)]
    pub sso: Option<serde_json::Value>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub kubernetes_groups: Vec<String>,
    #[serde(default, rename = "type")]
    pub entry_type: Option<String>,
    #[serde(default)]
    pub access_policies: Vec<Association>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntriesFile {
    access_entries: Vec<AccessEntry>,
}

/// A file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("access entries: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("access entry {principal}: unknown access policy {policy:?}")]
    UnknownPolicy { principal: String, policy: String },
    #[error("access entry {principal}: access scope type {kind:?} (use cluster or namespace)")]
    Scope { principal: String, kind: String },
    #[error("{0}")]
    Sso(String),
}

struct Compiled {
    /// The ARN, or the Identity Center roles' pattern, as messages show it.
    principal_arn: String,
    sso: Option<SsoRole>,
    username: Option<String>,
    grants: Vec<(String, AccessScope, Vec<PolicyRule>)>,
}

/// The IAM ARNs the authenticator put in `extra` (keys lower-cased by the apiserver).
fn principal_arns(extra: Option<&BTreeMap<String, Vec<String>>>) -> Vec<&str> {
    ["canonicalarn", "canonicalArn", "arn"]
        .iter()
        .filter_map(|k| extra.and_then(|e| e.get(*k)))
        .flatten()
        .map(String::as_str)
        .collect()
}

impl Compiled {
    fn is_principal(&self, user: &User<'_>, arns: &[&str]) -> bool {
        let by_arn = match &self.sso {
            Some(role) => arns.iter().any(|a| role.matches(a)),
            None => arns.contains(&self.principal_arn.as_str()),
        };
        by_arn || self.username.as_deref() == Some(user.name)
    }
}

/// Access entries with their associated policies, ready to authorize.
pub struct AccessPolicyAuthorizer {
    entries: Vec<Compiled>,
}

impl std::fmt::Debug for AccessPolicyAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessPolicyAuthorizer").field("entries", &self.entries.len()).finish()
    }
}

/// Namespace scopes such as `dev-*`: `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    rampart_types::glob::star(pattern, text)
}

impl AccessPolicyAuthorizer {
    /// Parse `accessEntries:` YAML (the shape of `aws eks describe-access-entry` plus the
    /// associated policies).
    pub fn from_yaml(text: &str) -> Result<Self, AccessError> {
        let file: EntriesFile = serde_yaml::from_str(text)?;
        let mut entries = Vec::new();
        for (i, mut e) in file.access_entries.into_iter().enumerate() {
            let sso = match &e.sso {
                Some(v) => Some(SsoRole::parse(v, &format!("accessEntries[{i}]")).map_err(AccessError::Sso)?),
                None => None,
            };
            if let Some(role) = &sso {
                e.principal_arn = role.role_pattern();
            }
            let mut grants = Vec::new();
            for a in &e.access_policies {
                let rules = policy_rules(&a.policy_arn).ok_or_else(|| AccessError::UnknownPolicy {
                    principal: e.principal_arn.clone(),
                    policy: a.policy_arn.clone(),
                })?;
                if !matches!(a.access_scope.kind.as_str(), "cluster" | "namespace") {
                    return Err(AccessError::Scope {
                        principal: e.principal_arn.clone(),
                        kind: a.access_scope.kind.clone(),
                    });
                }
                grants.push((
                    a.policy_arn.rsplit('/').next().unwrap_or_default().to_owned(),
                    a.access_scope.clone(),
                    rules,
                ));
            }
            // Templated usernames are rendered by the authenticator; match those by ARN only.
            let username = e.username.clone().filter(|u| !u.contains("{{"));
            entries.push(Compiled { principal_arn: e.principal_arn, sso, username, grants });
        }
        Ok(AccessPolicyAuthorizer { entries })
    }

    /// The rules this principal holds in `namespace` ("" = cluster scope), with their source.
    pub fn rules_for(
        &self,
        user: &User<'_>,
        extra: Option<&BTreeMap<String, Vec<String>>>,
        namespace: &str,
    ) -> Vec<(String, PolicyRule)> {
        let arns = principal_arns(extra);
        let mut out = Vec::new();
        for entry in self.entries.iter().filter(|e| e.is_principal(user, &arns)) {
            for (policy, scope, rules) in &entry.grants {
                if scope.kind == "cluster"
                    || (!namespace.is_empty() && scope.namespaces.iter().any(|n| glob(n, namespace)))
                {
                    let source = format!("access entry {} → {policy} ({})", entry.principal_arn, scope.kind);
                    out.extend(rules.iter().map(|r| (source.clone(), r.clone())));
                }
            }
        }
        out
    }

    /// Allow when an entry of this principal has a policy that allows the request in scope.
    pub fn authorize(
        &self,
        user: &User<'_>,
        extra: Option<&BTreeMap<String, Vec<String>>>,
        attrs: &Attributes<'_>,
    ) -> Decision {
        let arns = principal_arns(extra);
        for entry in &self.entries {
            if !entry.is_principal(user, &arns) {
                continue;
            }
            for (policy, scope, rules) in &entry.grants {
                let in_scope = scope.kind == "cluster"
                    || (!attrs.namespace.is_empty()
                        && scope.namespaces.iter().any(|n| glob(n, attrs.namespace)));
                if in_scope && rules.iter().any(|r| rule_allows(r, attrs)) {
                    return Decision::Allow {
                        reason: format!(
                            "EKS access policy {policy} ({} scope) of access entry {:?}",
                            scope.kind, entry.principal_arn
                        ),
                    };
                }
            }
        }
        Decision::NoOpinion { reason: String::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRIES: &str = r#"
accessEntries:
- principalArn: arn:aws:iam::111122223333:role/dev
  username: dev-user
  kubernetesGroups: [devs]
  accessPolicies:
  - policyArn: arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy
    accessScope: {type: namespace, namespaces: ["dev-*"]}
- principalArn: arn:aws:iam::111122223333:role/admin
  username: "arn:aws:sts::111122223333:assumed-role/admin/{{SessionName}}"
  accessPolicies:
  - policyArn: arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy
    accessScope: {type: cluster}
"#;

    fn ask(
        a: &AccessPolicyAuthorizer,
        user: &str,
        arn: Option<&str>,
        verb: &str,
        resource: &str,
        ns: &str,
    ) -> bool {
        let extra = arn.map(|arn| BTreeMap::from([("canonicalarn".to_owned(), vec![arn.to_owned()])]));
        let attrs =
            Attributes { verb, resource_request: true, resource, namespace: ns, ..Default::default() };
        a.authorize(&User { name: user, groups: &[] }, extra.as_ref(), &attrs).allowed()
    }

    #[test]
    fn scopes_globs_and_principals() {
        let a = AccessPolicyAuthorizer::from_yaml(ENTRIES).unwrap();
        assert!(ask(&a, "dev-user", None, "create", "secrets", "dev-web"));
        assert!(!ask(&a, "dev-user", None, "create", "secrets", "prod"));
        assert!(!ask(&a, "dev-user", None, "list", "nodes", ""));
        assert!(!ask(&a, "dev-user", None, "create", "roles", "dev-web"), "Edit has no RBAC writes");
        let admin = Some("arn:aws:iam::111122223333:role/admin");
        assert!(ask(&a, "arn:aws:sts::111122223333:assumed-role/admin/s1", admin, "delete", "nodes", ""));
        assert!(!ask(&a, "arn:aws:sts::111122223333:assumed-role/admin/s1", None, "delete", "nodes", ""));
    }

    #[test]
    fn view_has_no_secrets_and_unknown_policies_are_errors() {
        let rules = policy_rules("AmazonEKSViewPolicy").unwrap();
        let attrs = Attributes {
            verb: "get",
            resource_request: true,
            resource: "secrets",
            namespace: "x",
            ..Default::default()
        };
        assert!(!rules.iter().any(|r| rule_allows(r, &attrs)));
        let bad = "accessEntries:\n- principalArn: a\n  accessPolicies:\n  - {policyArn: AmazonEKSSuperPolicy, accessScope: {type: cluster}}\n";
        assert!(
            AccessPolicyAuthorizer::from_yaml(bad).unwrap_err().to_string().contains("AmazonEKSSuperPolicy")
        );
        assert!(glob("dev-*", "dev-a") && !glob("dev-*", "prod") && glob("*", "x"));
    }
}
