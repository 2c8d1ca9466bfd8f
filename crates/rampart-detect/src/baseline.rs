//! GuardDuty's behavioural findings (spec §2.3), approximated with first-seen sets kept in a
//! state file between runs: a base signal (secrets read, binding created, exec, privileged or
//! host-mounting workload, powerful role, permission probe) raises a finding only when its
//! actor/image pair is new *and* the baseline has seen enough events to have learnt what is
//! normal (`learning_events`), so a first run over a fresh cluster does not flood.

use std::collections::{BTreeMap, BTreeSet};

use crate::json::{Json, JsonContainerTrait, JsonExt, JsonValueTrait};
use serde::{Deserialize, Serialize};

use crate::event::AuditEvent;
use crate::finding::{Family, Finding, Severity, Tactic};
use crate::workload;

/// What has been seen, by category (persisted as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Baseline {
    pub version: u32,
    pub events_seen: u64,
    pub seen: BTreeMap<String, BTreeSet<String>>,
}

/// Images that are offensive tooling (GuardDuty raises WorkloadDeployed to Medium for them).
const PENTEST_IMAGES: [&str; 9] = [
    "kalilinux",
    "kali-linux",
    "metasploit",
    "nmap",
    "sqlmap",
    "hydra",
    "impacket",
    "peirates",
    "kube-hunter",
];
/// Reverse-shell and download-and-run idioms in a container command.
pub const SHELL_IDIOMS: [&str; 8] =
    ["/dev/tcp/", "nc -e", "ncat -e", "mkfifo", "bash -i", "socat exec", "| sh", "| bash"];

/// The anomaly detectors over a baseline.
#[derive(Debug)]
pub struct Anomalies {
    pub baseline: Baseline,
    pub learning_events: u64,
}

const WORKLOADS: [&str; 7] =
    ["pods", "deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs"];

fn excessive_rules(obj: &Json) -> Vec<String> {
    let mut why = BTreeSet::new();
    for rule in obj.get("rules").and_then(Json::as_array).into_iter().flatten() {
        let list = |k: &str| -> Vec<&str> {
            rule.get(k).and_then(Json::as_array).into_iter().flatten().filter_map(Json::as_str).collect()
        };
        let (verbs, resources) = (list("verbs"), list("resources"));
        if verbs.contains(&"*") || resources.contains(&"*") {
            why.insert("wildcard");
        }
        for v in ["escalate", "bind", "impersonate"] {
            if verbs.contains(&v) {
                why.insert(v);
            }
        }
        for r in ["secrets", "pods/exec", "nodes/proxy", "serviceaccounts/token"] {
            if resources.contains(&r) {
                why.insert(r);
            }
        }
    }
    why.into_iter().map(str::to_owned).collect()
}

impl Anomalies {
    pub fn new(baseline: Baseline, learning_events: u64) -> Self {
        Anomalies { baseline, learning_events }
    }

    /// Whether `key` is new in `category` (and remember it).
    fn novel(&mut self, category: &str, key: String) -> bool {
        self.baseline.seen.entry(category.to_owned()).or_default().insert(key)
    }

    fn matured(&self) -> bool {
        self.baseline.events_seen >= self.learning_events
    }

    #[allow(clippy::too_many_arguments)] // one finding's fields, each distinct
    fn raise(
        &self,
        out: &mut Vec<Finding>,
        e: &AuditEvent<'_>,
        id: &str,
        severity: Severity,
        tactic: Tactic,
        message: String,
        remediation: &str,
    ) {
        if self.matured() {
            out.push(Finding::new(id, Family::GuardDuty, severity, tactic, id, message, remediation, e));
        }
    }

