//! A namespace's Pod Security policy, from its `pod-security.kubernetes.io/*` labels.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Level, LevelVersion, Version};

/// The three modes' levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub enforce: LevelVersion,
    pub audit: LevelVersion,
    pub warn: LevelVersion,
}

impl Policy {
    pub fn privileged() -> Self {
        let lv = LevelVersion { level: Level::Privileged, version: Version::Latest };
        Policy { enforce: lv, audit: lv, warn: lv }
    }

    pub fn all_privileged(&self) -> bool {
        [self.enforce, self.audit, self.warn].iter().all(|lv| lv.level == Level::Privileged)
    }
}

/// Defaults as written in a `PodSecurityConfiguration` (`enforce`, `enforce-version`, …).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Defaults {
    pub enforce: Option<String>,
    #[serde(rename = "enforce-version")]
    pub enforce_version: Option<String>,
    pub audit: Option<String>,
    #[serde(rename = "audit-version")]
    pub audit_version: Option<String>,
    pub warn: Option<String>,
    #[serde(rename = "warn-version")]
    pub warn_version: Option<String>,
}

impl Defaults {
    /// Parse the defaults; unlike labels, a bad default is a configuration error.
    pub fn policy(&self) -> Result<Policy, super::PssError> {
        let lv =
            |level: &Option<String>, version: &Option<String>| -> Result<LevelVersion, super::PssError> {
                Ok(LevelVersion {
                    level: level.as_deref().map(str::parse).transpose()?.unwrap_or(Level::Privileged),
                    version: version.as_deref().map(str::parse).transpose()?.unwrap_or(Version::Latest),
                })
            };
        Ok(Policy {
            enforce: lv(&self.enforce, &self.enforce_version)?,
            audit: lv(&self.audit, &self.audit_version)?,
            warn: lv(&self.warn, &self.warn_version)?,
        })
    }
}

const PREFIX: &str = "pod-security.kubernetes.io/";

/// Resolve a namespace's policy from its labels, starting from `defaults`. Errors are returned
/// beside the policy, which is still usable: an invalid `enforce` level becomes restricted
/// (fail closed), an invalid `audit`/`warn` level privileged, an invalid version `latest`.
pub fn resolve(labels: Option<&BTreeMap<String, String>>, defaults: Policy) -> (Policy, Vec<String>) {
    let mut policy = defaults;
    let mut errors = Vec::new();
    let get = |key: &str| labels.and_then(|l| l.get(&format!("{PREFIX}{key}"))).map(String::as_str);
    let mut level = |key: &str, fallback: Level, target: &mut LevelVersion| {
        if let Some(v) = get(key) {
            match v.parse() {
                Ok(l) => target.level = l,
                Err(e) => {
                    errors.push(format!("{PREFIX}{key}: {e}"));
                    target.level = fallback;
                }
            }
        }
    };
    level("enforce", Level::Restricted, &mut policy.enforce);
    level("audit", Level::Privileged, &mut policy.audit);
    level("warn", Level::Privileged, &mut policy.warn);
    for (key, target) in [
        ("enforce-version", &mut policy.enforce),
        ("audit-version", &mut policy.audit),
        ("warn-version", &mut policy.warn),
    ] {
        if let Some(v) = get(key) {
            match v.parse() {
                Ok(ver) => target.version = ver,
                Err(e) => {
                    errors.push(format!("{PREFIX}{key}: {e}"));
                    target.version = Version::Latest;
                }
            }
        }
    }
    // A namespace that enforces a level also warns at it, unless it says otherwise.
    let enforce_valid = get("enforce").is_some_and(|v| v.parse::<Level>().is_ok());
    if enforce_valid && get("warn").is_none() && policy.enforce.level > policy.warn.level {
        policy.warn.level = policy.enforce.level;
        if get("warn-version").is_none() {
            policy.warn.version = policy.enforce.version;
        }
    }
    (policy, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string())).collect()
    }

    #[test]
    fn enforce_implies_warn_and_bad_labels_fail_the_right_way() {
        let (p, errors) = resolve(
            Some(&labels(&[("enforce", "baseline"), ("enforce-version", "v1.30")])),
            Policy::privileged(),
        );
        assert!(errors.is_empty());
        assert_eq!(p.warn, LevelVersion { level: Level::Baseline, version: Version::Minor(30) });
        let (p, errors) = resolve(
            Some(&labels(&[("enforce", "strict"), ("audit", "nope"), ("warn-version", "v2")])),
            Policy::privileged(),
        );
        assert_eq!(errors.len(), 3);
        assert_eq!(p.enforce.level, Level::Restricted);
        assert_eq!(p.audit.level, Level::Privileged);
        assert_eq!(p.warn.version, Version::Latest);
    }

    #[test]
    fn no_labels_means_defaults() {
        let defaults = Defaults { enforce: Some("baseline".into()), ..Default::default() }.policy().unwrap();
        let (p, errors) = resolve(None, defaults);
        assert!(errors.is_empty());
        assert_eq!(p.enforce.level, Level::Baseline);
        assert!(Defaults { enforce: Some("x".into()), ..Default::default() }.policy().is_err());
    }
}
