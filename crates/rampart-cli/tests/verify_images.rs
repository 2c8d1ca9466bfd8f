//! `rampart check-manifests --verify-images`: the admission webhook's image verification over
//! manifests in CI, against a real registry with images signed by cosign.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/mod.rs"]
mod common;
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

/// A key held in AWS KMS (moto): the image is signed by KMS itself (`Sign` over cosign's
/// payload, attached with `cosign attach signature`), the policy names the key by ARN, Rampart
/// reads its public key with `GetPublicKey`; `cosign verify --key awskms:///ARN` agrees.
#[test]
fn a_key_in_aws_kms() {
    let Some([moto, aws]) = common::peers(["moto_server", "aws"]) else { return };
    let (_moto, endpoint) = common::start_moto(&moto);
    let registry = support::Registry::start();
    let host = registry.host.clone();
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let run = |program: &std::path::Path, args: &[&str]| {
        let out =
            Command::new(program).args(args).envs(env).current_dir(registry.dir.path()).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let signing_key = || {
        let args = ["kms", "create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"];
        run(&aws, &[&args[..], &["--query", "KeyMetadata.Arn", "--output", "text"]].concat())
    };
    let arn = signing_key();
    let image = format!("{host}/prod/kms:v1");
    registry.push("prod/kms:v1", "kms");
    let cosign = registry.bin.join("cosign");
    let payload = run(&cosign, &["generate", "--allow-insecure-registry", &image]);
    std::fs::write(registry.path("payload.json"), payload).unwrap();
    let signature = run(
        &aws,
        &[
            "kms",
            "sign",
            "--key-id",
            &arn,
            "--message",
            "fileb://payload.json",
            "--message-type",
            "RAW",
            "--signing-algorithm",
            "ECDSA_SHA_256",
            "--query",
            "Signature",
            "--output",
            "text",
        ],
    );
    std::fs::write(registry.path("signature.b64"), signature).unwrap();
    run(
        &cosign,
        &[
            "attach",
            "signature",
            "--payload",
            "payload.json",
            "--signature",
            "signature.b64",
            "--allow-insecure-registry",
            &image,
        ],
    );
    run(
        &cosign,
        &[
            "verify",
            "--key",
            &format!("awskms:///{arn}"),
            "--insecure-ignore-tlog",
            "--allow-insecure-registry",
            &image,
        ],
    );

    let policy = format!(
        "apiVersion: rampart.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {{name: prod}}\nspec:\n  images: [\"{host}/prod/*\"]\n  authorities:\n    - name: kms\n      key: {{kms: \"{arn}\"}}\n"
    );
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n    - name: app\n      image: {image}\n"
    );
    std::fs::write(registry.path("manifests.yaml"), &manifest).unwrap();
    std::fs::write(registry.path("policy.yaml"), &policy).unwrap();
    let check = |extra_env: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["check-manifests", "--level", "privileged", "--verify-images", "-o", "json"])
            .args(["--image-policy", "policy.yaml", "--insecure-registry", &host, "manifests.yaml"])
            .envs(env)
            .envs(extra_env.iter().copied())
            .current_dir(registry.dir.path())
            .output()
            .unwrap()
    };
    let out = check(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Another KMS key did not sign it.
    let other = signing_key();
    std::fs::write(registry.path("policy.yaml"), policy.replace(&arn, &other)).unwrap();
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not signed by the key of authority"));

    // KMS unreachable: the policy cannot load, and the error says which key.
    std::fs::write(registry.path("policy.yaml"), &policy).unwrap();
    let out = check(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("spec.authorities[0]") && stderr.contains("GetPublicKey"), "{stderr}");
}
