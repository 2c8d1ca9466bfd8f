//! From the aws-auth ConfigMap to EKS access entries: every mapping as the access entry (and
//! access policy) that gives the same identity, what cannot be expressed and why, and a check
//! of the result against the principals an audit log saw.
//!
//! The rules follow the EKS documentation's migration guide: node roles become `EC2_LINUX`
//! (`EC2_WINDOWS` with the Windows proxier group) or `FARGATE_LINUX` entries, which get their
//! username and groups from EKS; `system:masters` cannot be an access-entry group and becomes
//! `AmazonEKSClusterAdminPolicy` at cluster scope; other `system:` groups and reserved username
//! prefixes cannot be expressed; `mapAccounts` has no equivalent (entries name principals).

use crate::mapping::{AwsAuth, Mapping, RESERVED_PREFIXES};
use rampart_types::sso::SsoRole;

/// The cluster-admin access policy `system:masters` becomes.
pub const CLUSTER_ADMIN: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";

/// An access entry to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEntry {
    /// The aws-auth row it comes from (`mapRoles[2]`).
    pub source: String,
    /// Empty for an Identity Center entry.
    pub principal_arn: String,
    pub sso: Option<SsoRole>,
    /// `STANDARD`, `EC2_LINUX`, `EC2_WINDOWS`, `FARGATE_LINUX`.
    pub entry_type: &'static str,
    /// `None`: EKS's default for the type.
    pub username: Option<String>,
    pub groups: Vec<String>,
    /// Access policies at cluster scope.
    pub policies: Vec<&'static str>,
    /// Said to the reader: what changed in the translation.
    pub notes: Vec<String>,
}

/// The whole migration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migration {
    pub entries: Vec<PlannedEntry>,
    /// What has no access-entry form: `(row, reason)`.
    pub unexpressible: Vec<(String, String)>,
}

const NODE_GROUPS: [&str; 2] = ["system:bootstrappers", "system:nodes"];

fn node_type(m: &Mapping) -> Option<&'static str> {
    let groups: Vec<&str> = m.groups.iter().map(String::as_str).collect();
    let nodes = NODE_GROUPS.iter().all(|g| groups.contains(g));
    if !nodes || !m.username.starts_with("system:node:") {
        return None;
    }
    if m.username.contains("{{EC2PrivateDNSName}}") {
        return Some(if groups.contains(&"eks:kube-proxy-windows") { "EC2_WINDOWS" } else { "EC2_LINUX" });
    }
    m.username.contains("{{SessionName}}").then_some("FARGATE_LINUX")
}

fn plan(source: String, m: &Mapping, is_role: bool) -> Result<PlannedEntry, (String, String)> {
    let mut entry = PlannedEntry {
        source: source.clone(),
        principal_arn: m.arn.clone(),
        sso: m.sso.clone(),
        entry_type: "STANDARD",
        username: None,
        groups: vec![],
        policies: vec![],
        notes: vec![],
    };
    if is_role
        && m.sso.is_none()
        && let Some(kind) = node_type(m)
    {
        entry.entry_type = kind;
        let extra: Vec<&String> = m
            .groups
            .iter()
            .filter(|g| {
                !NODE_GROUPS.contains(&g.as_str())
                    && *g != "system:node-proxier"
                    && *g != "eks:kube-proxy-windows"
            })
            .collect();
        if !extra.is_empty() {
            entry.notes.push(format!("{kind} entries take EKS's node groups; {extra:?} dropped"));
        }
        return Ok(entry);
    }
    for group in &m.groups {
        if group == "system:masters" {
            entry.policies.push(CLUSTER_ADMIN);
            entry.notes.push("system:masters → AmazonEKSClusterAdminPolicy at cluster scope (review: is cluster admin still meant?)".into());
        } else if RESERVED_PREFIXES.iter().any(|p| group.starts_with(p)) {
            return Err((
                source,
                format!("group {group:?}: access-entry groups cannot start with {RESERVED_PREFIXES:?}"),
            ));
        } else {
            entry.groups.push(group.clone());
        }
    }
    if !m.username.is_empty() {
        if RESERVED_PREFIXES.iter().any(|p| m.username.starts_with(p)) {
            return Err((
                source,
                format!(
                    "username {:?}: access-entry usernames cannot start with {RESERVED_PREFIXES:?}",
                    m.username
                ),
            ));
        }
        if m.username.contains("{{EC2PrivateDNSName}}") || m.username.contains("{{AccessKeyID}}") {
            return Err((
                source,
                format!(
                    "username {:?}: access entries render only {{{{SessionName}}}}, {{{{SessionNameRaw}}}} and {{{{AccountID}}}}",
                    m.username
                ),
            ));
        }
        for placeholder in ["{{SessionName}}", "{{SessionNameRaw}}"] {
            if let Some(i) = m.username.find(placeholder)
                && !m.username[..i].contains(':')
            {
                return Err((
                    source,
                    format!("username {:?}: EKS needs a ':' before {placeholder}", m.username),
                ));
            }
        }
        entry.username = Some(m.username.clone());
    }
    Ok(entry)
}

