//! Rate detections over sliding windows of event time (EKS Best Practices A1, Q7, Q8, S1):
//! bursts of 401/403 per user and source IP (the CloudWatch alarm the guide recommends),
//! denied secret reads per user, denied anonymous requests per source IP, and one user reading
//! many distinct secrets. Each raises one finding per burst and re-arms once the window has
//! drained, so a sustained attack is one finding, not thousands.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::event::AuditEvent;
use crate::finding::{Finding, Severity, Tactic};

/// Thresholds and window length.
#[derive(Debug, Clone, Copy)]
pub struct WindowConfig {
    pub window_seconds: i64,
    /// 401/403 per (user, source IP) within the window.
    pub forbidden_threshold: usize,
    /// Denied secret reads per user.
    pub secret_denied_threshold: usize,
    /// Denied anonymous requests per source IP.
    pub anonymous_denied_threshold: usize,
    /// Distinct secrets read per user within `bulk_window_seconds`.
    pub bulk_secrets_threshold: usize,
    pub bulk_window_seconds: i64,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            window_seconds: 300,
            forbidden_threshold: 20,
            secret_denied_threshold: 5,
            anonymous_denied_threshold: 10,
            bulk_secrets_threshold: 15,
            bulk_window_seconds: 1800,
        }
    }
}

#[derive(Debug, Default)]
struct Burst {
    times: VecDeque<(i64, String)>,
    fired: bool,
}

impl Burst {
    /// Add an occurrence; true when the count first reaches `threshold` in this burst.
    fn add(&mut self, now: i64, window: i64, label: String, threshold: usize, distinct: bool) -> bool {
        while self.times.front().is_some_and(|(t, _)| *t <= now - window) {
            self.times.pop_front();
        }
        if self.times.is_empty() {
            self.fired = false;
        }
        self.times.push_back((now, label));
        let count = if distinct {
            self.times.iter().map(|(_, l)| l.as_str()).collect::<HashSet<_>>().len()
        } else {
            self.times.len()
        };
        if count >= threshold && !self.fired {
            self.fired = true;
            return true;
        }
        false
    }
}

/// The windows.
#[derive(Debug, Default)]
pub struct Windows {
    config: WindowConfig,
    bursts: HashMap<(u8, String), Burst>,
    now: i64,
    since_sweep: usize,
}

fn denied(e: &AuditEvent<'_>) -> bool {
    matches!(e.code(), Some(401 | 403)) || e.decision() == Some("forbid")
}

impl Windows {
    pub fn new(config: WindowConfig) -> Self {
        Windows { config, ..Default::default() }
    }

    fn bump(
        &mut self,
        kind: u8,
        key: String,
        label: String,
        threshold: usize,
        window: i64,
        distinct: bool,
    ) -> Option<usize> {
        let micros = window * 1_000_000;
        let burst = self.bursts.entry((kind, key)).or_default();
        let fired = burst.add(self.now, micros, label, threshold, distinct);
        fired.then_some(burst.times.len())
    }

