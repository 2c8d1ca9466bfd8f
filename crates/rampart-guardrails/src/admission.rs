//! The guardrails admission stage: Pod Security Admission semantics plus the best-practice
//! rules, for pods and the pod templates of workload controllers.
//!
//! * Pods (CREATE, and UPDATEs that change containers or images; subresources other than
//!   `ephemeralcontainers`/`resize` skipped): enforce denies; audit annotates; warn warns.
//! * Controllers (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
//!   CronJob, PodTemplate): never denied, as upstream — warnings and audit annotations for
//!   their pod template, so `kubectl apply` shows the problem before the pods are rejected.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use rampart_types::admission::{AdmissionRequest, Operation};
use rampart_types::workload::pod_template;
use serde::Deserialize;

use crate::pss::namespace::{Defaults, Policy, resolve};
use crate::pss::pod::PodView;
use crate::pss::{CheckResult, Level, LevelVersion, PssError, evaluate, reasons_message};
use crate::rules::{Mode, RuleViolation, RulesConfig};

/// `PodSecurityConfiguration`-style exemptions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exemptions {
    #[serde(default)]
    pub usernames: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub runtime_classes: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSecuritySection {
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub exemptions: Exemptions,
}

/// The guardrails configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardrailsConfig {
    #[serde(default)]
    pub pod_security: PodSecuritySection,
    #[serde(default)]
    pub rules: RulesConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("guardrails config: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("guardrails config: podSecurity.defaults: {0}")]
    Pss(#[from] PssError),
    #[error("namespaces file: {0}")]
    Namespaces(String),
}

/// The configured guardrails plus the namespace labels they read.
#[derive(Debug, Clone)]
pub struct Guardrails {
    defaults: Policy,
    exemptions: Exemptions,
    rules: RulesConfig,
    namespace_labels: HashMap<String, BTreeMap<String, String>>,
}

/// Everything found for one pod (or pod template).
#[derive(Debug, Clone)]
pub struct PodEvaluation {
    pub policy: Policy,
    pub label_errors: Vec<String>,
    pub enforce: Vec<CheckResult>,
    pub audit: Vec<CheckResult>,
    pub warn: Vec<CheckResult>,
    pub rules: Vec<RuleViolation>,
}

/// The stage's answer for one AdmissionRequest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Set when the request must be rejected; the message the user sees.
    pub denial: Option<String>,
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
}

const POD_SUBRESOURCES_SKIPPED: &[&str] =
    &["exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status"];

fn controller_kind(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        ("", "replicationcontrollers" | "podtemplates")
            | ("apps", "replicasets" | "deployments" | "statefulsets" | "daemonsets")
            | ("batch", "jobs" | "cronjobs")
    )
}

/// True when an UPDATE changes what Pod Security looks at enough to re-check (upstream's rule:
/// container counts or images changed, or ephemeral containers added or changed).
fn significant_update(new: &PodSpec, old: &PodSpec) -> bool {
    let images =
        |cs: &[k8s_openapi::api::core::v1::Container]| cs.iter().map(|c| c.image.clone()).collect::<Vec<_>>();
    let init = |s: &PodSpec| images(s.init_containers.as_deref().unwrap_or_default());
    let eph = |s: &PodSpec| {
        s.ephemeral_containers.iter().flatten().map(|c| (c.name.clone(), c.image.clone())).collect::<Vec<_>>()
    };
    images(&new.containers) != images(&old.containers) || init(new) != init(old) || eph(new) != eph(old)
}

impl Guardrails {
    /// Build from a config and the namespaces' labels (`name → labels`).
    pub fn new(
        config: GuardrailsConfig,
        namespace_labels: HashMap<String, BTreeMap<String, String>>,
    ) -> Result<Self, ConfigError> {
        Ok(Guardrails {
            defaults: config.pod_security.defaults.policy()?,
            exemptions: config.pod_security.exemptions,
            rules: config.rules,
            namespace_labels,
        })
    }

    /// The same guardrails with a fresh set of namespace labels (a live cluster's, re-listed).
    pub fn with_namespace_labels(&self, namespace_labels: HashMap<String, BTreeMap<String, String>>) -> Self {
        Guardrails { namespace_labels, ..self.clone() }
    }

