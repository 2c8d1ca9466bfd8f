//! STS host validation (`verifyHost`): only real STS endpoints of the verifier's partition —
//! regional, FIPS, dual-stack, the legacy global endpoint in `aws` — or the configured region's
//! endpoint for regions the rules do not know yet.

use std::collections::HashSet;
use std::sync::Mutex;

/// One AWS partition's endpoint facts.
#[derive(Debug, Clone, Copy)]
struct Partition {
    id: &'static str,
    domain: &'static str,
    dual_stack: Option<&'static str>,
    /// Region-name prefix labels, e.g. `["us-gov"]` for `us-gov-west-1`.
    prefixes: &'static [&'static str],
}

const PARTITIONS: &[Partition] = &[
    Partition {
        id: "aws",
        domain: "amazonaws.com",
        dual_stack: Some("api.aws"),
        prefixes: &["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"],
    },
    Partition {
        id: "aws-cn",
        domain: "amazonaws.com.cn",
        dual_stack: Some("api.amazonwebservices.com.cn"),
        prefixes: &["cn"],
    },
    Partition {
        id: "aws-us-gov",
        domain: "amazonaws.com",
        dual_stack: Some("api.aws"),
        prefixes: &["us-gov"],
    },
    Partition { id: "aws-iso", domain: "c2s.ic.gov", dual_stack: None, prefixes: &["us-iso"] },
    Partition { id: "aws-iso-b", domain: "sc2s.sgov.gov", dual_stack: None, prefixes: &["us-isob"] },
    Partition { id: "aws-iso-e", domain: "cloud.adc-e.uk", dual_stack: None, prefixes: &["eu-isoe"] },
    Partition { id: "aws-iso-f", domain: "csp.hci.ic.gov", dual_stack: None, prefixes: &["us-isof"] },
    Partition {
        id: "aws-eusc",
        domain: "amazonaws.eu",
        dual_stack: Some("api.amazonwebservices.eu"),
        prefixes: &["eusc-de"],
    },
];

fn partition(id: &str) -> Option<&'static Partition> {
    PARTITIONS.iter().find(|p| p.id == id)
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `^<prefix>-\w+-\d+$` for one of the partition's prefixes.
fn matches_partition(region: &str, p: &Partition) -> bool {
    p.prefixes.iter().any(|prefix| {
        region
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.rsplit_once('-'))
            .is_some_and(|(word, digits)| {
                is_word(word) && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
            })
    })
}

/// The partition the SDK's endpoint rules assign to a region (falling back to `aws`).
fn region_partition(region: &str) -> &'static Partition {
    PARTITIONS.iter().find(|p| matches_partition(region, p)).unwrap_or(&PARTITIONS[0])
}

/// `^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`
pub fn valid_region(region: &str) -> bool {
    let b = region.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// The region label of an STS host (`global` for `sts.amazonaws.com`).
pub fn host_region(host: &str) -> Result<&str, String> {
    if host.is_empty() {
        return Err("host is empty".into());
    }
    if host == "sts.amazonaws.com" {
        return Ok("global");
    }
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [_, region, _, ..] => Ok(region),
        _ => Err(format!("invalid host format: {host}")),
    }
}

/// The STS hostnames the endpoint rules produce for a region (all FIPS × dual-stack variants).
fn candidates(region: &str) -> Vec<String> {
    let p = region_partition(region);
    let mut out = Vec::new();
    if let Some(dual) = p.dual_stack {
        out.push(format!("sts-fips.{region}.{dual}"));
        out.push(format!("sts.{region}.{dual}"));
    }
    out.push(if p.id == "aws-us-gov" {
        format!("sts.{region}.amazonaws.com")
    } else {
        format!("sts-fips.{region}.{}", p.domain)
    });
    out.push(if region == "aws-global" {
        "sts.amazonaws.com".into()
    } else {
        format!("sts.{region}.{}", p.domain)
    });
    out
}

/// A host check failure. `Format` errors carry the "input token was not properly formatted"
/// prefix upstream; the other two do not (all deny with 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("{0}")]
    Format(String),
    #[error("{0}")]
    Plain(String),
}

