//! The audit analyzer: one pass over events, every detector, duplicates dropped.
//!
//! Events are deduplicated on `(auditID, stage)` (CloudWatch and webhook backends may deliver
//! twice) over the last one to two million events, so memory stays flat on any input size.

use serde::Serialize;

use crate::baseline::{Anomalies, Baseline};
use crate::batch::LineBatch;
use crate::changes::Changes;
use crate::dedup::{Key, SeenSet};
use crate::event::{AuditEvent, Document, EventError};
use crate::falco::RuleSet;
use crate::falco_findings::Template;
use crate::finding::{Finding, Severity};
use crate::guardduty::GuardDuty;
use crate::json::JsonContainerTrait;
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

/// The analyzer.
pub struct Analyzer {
    /// The rules, each with its finding template.
    falco: Option<(RuleSet, Vec<Template>)>,
    guardduty: GuardDuty,
    anomalies: Option<Anomalies>,
    windows: Windows,
    changes: Changes,
    min_severity: Severity,
    seen: SeenSet,
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
            changes: Changes::new(config.min_severity),
            seen: SeenSet::default(),
            stats: Stats::default(),
        }
    }

    /// The deduplication key of an event (none without an auditID: never a duplicate).
    fn dedup_key(&self, e: &AuditEvent<'_>) -> Option<Key> {
        let id = e.audit_id.filter(|i| !i.is_empty())?;
        Some(self.seen.key(id, e.stage()))
    }

    fn duplicate(&mut self, e: &AuditEvent<'_>) -> bool {
        self.dedup_key(e).is_some_and(|key| self.seen.check_and_insert(key))
    }

    /// Every event in `reader` (any format [`crate::input::for_each_event`] reads), analysed;
    /// `found` is called after each input line or item with the findings it produced (to take
    /// them) and its line number. Lines are parsed in batches ([`crate::batch`]).
    pub fn observe_reader(
        &mut self,
        reader: impl std::io::Read,
        mut found: impl FnMut(&mut Vec<Finding>, Option<usize>),
    ) -> Result<(), crate::input::InputError> {
        let mut batch = LineBatch::default();
        let mut out = Vec::new();
        crate::input::for_each_event(reader, |text, line| {
            batch.push(text, line);
            if batch.is_full() {
                self.observe_batch(&mut batch, &mut out, &mut found);
            }
            // Whether it is an event is known when the batch is analysed; envelopes are
            // opened there.
            true
        })?;
        self.observe_batch(&mut batch, &mut out, &mut found);
        Ok(())
    }

    fn observe_batch(
        &mut self,
        batch: &mut LineBatch,
        out: &mut Vec<Finding>,
        found: &mut impl FnMut(&mut Vec<Finding>, Option<usize>),
    ) {
        match batch.parse() {
            Some(doc) => {
                let elements = doc.as_array().map(|a| a.as_slice()).unwrap_or_default();
                let events: Vec<_> = batch
                    .lines()
                    .zip(elements)
                    .map(|((text, _), e)| AuditEvent::from_json(text, e).ok())
                    .collect();
                // The batch meets the table of seen events in two loops: read-only lookups
                // first, whose memory reads overlap (the table is far bigger than the cache on
                // a large input), then the checks that insert, on slots now cached.
                let keys: Vec<Option<Key>> =
                    events.iter().map(|e| e.as_ref().and_then(|e| self.dedup_key(e))).collect();
                let known: Vec<bool> =
                    keys.iter().map(|k| k.is_some_and(|k| self.seen.contains(k))).collect();
                let duplicates: Vec<bool> = keys
                    .iter()
                    .zip(known)
                    .map(|(key, known)| known || key.is_some_and(|k| self.seen.check_and_insert(k)))
                    .collect();
                for (((text, line), event), duplicate) in batch.lines().zip(&events).zip(duplicates) {
                    match event {
                        Some(event) => self.observe_checked(event, duplicate, out),
                        None => self.not_an_event(text, out),
                    }
                    found(out, line);
                }
            }
            None => {
                for (text, line) in batch.lines() {
                    if self.observe_text(text, out).is_err() {
                        self.not_an_event(text, out);
                    }
                    found(out, line);
                }
            }
        }
        batch.clear();
    }

    /// A line that is not an event: the events of an envelope, or a line to skip.
    fn not_an_event(&mut self, text: &str, out: &mut Vec<Finding>) {
        let mut events = 0;
        crate::input::for_each_enveloped(text, |inner| {
            let event = self.observe_text(inner, out).is_ok();
            events += usize::from(event);
            event
        });
        if events == 0 {
            self.stats.skipped += 1;
        }
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
        let duplicate = self.duplicate(e);
        self.observe_checked(e, duplicate, out);
    }

    /// Analyse one event already checked against the events seen.
    fn observe_checked(&mut self, e: &AuditEvent<'_>, duplicate: bool, out: &mut Vec<Finding>) {
        if duplicate {
            self.stats.duplicates += 1;
            return;
        }
        self.stats.events += 1;
        // A session's ResponseComplete comes when it ends; it is judged there only when the
        // log has no ResponseStarted for it (audit policies omitting that stage), so the
        // session is judged once either way. The seen-set already remembers the stages.
        let owned;
        let e = if e.pod_session()
            && !e.session_start
            && e.stage().unwrap_or("ResponseComplete") == "ResponseComplete"
            && !e.audit_id.is_some_and(|id| self.seen.contains(self.seen.key(id, Some("ResponseStarted"))))
        {
            let mut started = e.clone();
            started.session_start = true;
            owned = started;
            &owned
        } else {
            e
        };
        let before = out.len();
        if let Some((rules, templates)) = &self.falco {
            for i in rules.matching(e) {
                if let (Some(rule), Some(template)) = (rules.rules().get(i), templates.get(i)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn analyzer() -> Analyzer {
        Analyzer::new(AnalyzerConfig {
            falco: None,
            guardduty: GuardDuty::default(),
            baseline: None,
            windows: WindowConfig::default(),
            min_severity: Severity::Info,
        })
    }

    fn event(id: usize, stage: &str) -> String {
        format!(
            r#"{{"kind":"Event","auditID":"id-{id}","stage":"{stage}","verb":"get","requestURI":"/api"}}"#
        )
    }

    #[test]
    fn repeated_events_are_counted_once() {
        let mut a = analyzer();
        let mut out = Vec::new();
        for id in 0..3 {
            a.observe_text(&event(id, "ResponseComplete"), &mut out).unwrap();
            a.observe_text(&event(id, "ResponseComplete"), &mut out).unwrap();
            // Another stage of the same request is another event.
            a.observe_text(&event(id, "ResponseStarted"), &mut out).unwrap();
        }
        assert_eq!((a.stats.events, a.stats.duplicates), (6, 3));
    }

    fn exec(id: &str, stage: &str, code: u16) -> String {
        format!(
            r#"{{"kind":"Event","auditID":"{id}","stage":"{stage}","verb":"create","requestURI":"/api/v1/namespaces/kube-system/pods/p/exec?command=curl&command=169.254.169.254","user":{{"username":"mallory"}},"objectRef":{{"resource":"pods","subresource":"exec","namespace":"kube-system","name":"p"}},"responseStatus":{{"code":{code}}},"annotations":{{"authorization.k8s.io/decision":"allow"}}}}"#
        )
    }

    fn exec_findings(stages: &[(&str, &str, u16)]) -> Vec<String> {
        let mut a = analyzer();
        let mut out = Vec::new();
        for (id, stage, code) in stages {
            a.observe_text(&exec(id, stage, *code), &mut out).unwrap();
        }
        let mut ids: Vec<String> = out.iter().map(|f| f.id.to_string()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_session_is_judged_once_with_or_without_its_response_started_stage() {
        let both = exec_findings(&[("a", "ResponseStarted", 101), ("a", "ResponseComplete", 101)]);
        assert!(both.contains(&"Execution:Kubernetes/ExecInKubeSystemPod".to_owned()), "{both:?}");
        assert!(both.contains(&"rampart/SuspiciousExecCommand".to_owned()), "{both:?}");
        let complete_only = exec_findings(&[("b", "ResponseComplete", 101)]);
        assert_eq!(complete_only, both, "a log without ResponseStarted raises the same findings, once");
    }
}
