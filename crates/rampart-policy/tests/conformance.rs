//! The 81 request cases of cedar-access-control-for-k8s (`tests/fixtures/cedar-k8s`), run
//! through the engine and compared with the upstream decisions and reason strings.
//!
//! Three cases deviate on purpose, each because the spec's Appendix A calls the upstream
//! behaviour a bug; `DEVIATIONS` states what Rampart answers instead and the test checks it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use std::collections::HashMap;

use rampart_policy::document::{DocumentKind, parse_document};
use rampart_policy::store::crd::parse_policy_objects;
use rampart_policy::{Engine, EngineOptions, LoadedPolicy};
use rampart_types::{admission, sar};
use serde_json::Value;

const CASES: &str = include_str!("fixtures/cedar-k8s/cases.json");
const EXPECTED: &str = include_str!("fixtures/cedar-k8s/expected.txt");
const DEMO_AUTHZ: &str = include_str!("fixtures/cedar-k8s/authorization-policy.yaml");
const DEMO_ADMISSION: &str = include_str!("fixtures/cedar-k8s/admission-policy.yaml");

/// Case prefix → (what Rampart answers, why).
const DEVIATIONS: &[(&str, &str, &str)] = &[
    (
        "A16",
        "allowed=false",
        "admission actions form a real hierarchy, so `action in Action::\"all\"` matches (Appendix A #1)",
    ),
    (
        "A18",
        "allowed=false",
        "fail closed as upstream, but the message names the failing policy instead of being empty",
    ),
    (
        "A24",
        "allowed=true",
        "floats convert to decimal instead of rejecting the object with a 500 (Appendix A #3)",
    ),
];

/// The demo Policy objects as one tier, with `metadata.uid: uid` as the upstream harness used.
fn demo_tier() -> Vec<LoadedPolicy> {
    let mut out = Vec::new();
    for text in [DEMO_AUTHZ, DEMO_ADMISSION] {
        let with_uid = text.replace("\nmetadata:\n  name: ", "\nmetadata:\n  uid: uid\n  name: ");
        for doc in parse_policy_objects(&with_uid, "demo").unwrap() {
            out.extend(doc.unwrap().policies);
        }
    }
    out
}

fn tiers(stores: &Value) -> (Vec<(String, Vec<LoadedPolicy>)>, bool) {
    let mut ready = true;
    let mut tiers = Vec::new();
    for (i, store) in stores.as_array().unwrap().iter().enumerate() {
        if store.get("ready") == Some(&Value::Bool(false)) {
            ready = false;
        }
        let policies = match store["type"].as_str().unwrap() {
            "crd" => demo_tier(),
            "memory" => {
                let kind = DocumentKind::Memory { name: store["name"].as_str().unwrap().into() };
                parse_document(&kind, store["text"].as_str().unwrap()).unwrap()
            }
            "directory" => store["files"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|f| {
                    let kind = DocumentKind::CedarFile { file_name: f["name"].as_str().unwrap().into() };
                    parse_document(&kind, f["text"].as_str().unwrap()).unwrap()
                })
                .collect(),
            other => panic!("unknown store type {other}"),
        };
        tiers.push((format!("tier{i}"), policies));
    }
    (tiers, ready)
}

fn expected() -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut lines = EXPECTED.lines();
    while let (Some(name), Some(result)) = (lines.next(), lines.next()) {
        let result = result.trim().strip_prefix("=> ").unwrap();
        map.insert(name.to_owned(), result.trim_end().to_owned());
    }
    map
}

fn actual(case: &Value) -> String {
    let (tiers, ready) = tiers(&case["stores"]);
    let engine = Engine::new(tiers, EngineOptions::default()).unwrap().with_ready(ready);
    if let Some(sar_json) = case.get("sar") {
        let review = sar::decode(sar_json.to_string().as_bytes()).unwrap();
        let v = engine.authorize(&review.spec);
        if v.diagnostic.reasons.is_empty() && !v.diagnostic.errors.is_empty() {
            return format!("{} | (logged errors: {})", v.decision, v.diagnostic.to_reason_string());
        }
        format!("{} | {}", v.decision, v.reason).trim_end().to_owned()
    } else {
        let review = admission::decode(case["review"].to_string().as_bytes()).unwrap();
        let v = engine.admit(&review.request);
        let r = v.response;
        let message = r.status.map(|s| s.message).unwrap_or_default();
        format!("allowed={} | {}", r.allowed, message).trim_end().to_owned()
    }
}

#[test]
fn all_81_cases_match_upstream_or_a_documented_deviation() {
    let cases: Vec<Value> = serde_json::from_str(CASES).unwrap();
    assert_eq!(cases.len(), 81);
    let expected = expected();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let got = actual(case);
        let want = &expected[name];
        if let Some((_, deviation, why)) = DEVIATIONS.iter().find(|(p, _, _)| name.starts_with(p)) {
            if !got.starts_with(deviation) {
                failures.push(format!("{name} (deviation: {why})\n  want {deviation}…\n  got  {got}"));
            }
            continue;
        }
        if &got != want {
            failures.push(format!("{name}\n  want {want}\n  got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{} of 81 cases differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn a18_message_names_the_failing_policy() {
    let cases: Vec<Value> = serde_json::from_str(CASES).unwrap();
    let case = cases.iter().find(|c| c["name"].as_str().unwrap().starts_with("A18")).unwrap();
    let got = actual(case);
    assert!(got.contains("policy0 at err.cedar:1:1"), "{got}");
    assert!(got.contains("labels"), "{got}");
}
