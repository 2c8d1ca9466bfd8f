//! From an IAM identity to a Kubernetes user: the aws-auth ConfigMap format, EKS access
//! entries, and the authentication modes that chain them (spec §3–4).

use serde::Deserialize;
use serde_json::Value;

use crate::sts::Identity;
use rampart_types::sso::SsoRole;

/// A mapped Kubernetes user, before the apiserver adds `system:authenticated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeUser {
    pub username: String,
    pub groups: Vec<String>,
}

/// Why an identity did not become a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("identity is not mapped")]
    NotMapped,
    #[error(
        "mapper {mapper} renderTemplates error: error rendering username template {template:?}: {reason}"
    )]
    Template { mapper: &'static str, template: String, reason: String },
    #[error(
        "invalid username '{username}' for mapper {mapper}: username must not begin with with the following prefixes: {prefixes:?}"
    )]
    ReservedPrefix { username: String, mapper: &'static str, prefixes: Vec<String> },
    #[error("{0}")]
    Config(String),
}

/// A pending private-DNS-name lookup.
pub type DnsFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>>;

/// Looks up an EC2 instance's private DNS name (`{{EC2PrivateDNSName}}`).
pub trait InstanceResolver: Send + Sync {
    fn private_dns_name<'a>(&'a self, instance_id: &'a str) -> DnsFuture<'a>;
}

/// Without EC2 access, node templates cannot be rendered: fail closed.
pub struct NoEc2;

impl InstanceResolver for NoEc2 {
    fn private_dns_name<'a>(&'a self, instance_id: &'a str) -> DnsFuture<'a> {
        Box::pin(
            async move { Err(format!("failed to find node {instance_id} (EC2 lookups are not configured)")) },
        )
    }
}

