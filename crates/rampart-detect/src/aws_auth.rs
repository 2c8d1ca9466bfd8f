//! The aws-auth ConfigMap's mappings as the change detection and the posture scan read them:
//! `data.mapRoles` and `data.mapUsers`, each a YAML list of `{rolearn|userarn, username, groups}`.

/// One mapping.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mapping {
    pub arn: String,
    pub groups: Vec<String>,
    /// From `mapUsers` (an IAM user, with long-lived keys).
    pub user: bool,
}

impl Mapping {
    pub fn grants_masters(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// The mappings of `mapRoles` and `mapUsers` (either may be absent), and the keys whose text is
/// not a YAML list.
pub fn mappings(map_roles: Option<&str>, map_users: Option<&str>) -> (Vec<Mapping>, Vec<&'static str>) {
    let mut out = Vec::new();
    let mut broken = Vec::new();
    for (key, text, user) in [("mapRoles", map_roles, false), ("mapUsers", map_users, true)] {
        let Some(text) = text else { continue };
        let Ok(entries) = serde_yaml::from_str::<Vec<serde_yaml::Value>>(text) else {
            broken.push(key);
            continue;
        };
        for e in entries {
            let arn =
                e.get("rolearn").or_else(|| e.get("userarn")).and_then(|a| a.as_str()).unwrap_or_default();
            // An Identity Center row names a permission set in an account instead of an ARN.
            let sso = e.get("sso").map(|s| {
                let field = |k: &str| match s.get(k) {
                    Some(serde_yaml::Value::String(v)) => v.clone(),
                    Some(serde_yaml::Value::Number(n)) => n.to_string(),
                    _ => "?".into(),
                };
                format!(
                    "Identity Center permission set {} in {}",
                    field("permissionSetName"),
                    field("accountID")
                )
            });
            let arn = sso.as_deref().unwrap_or(arn);
            let groups = e
                .get("groups")
                .and_then(|g| g.as_sequence())
                .into_iter()
                .flatten()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect();
            out.push(Mapping { arn: arn.to_owned(), groups, user });
        }
    }
    (out, broken)
}

/// An ARN that names a whole account (`…:root`) or uses a wildcard.
pub fn whole_account_or_wildcard(arn: &str) -> bool {
    arn.ends_with(":root") || arn.contains('*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_lists_and_names_broken_ones() {
        let roles = "- rolearn: arn:aws:iam::1:role/a\n  groups: [system:masters]\n";
        let (m, broken) = mappings(Some(roles), Some("not: [a list"));
        assert_eq!(
            m,
            [Mapping {
                arn: "arn:aws:iam::1:role/a".into(),
                groups: vec!["system:masters".into()],
                user: false
            }]
        );
        assert!(m[0].grants_masters());
        assert_eq!(broken, ["mapUsers"]);
        assert!(
            whole_account_or_wildcard("arn:aws:iam::1:root")
                && !whole_account_or_wildcard("arn:aws:iam::1:role/a")
        );
    }
}