/// Every mapping of an aws-auth ConfigMap as access entries.
pub fn migrate(aws_auth: &AwsAuth) -> Migration {
    let mut out = Migration::default();
    let rows = aws_auth
        .roles
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("mapRoles[{i}]"), m, true))
        .chain(aws_auth.users.iter().enumerate().map(|(i, m)| (format!("mapUsers[{i}]"), m, false)));
    for (source, m, is_role) in rows {
        match plan(source, m, is_role) {
            Ok(entry) => out.entries.push(entry),
            Err(why) => out.unexpressible.push(why),
        }
    }
    for account in &aws_auth.accounts {
        out.unexpressible.push((
            format!("mapAccounts {account}"),
            "access entries name principals, not accounts: create an entry for each principal of the account that needs the cluster".into(),
        ));
    }
    out
}

fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

impl Migration {
    /// The entries as the `accessEntries:` file `rampart serve --access-entries` reads.
    pub fn to_yaml(&self) -> String {
        let mut out = String::from("accessEntries:\n");
        for e in &self.entries {
            out += &format!("# from aws-auth {}\n", e.source);
            for note in &e.notes {
                out += &format!("# {note}\n");
            }
            match &e.sso {
                Some(s) => {
                    let region = s.region.as_deref().map(|r| format!(", region: {r}")).unwrap_or_default();
                    out += &format!(
                        "- sso: {{permissionSetName: {}, accountID: \"{}\", partition: {}{region}}}\n",
                        yaml_string(&s.permission_set),
                        s.account,
                        s.partition
                    );
                }
                None => out += &format!("- principalArn: {}\n", e.principal_arn),
            }
            if e.entry_type != "STANDARD" {
                out += &format!("  type: {}\n", e.entry_type);
            }
            if let Some(u) = &e.username {
                out += &format!("  username: {}\n", yaml_string(u));
            }
            if !e.groups.is_empty() {
                let groups: Vec<String> = e.groups.iter().map(|g| yaml_string(g)).collect();
                out += &format!("  kubernetesGroups: [{}]\n", groups.join(", "));
            }
            if !e.policies.is_empty() {
                out += "  accessPolicies:\n";
                for p in &e.policies {
                    out += &format!("  - {{policyArn: {p}, accessScope: {{type: cluster}}}}\n");
                }
            }
        }
        out
    }

    /// The AWS CLI commands that create the entries on EKS.
    pub fn to_commands(&self, cluster: &str) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let mut out = String::new();
        for e in &self.entries {
            out += &format!("# aws-auth {}\n", e.source);
            for note in &e.notes {
                out += &format!("# {note}\n");
            }
            let principal = match &e.sso {
                Some(s) => {
                    // The role's suffix is random: look it up in the account.
                    out += &format!(
                        "ARN=$(aws iam list-roles --path-prefix /aws-reserved/sso.amazonaws.com/ --query \"Roles[?starts_with(RoleName, 'AWSReservedSSO_{}_')].Arn | [0]\" --output text)  # {}\n",
                        s.permission_set,
                        s.role_pattern()
                    );
                    "\"$ARN\"".to_string()
                }
                None => quote(&e.principal_arn),
            };
            let mut create = format!(
                "aws eks create-access-entry --cluster-name {} --principal-arn {principal}",
                quote(cluster)
            );
            if e.entry_type != "STANDARD" {
                create += &format!(" --type {}", e.entry_type);
            }
            if let Some(u) = &e.username {
                create += &format!(" --username {}", quote(u));
            }
            if !e.groups.is_empty() {
                let groups: Vec<String> = e.groups.iter().map(|g| quote(g)).collect();
                create += &format!(" --kubernetes-groups {}", groups.join(" "));
            }
            out += &create;
            out.push('\n');
            for p in &e.policies {
                out += &format!(
                    "aws eks associate-access-policy --cluster-name {} --principal-arn {principal} --policy-arn {p} --access-scope type=cluster\n",
                    quote(cluster)
                );
            }
        }
        for (row, why) in &self.unexpressible {
            out += &format!("# not migrated: aws-auth {row}: {why}\n");
        }
        out
    }
}

