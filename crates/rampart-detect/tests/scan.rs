//! The posture scan on a small realistic snapshot (every check's verdict pinned), and the
//! describe-cluster checks against kubescape's EKS fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use rampart_detect::scan::snapshot::Snapshot;
use rampart_detect::scan::{Report, ScanOptions, Status, scan};

fn fixture(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(p)
}

fn statuses(r: &Report) -> BTreeMap<String, Status> {
    r.results.iter().map(|c| (c.id.clone(), c.status)).collect()
}

fn offenders<'r>(r: &'r Report, id: &str) -> &'r [String] {
    &r.results.iter().find(|c| c.id == id).unwrap().offenders
}

#[test]
fn the_snapshot_gets_the_expected_verdicts() {
    let snapshot = Snapshot::load(&fixture("snapshot")).unwrap();
    let options =
        ScanOptions { allowed_registries: vec!["111122223333.dkr.ecr.eu-west-1.amazonaws.com".into()] };
    let report = scan(&snapshot, &options);
    let got = statuses(&report);
    let expect = |id: &str, s: Status| {
        assert_eq!(got.get(id), Some(&s), "{id}: {:?}", report.results.iter().find(|c| c.id == id))
    };
    use Status::*;
    for (id, s) in [
        ("CIS-EKS 2.1.1", Pass),
        ("rampart/control-plane-logging", Fail),
        ("CIS-EKS 4.1.7", Fail),
        ("CIS-EKS 5.3.1", Fail),
        ("CIS-EKS 5.4.1", Fail),
        ("CIS-EKS 5.4.2", Fail),
        ("CIS-EKS 5.4.3", Fail),
        ("CIS-EKS 4.1.1", Fail),
        ("CIS-EKS 4.1.2", Fail),
        ("CIS-EKS 4.1.3", Fail),
        ("CIS-EKS 4.1.4", Fail),
        ("CIS-EKS 4.1.5", Fail),
        ("CIS-EKS 4.1.6", Fail),
        ("CIS-EKS 4.1.8", Warn),
        ("CIS-EKS 4.1.9", Warn),
        ("CIS-EKS 4.1.10", Warn),
        ("CIS-EKS 4.1.11", Warn),
        ("CIS-EKS 4.1.12", Warn),
        ("CIS-EKS 4.2.1", Fail),
        ("CIS-EKS 4.2.2", Pass),
        ("CIS-EKS 4.2.3", Pass),
        ("CIS-EKS 4.2.4", Fail),
        ("CIS-EKS 4.2.5", Pass),
        ("CIS-EKS 4.3.1", Pass),
        ("CIS-EKS 4.3.2", Fail),
        ("CIS-EKS 4.4.1", Fail),
        ("CIS-EKS 4.5.2", Fail),
        ("CIS-EKS 5.1.4", Fail),
        ("CIS-EKS 5.4.5", Fail),
        ("rampart/rbac-risk", Fail),
        ("rampart/pod-security-levels", Fail),
        ("rampart/aws-auth", Fail),
        ("rampart/netpol-default-deny", Fail),
        ("rampart/netpol-selects-nothing", Pass),
        ("rampart/netpol-shadowed-rule", Pass),
        ("rampart/netpol-metadata-endpoint", Fail),
        ("rampart/netpol-egress-anywhere", Pass),
        ("rampart/netpol-system-ingress", Pass),
    ] {
        expect(id, s);
    }
    assert_eq!(
        offenders(&report, "CIS-EKS 4.1.1"),
        ["User alice via ClusterRoleBinding alice-admin"],
        "system:masters is expected"
    );
    assert_eq!(
        offenders(&report, "CIS-EKS 4.2.1"),
        ["Deployment payments/debug"],
        "kube-system node agents excluded, owned pods left to their controller"
    );
    assert_eq!(
        offenders(&report, "CIS-EKS 4.1.2"),
        [
            "Role payments/secret-reader (ServiceAccount ci via RoleBinding payments/ci-secrets)",
            "ClusterRole ops-everything (Group ops via ClusterRoleBinding ops)",
        ],
        "wildcards read secrets too"
    );
    assert_eq!(offenders(&report, "CIS-EKS 4.3.2"), ["Namespace default", "Namespace tools"]);
    assert_eq!(offenders(&report, "CIS-EKS 4.5.2"), ["Pod default/scratch"]);
    assert_eq!(
        offenders(&report, "rampart/netpol-default-deny"),
        [
            "Namespace default: no default-deny for ingress or egress",
            "Namespace tools: no default-deny for ingress or egress"
        ]
    );
    assert_eq!(
        offenders(&report, "rampart/netpol-metadata-endpoint"),
        [
            "default/scratch → instance metadata 169.254.169.254: all ports (not isolated for egress)",
            "default/scratch → instance metadata (IPv6) fd00:ec2::254: all ports (not isolated for egress)"
        ],
        "payments denies by default; kube-system's aws-node is on the host network, where policies do not apply"
    );
    assert!(offenders(&report, "rampart/pod-security-levels").iter().any(|o| {
        o.starts_with("Deployment payments/debug is privileged but namespace payments enforces restricted")
    }));
    assert!(
        !offenders(&report, "rampart/pod-security-levels").iter().any(|o| o.contains("payments/api")),
        "api meets restricted"
    );
    assert!(
        offenders(&report, "rampart/aws-auth")
            .iter()
            .any(|o| o.contains("role/contractor is mapped to system:masters"))
    );
    assert!(
        offenders(&report, "rampart/rbac-risk")
            .iter()
            .any(|o| o.contains("Group ops") && o.contains("wildcard"))
    );
    assert!(offenders(&report, "CIS-EKS 5.1.4").iter().any(|o| o.contains("alpine")));
    assert_eq!(
        offenders(&report, "rampart/access-entries"),
        ["arn:aws:iam::111122223333:role/platform-admins holds AmazonEKSClusterAdminPolicy cluster-wide"],
        "namespace-scoped edit is fine"
    );
    assert!(report.score < 50, "a poor cluster scores low: {}", report.score);
}

#[test]
fn describe_cluster_checks_agree_with_kubescape_fixtures() {
    let check_of = |name: &str| match name.split("__").next().unwrap() {
        "cluster-access-manager-api-eks" => "CIS-EKS 4.1.7",
        "ensure-endpointprivateaccess-is-enabled-and-endpointpublicaccess-is-disabled-eks" => "CIS-EKS 5.4.2",
        "ensure-endpointprivateaccess-is-enabled" => "CIS-EKS 5.4.1",
        "ensure-endpointpublicaccess-is-disabled-on-private-nodes-eks" => "CIS-EKS 5.4.3",
        "k8s-audit-logs-enabled-cloud" => "rampart/control-plane-logging",
        "secret-etcd-encryption-cloud" => "CIS-EKS 5.3.1",
        other => panic!("unmapped fixture {other}"),
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(fixture("kubescape-eks")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let case = name.split("__").nth(2).unwrap();
        // Case names say pass or fail, except the plain `eks` KMS case, whose upstream
        // expected.json holds an alert (no encryptionConfig).
        let want = if case.contains("fail") || case == "eks" { Status::Fail } else { Status::Pass };
        let snapshot = Snapshot::load(&path).unwrap();
        let id = check_of(&name);
        // The camelCase KMS fixture is a bare cluster with only encryptionConfig: the other
        // checks are irrelevant to it.
        let got = statuses(&scan(&snapshot, &ScanOptions::default()))[id];
        assert_eq!(got, want, "{name} → {id}");
        checked += 1;
    }
    assert_eq!(checked, 17);
}
