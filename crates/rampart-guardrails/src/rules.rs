//! Workload best practices beyond the Pod Security Standards, each `off`, `warn`, `audit` or
//! `enforce`: service-account token automount, read-only root filesystems, image registry
//! allow-lists, no `:latest`/untagged images, digests required in chosen namespaces.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use serde::Deserialize;

use rampart_types::workload::ImageRef;

use crate::pss::pod::PodView;

/// What a rule does when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Off,
    /// Admission warning (shown by kubectl).
    Warn,
    /// Audit annotation only.
    Audit,
    /// Reject the pod.
    Enforce,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryRule {
    #[serde(default)]
    pub mode: Mode,
    /// Namespace → allowed image patterns (`*` matches any characters); key `"*"` is the
    /// default for namespaces not listed.
    #[serde(default)]
    pub allowed: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DigestRule {
    #[serde(default)]
    pub mode: Mode,
    /// Namespaces where images must be pinned by digest; empty means every namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// The rules and their modes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RulesConfig {
    #[serde(default)]
    pub automount_service_account_token: Mode,
    #[serde(default)]
    pub read_only_root_filesystem: Mode,
    #[serde(default)]
    pub image_registries: RegistryRule,
    #[serde(default)]
    pub disallow_latest_tag: Mode,
    #[serde(default)]
    pub require_digest: DigestRule,
}

/// A failed rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleViolation {
    pub rule: &'static str,
    pub mode: Mode,
    pub message: String,
}

/// `*` matches any run of characters; everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    rampart_types::glob::star(pattern, text)
}

fn quoted(items: &[&str]) -> String {
    items.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
}

impl RulesConfig {
    /// Failed rules for a pod spec in `namespace` (rules that are `off` are not evaluated).
    pub fn evaluate(&self, namespace: &str, spec: &PodSpec) -> Vec<RuleViolation> {
        let pod = PodView::new(None, spec);
        let mut out = Vec::new();
        let mut push = |rule: &'static str, mode: Mode, message: String| {
            out.push(RuleViolation { rule, mode, message });
        };
        if self.automount_service_account_token != Mode::Off
            && spec.automount_service_account_token != Some(false)
        {
            push(
                "automountServiceAccountToken",
                self.automount_service_account_token,
                "pod mounts a service-account token: set spec.automountServiceAccountToken: false unless it calls the Kubernetes API".into(),
            );
        }
        if self.read_only_root_filesystem != Mode::Off {
            let bad: Vec<&str> = pod
                .containers()
                .filter(|c| c.security_context.and_then(|sc| sc.read_only_root_filesystem) != Some(true))
                .map(|c| c.name)
                .collect();
            if !bad.is_empty() {
                push(
                    "readOnlyRootFilesystem",
                    self.read_only_root_filesystem,
                    format!(
                        "containers {} must set securityContext.readOnlyRootFilesystem=true",
                        quoted(&bad)
                    ),
                );
            }
        }
        let images: Vec<(&str, &str)> =
            pod.containers().map(|c| (c.name, c.image.unwrap_or_default())).collect();
        if self.image_registries.mode != Mode::Off {
            let allowed = self
                .image_registries
                .allowed
                .get(namespace)
                .or_else(|| self.image_registries.allowed.get("*"))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let bad: Vec<&str> = images
                .iter()
                .filter(|(_, image)| !allowed.iter().any(|p| glob_match(p, image)))
                .map(|(_, image)| *image)
                .collect();
            if !bad.is_empty() {
                push(
                    "imageRegistries",
                    self.image_registries.mode,
                    format!(
                        "images {} are not from an allowed registry ({})",
                        quoted(&bad),
                        allowed.join(", ")
                    ),
                );
            }
        }
        if self.disallow_latest_tag != Mode::Off {
            let bad: Vec<&str> = images
                .iter()
                .filter(|(_, image)| ImageRef::parse(image).is_latest())
                .map(|(_, image)| *image)
                .collect();
            if !bad.is_empty() {
                push(
                    "disallowLatestTag",
                    self.disallow_latest_tag,
                    format!("images {} use :latest or no tag; pin a version", quoted(&bad)),
                );
            }
        }
        let digest_here = self.require_digest.namespaces.is_empty()
            || self.require_digest.namespaces.iter().any(|n| n == namespace);
        if self.require_digest.mode != Mode::Off && digest_here {
            let bad: Vec<&str> = images
                .iter()
                .filter(|(_, image)| ImageRef::parse(image).digest.is_none())
                .map(|(_, i)| *i)
                .collect();
            if !bad.is_empty() {
                push(
                    "requireDigest",
                    self.require_digest.mode,
                    format!(
                        "images {} must be pinned by digest (image@sha256:…) in namespace {namespace:?}",
                        quoted(&bad)
                    ),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("registry.k8s.io/*", "registry.k8s.io/pause:3.9"));
        assert!(glob_match("*.dkr.ecr.*.amazonaws.com/*", "1234.dkr.ecr.eu-west-1.amazonaws.com/app:1"));
        assert!(!glob_match("registry.k8s.io/*", "docker.io/registry.k8s.io/x"));
        assert!(glob_match("nginx", "nginx"));
        assert!(!glob_match("a*a", "a"));
    }

    #[test]
    fn rules_fire_only_when_enabled() {
        let spec: PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "registry.k8s.io/pause:3.9",
                "securityContext": {"readOnlyRootFilesystem": true}}]
        }))
        .unwrap();
        assert!(RulesConfig::default().evaluate("default", &spec).is_empty());
        let config: RulesConfig = serde_yaml::from_str(
            "automountServiceAccountToken: warn\nreadOnlyRootFilesystem: enforce\ndisallowLatestTag: audit\n\
             imageRegistries: {mode: enforce, allowed: {'*': ['registry.k8s.io/*']}}\nrequireDigest: {mode: enforce, namespaces: [prod]}\n",
        )
        .unwrap();
        let v = config.evaluate("default", &spec);
        let rules: Vec<&str> = v.iter().map(|r| r.rule).collect();
        assert_eq!(
            rules,
            [
                "automountServiceAccountToken",
                "readOnlyRootFilesystem",
                "imageRegistries",
                "disallowLatestTag"
            ]
        );
        assert!(v[1].message.contains("\"a\""));
        assert_eq!(config.evaluate("prod", &spec).last().unwrap().rule, "requireDigest");
        assert!(serde_yaml::from_str::<RulesConfig>("readOnlyRootFS: enforce").is_err());
    }
}
