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
            .args([
                "audit",
                log.to_str().unwrap(),
                "-o",
                "json",
                "--to-securityhub",
                "--cluster-name",
                "prod",
            ])
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
    assert!(
        matches!(anonymous["Severity"]["Label"].as_str(), Some("HIGH" | "CRITICAL" | "MEDIUM")),
        "{anonymous}"
    );

    // The same log again: the same ids, so Security Hub updates rather than adds.
    let again = run();
    assert_eq!(again.status.code(), Some(1), "{}", String::from_utf8_lossy(&again.stderr));
    let stored = aws(&aws_cli, &url, &["securityhub", "get-findings"]);
    assert_eq!(stored["Findings"].as_array().unwrap().len(), groups, "no duplicates");
}

fn anonymous_read(i: usize) -> String {
    format!(
        "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\",\"auditID\":\"cw-{i}\",\"stage\":\"ResponseComplete\",\"requestURI\":\"/api/v1/namespaces/ns-{i}/secrets\",\"verb\":\"list\",\"user\":{{\"username\":\"system:anonymous\",\"groups\":[\"system:unauthenticated\"]}},\"sourceIPs\":[\"203.0.113.9\"],\"objectRef\":{{\"resource\":\"secrets\",\"namespace\":\"ns-{i}\",\"apiVersion\":\"v1\"}},\"responseStatus\":{{\"code\":200}},\"requestReceivedTimestamp\":\"2026-12-01T10:00:00.000000Z\",\"stageTimestamp\":\"2026-12-01T10:00:00.010000Z\"}}"
    )
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

/// `rampart audit` on a CloudWatch or Kinesis source with a checkpoint: the events it read.
fn audited(url: &str, source: &[&str], checkpoint: &Path) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["audit", "-o", "json", "--checkpoint", checkpoint.to_str().unwrap()])
        .args(source)
        .envs(ENV)
        .env("AWS_ENDPOINT_URL", url)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), report, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn cloudwatch_audit_streams_are_read_once_across_restarts() {
    let Some([moto, aws_cli]) = peers(["moto_server", "aws"]) else { return };
    let (_moto, url) = start_moto(&moto);
    let group = "/aws/eks/prod/cluster";
    aws(&aws_cli, &url, &["logs", "create-log-group", "--log-group-name", group]);
    for stream in ["kube-apiserver-audit-a1", "authenticator-b2"] {
        aws(
            &aws_cli,
            &url,
            &["logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", stream],
        );
    }
    let put = |stream: &str, ids: std::ops::Range<usize>| {
        let events: Vec<serde_json::Value> = ids
            .map(|i| serde_json::json!({"timestamp": now_ms() as u64, "message": anonymous_read(i)}))
            .collect();
        aws(
            &aws_cli,
            &url,
            &[
                "logs",
                "put-log-events",
                "--log-group-name",
                group,
                "--log-stream-name",
                stream,
                "--log-events",
                &serde_json::to_string(&events).unwrap(),
            ],
        );
    };
    put("kube-apiserver-audit-a1", 0..3);
    put("authenticator-b2", 100..101);
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("cw.json");
    let (code, report, stderr) = audited(&url, &["--cloudwatch", group], &checkpoint);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(report["stats"]["events"], 3, "the audit stream only: {stderr}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&checkpoint).unwrap()).unwrap();
    assert_eq!(saved["logGroup"], group);
    assert_eq!(saved["seen"].as_object().unwrap().len(), 3);

    // A restart after more events: the new ones, each once.
    put("kube-apiserver-audit-a1", 3..5);
    let (_, report, stderr) = audited(&url, &["--cloudwatch", group], &checkpoint);
    assert_eq!(report["stats"]["events"], 2, "{stderr}");
    let uris: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["events"][0]["requestUri"].as_str())
        .collect();
    assert!(uris.iter().all(|u| u.contains("ns-3") || u.contains("ns-4")), "{uris:?}");

    // Nothing new: said, not a clean bill of health.
    let (code, _, stderr) = audited(&url, &["--cloudwatch", group], &checkpoint);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("read no audit events"), "{stderr}");
    // Another group's checkpoint is refused.
    let (code, _, stderr) = audited(&url, &["--cloudwatch", "/aws/eks/other/cluster"], &checkpoint);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("it is for log group /aws/eks/prod/cluster"), "{stderr}");
}

#[test]
fn kinesis_subscription_records_are_read_once_across_restarts() {
    let Some([moto, aws_cli, python]) = peers(["moto_server", "aws", "python"]) else { return };
    let (_moto, url) = start_moto(&moto);
    aws(&aws_cli, &url, &["kinesis", "create-stream", "--stream-name", "prod-audit", "--shard-count", "1"]);
    // What a CloudWatch Logs subscription writes: gzip'd envelopes, and a control message.
    let put = |kind: &str, ids: std::ops::Range<usize>| {
        let events: Vec<serde_json::Value> = ids
            .map(|i| serde_json::json!({"id": i.to_string(), "timestamp": now_ms() as u64, "message": anonymous_read(i)}))
            .collect();
        let envelope = serde_json::json!({"messageType": kind, "owner": "123456789012", "logGroup": "/aws/eks/prod/cluster", "logStream": "kube-apiserver-audit-a1", "subscriptionFilters": ["audit"], "logEvents": events});
        let script = "import boto3, gzip, sys\nboto3.client('kinesis').put_record(StreamName='prod-audit', PartitionKey='k', Data=gzip.compress(sys.stdin.buffer.read()))\n";
        let mut child = Command::new(&python)
            .args(["-c", script])
            .envs(ENV)
            .env("AWS_ENDPOINT_URL", &url)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), envelope.to_string().as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
    };
    put("CONTROL_MESSAGE", 0..0);
    put("DATA_MESSAGE", 0..2);
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("k.json");
    let (code, report, stderr) = audited(&url, &["--kinesis", "prod-audit"], &checkpoint);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(report["stats"]["events"], 2, "{stderr}");
    put("DATA_MESSAGE", 2..3);
    let (_, report, stderr) = audited(&url, &["--kinesis", "prod-audit"], &checkpoint);
    assert_eq!(report["stats"]["events"], 1, "only the new record: {stderr}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&checkpoint).unwrap()).unwrap();
    assert_eq!(saved["shards"].as_object().unwrap().len(), 1);
}
