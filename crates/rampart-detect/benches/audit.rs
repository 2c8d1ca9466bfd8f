//! `rampart audit` throughput on Falco's k8saudit fixture corpus repeated to ≥ 1 GB (each copy
//! and line with a fresh auditID, so deduplication does not skip anything), beside a plain
//! `serde_json::Value` parse of the same lines in the same run. One thread: per-core numbers.
//! Target: ≥ 500,000 events/s.
//!
//! `cargo bench -p rampart-detect --bench audit` (set `AUDIT_BENCH_MB` for another size,
//! `AUDIT_BENCH_CORPUS=fixtures` or `mix` for one corpus).
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

use std::time::Instant;

/// The allocator the `rampart` binary ships with, so the numbers are the CLI's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use rampart_detect::analyzer::{Analyzer, AnalyzerConfig};
use rampart_detect::falco::RuleSet;
use rampart_detect::guardduty::GuardDuty;
use rampart_detect::window::WindowConfig;

/// Control-plane noise as it dominates real EKS audit streams (leader-election lease renewals,
/// kubelet status patches, EKS controllers' reads, watches), ~0.6–1 KB each.
const NOISE: [&str; 4] = [
    r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"00000000-0000-0000-0000-000000000000","stage":"ResponseComplete","requestURI":"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager?timeout=5s","verb":"update","user":{"username":"system:kube-controller-manager","groups":["system:authenticated"]},"sourceIPs":["10.0.12.7"],"userAgent":"kube-controller-manager/v1.33.1 (linux/amd64) kubernetes/8adc0f0/leader-election","objectRef":{"resource":"leases","namespace":"kube-system","name":"kube-controller-manager","uid":"7d3c","apiGroup":"coordination.k8s.io","apiVersion":"v1","resourceVersion":"4815162342"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-03-02T10:15:04.112233Z","stageTimestamp":"2026-03-02T10:15:04.119871Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"system:kube-controller-manager\" of ClusterRole \"system:kube-controller-manager\" to User \"system:kube-controller-manager\""}}"#,
    r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"00000000-0000-0000-0000-000000000000","stage":"ResponseComplete","requestURI":"/api/v1/nodes/ip-10-0-12-7.eu-west-1.compute.internal/status?timeout=10s","verb":"patch","user":{"username":"system:node:ip-10-0-12-7.eu-west-1.compute.internal","uid":"aws-iam-authenticator:111122223333:AROAEXAMPLE","groups":["system:bootstrappers","system:nodes","system:authenticated"],"extra":{"accessKeyId":["ASIAEXAMPLE"],"arn":["arn:aws:sts::111122223333:assumed-role/eks-nodes/i-0abc"],"canonicalArn":["arn:aws:iam::111122223333:role/eks-nodes"],"principalId":["AROAEXAMPLE"],"sessionName":["i-0abc"]}},"sourceIPs":["10.0.12.7"],"userAgent":"kubelet/v1.33.1 (linux/amd64) kubernetes/8adc0f0","objectRef":{"resource":"nodes","name":"ip-10-0-12-7.eu-west-1.compute.internal","apiVersion":"v1","subresource":"status"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-03-02T10:15:04.212233Z","stageTimestamp":"2026-03-02T10:15:04.219871Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}"#,
    r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"00000000-0000-0000-0000-000000000000","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/kube-system/configmaps/aws-auth","verb":"get","user":{"username":"eks:authenticator","groups":["system:authenticated"]},"sourceIPs":["10.0.0.17"],"userAgent":"aws-iam-authenticator/v0.6.30","objectRef":{"resource":"configmaps","namespace":"kube-system","name":"aws-auth","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-03-02T10:15:04.312233Z","stageTimestamp":"2026-03-02T10:15:04.313871Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by RoleBinding \"eks:authenticator/kube-system\" of Role \"eks:authenticator\" to User \"eks:authenticator\""}}"#,
    r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"00000000-0000-0000-0000-000000000000","stage":"ResponseComplete","requestURI":"/api/v1/pods?allowWatchBookmarks=true&fieldSelector=spec.nodeName%3Dip-10-0-12-7.eu-west-1.compute.internal&resourceVersion=4815162342&timeout=7m21s&timeoutSeconds=441&watch=true","verb":"watch","user":{"username":"system:node:ip-10-0-12-7.eu-west-1.compute.internal","groups":["system:nodes","system:authenticated"]},"sourceIPs":["10.0.12.7"],"userAgent":"kubelet/v1.33.1 (linux/amd64) kubernetes/8adc0f0","objectRef":{"resource":"pods","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-03-02T10:07:43.112233Z","stageTimestamp":"2026-03-02T10:15:04.413871Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}"#,
];