    /// Parse the config YAML.
    pub fn config_from_yaml(text: &str) -> Result<GuardrailsConfig, ConfigError> {
        Ok(serde_yaml::from_str(text)?)
    }

    /// Namespace labels from `kubectl get namespaces -o yaml` output (a `List` or single
    /// `Namespace` objects, multi-document).
    pub fn namespaces_from_yaml(
        text: &str,
    ) -> Result<HashMap<String, BTreeMap<String, String>>, ConfigError> {
        let mut out = HashMap::new();
        for doc in serde_yaml::Deserializer::from_str(text) {
            let value =
                serde_yaml::Value::deserialize(doc).map_err(|e| ConfigError::Namespaces(e.to_string()))?;
            let items = match value.get("items").and_then(|i| i.as_sequence()) {
                Some(items) => items.clone(),
                None if value.is_null() => vec![],
                None => vec![value],
            };
            for item in items {
                if item.get("kind").and_then(|k| k.as_str()).is_some_and(|k| k != "Namespace") {
                    continue;
                }
                let meta = item.get("metadata");
                let name = meta.and_then(|m| m.get("name")).and_then(|n| n.as_str());
                let Some(name) = name else {
                    return Err(ConfigError::Namespaces("a Namespace has no metadata.name".into()));
                };
                let labels: BTreeMap<String, String> = meta
                    .and_then(|m| m.get("labels"))
                    .cloned()
                    .map(serde_yaml::from_value)
                    .transpose()
                    .map_err(|e| ConfigError::Namespaces(format!("namespace {name}: labels: {e}")))?
                    .unwrap_or_default();
                out.insert(name.to_owned(), labels);
            }
        }
        Ok(out)
    }

    /// The policy of a namespace (namespaces without labels, or unknown ones, get the defaults).
    pub fn namespace_policy(&self, namespace: &str) -> (Policy, Vec<String>) {
        resolve(self.namespace_labels.get(namespace), self.defaults)
    }

    /// Evaluate a pod spec as it would be in `namespace`.
    pub fn evaluate_pod(
        &self,
        namespace: &str,
        annotations: Option<&BTreeMap<String, String>>,
        spec: &PodSpec,
    ) -> PodEvaluation {
        let (policy, label_errors) = self.namespace_policy(namespace);
        let pod = PodView::new(annotations, spec);
        let mut cache: Vec<(LevelVersion, Vec<CheckResult>)> = Vec::new();
        let mut run = |lv: LevelVersion| {
            if let Some((_, r)) = cache.iter().find(|(k, _)| *k == lv) {
                return r.clone();
            }
            let r = evaluate(&pod, lv);
            cache.push((lv, r.clone()));
            r
        };
        PodEvaluation {
            enforce: run(policy.enforce),
            audit: run(policy.audit),
            warn: run(policy.warn),
            rules: self.rules.evaluate(namespace, spec),
            policy,
            label_errors,
        }
    }

