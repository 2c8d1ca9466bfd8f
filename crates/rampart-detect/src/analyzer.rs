//! The audit analyzer: one pass over events, every detector, duplicates dropped.
//!
//! Events are deduplicated on `(auditID, stage)` (CloudWatch and webhook backends may deliver
//! twice) over a bounded two-generation set, so memory stays flat on any input size.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};

use serde::Serialize;

use crate::baseline::{Anomalies, Baseline};
use crate::changes::Changes;
use crate::event::{AuditEvent, Document, EventError};
use crate::falco::RuleSet;
use crate::falco_findings::Template;
use crate::finding::{Finding, Severity};
use crate::guardduty::GuardDuty;
use crate::window::{WindowConfig, Windows};

/// What to run.
pub struct AnalyzerConfig {
    /// Falco rules (`None`: no Falco rules).
    pub falco: Option<RuleSet>,
    pub guardduty: GuardDuty,
    /// The behavioural baseline and how many events it must have seen before it alerts
    /// (`None`: no anomaly findings).
    pub baseline: Option<(Baseline, u64)>,
    pub windows: WindowConfig,
    /// Findings below this severity are not produced (Falco rules below it are not even run).
    pub min_severity: Severity,
}

/// Counts for the run summary.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub events: u64,
    pub duplicates: u64,
    /// Lines or items that were not audit events.
    pub skipped: u64,
    pub findings: u64,
}

const DEDUP_GENERATION: usize = 1 << 20;

/// The analyzer.
pub struct Analyzer {
    /// The rules, each with its finding template.
    falco: Option<(RuleSet, Vec<Template>)>,
    guardduty: GuardDuty,
    anomalies: Option<Anomalies>,
    windows: Windows,
    changes: Changes,
    min_severity: Severity,
    seen: [HashSet<u64, foldhash::fast::RandomState>; 2],
    /// Seeded per run (auditIDs are client-influenced; a fixed hash would invite collisions).
    hasher: foldhash::fast::RandomState,
    pub stats: Stats,
}

impl Analyzer {
    pub fn new(config: AnalyzerConfig) -> Self {
        let falco = config.falco.map(|mut rules| {
            rules.retain_at_least(crate::falco_findings::lowest_priority_for(config.min_severity));
            let templates = rules.rules().iter().map(Template::of).collect();
            (rules, templates)
        });
        Analyzer {
            falco,
            min_severity: config.min_severity,
            guardduty: config.guardduty,
            anomalies: config.baseline.map(|(b, learning)| Anomalies::new(b, learning)),
            windows: Windows::new(config.windows),
            changes: Changes::default(),
            seen: [HashSet::default(), HashSet::default()],
            hasher: Default::default(),
            stats: Stats::default(),
        }
    }

    fn duplicate(&mut self, e: &AuditEvent<'_>) -> bool {
        let Some(id) = e.audit_id.filter(|i| !i.is_empty()) else { return false };
        let mut h = self.hasher.build_hasher();
        id.hash(&mut h);
        e.stage().hash(&mut h);
        let key = h.finish();
        if self.seen[0].contains(&key) || self.seen[1].contains(&key) {
            return true;
        }
        if self.seen[0].len() >= DEDUP_GENERATION {
            self.seen.swap(0, 1);
            self.seen[0].clear();
        }
        self.seen[0].insert(key);
        false
    }

    /// Analyse one event text; findings are appended to `out`. Returns the parse error for
    /// text that is not an audit event (the caller may look for an envelope in it).
    pub fn observe_text(&mut self, text: &str, out: &mut Vec<Finding>) -> Result<(), EventError> {
        let doc = Document::parse(text)?;
        self.observe(&doc.event()?, out);
        Ok(())
    }

    /// Analyse one decoded event.
    pub fn observe(&mut self, e: &AuditEvent<'_>, out: &mut Vec<Finding>) {
        if self.duplicate(e) {
            self.stats.duplicates += 1;
            return;
        }
        self.stats.events += 1;
        let before = out.len();
        if let Some((rules, templates)) = &self.falco {
            for (rule, template) in rules.rules().iter().zip(templates) {
                if rule.matches(e) {
                    out.push(template.finding(rule, e));
                }
            }
        }
        self.guardduty.observe(e, out);
        if let Some(a) = self.anomalies.as_mut() {
            a.observe(e, out);
        }
        self.windows.observe(e, out);
        self.changes.observe(e, out);
        let min = self.min_severity;
        let mut kept = before;
        for i in before..out.len() {
            if out[i].severity <= min {
                out.swap(kept, i);
                kept += 1;
            }
        }
        out.truncate(kept);
        self.stats.findings += (out.len() - before) as u64;
    }

    /// The baseline after this run (to save), if anomalies are on.
    pub fn into_baseline(self) -> Option<Baseline> {
        self.anomalies.map(|a| a.baseline)
    }
}
