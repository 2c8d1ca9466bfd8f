//! How much one review may make Rampart do. The apiserver never sends more than these; a
//! request that does came from somewhere else (or a misconfigured identity provider) and is
//! refused — denied, not passed on, since a wrong allow is worse than a refusal — with a
//! message naming the field, instead of costing seconds of CPU (700,000 groups once took ten).
//! Bodies are capped per endpoint ([`MAX_BODY`], [`MAX_SAR_BODY`], [`MAX_TOKEN_REVIEW_BODY`]);
//! JSON nesting is capped by the decoder at 128 levels.

use std::collections::BTreeMap;

/// Largest AdmissionReview body read (etcd stores objects up to ~1.5 MiB; an UPDATE carries
/// two).
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// Largest SubjectAccessReview body read: a user, up to [`MAX_GROUPS`] groups, attributes.
pub const MAX_SAR_BODY: usize = 256 * 1024;
/// Largest TokenReview body read (IAM and service-account tokens are a few KiB).
pub const MAX_TOKEN_REVIEW_BODY: usize = 64 * 1024;
/// Groups of one user (Kerberos and Active Directory tokens stop near 1,000). Each group is a
/// Cedar entity, about 3 µs of work: 1,024 keep the worst review near 3 ms.
pub const MAX_GROUPS: usize = 1024;
/// Keys of `extra` (the apiserver sets a handful: credential id, node name, scopes).
pub const MAX_EXTRA_KEYS: usize = 64;
/// Values over all `extra` keys.
pub const MAX_EXTRA_VALUES: usize = 1024;
/// Requirements of a label or field selector (`kubectl -l` selectors have a handful; each is
/// an element of a Cedar set, compared by policies).
pub const MAX_SELECTOR_REQUIREMENTS: usize = 64;
/// Values over all requirements of one selector (`tier in (a, b, …)`).
pub const MAX_SELECTOR_VALUES: usize = 256;

/// Check a user's groups and extra against the limits; the error names the field.
pub fn check_user(
    field: &str,
    groups: Option<&[String]>,
    extra: Option<&BTreeMap<String, Vec<String>>>,
) -> Result<(), String> {
    let groups = groups.map_or(0, <[String]>::len);
    if groups > MAX_GROUPS {
        return Err(format!(
            "{field}.groups has {groups} entries; Rampart evaluates at most {MAX_GROUPS} groups per user"
        ));
    }
    if let Some(extra) = extra {
        if extra.len() > MAX_EXTRA_KEYS {
            return Err(format!(
                "{field}.extra has {} keys; at most {MAX_EXTRA_KEYS} are accepted",
                extra.len()
            ));
        }
        let values: usize = extra.values().map(Vec::len).sum();
        if values > MAX_EXTRA_VALUES {
            return Err(format!(
                "{field}.extra has {values} values; at most {MAX_EXTRA_VALUES} are accepted"
            ));
        }
    }
    Ok(())
}

/// Check a SubjectAccessReview: its user, and the selectors of its resource attributes.
pub fn check_sar(spec: &crate::sar::SubjectAccessReviewSpec) -> Result<(), String> {
    check_user("spec", spec.groups.as_deref(), spec.extra.as_ref())?;
    let Some(ra) = spec.resource_attributes.as_ref() else { return Ok(()) };
    let label = ra.label_selector.as_ref().and_then(|l| l.requirements.as_ref());
    let label_values =
        label.map(|r| r.iter().map(|q| q.values.as_ref().map_or(0, Vec::len)).collect::<Vec<_>>());
    let field = ra.field_selector.as_ref().and_then(|f| f.requirements.as_ref());
    let field_values =
        field.map(|r| r.iter().map(|q| q.values.as_ref().map_or(0, Vec::len)).collect::<Vec<_>>());
    for (name, values) in [("labelSelector", label_values), ("fieldSelector", field_values)] {
        let Some(values) = values else { continue };
        if values.len() > MAX_SELECTOR_REQUIREMENTS {
            return Err(format!(
                "spec.resourceAttributes.{name} has {} requirements; at most {MAX_SELECTOR_REQUIREMENTS} are evaluated",
                values.len()
            ));
        }
        let total: usize = values.iter().sum();
        if total > MAX_SELECTOR_VALUES {
            return Err(format!(
                "spec.resourceAttributes.{name} has {total} values; at most {MAX_SELECTOR_VALUES} are evaluated"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field_that_is_over() {
        let many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        let err = check_user("spec", Some(&many), None).unwrap_err();
        assert!(err.starts_with("spec.groups has 1025 entries"), "{err}");
        assert!(check_user("spec", Some(&many[..MAX_GROUPS]), None).is_ok());
        let extra: BTreeMap<String, Vec<String>> =
            [("k".to_owned(), vec!["v".to_owned(); MAX_EXTRA_VALUES + 1])].into();
        assert!(
            check_user("request.userInfo", None, Some(&extra))
                .unwrap_err()
                .starts_with("request.userInfo.extra")
        );
    }
}
