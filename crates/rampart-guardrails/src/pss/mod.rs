//! Pod Security Standards: levels, versions, and evaluating a pod against a level.
//!
//! Semantics follow `k8s.io/pod-security-admission`: each check has revisions that start at a
//! Kubernetes minor version; a policy version `v1.N` runs, for every check, the newest revision
//! whose start is ≤ N. Restricted runs every baseline check it does not override, plus its own.

mod checks;
pub mod namespace;
pub mod pod;

use std::fmt;
use std::str::FromStr;

pub use checks::CheckResult;
use pod::PodView;

/// The newest Kubernetes minor version whose checks are known; `latest` means this.
pub const LATEST_MINOR: u32 = 37;

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl FromStr for Level {
    type Err = PssError;
    fn from_str(s: &str) -> Result<Self, PssError> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            other => Err(PssError::Level(other.to_owned())),
        }
    }
}

/// A policy version: `latest` or `v1.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    Latest,
    Minor(u32),
}

impl Version {
    /// The minor version whose checks run (`latest` and future versions clamp to the newest).
    pub fn effective_minor(self) -> u32 {
        match self {
            Version::Latest => LATEST_MINOR,
            Version::Minor(m) => m.min(LATEST_MINOR),
        }
    }
}

impl FromStr for Version {
    type Err = PssError;
    fn from_str(s: &str) -> Result<Self, PssError> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let minor = s.strip_prefix("v1.").ok_or_else(|| PssError::Version(s.to_owned()))?;
        let leading_zero = minor.len() > 1 && minor.starts_with('0');
        if minor.is_empty() || leading_zero || !minor.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PssError::Version(s.to_owned()));
        }
        minor.parse().map(Version::Minor).map_err(|_| PssError::Version(s.to_owned()))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::Minor(m) => write!(f, "v1.{m}"),
        }
    }
}

/// A level at a version, e.g. `restricted:v1.30`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    pub level: Level,
    pub version: Version,
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

/// Bad level or version text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PssError {
    #[error("unknown Pod Security level {0:?}; use privileged, baseline or restricted")]
    Level(String),
    #[error("invalid Pod Security version {0:?}; use latest or v1.<minor> (e.g. v1.30)")]
    Version(String),
}

/// Evaluate a pod against a level. Returns the failing checks in upstream's order (baseline
/// ids, then restricted ids, each sorted byte-wise); empty means the pod is allowed.
pub fn evaluate(pod: &PodView<'_>, lv: LevelVersion) -> Vec<CheckResult> {
    checks::run(pod, lv.level, lv.version.effective_minor())
}

/// Upstream's message body: `reason (detail), reason2 (detail2)`.
pub fn reasons_message(results: &[CheckResult]) -> String {
    results
        .iter()
        .map(|r| match &r.detail {
            Some(d) => format!("{} ({d})", r.reason),
            None => r.reason.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_like_upstream() {
        assert_eq!("latest".parse::<Version>().unwrap(), Version::Latest);
        assert_eq!("v1.30".parse::<Version>().unwrap(), Version::Minor(30));
        assert_eq!("v1.0".parse::<Version>().unwrap(), Version::Minor(0));
        for bad in ["v1.01", "v2.0", "1.30", "v1.", "v1.x"] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
        assert_eq!(Version::Minor(99).effective_minor(), LATEST_MINOR);
        assert!("strict".parse::<Level>().is_err());
    }
}