    /// Learn from one event and raise what is both risky and new.
    pub fn observe(&mut self, e: &AuditEvent<'_>, out: &mut Vec<Finding>) {
        self.baseline.events_seen += 1;
        let stage = e.stage().unwrap_or("ResponseComplete");
        let user = e.username().unwrap_or("<unknown>").to_owned();
        let verb = e.verb().unwrap_or_default();
        let resource = e.resource().unwrap_or_default();
        let exec = resource == "pods" && matches!(e.subresource(), Some("exec" | "attach"));
        if exec && e.session_start && e.decision() != Some("forbid") {
            let ns = e.namespace().unwrap_or_default();
            if self.novel("exec", format!("{user}|{ns}")) {
                self.raise(out, e, "Execution:Kubernetes/AnomalousBehavior.ExecInPod", Severity::Medium, Tactic::Execution,
                    format!("{user} ran `{}` in {ns}/{} for the first time in this namespace", e.query_params("command").join(" "), e.name().unwrap_or_default()),
                    "Confirm the exec with its owner; if unexpected, rotate the user's credentials and inspect the pod.");
            }
            return;
        }
        if stage != "ResponseComplete" || !e.succeeded() {
            return;
        }
        let write = matches!(verb, "create" | "update" | "patch");
        match resource {
            "secrets" if matches!(verb, "get" | "list" | "watch") && self.novel("secrets", user.clone()) => {
                let scope = e.namespace().map(|n| format!("in {n}")).unwrap_or_else(|| "cluster-wide".into());
                self.raise(out, e, "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed", Severity::Medium, Tactic::CredentialAccess,
                        format!("{user} read secrets ({verb} {scope}) for the first time"),
                        "Check why this principal reads secrets; narrow its Role to the secrets it needs (resourceNames) or move secrets to an external store.");
            }
            "rolebindings" | "clusterrolebindings" if write => {
                let role = e
                    .object()
                    .and_then(|o| o.at("/roleRef/name"))
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if self.novel("bindings", user.clone()) {
                    let severity = if matches!(role.as_str(), "admin" | "cluster-admin") {
                        Severity::High
                    } else {
                        Severity::Medium
                    };
                    self.raise(out, e, "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated", severity, Tactic::PrivilegeEscalation,
                        format!("{user} bound {role} ({} {}) for the first time", resource.trim_end_matches('s'), e.name().unwrap_or_default()),
                        "Review the binding's subjects and role; remove it if it was not part of a reviewed change.");
                }
            }
            "roles" | "clusterroles" if write => {
                let why = e.object().map(excessive_rules).unwrap_or_default();
                if !why.is_empty() && self.novel("roles", user.clone()) {
                    self.raise(out, e, "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated", Severity::Low, Tactic::PrivilegeEscalation,
                        format!("{user} wrote {} {} with {} for the first time", resource.trim_end_matches('s'), e.name().unwrap_or_default(), why.join(", ")),
                        "Replace wildcards and escalate/bind/impersonate grants with the specific verbs and resources needed.");
                }
            }
            "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
                if verb == "create" && self.novel("permission-checks", user.clone()) =>
            {
                let asked = e
                    .request_object()
                    .and_then(|o| o.at("/spec/resourceAttributes"))
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                self.raise(out, e, "Discovery:Kubernetes/AnomalousBehavior.PermissionChecked", Severity::Low, Tactic::Discovery,
                        format!("{user} probed its permissions for the first time {asked}"),
                        "An unexpected `kubectl auth can-i` often precedes abuse of stolen credentials: confirm with the principal's owner.");
            }
            r if WORKLOADS.contains(&r) && write && e.subresource().is_none() => {
                let Some(obj) = e.object() else { return };
                let Some(pod) = workload::pod_spec(obj).map(workload::PodView::of) else { return };
                let name = obj
                    .at("/metadata/name")
                    .and_then(Json::as_str)
                    .or(e.name())
                    .unwrap_or_default()
                    .to_owned();
                let target = format!("{r} {}/{name}", e.namespace().unwrap_or_default());
                for image in pod.privileged_images() {
                    if self.novel("privileged-images", image.clone()) {
                        self.raise(out, e, "PrivilegeEscalation:Kubernetes/PrivilegedContainer", Severity::Medium, Tactic::PrivilegeEscalation,
                            format!("{user} launched {image} privileged ({target}); this image never ran privileged here before"),
                            "Drop privileged: true (grant the specific capabilities needed), and enforce Pod Security baseline on the namespace.");
                    }
                    if self.novel("privileged-by", format!("{user}|{image}")) {
                        self.raise(out, e, "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer", Severity::High, Tactic::PrivilegeEscalation,
                            format!("{user} deployed a privileged container ({image}) in {target}, unlike its past deployments"),
                            "Confirm the change with its owner; drop privileged: true and enforce Pod Security baseline.");
                    }
                }
                let mounts = pod.sensitive_writable_mounts();
                if !mounts.is_empty()
                    && self.novel("sensitive-mounts-by", format!("{user}|{}", mounts.join(",")))
                {
                    self.raise(out, e, "Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount", Severity::High, Tactic::Persistence,
                        format!("{user} deployed {target} mounting {} writable, unlike its past deployments", mounts.join(", ")),
                        "Remove the hostPath volume or mount it readOnly; enforce Pod Security baseline.");
                }
                for image in pod.images() {
                    if self.novel("images", image.clone()) {
                        let commands = pod
                            .containers()
                            .map(|c| {
                                format!(
                                    "{} {}",
                                    c.command.map(|v| v.to_string()).unwrap_or_default(),
                                    c.args.map(|v| v.to_string()).unwrap_or_default()
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(" ");
                        let offensive = PENTEST_IMAGES.iter().any(|p| image.contains(p))
                            || SHELL_IDIOMS.iter().any(|s| commands.contains(s));
                        let severity = if offensive { Severity::Medium } else { Severity::Low };
                        self.raise(out, e, "Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed", severity, Tactic::Execution,
                            format!("{user} deployed {image}, an image never run in this cluster before ({target}){}", if offensive { ", and it looks like offensive tooling or a reverse shell" } else { "" }),
                            "Confirm the workload is expected; restrict registries with an admission policy (rampart guardrails image rules).");
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(raw: &str) -> AuditEvent<'static> {
        crate::event::test_event(raw)
    }

    #[test]
    fn novelty_after_learning_only() {
        let read = r#"{"kind":"Event","stage":"ResponseComplete","verb":"list","user":{"username":"mallory"},"objectRef":{"resource":"secrets"},"responseStatus":{"code":200}}"#;
        let other = r#"{"kind":"Event","stage":"ResponseComplete","verb":"list","user":{"username":"bob"},"objectRef":{"resource":"secrets"},"responseStatus":{"code":200}}"#;
        let mut a = Anomalies::new(Baseline::default(), 2);
        let mut out = Vec::new();
        a.observe(&event(other), &mut out);
        assert!(out.is_empty(), "still learning");
        a.observe(&event(other), &mut out);
        a.observe(&event(read), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed");
        a.observe(&event(read), &mut out);
        assert_eq!(out.len(), 1, "seen now");
        // The baseline survives a round trip through its file.
        let json = serde_json::to_string(&a.baseline).unwrap();
        assert_eq!(serde_json::from_str::<Baseline>(&json).unwrap(), a.baseline);
    }
}
