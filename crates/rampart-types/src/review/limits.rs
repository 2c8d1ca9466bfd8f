//! How much one review may make Rampart do. The apiserver never sends more than these; a
//! request that does came from somewhere else (or a misconfigured identity provider) and is
//! refused — denied, not passed on, since a wrong allow is worse than a refusal — with a
//! message naming the field, instead of costing seconds of CPU (700,000 groups once took ten).
//! Bodies are capped at [`MAX_BODY`]; JSON nesting is capped by the decoder at 128 levels.

use std::collections::BTreeMap;

/// Largest review body read (etcd stores objects up to ~1.5 MiB; an UPDATE carries two).
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// Groups of one user (Active Directory and Kerberos tokens stop near 1,000).
pub const MAX_GROUPS: usize = 2048;
/// Keys of `extra` (the apiserver sets a handful: credential id, node name, scopes).
pub const MAX_EXTRA_KEYS: usize = 64;
/// Values over all `extra` keys.
pub const MAX_EXTRA_VALUES: usize = 1024;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field_that_is_over() {
        let many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        let err = check_user("spec", Some(&many), None).unwrap_err();
        assert!(err.starts_with("spec.groups has 2049 entries"), "{err}");
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
