//! IAM Identity Center (SSO) roles in aws-auth and access entries.
//!
//! Identity Center creates, for each permission set assigned in an account, a role
//! `aws-reserved/sso.amazonaws.com/[<region>/]AWSReservedSSO_<PermissionSet>_<suffix>` whose
//! suffix is random and changes when the assignment is re-provisioned. An `sso` entry names the
//! permission set and the account instead, and matches every session of that role, whatever
//! the suffix. Sessions canonicalise without the path, so the match is against
//! `arn:<partition>:iam::<account>:role/AWSReservedSSO_<PermissionSet>_<suffix>`.
//!
//! Unlike upstream's alpha matcher (aws-iam-authenticator `SSORoleMatch`), the suffix must be
//! alphanumeric, so the permission set `Admin` does not also match `Admin_ReadOnly`; the given
//! partition is used (upstream drops it and then never matches); and wildcards in the account
//! or partition are refused, which is the security objection that stalled upstream's proposal.

use serde_json::Value;

/// Partitions an account can live in.
pub const PARTITIONS: &[&str] =
    &["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"];

/// A permission set in one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoRole {
    pub permission_set: String,
    pub account: String,
    pub partition: String,
    /// Where Identity Center runs; part of the role's path only, which sessions do not carry,
    /// so it names the role in output (`migrate`) and does not narrow the match.
    pub region: Option<String>,
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn text(v: &Value, name: &str) -> Option<String> {
    field(v, name).and_then(|x| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn wildcard(s: &str) -> bool {
    s.contains('*') || s.contains('?')
}

impl SsoRole {
    /// Read an `sso:` object (`permissionSetName`, `accountID`, optional `partition` and
    /// `region`; names case-insensitive as aws-auth's are). `at` names the entry in errors.
    pub fn parse(v: &Value, at: &str) -> Result<Self, String> {
        let account = text(v, "accountID").ok_or_else(|| format!("{at}.sso.accountID is required"))?;
        if wildcard(&account) {
            return Err(format!(
                "{at}.sso.accountID {account:?}: wildcards are refused — any account whose owner names a permission set the same would be let in; name the 12-digit account"
            ));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{at}.sso.accountID {account:?}: must be a 12-digit account id (quote it in YAML)"
            ));
        }
        let permission_set =
            text(v, "permissionSetName").ok_or_else(|| format!("{at}.sso.permissionSetName is required"))?;
        if wildcard(&permission_set) {
            return Err(format!(
                "{at}.sso.permissionSetName {permission_set:?}: wildcards are refused — they would match other permission sets; name one"
            ));
        }
        let valid = (1..=32).contains(&permission_set.chars().count())
            && permission_set.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
        if !valid {
            return Err(format!(
                "{at}.sso.permissionSetName {permission_set:?}: 1-32 characters of letters, digits and _+=,.@-"
            ));
        }
        let partition = text(v, "partition").unwrap_or_else(|| "aws".into());
        if wildcard(&partition) {
            return Err(format!(
                "{at}.sso.partition {partition:?}: wildcards are refused; name the partition"
            ));
        }
        if !PARTITIONS.contains(&partition.as_str()) {
            return Err(format!(
                "{at}.sso.partition {partition:?}: not a partition (one of {})",
                PARTITIONS.join(", ")
            ));
        }
        let region = text(v, "region");
        Ok(SsoRole { permission_set, account, partition, region })
    }

    /// Whether a canonical role ARN is one of this permission set's roles.
    pub fn matches(&self, canonical_arn: &str) -> bool {
        let prefix = format!(
            "arn:{}:iam::{}:role/awsreservedsso_{}_",
            self.partition, self.account, self.permission_set
        )
        .to_ascii_lowercase();
        let arn = canonical_arn.to_ascii_lowercase();
        arn.strip_prefix(&prefix)
            .is_some_and(|suffix| !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_alphanumeric()))
    }

    /// The roles it stands for, as IAM names them (`*` for the suffix).
    pub fn role_pattern(&self) -> String {
        let region = self.region.as_deref().map(|r| format!("{r}/")).unwrap_or_default();
        format!(
            "arn:{}:iam::{}:role/aws-reserved/sso.amazonaws.com/{region}AWSReservedSSO_{}_*",
            self.partition, self.account, self.permission_set
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sso(json: &str) -> Result<SsoRole, String> {
        SsoRole::parse(&serde_json::from_str(json).unwrap(), "mapRoles[0]")
    }

    #[test]
    fn matches_the_permission_set_whatever_the_suffix_and_nothing_else() {
        // B8: {ViewOnlyAccess, 012345678912}.
        let role =
            sso("{\"permissionSetName\": \"ViewOnlyAccess\", \"accountID\": \"012345678912\"}").unwrap();
        assert!(role.matches("arn:aws:iam::012345678912:role/AWSReservedSSO_ViewOnlyAccess_abcdefg"));
        assert!(
            role.matches("arn:aws:iam::012345678912:role/awsreservedsso_viewonlyaccess_0123456789abcdef")
        );
        assert!(!role.matches("arn:aws:iam::012345678912:role/AWSReservedSSO_Billing_hijklmn"));
        assert!(!role.matches("arn:aws:iam::999999999999:role/AWSReservedSSO_ViewOnlyAccess_abcdefg"));
        assert!(
            !role.matches("arn:aws:iam::012345678912:role/AWSReservedSSO_ViewOnlyAccess_"),
            "a suffix is there"
        );
        let admin = sso("{\"permissionSetName\": \"Admin\", \"accountID\": \"012345678912\"}").unwrap();
        assert!(
            !admin.matches("arn:aws:iam::012345678912:role/AWSReservedSSO_Admin_ReadOnly_abcdef"),
            "upstream's trailing * let Admin match Admin_ReadOnly"
        );
        let china = sso(
            "{\"permissionSetName\": \"Admin\", \"accountID\": \"012345678912\", \"partition\": \"aws-cn\"}",
        )
        .unwrap();
        assert!(
            china.matches("arn:aws-cn:iam::012345678912:role/AWSReservedSSO_Admin_abc"),
            "upstream dropped the partition"
        );
        assert!(!china.matches("arn:aws:iam::012345678912:role/AWSReservedSSO_Admin_abc"));
        let with_region = sso(
            "{\"permissionSetName\": \"Admin\", \"accountID\": \"012345678912\", \"region\": \"eu-west-1\"}",
        )
        .unwrap();
        assert_eq!(
            with_region.role_pattern(),
            "arn:aws:iam::012345678912:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Admin_*"
        );
    }

    #[test]
    fn refuses_wildcards_and_malformed_fields_saying_why() {
        // B9, and the wildcards.
        for (json, says) in [
            (
                "{\"permissionSetName\": \"Admin\", \"accountID\": \"*\"}",
                "wildcards are refused — any account",
            ),
            ("{\"permissionSetName\": \"Admin\", \"accountID\": \"0123456789\"}", "12-digit account id"),
            (
                "{\"permissionSetName\": \"Admin*\", \"accountID\": \"012345678912\"}",
                "would match other permission sets",
            ),
            ("{\"permissionSetName\": \"View Only\", \"accountID\": \"012345678912\"}", "1-32 characters"),
            (
                "{\"permissionSetName\": \"Admin\", \"accountID\": \"012345678912\", \"partition\": \"aws*\"}",
                "partition \"aws*\": wildcards",
            ),
            (
                "{\"permissionSetName\": \"Admin\", \"accountID\": \"012345678912\", \"partition\": \"aws-nk\"}",
                "not a partition",
            ),
            ("{\"accountID\": \"012345678912\"}", "permissionSetName is required"),
        ] {
            let err = sso(json).unwrap_err();
            assert!(err.contains(says) && err.starts_with("mapRoles[0].sso"), "{json}: {err}");
        }
    }
}
