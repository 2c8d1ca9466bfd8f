//! ARNs of IAM identities: parsing and canonicalization, case-sensitive, as the authenticator.

/// Partitions an identity ARN may name.
pub const PARTITIONS: &[&str] =
    &["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"];

/// The kind of identity an ARN names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    AssumedRole,
    FederatedUser,
    Role,
    User,
    Root,
}

/// A parsed ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    #[error("arn '{arn}' is invalid: '{reason}'")]
    Invalid { arn: String, reason: &'static str },
    #[error("arn '{0}' does not have a recognized partition")]
    Partition(String),
    #[error("assumed-role arn '{0}' does not have a role")]
    NoRole(String),
    #[error("unrecognized resource {resource} for service {service}")]
    Resource { resource: String, service: String },
    #[error("service {service} in arn {arn} is not a valid service for identities")]
    Service { service: String, arn: String },
}

/// Split into the six sections (the resource keeps any further `:`).
pub fn parse(arn: &str) -> Result<Arn<'_>, &'static str> {
    let rest = arn.strip_prefix("arn:").ok_or("arn: invalid prefix")?;
    let mut parts = rest.splitn(5, ':');
    let mut next = || parts.next().ok_or("arn: not enough sections");
    Ok(Arn { partition: next()?, service: next()?, region: next()?, account: next()?, resource: next()? })
}

/// The identity kind and canonical ARN: an assumed-role session becomes its role
/// (`arn:aws:sts::1:assumed-role/Admin/s` → `arn:aws:iam::1:role/Admin`); other identities are
/// unchanged.
pub fn canonicalize(arn: &str) -> Result<(IdentityKind, String), ArnError> {
    let parsed = parse(arn).map_err(|reason| ArnError::Invalid { arn: arn.to_owned(), reason })?;
    if !PARTITIONS.contains(&parsed.partition) {
        return Err(ArnError::Partition(arn.to_owned()));
    }
    let parts: Vec<&str> = parsed.resource.split('/').collect();
    let kind = parts.first().copied().unwrap_or_default();
    let resource_err =
        || ArnError::Resource { resource: parsed.resource.to_owned(), service: parsed.service.to_owned() };
    match (parsed.service, kind) {
        ("sts", "assumed-role") => {
            if parts.len() < 3 {
                return Err(ArnError::NoRole(arn.to_owned()));
            }
            let role = parts[1..parts.len() - 1].join("/");
            Ok((
                IdentityKind::AssumedRole,
                format!("arn:{}:iam::{}:role/{role}", parsed.partition, parsed.account),
            ))
        }
        ("sts", "federated-user") => Ok((IdentityKind::FederatedUser, arn.to_owned())),
        ("sts", _) => Err(resource_err()),
        ("iam", "role") => Ok((IdentityKind::Role, arn.to_owned())),
        ("iam", "user") => Ok((IdentityKind::User, arn.to_owned())),
        ("iam", "root") => Ok((IdentityKind::Root, arn.to_owned())),
        ("iam", _) => Err(resource_err()),
        (service, _) => Err(ArnError::Service { service: service.to_owned(), arn: arn.to_owned() }),
    }
}

/// A role ARN with its path removed (`…:role/Org/Team/Admin` → `…:role/Admin`); anything else
/// unchanged.
pub fn strip_path(arn: &str) -> Result<String, ArnError> {
    let parsed = parse(arn).map_err(|reason| ArnError::Invalid { arn: arn.to_owned(), reason })?;
    let parts: Vec<&str> = parsed.resource.split('/').collect();
    match parts.as_slice() {
        ["role", .., last] if parts.len() > 2 => {
            Ok(format!("arn:{}:iam::{}:role/{last}", parsed.partition, parsed.account))
        }
        _ => Ok(arn.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalization_cases_a1_to_a8() {
        assert!(canonicalize("NOT AN ARN").is_err());
        assert_eq!(
            canonicalize("arn:aws:sts::123456789012:assumed-role/Admin/Session").unwrap().1,
            "arn:aws:iam::123456789012:role/Admin"
        );
        assert_eq!(
            canonicalize("arn:aws:sts::123456789012:assumed-role/Org/Team/Admin/Session").unwrap().1,
            "arn:aws:iam::123456789012:role/Org/Team/Admin"
        );
        for same in [
            "arn:aws:iam::123456789012:user/Alice",
            "arn:aws:iam::123456789012:role/Users",
            "arn:aws:iam::123456789012:root",
            "arn:aws:sts::123456789012:federated-user/Bob",
            "arn:aws-iso:iam::123456789012:user/Chris",
            "arn:aws-iso-b:iam::123456789012:user/Chris",
        ] {
            assert_eq!(canonicalize(same).unwrap().1, same);
        }
        assert!(
            canonicalize("arn:aws:sts::123456789012:assumed-role/Admin")
                .unwrap_err()
                .to_string()
                .contains("does not have a role")
        );
        assert!(
            canonicalize("arn:foo:iam::123456789012:user/x")
                .unwrap_err()
                .to_string()
                .contains("does not have a recognized partition")
        );
        assert!(
            canonicalize("arn:aws:s3:::bucket")
                .unwrap_err()
                .to_string()
                .contains("is not a valid service for identities")
        );
        assert_eq!(
            canonicalize("arn").unwrap_err().to_string(),
            "arn 'arn' is invalid: 'arn: invalid prefix'"
        );
        assert_eq!(
            strip_path("arn:aws:iam::123456789012:role/Org/Team/Admin").unwrap(),
            "arn:aws:iam::123456789012:role/Admin"
        );
        assert_eq!(
            strip_path("arn:aws:iam::123456789012:user/Alice").unwrap(),
            "arn:aws:iam::123456789012:user/Alice"
        );
    }
}
