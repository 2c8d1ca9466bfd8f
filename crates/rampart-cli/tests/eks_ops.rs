//! EKS operations against real peers: findings sent to Security Hub and read back with the AWS
//! CLI, on moto.
//!
//! Needs `moto_server` and `aws` (PyPI `moto[server]`, `awscli`): on PATH or in
//! `$RAMPART_AWS_PEERS_BIN`; under `RAMPART_REQUIRE_AWS_PEERS=1` (CI) their absence fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

mod common;
use common::{peers, start_moto};

const ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
    ("AWS_SECRET_ACCESS_KEY", "secret"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_REGION", "us-east-1"),
];

fn aws(aws: &Path, moto: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(aws).args(args).envs(ENV).env("AWS_ENDPOINT_URL", moto).output().unwrap();
    assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// 150 anonymous reads of secrets in 150 namespaces: 150 distinct findings, two batches.
fn anonymous_reads() -> String {
    (0..150)
        .map(|i| {
            format!(
                "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\",\"auditID\":\"a-{i}\",\"stage\":\"ResponseComplete\",\"requestURI\":\"/api/v1/namespaces/ns-{i}/secrets\",\"verb\":\"list\",\"user\":{{\"username\":\"system:anonymous\",\"groups\":[\"system:unauthenticated\"]}},\"sourceIPs\":[\"203.0.113.9\"],\"objectRef\":{{\"resource\":\"secrets\",\"namespace\":\"ns-{i}\",\"apiVersion\":\"v1\"}},\"responseStatus\":{{\"code\":200}},\"requestReceivedTimestamp\":\"2026-12-01T10:00:{:02}.000000Z\",\"stageTimestamp\":\"2026-12-01T10:00:{:02}.010000Z\"}}\n",
                i % 60,
                i % 60
            )
        })
        .collect()
}

#[test]
fn audit_findings_go_to_security_hub_and_a_rerun_updates_them() {
    let Some([moto, aws_cli]) = peers(["moto_server", "aws"]) else { return };
    let (_moto, url) = start_moto(&moto);
    aws(&aws_cli, &url, &["securityhub", "enable-security-hub"]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    std::fs::write(&log, anonymous_reads()).unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["audit", log.to_str().unwrap(), "-o", "json", "--to-securityhub", "--cluster-name", "prod"])
            .envs(ENV)
            .env("AWS_ENDPOINT_URL", &url)
            .output()
            .unwrap()
    };
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "high findings: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let groups = report["findings"].as_array().unwrap().len();
    assert!(groups > 100, "more than one batch: {groups}");
    assert!(
        stderr.contains(&format!("{groups} findings imported in 2 batches"))
            && stderr.contains("arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"),
        "{stderr}"
    );
    let stored = aws(&aws_cli, &url, &["securityhub", "get-findings"]);
    let findings = stored["Findings"].as_array().unwrap();
    assert_eq!(findings.len(), groups, "one record per grouped finding");
    let anonymous = findings
        .iter()
        .find(|f| f["GeneratorId"].as_str().unwrap().contains("SuccessfulAnonymousAccess"))
        .unwrap_or_else(|| panic!("{}", findings[0]));
    assert_eq!(anonymous["Resources"][0]["Type"], "AwsEksCluster");
    assert_eq!(anonymous["Resources"][0]["Id"], "arn:aws:eks:us-east-1:123456789012:cluster/prod");
    assert_eq!(anonymous["AwsAccountId"], "123456789012");
    assert_eq!(anonymous["SchemaVersion"], "2018-10-08");
    assert!(anonymous["Id"].as_str().unwrap().starts_with("rampart/prod/"));
    assert_eq!(anonymous["ProductFields"]["kubernetes/user"], "system:anonymous");
    assert!(matches!(anonymous["Severity"]["Label"].as_str(), Some("HIGH" | "CRITICAL" | "MEDIUM")), "{anonymous}");

    // The same log again: the same ids, so Security Hub updates rather than adds.
    let again = run();
    assert_eq!(again.status.code(), Some(1), "{}", String::from_utf8_lossy(&again.stderr));
    let stored = aws(&aws_cli, &url, &["securityhub", "get-findings"]);
    assert_eq!(stored["Findings"].as_array().unwrap().len(), groups, "no duplicates");
}