/// `^i-(\w{8}|\w{17})$`: only then is a session name an instance id.
pub fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|rest| {
        (rest.len() == 8 || rest.len() == 17) && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// Render a username or group template in one pass, so text inside a session name is never
/// itself expanded (upstream's sequential replacement expanded it).
/// `ec2_dns` is the instance's private DNS name when the caller looked it up.
pub fn render(template: &str, id: &Identity, ec2_dns: Option<&str>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find("}}") else {
            out.push_str(after);
            return Ok(out);
        };
        let name = &after[2..end];
        match name {
            "AccountID" => out.push_str(&id.account_id),
            "SessionName" => out.push_str(&id.session_name.replace('@', "-")),
            "SessionNameRaw" => out.push_str(&id.session_name),
            "AccessKeyID" => out.push_str(&id.access_key_id),
            "EC2PrivateDNSName" => {
                if !is_instance_id(&id.session_name) {
                    return Err("SessionName did not contain an instance id".into());
                }
                out.push_str(ec2_dns.ok_or_else(|| format!("failed to find node {}", id.session_name))?);
            }
            // Unknown placeholders stay verbatim, as upstream.
            _ => out.push_str(&after[..end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One mapping row: an ARN (or an Identity Center permission set), a username template and
/// group templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Empty for an `sso` row.
    pub arn: String,
    pub username: String,
    pub groups: Vec<String>,
    /// The permission set an `sso` row matches instead of `arn`.
    pub sso: Option<SsoRole>,
}

impl Mapping {
    fn matches(&self, canonical_arn: &str) -> bool {
        match &self.sso {
            Some(role) => role.matches(canonical_arn),
            None => self.arn.eq_ignore_ascii_case(canonical_arn),
        }
    }
}

/// The aws-auth ConfigMap (`kube-system/aws-auth`): `mapRoles`, `mapUsers`, `mapAccounts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsAuth {
    pub roles: Vec<Mapping>,
    pub users: Vec<Mapping>,
    pub accounts: Vec<String>,
}

fn get_ci<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}

/// A data value that means "no entries".
fn empty_value(s: &str) -> bool {
    matches!(s.trim(), "" | "``" | "\"\"" | "''")
}

impl AwsAuth {
    /// Parse the ConfigMap (YAML or JSON). Invalid entries are dropped and reported, valid ones
    /// kept, as upstream ("only saving data that was good").
    pub fn from_configmap(text: &str) -> Result<(Self, Vec<String>), MappingError> {
        let cm: Value =
            serde_yaml::from_str(text).map_err(|e| MappingError::Config(format!("aws-auth: {e}")))?;
        let data = cm.get("data").cloned().unwrap_or(Value::Null);
        let mut out = AwsAuth::default();
        let mut warnings = Vec::new();
        let parse_list = |key: &str| -> Result<Vec<Value>, MappingError> {
            match data.get(key).and_then(Value::as_str) {
                None => Ok(vec![]),
                Some(s) if empty_value(s) => Ok(vec![]),
                Some(s) => serde_yaml::from_str::<Vec<Value>>(s)
                    .map_err(|e| MappingError::Config(format!("aws-auth data.{key}: {e}"))),
            }
        };
        for (i, entry) in parse_list("mapRoles")?.iter().enumerate() {
            let arn = get_ci(entry, "rolearn").and_then(Value::as_str).unwrap_or_default();
            let sso = match get_ci(entry, "sso") {
                Some(_) if !arn.is_empty() => {
                    warnings
                        .push(format!("aws-auth mapRoles[{i}]: only one of rolearn or SSO can be supplied"));
                    continue;
                }
                Some(v) => match SsoRole::parse(v, &format!("aws-auth mapRoles[{i}]")) {
                    Ok(role) => Some(role),
                    Err(e) => {
                        warnings.push(format!("{e}; skipped"));
                        continue;
                    }
                },
                None if arn.is_empty() => {
                    warnings.push(format!("aws-auth mapRoles[{i}]: one of rolearn or SSO must be supplied"));
                    continue;
                }
                None => None,
            };
            out.roles.push(Mapping {
                arn: arn.to_owned(),
                username: get_ci(entry, "username").and_then(Value::as_str).unwrap_or_default().to_owned(),
                groups: strings(get_ci(entry, "groups")),
                sso,
            });
        }
        for (i, entry) in parse_list("mapUsers")?.iter().enumerate() {
            let arn = get_ci(entry, "userarn").and_then(Value::as_str).unwrap_or_default();
            if arn.is_empty() {
                warnings.push(format!("aws-auth mapUsers[{i}]: value for userarn must be supplied"));
                continue;
            }
            out.users.push(Mapping {
                arn: arn.to_owned(),
                username: get_ci(entry, "username").and_then(Value::as_str).unwrap_or_default().to_owned(),
                groups: strings(get_ci(entry, "groups")),
                sso: None,
            });
        }
        if let Some(s) = data.get("mapAccounts").and_then(Value::as_str).filter(|s| !empty_value(s)) {
            // Keep the literal text of unquoted numbers (`- 012345678901` keeps its zero).
            let yaml: serde_yaml::Value = serde_yaml::from_str(s)
                .map_err(|e| MappingError::Config(format!("aws-auth data.mapAccounts: {e}")))?;
            for a in yaml.as_sequence().into_iter().flatten() {
                match a {
                    serde_yaml::Value::String(s) => out.accounts.push(s.clone()),
                    serde_yaml::Value::Number(n) => out.accounts.push(n.to_string()),
                    other => warnings.push(format!("aws-auth mapAccounts: not an account id: {other:?}")),
                }
            }
        }
        Ok((out, warnings))
    }

    fn find(&self, canonical_arn: &str) -> Option<&Mapping> {
        // Case-insensitive, roles first; `rolearn` is not canonicalised (as upstream), so an
        // assumed-role ARN there never matches. An exact `rolearn` wins over an `sso` row
        // (upstream picks either, at random).
        self.roles
            .iter()
            .find(|m| m.sso.is_none() && m.matches(canonical_arn))
            .or_else(|| self.roles.iter().find(|m| m.matches(canonical_arn)))
            .or_else(|| self.users.iter().find(|m| m.arn.eq_ignore_ascii_case(canonical_arn)))
    }
}

/// An EKS access entry (the fields authentication needs).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntry {
    /// Empty when `sso` names an Identity Center permission set instead.
    #[serde(default)]
    pub principal_arn: String,
    /// An Identity Center permission set (`permissionSetName`, `accountID`, optional
    /// `partition`, `region`): every role Identity Center makes for it.
    #[serde(default)]
    pub sso: Option<Value>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub kubernetes_groups: Vec<String>,
    #[serde(default, rename = "type")]
    pub entry_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntriesFile {
    access_entries: Vec<AccessEntry>,
}

/// Prefixes a custom access-entry username may not use.
pub const RESERVED_PREFIXES: &[&str] = &["system:", "eks:", "aws:", "amazon:", "iam:"];

/// Access entries, validated as the EKS API does when they are created.
#[derive(Debug, Clone, Default)]
pub struct AccessEntries {
    entries: Vec<Mapping>,
    custom_usernames: Vec<bool>,
}

impl AccessEntries {
    pub fn from_yaml(text: &str) -> Result<Self, MappingError> {
        let file: EntriesFile =
            serde_yaml::from_str(text).map_err(|e| MappingError::Config(format!("access entries: {e}")))?;
        let mut out = AccessEntries::default();
        for (i, e) in file.access_entries.into_iter().enumerate() {
            let kind = e.entry_type.as_deref().unwrap_or("STANDARD");
            if let Some(v) = &e.sso {
                let at = format!("accessEntries[{i}]");
                if !e.principal_arn.is_empty() {
                    return Err(MappingError::Config(format!("{at}: give principalArn or sso, not both")));
                }
                if kind != "STANDARD" {
                    return Err(MappingError::Config(format!("{at}: an sso entry is of type STANDARD")));
                }
                let role = SsoRole::parse(v, &at).map_err(MappingError::Config)?;
                check_username(e.username.as_deref(), &at)?;
                out.custom_usernames.push(e.username.is_some());
                out.entries.push(Mapping {
                    arn: String::new(),
                    // EKS's default for a role, with the role's name known only at match time.
                    username: e.username.unwrap_or_default(),
                    groups: e.kubernetes_groups,
                    sso: Some(role),
                });
                continue;
            }
            if e.principal_arn.is_empty() {
                return Err(MappingError::Config(format!(
                    "accessEntries[{i}]: principalArn (or sso) is required"
                )));
            }
            let role = crate::arn::parse(&e.principal_arn).ok().filter(|a| a.resource.starts_with("role/"));
            let (default_username, default_groups): (String, Vec<String>) = match kind {
                "STANDARD" => match &role {
                    Some(a) => {
                        let name = a.resource.rsplit('/').next().unwrap_or_default();
                        (
                            format!(
                                "arn:{}:sts::{}:assumed-role/{name}/{{{{SessionName}}}}",
                                a.partition, a.account
                            ),
                            vec![],
                        )
                    }
                    None => (e.principal_arn.clone(), vec![]),
                },
                "EC2_LINUX" | "EC2_WINDOWS" | "EC2" => {
                    ("system:node:{{EC2PrivateDNSName}}".into(), vec!["system:nodes".into()])
                }
                "FARGATE_LINUX" | "HYBRID_LINUX" => {
                    ("system:node:{{SessionName}}".into(), vec!["system:nodes".into()])
                }
                other => {
                    return Err(MappingError::Config(format!(
                        "access entry {}: unsupported type {other}",
                        e.principal_arn
                    )));
                }
            };
            if kind != "STANDARD" && (e.username.is_some() || !e.kubernetes_groups.is_empty()) {
                return Err(MappingError::Config(format!(
                    "access entry {}: type {kind} cannot set username or groups",
                    e.principal_arn
                )));
            }
            check_username(e.username.as_deref(), &format!("access entry {}", e.principal_arn))?;
            // Role ARNs may carry a path; sessions canonicalise without it.
            let arn = match &role {
                Some(_) => crate::arn::strip_path(&e.principal_arn).unwrap_or(e.principal_arn.clone()),
                None => e.principal_arn.clone(),
            };
            out.custom_usernames.push(e.username.is_some());
            out.entries.push(Mapping {
                arn,
                username: e.username.unwrap_or(default_username),
                groups: if kind == "STANDARD" { e.kubernetes_groups } else { default_groups },
                sso: None,
            });
        }
        Ok(out)
    }
}

/// A custom access-entry username, checked as the EKS API checks it on creation.
fn check_username(username: Option<&str>, at: &str) -> Result<(), MappingError> {
    let Some(u) = username else { return Ok(()) };
    if RESERVED_PREFIXES.iter().any(|p| u.starts_with(p)) {
        return Err(MappingError::Config(format!(
            "{at}: username {u:?} uses a reserved prefix {RESERVED_PREFIXES:?}"
        )));
    }
    for placeholder in ["{{SessionName}}", "{{SessionNameRaw}}"] {
        if let Some(i) = u.find(placeholder)
            && !u[..i].contains(':')
        {
            return Err(MappingError::Config(format!(
                "{at}: username {u:?} needs a ':' before {placeholder}"
            )));
        }
    }
    Ok(())
}

/// EKS authentication modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    ConfigMap,
    ApiAndConfigMap,
    Api,
}

impl std::str::FromStr for AuthMode {
    type Err = MappingError;
    fn from_str(s: &str) -> Result<Self, MappingError> {
        match s {
            "CONFIG_MAP" => Ok(AuthMode::ConfigMap),
            "API_AND_CONFIG_MAP" => Ok(AuthMode::ApiAndConfigMap),
            "API" => Ok(AuthMode::Api),
            other => Err(MappingError::Config(format!(
                "unknown authentication mode {other:?}; use CONFIG_MAP, API_AND_CONFIG_MAP or API"
            ))),
        }
    }
}

/// The mapping chain for a mode: access entries take priority over aws-auth.
pub struct Mapper {
    pub mode: AuthMode,
    pub aws_auth: AwsAuth,
    pub entries: AccessEntries,
    pub ec2: Box<dyn InstanceResolver>,
}

impl Mapper {
    async fn render(
        &self,
        mapper: &'static str,
        m: &Mapping,
        id: &Identity,
    ) -> Result<KubeUser, MappingError> {
        const EC2: &str = "{{EC2PrivateDNSName}}";
        let needs_ec2 = m.username.contains(EC2) || m.groups.iter().any(|g| g.contains(EC2));
        // Look the instance up only for a real instance id; `render` reports anything else.
        let dns =
            if needs_ec2 && is_instance_id(&id.session_name) {
                Some(self.ec2.private_dns_name(&id.session_name).await.map_err(|reason| {
                    MappingError::Template { mapper, template: m.username.clone(), reason }
                })?)
            } else {
                None
            };
        let render = |t: &str| {
            render(t, id, dns.as_deref()).map_err(|reason| MappingError::Template {
                mapper,
                template: t.to_owned(),
                reason,
            })
        };
        Ok(KubeUser {
            username: render(&m.username)?,
            groups: m.groups.iter().map(|g| render(g)).collect::<Result<_, _>>()?,
        })
    }

    /// Map an identity, trying access entries and aws-auth as the mode says.
    pub async fn map(&self, id: &Identity) -> Result<KubeUser, MappingError> {
        let use_entries = self.mode != AuthMode::ConfigMap;
        let use_configmap = self.mode != AuthMode::Api;
        if use_entries
            && let Some((i, m)) = self
                .entries
                .entries
                .iter()
                .enumerate()
                .find(|(_, m)| m.sso.is_none() && m.matches(&id.canonical_arn))
                .or_else(|| {
                    self.entries.entries.iter().enumerate().find(|(_, m)| m.matches(&id.canonical_arn))
                })
        {
            let defaulted;
            let m = if m.sso.is_some() && m.username.is_empty() {
                // EKS's default username for a role entry, with this session's role name.
                let role = id.canonical_arn.rsplit('/').next().unwrap_or_default();
                let partition = m.sso.as_ref().map_or("aws", |s| s.partition.as_str());
                defaulted = Mapping {
                    username: format!(
                        "arn:{partition}:sts::{}:assumed-role/{role}/{{{{SessionName}}}}",
                        id.account_id
                    ),
                    ..m.clone()
                };
                &defaulted
            } else {
                m
            };
            let user = self.render("AccessEntries", m, id).await?;
            // Custom usernames are checked again after rendering: a session name must not be
            // able to produce `system:masters`.
            if self.entries.custom_usernames.get(i).copied().unwrap_or(false)
                && RESERVED_PREFIXES.iter().any(|p| user.username.starts_with(p))
            {
                return Err(MappingError::ReservedPrefix {
                    username: user.username,
                    mapper: "AccessEntries",
                    prefixes: RESERVED_PREFIXES.iter().map(|p| (*p).to_owned()).collect(),
                });
            }
            return Ok(user);
        }
        if use_configmap {
            if let Some(m) = self.aws_auth.find(&id.canonical_arn) {
                return self.render("EKSConfigMap", m, id).await;
            }
            if self.aws_auth.accounts.contains(&id.account_id) {
                return Ok(KubeUser { username: id.canonical_arn.clone(), groups: vec![] });
            }
        }
        Err(MappingError::NotMapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(session: &str) -> Identity {
        Identity {
            arn: "arn:aws:sts::123:assumed-role/Test/x".into(),
            canonical_arn: "arn:aws:iam::123:role/Test".into(),
            account_id: "123".into(),
            user_id: "AROA".into(),
            session_name: session.into(),
            access_key_id: "321".into(),
            sts_endpoint: "sts.amazonaws.com".into(),
        }
    }

    struct FakeEc2;
    impl InstanceResolver for FakeEc2 {
        fn private_dns_name<'a>(&'a self, _: &'a str) -> DnsFuture<'a> {
            Box::pin(async { Ok("ip-172-31-27-14".into()) })
        }
    }

    #[test]
    fn templates_m12_to_m14() {
        let i = id("jdoe@example.com");
        assert_eq!(render("a-{{AccountID}}-b", &i, None).unwrap(), "a-123-b");
        assert_eq!(render("a-{{AccessKeyID}}-b", &i, None).unwrap(), "a-321-b");
        assert_eq!(render("a-{{SessionName}}-b", &i, None).unwrap(), "a-jdoe-example.com-b");
        assert_eq!(render("a-{{SessionNameRaw}}-b", &i, None).unwrap(), "a-jdoe@example.com-b");
        assert_eq!(
            render("a-{{AccountID}}-{{SessionName}}-{{SessionNameRaw}}-b", &i, None).unwrap(),
            "a-123-jdoe-example.com-jdoe@example.com-b"
        );
        assert_eq!(render("{{Session}}", &i, None).unwrap(), "{{Session}}");
        assert!(
            render("a-{{EC2PrivateDNSName}}-b", &id("i-aaaaa"), Some("x"))
                .unwrap_err()
                .contains("instance id")
        );
        assert_eq!(
            render("system:node:{{EC2PrivateDNSName}}", &id("i-0c6f21bf1f24f9708"), Some("ip-172-31-27-14"))
                .unwrap(),
            "system:node:ip-172-31-27-14"
        );
        // Single pass: a session name holding a placeholder is not expanded.
        assert_eq!(
            render("admin:{{SessionName}}", &id("{{AccessKeyID}}"), None).unwrap(),
            "admin:{{AccessKeyID}}"
        );
    }

    const AWS_AUTH: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: aws-auth, namespace: kube-system}
data:
  mapRoles: |
    - rolearn: arn:aws:iam::123:role/test
      username: "admin:{{SessionName}}"
      groups: [system:masters]
    - RoLeArN: arn:aws:iam::123:role/nodes
      username: system:node:{{EC2PrivateDNSName}}
      groups: [system:bootstrappers, system:nodes]
    - username: broken
  mapUsers: |
    - userarn: arn:aws:iam::123:user/alice
      username: alice
  mapAccounts: |
    - 012345678901
"#;

    #[tokio::test]
    async fn node_mapping_looks_the_instance_up() {
        let (auth, _) = AwsAuth::from_configmap(AWS_AUTH).unwrap();
        let mapper = Mapper {
            mode: AuthMode::ConfigMap,
            aws_auth: auth,
            entries: AccessEntries::default(),
            ec2: Box::new(FakeEc2),
        };
        let mut node = id("i-0c6f21bf1f24f9708");
        node.canonical_arn = "arn:aws:iam::123:role/nodes".into();
        let u = mapper.map(&node).await.unwrap();
        assert_eq!(u.username, "system:node:ip-172-31-27-14");
        assert_eq!(u.groups, ["system:bootstrappers", "system:nodes"]);
        node.session_name = "i-aaaaa".into();
        assert!(mapper.map(&node).await.unwrap_err().to_string().contains("instance id"));
    }

    #[tokio::test]
    async fn aws_auth_parsing_and_lookup() {
        let (auth, warnings) = AwsAuth::from_configmap(AWS_AUTH).unwrap();
        assert_eq!(auth.roles.len(), 2);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(auth.accounts, ["012345678901"]);
        let mapper = Mapper {
            mode: AuthMode::ConfigMap,
            aws_auth: auth,
            entries: AccessEntries::default(),
            ec2: Box::new(NoEc2),
        };
        let u = mapper.map(&id("s1")).await.unwrap();
        assert_eq!(u, KubeUser { username: "admin:s1".into(), groups: vec!["system:masters".into()] });
        let mut acct = id("s");
        acct.canonical_arn = "arn:aws:iam::012345678901:user/Test".into();
        acct.account_id = "012345678901".into();
        assert_eq!(mapper.map(&acct).await.unwrap().username, "arn:aws:iam::012345678901:user/Test");
        let mut nobody = id("s");
        nobody.canonical_arn = "arn:aws:iam::999:user/x".into();
        assert_eq!(mapper.map(&nobody).await.unwrap_err(), MappingError::NotMapped);
    }

    #[tokio::test]
    async fn access_entries_modes_and_reserved_prefixes() {
        let yaml = r#"
accessEntries:
- principalArn: arn:aws:iam::123:role/teams/Test
  username: "dev:{{SessionName}}"
  kubernetesGroups: [devs]
- principalArn: arn:aws:iam::123:role/nodes
  type: EC2_LINUX
"#;
        let entries = AccessEntries::from_yaml(yaml).unwrap();
        let (auth, _) = AwsAuth::from_configmap(AWS_AUTH).unwrap();
        let both = Mapper {
            mode: AuthMode::ApiAndConfigMap,
            aws_auth: auth.clone(),
            entries: entries.clone(),
            ec2: Box::new(NoEc2),
        };
        // The role path is stripped, and access entries win over aws-auth.
        assert_eq!(
            both.map(&id("s1")).await.unwrap(),
            KubeUser { username: "dev:s1".into(), groups: vec!["devs".into()] }
        );
        let cm = Mapper {
            mode: AuthMode::ConfigMap,
            aws_auth: auth.clone(),
            entries: entries.clone(),
            ec2: Box::new(NoEc2),
        };
        assert_eq!(cm.map(&id("s1")).await.unwrap().username, "admin:s1");
        let api = Mapper { mode: AuthMode::Api, aws_auth: auth, entries, ec2: Box::new(NoEc2) };
        let mut alice = id("s");
        alice.canonical_arn = "arn:aws:iam::123:user/alice".into();
        assert_eq!(api.map(&alice).await.unwrap_err(), MappingError::NotMapped, "API mode ignores aws-auth");
        let bad = "accessEntries:\n- principalArn: arn:aws:iam::1:role/x\n  username: system:masters\n";
        assert!(AccessEntries::from_yaml(bad).unwrap_err().to_string().contains("reserved prefix"));
        let bad =
            "accessEntries:\n- principalArn: arn:aws:iam::1:role/x\n  username: \"john{{SessionName}}\"\n";
        assert!(AccessEntries::from_yaml(bad).unwrap_err().to_string().contains("':' before"));
        assert!("CONFIG".parse::<AuthMode>().is_err());
    }

    fn sso_session(account: &str, role: &str, email: &str) -> Identity {
        Identity {
            arn: format!("arn:aws:sts::{account}:assumed-role/{role}/{email}"),
            canonical_arn: format!("arn:aws:iam::{account}:role/{role}"),
            account_id: account.into(),
            user_id: "AROA".into(),
            session_name: email.into(),
            access_key_id: "ASIA".into(),
            sts_endpoint: "sts.amazonaws.com".into(),
        }
    }

    #[tokio::test]
    async fn identity_center_roles_map_by_permission_set_in_aws_auth_and_access_entries() {
        let cm = r#"
data:
  mapRoles: |
    - sso: {permissionSetName: ViewOnly, accountID: "111122223333"}
      username: "viewer:{{SessionName}}"
      groups: [viewers]
    - sso: {permissionSetName: Admin, accountID: "*"}
      username: anyone
    - rolearn: arn:aws:iam::111122223333:role/AWSReservedSSO_ViewOnly_pinned
      username: pinned
"#;
        let (auth, warnings) = AwsAuth::from_configmap(cm).unwrap();
        assert_eq!(auth.roles.len(), 2);
        assert!(warnings[0].contains("accountID \"*\": wildcards are refused"), "{warnings:?}");
        let mapper = Mapper {
            mode: AuthMode::ConfigMap,
            aws_auth: auth,
            entries: AccessEntries::default(),
            ec2: Box::new(NoEc2),
        };
        let alice =
            sso_session("111122223333", "AWSReservedSSO_ViewOnly_0123456789abcdef", "alice@example.com");
        assert_eq!(
            mapper.map(&alice).await.unwrap(),
            KubeUser { username: "viewer:alice-example.com".into(), groups: vec!["viewers".into()] },
            "any suffix; {{SessionName}} is the e-mail with @ as -"
        );
        let pinned = sso_session("111122223333", "AWSReservedSSO_ViewOnly_pinned", "bob@example.com");
        assert_eq!(mapper.map(&pinned).await.unwrap().username, "pinned", "an exact rolearn wins");
        let other_set = sso_session("111122223333", "AWSReservedSSO_ViewOnly_Extra_abc", "eve@example.com");
        assert_eq!(mapper.map(&other_set).await.unwrap_err(), MappingError::NotMapped);

        let entries = AccessEntries::from_yaml(
            "accessEntries:\n- sso: {permissionSetName: Admin, accountID: '111122223333', region: eu-west-1}\n  kubernetesGroups: [admins]\n- sso: {permissionSetName: Dev, accountID: '111122223333'}\n  username: 'dev:{{SessionNameRaw}}'\n",
        )
        .unwrap();
        let api = Mapper { mode: AuthMode::Api, aws_auth: AwsAuth::default(), entries, ec2: Box::new(NoEc2) };
        let carol = sso_session("111122223333", "AWSReservedSSO_Admin_fedcba9876543210", "carol@example.com");
        assert_eq!(
            api.map(&carol).await.unwrap(),
            KubeUser {
                username: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_fedcba9876543210/carol-example.com".into(),
                groups: vec!["admins".into()]
            },
            "EKS's default username for a role"
        );
        let dan = sso_session("111122223333", "AWSReservedSSO_Dev_abc", "dan@example.com");
        assert_eq!(api.map(&dan).await.unwrap().username, "dev:dan@example.com");
        for (yaml, says) in [
            (
                "accessEntries:\n- sso: {permissionSetName: Admin, accountID: '111122223333'}\n  principalArn: arn:aws:iam::1:role/x\n",
                "principalArn or sso, not both",
            ),
            (
                "accessEntries:\n- sso: {permissionSetName: Admin, accountID: '*'}\n",
                "accessEntries[0].sso.accountID",
            ),
            (
                "accessEntries:\n- sso: {permissionSetName: Admin, accountID: '111122223333'}\n  type: EC2_LINUX\n",
                "type STANDARD",
            ),
            ("accessEntries:\n- username: x\n", "principalArn (or sso) is required"),
        ] {
            let err = AccessEntries::from_yaml(yaml).unwrap_err().to_string();
            assert!(err.contains(says), "{yaml}: {err}");
        }
    }
}
