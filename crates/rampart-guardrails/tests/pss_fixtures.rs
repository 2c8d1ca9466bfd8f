//! All 4,537 upstream Pod Security fixtures (`tests/fixtures/pod-security`): every `pass` pod
//! is allowed and every `fail` pod is rejected with upstream's reason, at exactly the level and
//! version of its directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use rampart_guardrails::pss::pod::PodView;
use rampart_guardrails::pss::{LevelVersion, evaluate, reasons_message};

#[test]
fn agrees_with_every_upstream_fixture() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pod-security");
    let index = std::fs::read_to_string(root.join("INDEX.tsv")).unwrap();
    let mut failures = Vec::new();
    let mut count = 0;
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [level, version, expect, check_id, substring, path] = cols[..] else { panic!("bad line {line}") };
        let pod: Pod = serde_yaml::from_str(&std::fs::read_to_string(root.join(path)).unwrap()).unwrap();
        let spec = pod.spec.as_ref().unwrap();
        let lv = LevelVersion { level: level.parse().unwrap(), version: version.parse().unwrap() };
        let results = evaluate(&PodView::new(pod.metadata.annotations.as_ref(), spec), lv);
        let message = reasons_message(&results);
        count += 1;
        let ok = match expect {
            "pass" => results.is_empty(),
            _ => !results.is_empty() && (substring == "-" || message.contains(substring)),
        };
        if !ok {
            failures.push(format!(
                "{path} ({check_id}, expect {expect}, substring {substring:?}): got {message:?}"
            ));
        }
    }
    assert_eq!(count, 4537);
    assert!(failures.is_empty(), "{} of {count} fixtures disagree:\n{}", failures.len(), failures.join("\n"));
}