    fn exempt(&self, req: &AdmissionRequest, namespace: &str) -> Option<&'static str> {
        if self.exemptions.namespaces.iter().any(|n| n == namespace) {
            return Some("namespace");
        }
        let user = req.user_info.username.as_deref().unwrap_or_default();
        if self.exemptions.usernames.iter().any(|u| u == user) {
            return Some("user");
        }
        None
    }

    /// The admission decision for one request.
    pub fn admit(&self, req: &AdmissionRequest) -> Verdict {
        let mut verdict = Verdict::default();
        if !matches!(req.operation, Operation::Create | Operation::Update) {
            return verdict;
        }
        let subresource = req.sub_resource.as_deref().unwrap_or_default();
        let (group, resource) = (req.resource.group.as_str(), req.resource.resource.as_str());
        let is_pod =
            group.is_empty() && resource == "pods" && !POD_SUBRESOURCES_SKIPPED.contains(&subresource);
        let is_controller = controller_kind(group, resource) && subresource.is_empty();
        if !is_pod && !is_controller {
            return verdict;
        }
        let namespace = req.namespace.as_deref().unwrap_or_default();
        if let Some(why) = self.exempt(req, namespace) {
            verdict.audit_annotations.insert("pod-security.kubernetes.io/exempt".into(), why.into());
            return verdict;
        }
        let Some(object) = req.object.as_ref() else { return verdict };
        let name = req.name.as_deref().filter(|n| !n.is_empty()).unwrap_or("<generated>");
        let (annotations, spec) = if is_pod {
            let pod = match k8s_openapi::api::core::v1::Pod::deserialize(object) {
                Ok(p) => p,
                Err(e) => {
                    verdict.denial = Some(format!("pods {name:?} cannot be checked for Pod Security: {e}"));
                    return verdict;
                }
            };
            if let (Operation::Update, Some(old)) = (req.operation, req.old_object.as_ref()) {
                let old = k8s_openapi::api::core::v1::Pod::deserialize(old).ok().and_then(|p| p.spec);
                if let (Some(new), Some(old)) = (pod.spec.as_ref(), old.as_ref())
                    && !significant_update(new, old)
                {
                    return verdict;
                }
            }
            (pod.metadata.annotations, pod.spec.unwrap_or_default())
        } else {
            // Controllers never block: decoding problems become an audit annotation.
            match pod_template(object).map(PodTemplateSpec::deserialize) {
                Some(Ok(t)) => (t.metadata.and_then(|m| m.annotations), t.spec.unwrap_or_default()),
                Some(Err(e)) => {
                    verdict
                        .audit_annotations
                        .insert("pod-security.kubernetes.io/error".into(), e.to_string());
                    return verdict;
                }
                None => return verdict,
            }
        };
        let runtime_class = spec.runtime_class_name.as_deref().unwrap_or_default();
        let rc_exempt =
            !runtime_class.is_empty() && self.exemptions.runtime_classes.iter().any(|r| r == runtime_class);
        let eval = self.evaluate_pod(namespace, annotations.as_ref(), &spec);
        if !eval.label_errors.is_empty() {
            verdict.audit_annotations.insert(
                "pod-security.kubernetes.io/error".into(),
                format!("Failed to parse policy: {}", eval.label_errors.join(", ")),
            );
        }
        if rc_exempt {
            verdict
                .audit_annotations
                .insert("pod-security.kubernetes.io/exempt".into(), "runtimeClass".into());
        } else {
            self.apply_pss(&mut verdict, &eval, is_pod, name);
        }
        self.apply_rules(&mut verdict, &eval.rules, is_pod, name);
        verdict
    }

    fn apply_pss(&self, verdict: &mut Verdict, eval: &PodEvaluation, is_pod: bool, name: &str) {
        let p = eval.policy;
        if is_pod && p.enforce.level != Level::Privileged {
            verdict
                .audit_annotations
                .insert("pod-security.kubernetes.io/enforce-policy".into(), p.enforce.to_string());
            if !eval.enforce.is_empty() {
                verdict.denial = Some(format!(
                    "pods {name:?} is forbidden: violates PodSecurity {:?}: {}",
                    p.enforce.to_string(),
                    reasons_message(&eval.enforce)
                ));
            }
        }
        if p.audit.level != Level::Privileged && !eval.audit.is_empty() {
            verdict.audit_annotations.insert(
                "pod-security.kubernetes.io/audit-violations".into(),
                format!(
                    "would violate PodSecurity {:?}: {}",
                    p.audit.to_string(),
                    reasons_message(&eval.audit)
                ),
            );
        }
        if verdict.denial.is_none() && p.warn.level != Level::Privileged && !eval.warn.is_empty() {
            verdict.warnings.push(format!(
                "would violate PodSecurity {:?}: {}",
                p.warn.to_string(),
                reasons_message(&eval.warn)
            ));
        }
    }

    fn apply_rules(&self, verdict: &mut Verdict, violations: &[RuleViolation], is_pod: bool, name: &str) {
        for v in violations {
            match v.mode {
                Mode::Enforce if is_pod && verdict.denial.is_none() => {
                    verdict.denial =
                        Some(format!("pods {name:?} is forbidden by rampart rule {}: {}", v.rule, v.message));
                }
                // Controllers are warned, never blocked (their pods are checked on creation).
                Mode::Enforce | Mode::Warn => {
                    verdict.warnings.push(format!("rampart rule {}: {}", v.rule, v.message))
                }
                Mode::Audit => {
                    verdict.audit_annotations.insert(format!("rampart.dev/{}", v.rule), v.message.clone());
                }
                Mode::Off => {}
            }
        }
    }
}