/// Verifies STS hosts for one partition and configured region; caches accepted hosts only.
#[derive(Debug)]
pub struct HostVerifier {
    partition: String,
    region: String,
    accepted: Mutex<HashSet<String>>,
    /// An explicitly configured STS endpoint (`scheme://authority`) whose tokens are accepted
    /// as they are (tests, private endpoints); every other host still meets the allow-list.
    trusted_origin: Option<String>,
}

impl HostVerifier {
    pub fn new(partition: impl Into<String>, region: impl Into<String>) -> Self {
        HostVerifier {
            partition: partition.into(),
            region: region.into(),
            accepted: Mutex::default(),
            trusted_origin: None,
        }
    }

    /// Also accept tokens addressed to this configured endpoint (e.g. `http://127.0.0.1:5000`).
    pub fn trusting(mut self, endpoint: &str) -> Self {
        self.trusted_origin = Some(endpoint.trim_end_matches('/').to_owned());
        self
    }

    /// Is `scheme://authority` the configured endpoint?
    pub fn is_trusted_origin(&self, scheme: &str, authority: &str) -> bool {
        self.trusted_origin.as_deref() == Some(format!("{scheme}://{authority}").as_str())
    }

    /// Accept or reject `host` (the raw authority: ports and case are not normalised away).
    pub fn verify(&self, host: &str) -> Result<(), HostError> {
        if self.accepted.lock().map(|c| c.contains(host)).unwrap_or(false) {
            return Ok(());
        }
        self.check(host)?;
        if let Ok(mut cache) = self.accepted.lock() {
            cache.insert(host.to_owned());
        }
        Ok(())
    }

    /// How many accepted hosts are cached (for tests and metrics).
    pub fn cached(&self) -> usize {
        self.accepted.lock().map(|c| c.len()).unwrap_or(0)
    }