/// What the migration does to one principal seen in the audit logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The session ARN as the audit log has it.
    pub principal: String,
    /// `username [groups]`, or why it is not mapped.
    pub before: String,
    pub after: String,
    pub gained: Vec<String>,
    pub lost: Vec<String>,
    /// Whether it loses a group, a permission or its access.
    pub loses: bool,
    pub notes: Vec<String>,
    /// The users on each side, for deciding its audited requests again.
    pub before_user: Option<crate::mapping::KubeUser>,
    pub after_user: Option<crate::mapping::KubeUser>,
}

/// Node templates render the same on both sides without an EC2 lookup.
struct SameDnsName;

impl crate::mapping::InstanceResolver for SameDnsName {
    fn private_dns_name<'a>(&'a self, instance_id: &'a str) -> crate::mapping::DnsFuture<'a> {
        Box::pin(async move { Ok(format!("<private DNS name of {instance_id}>")) })
    }
}

fn shown(user: &Result<crate::mapping::KubeUser, crate::mapping::MappingError>) -> String {
    match user {
        Ok(u) if u.groups.is_empty() => u.username.clone(),
        Ok(u) => format!("{} [{}]", u.username, u.groups.join(", ")),
        Err(e) => format!("not mapped ({e})"),
    }
}

/// Map every identity through aws-auth (as `CONFIG_MAP`) and through the migrated entries
/// (as `API`) and say who gains or loses what. `system:masters` replaced by
/// AmazonEKSClusterAdminPolicy is kept, as are the bootstrap groups EKS node entries do without.
pub async fn check(
    aws_auth: &AwsAuth,
    migration: &Migration,
    identities: &[crate::sts::Identity],
) -> Result<Vec<Verdict>, crate::mapping::MappingError> {
    use crate::mapping::{AccessEntries, AuthMode, Mapper};
    let before = Mapper {
        mode: AuthMode::ConfigMap,
        aws_auth: aws_auth.clone(),
        entries: AccessEntries::default(),
        ec2: Box::new(SameDnsName),
    };
    let after = Mapper {
        mode: AuthMode::Api,
        aws_auth: AwsAuth::default(),
        entries: AccessEntries::from_yaml(&migration.to_yaml())?,
        ec2: Box::new(SameDnsName),
    };
    let mut out = Vec::new();
    for id in identities {
        let (old, new) = (before.map(id).await, after.map(id).await);
        let entry = migration.entries.iter().find(|e| match &e.sso {
            Some(s) => s.matches(&id.canonical_arn),
            None => e.principal_arn.eq_ignore_ascii_case(&id.canonical_arn),
        });
        let old_groups: Vec<String> = old.as_ref().map(|u| u.groups.clone()).unwrap_or_default();
        let new_groups: Vec<String> = new.as_ref().map(|u| u.groups.clone()).unwrap_or_default();
        let mut notes = Vec::new();
        let mut lost: Vec<String> = old_groups.iter().filter(|g| !new_groups.contains(g)).cloned().collect();
        let gained: Vec<String> = new_groups.iter().filter(|g| !old_groups.contains(g)).cloned().collect();
        lost.retain(|g| {
            let admin = g == "system:masters" && entry.is_some_and(|e| e.policies.contains(&CLUSTER_ADMIN));
            let node = matches!(g.as_str(), "system:bootstrappers" | "system:node-proxier")
                && entry.is_some_and(|e| e.entry_type != "STANDARD");
            if admin {
                notes.push("system:masters kept as AmazonEKSClusterAdminPolicy".to_string());
            }
            if node {
                notes.push(format!("{g} is not needed by EKS node entries"));
            }
            !admin && !node
        });
        if let (Ok(o), Ok(n)) = (&old, &new)
            && o.username != n.username
        {
            notes.push(if o.username.is_empty() {
                format!(
                    "aws-auth gives no username (the apiserver cannot use an empty one); the entry gives EKS's default, {}",
                    n.username
                )
            } else {
                format!("username changes from {} to {}: bindings to the old name stop applying", o.username, n.username)
            });
        }
        let unmapped = old.is_ok() && new.is_err();
        let loses = unmapped || !lost.is_empty() || notes.iter().any(|n| n.starts_with("username changes"));
        out.push(Verdict {
            principal: id.arn.clone(),
            before: shown(&old),
            after: shown(&new),
            gained,
            lost,
            loses,
            notes,
            before_user: old.ok(),
            after_user: new.ok(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::AccessEntries;

    const AWS_AUTH: &str = r#"
data:
  mapRoles: |
    - rolearn: arn:aws:iam::111122223333:role/nodes
      username: system:node:{{EC2PrivateDNSName}}
      groups: [system:bootstrappers, system:nodes]
    - rolearn: arn:aws:iam::111122223333:role/fargate
      username: system:node:{{SessionName}}
      groups: [system:bootstrappers, system:nodes, system:node-proxier]
    - rolearn: arn:aws:iam::111122223333:role/admins
      username: "admin:{{SessionName}}"
      groups: [system:masters, ops]
    - rolearn: arn:aws:iam::111122223333:role/legacy
      username: legacy
      groups: [system:authenticated-extra]
    - sso: {permissionSetName: ViewOnly, accountID: "111122223333"}
      username: "viewer:{{SessionName}}"
      groups: [viewers]
  mapUsers: |
    - userarn: arn:aws:iam::111122223333:user/ci
      username: ci
      groups: [deployers]
  mapAccounts: |
    - "444455556666"
"#;

    #[test]
    fn every_mapping_becomes_an_entry_or_a_reason() {
        let (auth, _) = AwsAuth::from_configmap(AWS_AUTH).unwrap();
        let m = migrate(&auth);
        let types: Vec<(&str, &str)> = m.entries.iter().map(|e| (e.source.as_str(), e.entry_type)).collect();
        assert_eq!(
            types,
            [
                ("mapRoles[0]", "EC2_LINUX"),
                ("mapRoles[1]", "FARGATE_LINUX"),
                ("mapRoles[2]", "STANDARD"),
                ("mapRoles[4]", "STANDARD"),
                ("mapUsers[0]", "STANDARD")
            ]
        );
        let admins = &m.entries[2];
        assert_eq!(admins.policies, [CLUSTER_ADMIN]);
        assert_eq!(admins.groups, ["ops"]);
        assert_eq!(admins.username.as_deref(), Some("admin:{{SessionName}}"));
        assert_eq!(m.unexpressible.len(), 2);
        assert!(
            m.unexpressible[0].1.contains("\"system:authenticated-extra\": access-entry groups cannot start")
        );
        assert!(m.unexpressible[1].0.contains("444455556666"));

        // The file it writes is what the authenticator reads back.
        let yaml = m.to_yaml();
        AccessEntries::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert!(yaml.contains("  accessPolicies:\n  - {policyArn: arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy, accessScope: {type: cluster}}"), "{yaml}");
        let commands = m.to_commands("prod");
        assert!(commands.contains("aws eks create-access-entry --cluster-name 'prod' --principal-arn 'arn:aws:iam::111122223333:role/nodes' --type EC2_LINUX\n"), "{commands}");
        assert!(
            commands.contains("--username 'admin:{{SessionName}}' --kubernetes-groups 'ops'"),
            "{commands}"
        );
        assert!(commands.contains("aws eks associate-access-policy --cluster-name 'prod' --principal-arn 'arn:aws:iam::111122223333:role/admins' --policy-arn arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy --access-scope type=cluster"));
        assert!(commands.contains("starts_with(RoleName, 'AWSReservedSSO_ViewOnly_')"), "{commands}");
        assert!(commands.contains("# not migrated: aws-auth mapAccounts 444455556666"));
    }

    #[tokio::test]
    async fn the_check_names_who_loses_what() {
        let (auth, _) = AwsAuth::from_configmap(AWS_AUTH).unwrap();
        let m = migrate(&auth);
        let session = |role: &str, name: &str| crate::sts::Identity {
            arn: format!("arn:aws:sts::111122223333:assumed-role/{role}/{name}"),
            canonical_arn: format!("arn:aws:iam::111122223333:role/{role}"),
            account_id: "111122223333".into(),
            user_id: "AROA".into(),
            session_name: name.into(),
            access_key_id: "ASIA".into(),
            sts_endpoint: "sts.amazonaws.com".into(),
        };
        let verdicts = check(
            &auth,
            &m,
            &[
                session("admins", "alice"),
                session("nodes", "i-0123456789abcdef0"),
                session("legacy", "job"),
                session("AWSReservedSSO_ViewOnly_abc123", "carol@example.com"),
            ],
        )
        .await
        .unwrap();
        let admin = &verdicts[0];
        assert!(!admin.loses, "{admin:?}");
        assert_eq!(admin.before, "admin:alice [system:masters, ops]");
        assert!(admin.notes.contains(&"system:masters kept as AmazonEKSClusterAdminPolicy".to_string()));
        let node = &verdicts[1];
        assert!(!node.loses, "{node:?}");
        assert_eq!(node.after, "system:node:<private DNS name of i-0123456789abcdef0> [system:nodes]");
        let legacy = &verdicts[2];
        assert!(legacy.loses && legacy.after.starts_with("not mapped"), "{legacy:?}");
        assert!(!verdicts[3].loses, "{:?}", verdicts[3]);
    }
}
