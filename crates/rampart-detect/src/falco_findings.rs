//! Falco rule hits as findings: Falco's priority becomes a severity, and each default rule gets
//! its MITRE ATT&CK tactic and a remediation line (user rules default to Execution and a generic
//! line; their tags may name a tactic, e.g. `mitre_persistence`).

use crate::event::AuditEvent;
use crate::falco::{Priority, Rule};
use crate::finding::{Family, Finding, Label, Severity, Tactic};

/// The severity a Falco priority maps to.
pub fn severity(p: Priority) -> Severity {
    match p {
        Priority::Emergency | Priority::Alert | Priority::Critical => Severity::Critical,
        Priority::Error => Severity::High,
        Priority::Warning => Severity::Medium,
        Priority::Notice => Severity::Low,
        Priority::Informational | Priority::Debug => Severity::Info,
    }
}

fn from_tags(tags: &[String]) -> Option<Tactic> {
    tags.iter().find_map(|t| {
        Some(match t.strip_prefix("mitre_")? {
            "initial_access" => Tactic::InitialAccess,
            "execution" => Tactic::Execution,
            "persistence" => Tactic::Persistence,
            "privilege_escalation" => Tactic::PrivilegeEscalation,
            "defense_evasion" => Tactic::DefenseEvasion,
            "credential_access" => Tactic::CredentialAccess,
            "discovery" => Tactic::Discovery,
            "lateral_movement" => Tactic::LateralMovement,
            "collection" => Tactic::Collection,
            "impact" => Tactic::Impact,
            _ => return None,
        })
    })
}

/// Tactic and remediation of a default rule.
fn describe(name: &str) -> Option<(Tactic, &'static str)> {
    Some(match name {
        "Disallowed K8s User" => (
            Tactic::InitialAccess,
            "Add the user to allowed_k8s_users if expected (--falco-rules), otherwise revoke its access.",
        ),
        "Create Disallowed Pod" | "Pod Created in Kube Namespace" => {
            (Tactic::Execution, "Use only allowed images; keep workloads out of kube-system and kube-public.")
        }
        "Create Privileged Pod" => (
            Tactic::PrivilegeEscalation,
            "Drop privileged: true; enforce Pod Security baseline on the namespace.",
        ),
        "Create Sensitive Mount Pod" => {
            (Tactic::PrivilegeEscalation, "Remove the sensitive hostPath mount or make it readOnly.")
        }
        "Create HostNetwork Pod" | "Create HostPid Pod" | "Create HostIPC Pod" => (
            Tactic::PrivilegeEscalation,
            "Do not share host namespaces outside node agents; enforce Pod Security baseline.",
        ),
        "Create NodePort Service" => (
            Tactic::InitialAccess,
            "Expose services through a load balancer or ingress instead of node ports.",
        ),
        "Create/Modify Configmap With Private Credentials" => (
            Tactic::CredentialAccess,
            "Move credentials into Secrets (or an external store) and rotate them.",
        ),
        "Anonymous Request Allowed" => (
            Tactic::InitialAccess,
            "Remove bindings granting system:anonymous or system:unauthenticated access.",
        ),
        "Attach/Exec Pod" | "EphemeralContainers Created" => (
            Tactic::Execution,
            "Confirm interactive access was expected; restrict pods/exec and pods/ephemeralcontainers.",
        ),
        "port-forward" => (Tactic::LateralMovement, "Restrict pods/portforward to operators who need it."),
        "Create Disallowed Namespace" => {
            (Tactic::Persistence, "Add the namespace to allowed_namespaces if expected.")
        }
        "Service Account Created in Kube Namespace" => (
            Tactic::Persistence,
            "Service accounts in kube-system should come only from cluster components; remove unknown ones.",
        ),
        "System ClusterRole Modified/Deleted" => (
            Tactic::PrivilegeEscalation,
            "Restore the system role (kube-apiserver reconciles them on restart) and find who changed it.",
        ),
        "Attach to cluster-admin Role" => {
            (Tactic::PrivilegeEscalation, "Bind narrower roles; cluster-admin should be break-glass only.")
        }
        "ClusterRole With Wildcard Created"
        | "ClusterRole With Write Privileges Created"
        | "ClusterRole With Pod Exec Created" => {
            (Tactic::PrivilegeEscalation, "Grant the specific verbs and resources needed instead.")
        }
        "K8s Secret Get Successfully" | "K8s Secret Get Unsuccessfully Tried" => {
            (Tactic::CredentialAccess, "Check that the principal should read this secret.")
        }
        "Ingress Object without TLS Certificate Created" => {
            (Tactic::InitialAccess, "Add spec.tls to the Ingress.")
        }
        "Untrusted Node Successfully Joined the Cluster"
        | "Untrusted Node Unsuccessfully Tried to Join the Cluster" => {
            (Tactic::Persistence, "Verify the node; remove and investigate it if unknown.")
        }
        "Full K8s Administrative Access" => {
            (Tactic::PrivilegeEscalation, "Use least-privileged identities for day-to-day work.")
        }
        n if n.starts_with("K8s ") && n.ends_with("Deleted") => {
            (Tactic::Impact, "Activity record: confirm the deletion was intended.")
        }
        n if n.starts_with("K8s ") => {
            (Tactic::Persistence, "Activity record: confirm the change was intended.")
        }
        _ => return None,
    })
}

/// What every finding of one rule shares, worked out once when the analyzer starts.
#[derive(Debug, Clone)]
pub struct Template {
    id: Label,
    title: Label,
    severity: Severity,
    tactic: Tactic,
    remediation: Label,
}

impl Template {
    pub fn of(rule: &Rule) -> Self {
        let (default_tactic, remediation) = describe(&rule.name).unwrap_or((
            Tactic::Execution,
            "See the rule's description; tune it with --falco-rules if the activity is expected.",
        ));
        Template {
            id: format!("falco/{}", rule.name).into(),
            title: rule.name.as_str().into(),
            severity: severity(rule.priority),
            tactic: from_tags(&rule.tags).unwrap_or(default_tactic),
            remediation: remediation.into(),
        }
    }

    /// The finding for a hit of `rule` (the rule this template was made of) on `event`.
    pub fn finding(&self, rule: &Rule, event: &AuditEvent<'_>) -> Finding {
        Finding::new(
            self.id.clone(),
            Family::Falco,
            self.severity,
            self.tactic,
            self.title.clone(),
            rule.render(event),
            self.remediation.clone(),
            event,
        )
    }
}

/// The least severe priority that still maps to `min` or worse.
pub fn lowest_priority_for(min: Severity) -> Priority {
    [
        Priority::Debug,
        Priority::Informational,
        Priority::Notice,
        Priority::Warning,
        Priority::Error,
        Priority::Critical,
    ]
    .into_iter()
    .find(|p| severity(*p) <= min)
    .unwrap_or(Priority::Emergency)
}