    fn check(&self, host: &str) -> Result<(), HostError> {
        let p = &self.partition;
        let region = host_region(host).map_err(|e| {
            HostError::Format(format!("could not parse region for pre-signed URL {host}, {e}"))
        })?;
        if region == "global" {
            return if p == "aws" {
                Ok(())
            } else {
                Err(HostError::Format(format!("global endpoint unsupported in partition {p}")))
            };
        }
        if !valid_region(region) {
            return Err(HostError::Format(format!("invalid region identifier format provided: {region}")));
        }
        if !candidates(region).iter().any(|c| c == host) {
            // Regions the rules don't know yet (reported by IMDS) are allowed for the configured
            // region only, and only within the verifier's partition.
            let fallback_ok = valid_region(&self.region)
                && partition(p).is_some_and(|part| {
                    host == format!("sts.{}.{}", self.region, part.domain)
                        || part.dual_stack.is_some_and(|d| host == format!("sts.{}.{d}", self.region))
                });
            return if fallback_ok {
                Ok(())
            } else {
                Err(HostError::Format(format!("unexpected hostname \"{host}\" in pre-signed URL")))
            };
        }
        let labels: Vec<&str> = host.split('.').collect();
        if labels.len() < 4 {
            return Err(HostError::Plain(format!("invalid host format, too few labels: {host}")));
        }
        let part = partition(p).ok_or_else(|| HostError::Plain(format!("partition {p} not valid")))?;
        let domain = labels[2..].join(".");
        if domain == part.domain || part.dual_stack == Some(domain.as_str()) {
            Ok(())
        } else {
            Err(HostError::Plain(format!("partition {{{p}}} does not support hostname {host}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(partition: &str, region: &str, host: &str) -> bool {
        HostVerifier::new(partition, region).verify(host).is_ok()
    }

    #[test]
    fn host_table_h1_to_h23() {
        assert!(ok("aws", "", "sts.amazonaws.com"));
        for p in
            ["aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-not-a-partition"]
        {
            assert!(!ok(p, "", "sts.amazonaws.com"), "{p}");
        }
        assert!(ok("aws-cn", "", "sts.cn-northwest-1.amazonaws.com.cn"));
        assert!(ok("aws-cn", "", "sts.cn-north-1.amazonaws.com.cn"));
        assert!(!ok("aws-cn", "", "sts.us-iso-east-1.c2s.ic.gov"));
        assert!(!ok("aws-cn", "", "sts.not-a-region1.amazonaws.com.cn"));
        assert!(ok("aws-cn", "not-a-region2", "sts.not-a-region2.amazonaws.com.cn"));
        for h in [
            "sts-fips.us-west-2.amazonaws.com",
            "sts-fips.us-east-1.amazonaws.com",
            "sts.eu-central-1.amazonaws.com",
            "sts.ap-southeast-4.amazonaws.com",
            "sts.il-central-1.amazonaws.com",
        ] {
            assert!(ok("aws", "", h), "{h}");
        }
        assert!(!ok("aws", "", "sts.amazonaws.com.cn"));
        assert!(!ok("aws", "", "website.amazonaws.com"));
        assert!(ok("aws", "default-region", "sts.default-region.amazonaws.com"));
        assert!(ok("aws-iso", "", "sts.us-iso-east-1.c2s.ic.gov"));
        assert!(!ok("aws-iso", "", "sts.cn-north-1.amazonaws.com.cn"));
        assert!(!ok("aws-iso-b", "", "sts.cn-north-1.amazonaws.com.cn"));
        assert!(ok("aws-us-gov", "", "sts.us-gov-east-1.amazonaws.com"));
        let e = HostVerifier::new("aws-cn", "").verify("sts-fips.us-east-1.amazonaws.com").unwrap_err();
        assert_eq!(
            e.to_string(),
            "partition {aws-cn} does not support hostname sts-fips.us-east-1.amazonaws.com"
        );
        assert!(!ok("aws-cn", "", "sts.us-isob-east-1.amazonaws.com.cn"));
        assert!(ok("aws-cn", "us-isob-east-1", "sts.us-isob-east-1.amazonaws.com.cn"));
        assert!(!ok("aws-iso-b", "", "sts.us-isob-east-1.amazonaws.com.cn"));
        assert!(!ok("aws-iso-b", "us-isob-east-1", "sts.us-isob-east-1.amazonaws.com.cn"));
        assert!(ok("aws", "", "sts.us-west-2.api.aws"));
        assert!(ok("aws-cn", "", "sts.cn-north-1.api.amazonwebservices.com.cn"));
        assert!(!ok("aws", "", "sts.cn-north-1.api.amazonwebservices.com.cn"));
        for r in ["", "not-a-region", "us-west-2"] {
            assert!(ok("aws", r, "sts.not-a-region.amazonaws.com"), "{r}");
        }
        assert!(!ok("aws-cn", "", "sts.not-a-region3.amazonaws.com.cn"));
        assert!(ok("aws-cn", "not-a-region4", "sts.not-a-region4.amazonaws.com.cn"));
        assert!(!ok("aws-cn", "us-west-2", "sts.not-a-region5.amazonaws.com.cn"));
        assert!(!ok("aws-cn", "", "sts.us-west-2.amazonaws.com.cn"));
        assert!(!ok("aws", "us-west-2", "sts.us-west-2.amazonaws.com.cn"));
        assert!(!ok("aws-cn", "not-a-region", "sts.not-a-region.amazonaws.com"));
        assert!(!ok("aws", "", "sts.us-west-2.amazonaws.com:443"));
        assert!(!ok("aws", "", "STS.us-west-2.amazonaws.com"));
    }

    #[test]
    fn only_accepted_hosts_are_cached_h24() {
        let v = HostVerifier::new("aws", "");
        assert!(v.verify("invalid.amazonaws.com").is_err());
        assert!(v.verify("invalid2.amazonaws.com").is_err());
        assert_eq!(v.cached(), 0);
        v.verify("sts.us-east-1.amazonaws.com").unwrap();
        assert_eq!(v.cached(), 1);
    }

    #[test]
    fn region_helpers() {
        assert_eq!(host_region("sts.amazonaws.com").unwrap(), "global");
        assert_eq!(host_region("sts.us-west-2.amazonaws.com").unwrap(), "us-west-2");
        for bad in ["", "sts", "sts.wrongformat"] {
            assert!(host_region(bad).is_err(), "{bad}");
        }
        for (r, want) in [
            ("us-east-1", true),
            ("invalid.com", false),
            ("@invalid.com/%23", false),
            ("local", true),
            ("9-west-1", true),
            ("us_east_1", false),
        ] {
            assert_eq!(valid_region(r), want, "{r}");
        }
    }
}
