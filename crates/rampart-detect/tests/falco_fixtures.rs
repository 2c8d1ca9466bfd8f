//! Agreement with Falco on its own k8saudit regression fixtures: every default-enabled rule
//! that fires on each fixture (`expected_default_rule_hits.tsv`), and every upstream test
//! assertion with its override files (`upstream_test_expectations.tsv`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use rampart_detect::event::Document;
use rampart_detect::falco::{DEFAULT_RULES, Priority, RuleSet};

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/falco"))
}

/// Rule name → hits over the fixture's events.
fn hits(rules: &RuleSet, fixture: &str) -> BTreeMap<String, (usize, Priority)> {
    let text = std::fs::read_to_string(fixtures().join("k8s_audit").join(fixture)).unwrap();
    let mut out: BTreeMap<String, (usize, Priority)> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(doc) = Document::parse(line) else { continue };
        let Ok(event) = doc.event() else { continue };
        for rule in rules.matches(&event) {
            out.entry(rule.name.clone()).or_insert((0, rule.priority)).0 += 1;
            assert!(!rule.render(&event).is_empty());
        }
    }
    out
}

#[test]
fn every_fixture_fires_exactly_the_default_rules_falco_fires() {
    let rules = RuleSet::defaults().unwrap();
    let table = std::fs::read_to_string(fixtures().join("expected_default_rule_hits.tsv")).unwrap();
    let mut checked = 0;
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let expected: BTreeMap<String, usize> = cols
            .get(2)
            .map(|c| c.trim())
            .filter(|c| !c.is_empty() && *c != "-" && *c != "(none)")
            .into_iter()
            .flat_map(|c| c.split("; "))
            .map(|hit| {
                let (name, count) = hit.rsplit_once(" x").unwrap_or((hit, "1"));
                (name.to_owned(), count.parse().unwrap())
            })
            .collect();
        let got: BTreeMap<String, usize> =
            hits(&rules, cols[0]).into_iter().map(|(k, (n, _))| (k, n)).collect();
        assert_eq!(got, expected, "{}", cols[0]);
        checked += 1;
    }
    assert_eq!(checked, 47, "every fixture, including the malformed one");
}

#[test]
fn every_upstream_assertion_holds_with_its_override_files() {
    let table = std::fs::read_to_string(fixtures().join("upstream_test_expectations.tsv")).unwrap();
    let mut checked = 0;
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (test, fixture, detect, priority) =
            (cols[0], cols[1], cols[2] == "True", cols.get(3).copied().unwrap_or(""));
        let overrides: Vec<String> = cols
            .get(5)
            .map(|c| c.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default();
        let texts: Vec<(String, String)> = overrides
            .iter()
            .map(|f| (f.clone(), std::fs::read_to_string(fixtures().join("overrides").join(f)).unwrap()))
            .collect();
        // The json-pointer test loads only its own rule file, as upstream does.
        let only_own = overrides.iter().any(|f| f == "single_rule_with_json_pointer.yaml");
        let mut files: Vec<(&str, &str)> =
            if only_own { vec![] } else { vec![("k8s_audit_rules.yaml", DEFAULT_RULES)] };
        files.extend(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())));
        let rules = RuleSet::load(&files).unwrap_or_else(|e| panic!("{test}: {e}"));
        let got = hits(&rules, fixture);
        if detect {
            for expectation in cols[4].split(',').filter(|s| !s.is_empty()) {
                let (rule, count) = expectation.rsplit_once('=').unwrap();
                let (n, p) = got.get(rule).copied().unwrap_or((0, Priority::Debug));
                assert_eq!(n, count.parse::<usize>().unwrap(), "{test}: {rule} in {got:?}");
                assert_eq!(p.as_str(), priority, "{test}: priority of {rule}");
            }
        } else {
            // No alert at or above the test's priority (any alert when it names none).
            let floor = match priority {
                "" => Priority::Debug,
                "INFO" => Priority::Informational,
                "WARNING" => Priority::Warning,
                "NOTICE" => Priority::Notice,
                other => panic!("{test}: priority {other}"),
            };
            let loud: Vec<_> = got.iter().filter(|(_, (_, p))| *p <= floor).collect();
            assert!(loud.is_empty(), "{test}: expected no detection, got {loud:?}");
        }
        checked += 1;
    }
    assert_eq!(checked, 59);
}
