//! A finding: what was detected, how bad, which MITRE ATT&CK tactic, the audit event(s) that
//! show it, and what to do about it.

use std::sync::Arc;

use serde::Serialize;

use crate::event::AuditEvent;

/// Severity, most severe first (GuardDuty's scale plus Info for activity records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }

    /// Parse `critical|high|medium|low|info`.
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" => Severity::High,
            "medium" => Severity::Medium,
            "low" => Severity::Low,
            "info" => Severity::Info,
            _ => return None,
        })
    }
}

/// MITRE ATT&CK (containers matrix) tactics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Tactic {
    InitialAccess,
    Execution,
    Persistence,
    PrivilegeEscalation,
    DefenseEvasion,
    CredentialAccess,
    Discovery,
    LateralMovement,
    Collection,
    Impact,
}

impl Tactic {
    pub fn name(self) -> &'static str {
        match self {
            Tactic::InitialAccess => "Initial Access",
            Tactic::Execution => "Execution",
            Tactic::Persistence => "Persistence",
            Tactic::PrivilegeEscalation => "Privilege Escalation",
            Tactic::DefenseEvasion => "Defense Evasion",
            Tactic::CredentialAccess => "Credential Access",
            Tactic::Discovery => "Discovery",
            Tactic::LateralMovement => "Lateral Movement",
            Tactic::Collection => "Collection",
            Tactic::Impact => "Impact",
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Tactic::InitialAccess => "TA0001",
            Tactic::Execution => "TA0002",
            Tactic::Persistence => "TA0003",
            Tactic::PrivilegeEscalation => "TA0004",
            Tactic::DefenseEvasion => "TA0005",
            Tactic::CredentialAccess => "TA0006",
            Tactic::Discovery => "TA0007",
            Tactic::LateralMovement => "TA0008",
            Tactic::Collection => "TA0009",
            Tactic::Impact => "TA0040",
        }
    }

    /// GuardDuty's spelling in finding types (`CredentialAccess:Kubernetes/…`).
    pub fn guardduty(self) -> &'static str {
        match self {
            Tactic::InitialAccess => "InitialAccess",
            Tactic::Execution => "Execution",
            Tactic::Persistence => "Persistence",
            Tactic::PrivilegeEscalation => "PrivilegeEscalation",
            Tactic::DefenseEvasion => "DefenseEvasion",
            Tactic::CredentialAccess => "CredentialAccess",
            Tactic::Discovery => "Discovery",
            Tactic::LateralMovement => "LateralMovement",
            Tactic::Collection => "Collection",
            Tactic::Impact => "Impact",
        }
    }
}

/// Which family a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// A GuardDuty EKS audit-log finding type, reproduced.
    GuardDuty,
    /// A Falco k8saudit rule.
    Falco,
    /// Rampart's own detections (EKS Best Practices queries, spikes, sensitive changes).
    Rampart,
}

/// The audit event behind a finding, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRef {
    pub audit_id: String,
    pub time: String,
    pub stage: String,
    pub verb: String,
    pub request_uri: String,
    pub user: String,
    pub source_ip: String,
    pub code: Option<i64>,
    pub decision: String,
}

impl EventRef {
    pub fn of(e: &AuditEvent<'_>) -> Self {
        EventRef {
            audit_id: e.audit_id.unwrap_or_default().to_owned(),
            time: e.time_text().unwrap_or_default().to_owned(),
            stage: e.stage().unwrap_or_default().to_owned(),
            verb: e.verb().unwrap_or_default().to_owned(),
            request_uri: e.uri().unwrap_or_default().to_owned(),
            user: e.username().unwrap_or_default().to_owned(),
            source_ip: e.source_ip().unwrap_or_default().to_owned(),
            code: e.code(),
            decision: e.decision().unwrap_or_default().to_owned(),
        }
    }
}

/// A finding's identifier, title or remediation: shared text, since most findings repeat a
/// fixed string (a Falco rule's id, a detector's advice) and cloning it should not allocate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Label(Arc<str>);

impl Label {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Label {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Label {
    fn from(s: &str) -> Self {
        Label(s.into())
    }
}

impl From<String> for Label {
    fn from(s: String) -> Self {
        Label(s.into())
    }
}

impl PartialEq<str> for Label {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Label {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable identifier: the GuardDuty finding type, `falco/<rule>` or `rampart/<Name>`.
    pub id: Label,
    pub family: Family,
    pub severity: Severity,
    pub tactic: Tactic,
    pub title: Label,
    /// What happened, with the specifics (user, object, command…).
    pub message: String,
    pub remediation: Label,
    /// The events that show it (one for point detections, a sample for windows).
    pub events: Vec<EventRef>,
}

impl Finding {
    /// A point finding from one event.
    #[allow(clippy::too_many_arguments)] // one finding's fields, each distinct
    pub fn new(
        id: impl Into<Label>,
        family: Family,
        severity: Severity,
        tactic: Tactic,
        title: impl Into<Label>,
        message: impl Into<String>,
        remediation: impl Into<Label>,
        event: &AuditEvent<'_>,
    ) -> Self {
        Finding {
            id: id.into(),
            family,
            severity,
            tactic,
            title: title.into(),
            message: message.into(),
            remediation: remediation.into(),
            events: vec![EventRef::of(event)],
        }
    }

    /// One of Rampart's own findings: id `rampart/<name>`, titled by its id.
    pub fn rampart(
        event: &AuditEvent<'_>,
        name: &str,
        severity: Severity,
        tactic: Tactic,
        message: String,
        remediation: &str,
    ) -> Self {
        let id = Label::from(format!("rampart/{name}"));
        Finding::new(id.clone(), Family::Rampart, severity, tactic, id, message, remediation, event)
    }
}
