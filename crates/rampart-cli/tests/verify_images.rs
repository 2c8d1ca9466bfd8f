//! `rampart check-manifests --verify-images`: the admission webhook's image verification over
//! manifests in CI, against a real registry with images signed by cosign.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../rampart-images/tests/support/mod.rs"]
mod support;

use std::process::Command;

fn check(registry: &support::Registry, manifests: &str, policy: &str) -> std::process::Output {
    let dir = registry.dir.path();
    std::fs::write(dir.join("manifests.yaml"), manifests).unwrap();
    std::fs::write(dir.join("policy.yaml"), policy).unwrap();
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["check-manifests", "--level", "privileged", "--verify-images", "-o", "json"])
        .args(["--image-policy", "policy.yaml", "--insecure-registry", &registry.host, "manifests.yaml"])
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn manifests_are_verified_as_at_admission() {
    let registry = support::Registry::start();
    let host = registry.host.clone();
    registry.keypair("trusted");
    registry.push("prod/signed:v1", "signed");
    registry.sign("trusted", "prod/signed:v1", &[]);
    let unsigned = registry.push("prod/unsigned:v1", "unsigned");
    let policy = format!(
        "apiVersion: rampart.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {{name: prod}}\nspec:\n  images: [\"{host}/prod/*\"]\n  authorities:\n    - name: release\n      key: {{file: trusted.pub}}\n"
    );
    let deployment = |name: &str, image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: prod}}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {image}\n"
        )
    };
    let manifests = format!(
        "{}---\n{}",
        deployment("good", &format!("{host}/prod/signed:v1")),
        deployment("bad", &format!("{host}/prod/unsigned:v1"))
    );
    let out = check(&registry, &manifests, &policy);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = findings.as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["rule"], "images/signature");
    assert_eq!(findings[0]["name"], "bad");
    assert_eq!(findings[0]["line"], 19, "the finding points at the image line");
    let message = findings[0]["message"].as_str().unwrap();
    assert!(message.contains(&unsigned) && message.contains("no cosign signature"), "{message}");

    let out = check(&registry, &deployment("good", &format!("{host}/prod/signed:v1")), &policy);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    // Nothing covered by a policy: nothing was verified, and the run says so.
    let out = check(&registry, &deployment("other", "registry.k8s.io/pause:3.10"), &policy);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was verified"));
}
