//! Any bytes as an audit log: one event per line through every detector, batched as the
//! analyzer batches them, and each line alone.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rampart_detect::analyzer::{Analyzer, AnalyzerConfig};
use rampart_detect::falco::{DEFAULT_RULES, RuleSet};
use rampart_detect::finding::Severity;

/// Falco's default rules, compiled once (compiling them per input would leave no time to fuzz).
fn rules() -> Option<RuleSet> {
    static RULES: OnceLock<Option<RuleSet>> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::load(&[("default", DEFAULT_RULES)]).ok()).clone()
}

fn analyzer() -> Analyzer {
    Analyzer::new(AnalyzerConfig {
        falco: rules(),
        guardduty: Default::default(),
        baseline: None,
        windows: Default::default(),
        min_severity: Severity::Info,
    })
}

fuzz_target!(|data: &[u8]| {
    let mut batched = analyzer();
    let _ = batched.observe_reader(data, |findings, _| findings.clear());
    if let Ok(text) = std::str::from_utf8(data) {
        let mut single = analyzer();
        let mut out = Vec::new();
        for line in text.lines() {
            let _ = single.observe_text(line, &mut out);
            out.clear();
        }
    }
});