    /// Count one completed event.
    pub fn observe(&mut self, e: &AuditEvent<'_>, out: &mut Vec<Finding>) {
        if e.stage().is_some_and(|s| s != "ResponseComplete") {
            return;
        }
        // Out-of-order events (CloudWatch batches interleave) count at the latest time seen.
        self.now = self.now.max(e.time_micros().unwrap_or(self.now));
        self.since_sweep += 1;
        if self.since_sweep >= 4096 {
            self.sweep();
        }
        let c = self.config;
        let secrets_read =
            e.resource() == Some("secrets") && matches!(e.verb(), Some("get" | "list" | "watch"));
        let denied = denied(e);
        if !(denied || (secrets_read && e.succeeded())) {
            return;
        }
        let user = e.username().unwrap_or("<unknown>").to_owned();
        let ip = e.source_ip().unwrap_or("<unknown>").to_owned();
        let minutes = c.window_seconds / 60;
        if denied {
            if let Some(n) = self.bump(
                0,
                format!("{user}|{ip}"),
                String::new(),
                c.forbidden_threshold,
                c.window_seconds,
                false,
            ) {
                out.push(Finding::rampart(e, "ForbiddenSpike", Severity::Medium, Tactic::Discovery,
                    format!("{n} denied (401/403) requests by {user} from {ip} within {minutes} min"),
                    "A burst of denials means probing or a broken client: check the principal's recent activity and, if unexpected, revoke its credentials."));
            }
            if secrets_read
                && let Some(n) = self.bump(
                    1,
                    user.clone(),
                    String::new(),
                    c.secret_denied_threshold,
                    c.window_seconds,
                    false,
                )
            {
                out.push(Finding::rampart(e, "SecretReadDenied", Severity::Medium, Tactic::CredentialAccess,
                    format!("{n} denied secret reads by {user} within {minutes} min"),
                    "Someone is trying to read secrets they may not: identify the workload or person behind the principal."));
            }
            if e.username() == Some("system:anonymous")
                && let Some(n) = self.bump(
                    2,
                    ip.clone(),
                    String::new(),
                    c.anonymous_denied_threshold,
                    c.window_seconds,
                    false,
                )
            {
                out.push(Finding::rampart(e, "AnonymousProbing", Severity::Low, Tactic::Discovery,
                    format!("{n} denied anonymous requests from {ip} within {minutes} min"),
                    "The API endpoint is being scanned: restrict it (EKS publicAccessCidrs / private endpoint) and keep anonymous access off."));
            }
        } else if secrets_read && e.succeeded() {
            let name = e.name().unwrap_or("*").to_owned();
            let label = format!("{}/{name}", e.namespace().unwrap_or("*"));
            if self
                .bump(3, user.clone(), label, c.bulk_secrets_threshold, c.bulk_window_seconds, true)
                .is_some()
            {
                out.push(Finding::rampart(e, "SecretBulkRead", Severity::Medium, Tactic::CredentialAccess,
                    format!("{user} read {} or more distinct secrets within {} min", c.bulk_secrets_threshold, c.bulk_window_seconds / 60),
                    "Bulk secret access is how stolen credentials are harvested: confirm with the owner, rotate the secrets if not expected."));
            }
        }
    }

    /// Drop drained windows (keeps memory bounded by the active keys).
    fn sweep(&mut self) {
        self.since_sweep = 0;
        let horizon = self.now - self.config.window_seconds.max(self.config.bulk_window_seconds) * 1_000_000;
        self.bursts.retain(|_, b| b.times.back().is_some_and(|(t, _)| *t > horizon));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied_at(second: i64, user: &str) -> String {
        format!(
            r#"{{"kind":"Event","stage":"ResponseComplete","verb":"get","user":{{"username":"{user}"}},"sourceIPs":["203.0.113.9"],"objectRef":{{"resource":"pods"}},"responseStatus":{{"code":403}},"stageTimestamp":"2026-03-02T10:{:02}:{:02}Z"}}"#,
            second / 60,
            second % 60
        )
    }

    #[test]
    fn one_finding_per_burst_and_rearm_after_draining() {
        let mut w = Windows::new(WindowConfig { forbidden_threshold: 5, ..Default::default() });
        let mut out = Vec::new();
        for s in 0..30 {
            w.observe(&crate::event::test_event(&denied_at(s, "eve")), &mut out);
        }
        assert_eq!(out.len(), 1, "30 denials in a burst are one finding");
        assert!(out[0].message.starts_with("5 denied"), "{}", out[0].message);
        for s in 0..4 {
            w.observe(&crate::event::test_event(&denied_at(s * 10, "bob")), &mut out);
        }
        assert_eq!(out.len(), 1, "under the threshold");
        // Ten minutes later the window has drained: a new burst is a new finding.
        for s in 0..5 {
            w.observe(&crate::event::test_event(&denied_at(1200 + s, "eve")), &mut out);
        }
        assert_eq!(out.len(), 2);
    }
}
