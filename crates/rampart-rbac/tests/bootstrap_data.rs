//! The embedded default RBAC objects cannot drift from upstream: each data file is regenerated
//! from k8s.io/kubernetes at the release its header names (scripts/bootstrap-roles.sh, through
//! the Go module proxy) and compared byte for byte. The newest is also compared with what a
//! real kube-apiserver creates (e2e/default_roles.rs).
//!
//! Needs the go command; under RAMPART_REQUIRE_AWS_PEERS (CI) its absence fails, elsewhere the
//! test is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn every_release_matches_upstreams_golden_files() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    if Command::new("go").arg("version").output().is_err() {
        assert!(std::env::var_os("RAMPART_REQUIRE_AWS_PEERS").is_none(), "the go command is required");
        return;
    }
    for minor in rampart_rbac::bootstrap::VERSIONS {
        let text =
            std::fs::read_to_string(format!("{root}/crates/rampart-rbac/data/bootstrap/v{minor}.yaml"))
                .unwrap();
        let release = text
            .lines()
            .find_map(|l| l.split("Regenerate: scripts/bootstrap-roles.sh ").nth(1))
            .unwrap_or_else(|| panic!("v{minor}.yaml names no release"))
            .trim()
            .to_string();
        assert!(release.starts_with(&format!("{minor}.")), "v{minor}.yaml is for {release}");
        let out = Command::new(format!("{root}/scripts/bootstrap-roles.sh"))
            .args([release.as_str(), "--check"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{release}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
