//! A finding: what was detected, how bad, which MITRE ATT&CK tactic, the audit event(s) that
//! show it, and what to do about it.

use std::sync::Arc;

use serde::Serialize;
use smallvec::{SmallVec, smallvec};

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

/// The audit event behind a finding, summarised: its text fields in one buffer (a finding is
/// made for most events on busy streams, so this is one allocation rather than eight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    text: String,
    /// End of each field in `text`, in [`EventRef::FIELDS`] order.
    ends: [u32; 9],
    pub code: Option<i64>,
}

impl EventRef {
    /// The text fields, as serialized.
    const FIELDS: [&'static str; 9] =
        ["auditId", "time", "stage", "verb", "requestUri", "user", "sourceIp", "decision", "object"];

    pub fn of(e: &AuditEvent<'_>) -> Self {
        let fields = [
            e.audit_id,
            e.time_text(),
            e.stage(),
            e.verb(),
            e.uri(),
            e.username(),
            e.source_ip(),
            e.decision(),
            e.name(),
        ]
        .map(Option::unwrap_or_default);
        let mut text = String::with_capacity(fields.iter().map(|f| f.len()).sum());
        let mut ends = [0u32; 9];
        for (end, field) in ends.iter_mut().zip(fields) {
            text.push_str(field);
            // Audit events are far below 4 GiB; saturate rather than wrap if one is not.
            *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        EventRef { text, ends, code: e.code() }
    }

    fn field(&self, i: usize) -> &str {
        let start = i.checked_sub(1).and_then(|p| self.ends.get(p)).map_or(0, |&e| e as usize);
        let end = self.ends.get(i).map_or(0, |&e| e as usize);
        self.text.get(start..end).unwrap_or_default()
    }

    pub fn audit_id(&self) -> &str {
        self.field(0)
    }
    /// The event's time as written.
    pub fn time(&self) -> &str {
        self.field(1)
    }
    pub fn stage(&self) -> &str {
        self.field(2)
    }
    pub fn verb(&self) -> &str {
        self.field(3)
    }
    pub fn request_uri(&self) -> &str {
        self.field(4)
    }
    pub fn user(&self) -> &str {
        self.field(5)
    }
    pub fn source_ip(&self) -> &str {
        self.field(6)
    }
    /// `allow` / `forbid`, if the event says.
    pub fn decision(&self) -> &str {
        self.field(7)
    }
    /// The object's name (`objectRef.name`): for a create, the only place it is named.
    pub fn object(&self) -> &str {
        self.field(8)
    }
}

impl Serialize for EventRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(Self::FIELDS.len() + 1))?;
        for (i, name) in Self::FIELDS.iter().enumerate() {
            if *name == "decision" {
                map.serialize_entry("code", &self.code)?;
            }
            map.serialize_entry(name, self.field(i))?;
        }
        map.end()
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
    pub events: SmallVec<[EventRef; 1]>,
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
            events: smallvec![EventRef::of(event)],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_refs_read_back_and_serialize_every_field() {
        let e = crate::event::test_event(
            r#"{"kind":"Event","auditID":"a-1","stage":"ResponseComplete","verb":"create","requestURI":"/api/v1/namespaces/d/pods","user":{"username":"alice"},"sourceIPs":["10.0.0.1","192.0.2.7"],"responseStatus":{"code":201},"stageTimestamp":"2026-03-02T10:15:04.112233Z","annotations":{"authorization.k8s.io/decision":"allow"}}"#,
        );
        let r = EventRef::of(&e);
        assert_eq!(
            (
                r.audit_id(),
                r.time(),
                r.stage(),
                r.verb(),
                r.request_uri(),
                r.user(),
                r.source_ip(),
                r.decision()
            ),
            (
                "a-1",
                "2026-03-02T10:15:04.112233Z",
                "ResponseComplete",
                "create",
                "/api/v1/namespaces/d/pods",
                "alice",
                "192.0.2.7",
                "allow"
            )
        );
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"auditId": "a-1", "time": "2026-03-02T10:15:04.112233Z", "stage": "ResponseComplete",
                "verb": "create", "requestUri": "/api/v1/namespaces/d/pods", "user": "alice", "sourceIp": "192.0.2.7",
                "code": 201, "decision": "allow", "object": ""})
        );
        // Missing fields read as empty.
        let bare = EventRef::of(&crate::event::test_event(r#"{"verb":"get"}"#));
        assert_eq!((bare.audit_id(), bare.verb(), bare.decision(), bare.code), ("", "get", "", None));
    }
}