fn corpus(target_bytes: usize) -> (String, usize) {
    build(target_bytes, 0)
}

/// The fixtures interleaved with `noise_per_event` control-plane events each.
fn build(target_bytes: usize, noise_per_event: usize) -> (String, usize) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/falco/k8s_audit");
    let mut lines = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for p in paths {
        for line in std::fs::read_to_string(p).unwrap().lines().filter(|l| l.contains("\"auditID\"")) {
            lines.push(line.to_owned());
        }
    }
    let mut out = String::with_capacity(target_bytes + (1 << 20));
    let mut copy = 0usize;
    let mut events = 0;
    while out.len() < target_bytes {
        for (i, line) in lines.iter().enumerate() {
            // A fresh auditID per copy: same length, so every copy is byte-for-byte comparable.
            let id_at = line.find("\"auditID\":\"").unwrap() + 11;
            out.push_str(&line[..id_at]);
            out.push_str(&format!("{copy:05x}{i:03x}"));
            out.push_str(&line[id_at + 8..]);
            out.push('\n');
            events += 1;
            for n in 0..noise_per_event {
                let noise = NOISE[n % NOISE.len()];
                out.push_str(&noise.replace(
                    "00000000-0000-0000-0000-000000000000",
                    &format!("{copy:08x}-{i:04x}-{n:04x}-0000-000000000000"),
                ));
                out.push('\n');
                events += 1;
            }
        }
        copy += 1;
    }
    (out, events)
}

fn run(title: &str, text: &str, events: usize) {
    let size = text.len() as f64 / (1 << 20) as f64;
    println!("{title}: {events} events, {size:.0} MiB (avg {} bytes/event)", text.len() / events);

    let started = Instant::now();
    let mut parsed = 0usize;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        parsed += usize::from(v.is_object());
    }
    let baseline = started.elapsed().as_secs_f64();
    assert_eq!(parsed, events);

    let mut analyzer = Analyzer::new(AnalyzerConfig {
        falco: Some(RuleSet::defaults().unwrap()),
        guardduty: GuardDuty::default(),
        baseline: None,
        windows: WindowConfig::default(),
        // The CLI default: Falco's informational activity records are not reported.
        min_severity: rampart_detect::finding::Severity::Low,
    });
    let started = Instant::now();
    // Read as `rampart audit` reads a file: the same reader, every detector.
    analyzer.observe_reader(text.as_bytes(), |found, _| found.clear()).unwrap();
    let ours = started.elapsed().as_secs_f64();
    assert_eq!(analyzer.stats.events as usize, events, "no event deduplicated away");

    let rate = |secs: f64| events as f64 / secs;
    println!(
        "  serde_json::Value parse only:  {:>9.0} events/s {:>6.0} MiB/s",
        rate(baseline),
        size / baseline
    );
    println!(
        "  rampart audit (all detectors): {:>9.0} events/s {:>6.0} MiB/s  = {:.2}x the plain parse, {} findings",
        rate(ours),
        size / ours,
        baseline / ours,
        analyzer.stats.findings
    );
}

fn main() {
    let mb: usize = std::env::var("AUDIT_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    // `fixtures`, `mix` or both (the default).
    let only = std::env::var("AUDIT_BENCH_CORPUS").unwrap_or_default();
    if only != "mix" {
        let (text, events) = corpus(mb << 20);
        run("Falco k8saudit fixtures", &text, events);
    }
    if only != "fixtures" {
        let (text, events) = build(mb << 20, 19);
        run("EKS-like mix (each fixture event among 19 control-plane events)", &text, events);
    }
}
