//! Image verification against the real peers: images pushed with crane to a real registry,
//! signed and attested by cosign itself, each verdict of Rampart checked against `cosign
//! verify` on the same image so the two agree.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use rampart_images::admission::{ImageAdmission, ImageAdmitter};
use rampart_images::authority::NoExternalKeys;
use rampart_images::policy::parse_documents;
use rampart_images::registry::{Credentials, Registry as OciRegistry, RegistrySettings};
use rampart_images::verify::{CacheSettings, PolicySet, Verifier};
use serde_json::json;
use support::Registry;

async fn admitter(registry: &Registry, spec: &str, deadline: Duration) -> ImageAdmitter {
    support::admitter(registry, spec, CacheSettings::default(), deadline).await
}

const KEY_POLICY: &str = "  authorities:\n    - name: release-key\n      key: {file: trusted.pub}\n";

async fn admit(admitter: &ImageAdmitter, image: &str) -> ImageAdmission {
    admitter.admit("default", &support::pod(&[image]), None, &Credentials::default()).await
}

fn denial(answer: &ImageAdmission) -> &str {
    answer.denial.as_deref().expect("refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_each_case_with_its_own_message_and_cosign_agrees() {
    let registry = Registry::start();
    let host = registry.host.clone();
    registry.keypair("trusted");
    registry.keypair("other");
    let a = admitter(&registry, KEY_POLICY, Duration::from_secs(10)).await;
    let trusted = ["--key", "trusted.pub"];

    // Signed by the trusted key: admitted and pinned to the digest.
    let digest = registry.push("demo/signed:v1", "signed");
    registry.sign("trusted", "demo/signed:v1", &[]);
    let answer = admit(&a, &format!("{host}/demo/signed:v1")).await;
    assert_eq!(answer.denial, None);
    assert_eq!(
        answer.patch,
        vec![
            json!({"op": "replace", "path": "/spec/containers/0/image", "value": format!("{host}/demo/signed@{digest}")})
        ]
    );
    assert_eq!(answer.facts[0].signers, vec!["release-key".to_string()]);
    assert!(registry.cosign_accepts("verify", "demo/signed:v1", &trusted));
    // Already pinned: admitted without a patch.
    let answer = admit(&a, &format!("{host}/demo/signed@{digest}")).await;
    assert!(answer.denial.is_none() && answer.patch.is_empty(), "{answer:?}");

    // Unsigned.
    let unsigned = registry.push("demo/unsigned:v1", "unsigned");
    let answer = admit(&a, &format!("{host}/demo/unsigned:v1")).await;
    let message = denial(&answer);
    assert!(
        message.contains(&format!("{host}/demo/unsigned:v1"))
            && message.contains(&unsigned)
            && message.contains("policy \"release\"")
            && message.contains("no cosign signature"),
        "{message}"
    );
    assert!(answer.patch.is_empty());
    assert!(!registry.cosign_accepts("verify", "demo/unsigned:v1", &trusted));

    // Signed by another key.
    registry.push("demo/other:v1", "other");
    registry.sign("other", "demo/other:v1", &[]);
    let message = denial(&admit(&a, &format!("{host}/demo/other:v1")).await).to_string();
    assert!(message.contains("not signed by the key of authority \"release-key\""), "{message}");
    assert!(!registry.cosign_accepts("verify", "demo/other:v1", &trusted));
    assert!(registry.cosign_accepts("verify", "demo/other:v1", &["--key", "other.pub"]));

    // A signature copied onto another digest's signature tag.
    let first = registry.push("demo/copy:v1", "first");
    let second = registry.push("demo/copy:v2", "second");
    registry.sign("trusted", "demo/copy:v1", &[]);
    let copy = registry
        .tool("crane")
        .args(["copy", "--insecure"])
        .arg(format!("{host}/demo/copy:{}.sig", first.replace(':', "-")))
        .arg(format!("{host}/demo/copy:{}.sig", second.replace(':', "-")))
        .output()
        .unwrap();
    assert!(copy.status.success(), "{}", String::from_utf8_lossy(&copy.stderr));
    let message = denial(&admit(&a, &format!("{host}/demo/copy:v2")).await).to_string();
    assert!(message.contains(&format!("signatures are for another digest ({first})")), "{message}");
    assert!(!registry.cosign_accepts("verify", "demo/copy:v2", &trusted));

    // The tag moved after signing: the new digest is unsigned, and the message names it.
    registry.push("demo/moved:v1", "before");
    registry.sign("trusted", "demo/moved:v1", &[]);
    let moved = registry.push("demo/moved:v1", "after");
    let message = denial(&admit(&a, &format!("{host}/demo/moved:v1")).await).to_string();
    assert!(message.contains(&moved) && message.contains("no cosign signature"), "{message}");
    assert!(!registry.cosign_accepts("verify", "demo/moved:v1", &trusted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestations_signed_present_and_satisfying_their_conditions() {
    let registry = Registry::start();
    let host = registry.host.clone();
    registry.keypair("trusted");
    let spec = format!(
        "{KEY_POLICY}  attestations:\n    - predicateType: https://slsa.dev/provenance/v0.2\n      conditions:\n        - {{path: /predicate/builder/id, equals: https://ci.example.com}}\n    - predicateType: https://cosign.sigstore.dev/attestation/vuln/v1\n      conditions:\n        - {{path: /predicate/scanner/result/critical, lessThanOrEqual: 0}}\n"
    );
    let a = admitter(&registry, &spec, Duration::from_secs(10)).await;
    let provenance =
        r#"{"builder": {"id": "https://ci.example.com"}, "buildType": "https://example.com/build"}"#;
    let clean_scan = r#"{"invocation": {}, "scanner": {"uri": "scanner", "version": "1", "result": {"critical": 0}}, "metadata": {}}"#;

    registry.push("demo/attested:v1", "attested");
    registry.sign("trusted", "demo/attested:v1", &[]);
    registry.attest("trusted", "demo/attested:v1", "slsaprovenance", provenance);
    registry.attest("trusted", "demo/attested:v1", "vuln", clean_scan);
    let answer = admit(&a, &format!("{host}/demo/attested:v1")).await;
    assert_eq!(answer.denial, None);
    let mut found = answer.facts[0].attestations.clone();
    found.sort();
    assert_eq!(
        found,
        ["https://cosign.sigstore.dev/attestation/vuln/v1", "https://slsa.dev/provenance/v0.2"]
    );
    assert!(registry.cosign_accepts(
        "verify-attestation",
        "demo/attested:v1",
        &["--key", "trusted.pub", "--type", "slsaprovenance"]
    ));

    // Signed, but no attestation at all.
    registry.push("demo/bare:v1", "bare");
    registry.sign("trusted", "demo/bare:v1", &[]);
    let message = denial(&admit(&a, &format!("{host}/demo/bare:v1")).await).to_string();
    assert!(
        message.contains(
            "no verified https://slsa.dev/provenance/v0.2 attestation (the image has no attestations)"
        ),
        "{message}"
    );
    assert!(!registry.cosign_accepts(
        "verify-attestation",
        "demo/bare:v1",
        &["--key", "trusted.pub", "--type", "slsaprovenance"]
    ));

    // Attested, but the scan found a critical vulnerability: cosign accepts the attestation's
    // signature; the policy's condition refuses it.
    registry.push("demo/vulnerable:v1", "vulnerable");
    registry.sign("trusted", "demo/vulnerable:v1", &[]);
    registry.attest("trusted", "demo/vulnerable:v1", "slsaprovenance", provenance);
    registry.attest(
        "trusted",
        "demo/vulnerable:v1",
        "vuln",
        &clean_scan.replace("\"critical\": 0", "\"critical\": 3"),
    );
    let message = denial(&admit(&a, &format!("{host}/demo/vulnerable:v1")).await).to_string();
    assert!(
        message.contains("https://cosign.sigstore.dev/attestation/vuln/v1 attestation fails its condition")
            && message.contains("/predicate/scanner/result/critical must be ≤ 0, found 3"),
        "{message}"
    );
    assert!(registry.cosign_accepts(
        "verify-attestation",
        "demo/vulnerable:v1",
        &["--key", "trusted.pub", "--type", "vuln"]
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_and_ed25519_keys_as_cosign_handles_them() {
    let registry = Registry::start();
    let host = registry.host.clone();
    support::openssl(registry.dir.path(), &["genrsa", "-out", "rsa.pem", "2048"]);
    support::openssl(registry.dir.path(), &["genpkey", "-algorithm", "ed25519", "-out", "ed.pem"]);
    registry.import_key(&registry.path("rsa.pem"), "rsa");
    registry.import_key(&registry.path("ed.pem"), "ed");

    let rsa_policy = "  authorities:\n    - name: rsa\n      key: {file: rsa.pub}\n";
    let a = admitter(&registry, rsa_policy, Duration::from_secs(10)).await;
    registry.push("demo/rsa:v1", "rsa");
    registry.sign("rsa", "demo/rsa:v1", &[]);
    assert_eq!(admit(&a, &format!("{host}/demo/rsa:v1")).await.denial, None);
    assert!(registry.cosign_accepts("verify", "demo/rsa:v1", &["--key", "rsa.pub"]));

    // cosign 2.x signs with an Ed25519 key using Ed25519ph (pre-hashed) and its own `verify
    // --key` then rejects the signature (sigstore/cosign#3479); Rampart, on the Sigstore
    // crate's pure Ed25519, agrees with cosign and refuses. (Pure Ed25519 signatures are
    // accepted: see the unit tests.)
    let ed_policy = "  authorities:\n    - name: ed\n      key: {file: ed.pub}\n";
    let a = admitter(&registry, ed_policy, Duration::from_secs(10)).await;
    registry.push("demo/ed:v1", "ed");
    registry.sign("ed", "demo/ed:v1", &[]);
    let rampart_refuses = admit(&a, &format!("{host}/demo/ed:v1")).await.denial.is_some();
    let cosign_accepts = registry.cosign_accepts("verify", "demo/ed:v1", &["--key", "ed.pub"]);
    assert!(
        rampart_refuses && !cosign_accepts,
        "Rampart and cosign must agree on cosign's Ed25519 signatures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_from_your_own_ca_with_identity_constraints() {
    let registry = Registry::start();
    let host = registry.host.clone();
    support::certificate_authority(registry.dir.path(), "ci@example.com", "https://issuer.example.com");
    registry.import_key(&registry.path("leaf.key"), "leaf");
    registry.push("demo/cert:v1", "cert");
    registry.sign("leaf", "demo/cert:v1", &["--certificate", "leaf.pem", "--certificate-chain", "ca.pem"]);

    let policy = |identity: &str| {
        format!(
            "  authorities:\n    - name: ci\n      certificate: {{caFile: ca.pem, identity: {identity}, oidcIssuer: https://issuer.example.com}}\n"
        )
    };
    let cosign_args = |identity: &'static str| {
        [
            "--certificate-chain",
            "ca.pem",
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            "https://issuer.example.com",
            "--insecure-ignore-sct",
        ]
    };
    let a = admitter(&registry, &policy("ci@example.com"), Duration::from_secs(10)).await;
    let answer = admit(&a, &format!("{host}/demo/cert:v1")).await;
    assert_eq!(answer.denial, None);
    assert_eq!(answer.facts[0].signers, vec!["ci".to_string()]);
    assert_eq!(answer.facts[0].identities, vec!["ci@example.com".to_string()]);
    assert!(registry.cosign_accepts("verify", "demo/cert:v1", &cosign_args("ci@example.com")));

    let a = admitter(&registry, &policy("release@example.com"), Duration::from_secs(10)).await;
    let message = denial(&admit(&a, &format!("{host}/demo/cert:v1")).await).to_string();
    assert!(
        message.contains("certificate identity [\"ci@example.com\"] is not \"release@example.com\""),
        "{message}"
    );
    assert!(!registry.cosign_accepts("verify", "demo/cert:v1", &cosign_args("release@example.com")));

    // A certificate from another CA.
    let other = tempfile::tempdir().unwrap();
    support::certificate_authority(other.path(), "ci@example.com", "https://issuer.example.com");
    std::fs::copy(other.path().join("ca.pem"), registry.path("other-ca.pem")).unwrap();
    let spec = policy("ci@example.com").replace("caFile: ca.pem", "caFile: other-ca.pem");
    let a = admitter(&registry, &spec, Duration::from_secs(10)).await;
    let message = denial(&admit(&a, &format!("{host}/demo/cert:v1")).await).to_string();
    assert!(message.contains("does not chain to the trusted CA"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_down_or_silent_fails_closed_within_the_deadline() {
    let mut registry = Registry::start();
    let host = registry.host.clone();
    registry.keypair("trusted");
    registry.push("demo/app:v1", "app");
    registry.sign("trusted", "demo/app:v1", &[]);
    let a = admitter(&registry, KEY_POLICY, Duration::from_secs(3)).await;
    registry.stop();
    let message = denial(&admit(&a, &format!("{host}/demo/app:v1")).await).to_string();
    assert!(
        message
            .contains(&format!("image \"{host}/demo/app:v1\": cannot verify: registry {host} unreachable")),
        "{message}"
    );

    // A registry that accepts connections and never answers: refused at the deadline.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_host = silent.local_addr().unwrap().to_string();
    let spec = KEY_POLICY.to_string();
    let yaml = format!(
        "apiVersion: rampart.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {{name: release}}\nspec:\n  images: [\"{silent_host}/*\"]\n{spec}"
    );
    let documents = parse_documents(&yaml, "p", Some(registry.dir.path())).unwrap();
    let settings = RegistrySettings { insecure_registries: vec![silent_host.clone()], ..Default::default() };
    let a = ImageAdmitter::new(
        PolicySet::load(documents, &NoExternalKeys).await.unwrap(),
        Verifier::new(OciRegistry::new(&settings).unwrap(), &CacheSettings::default()),
        Credentials::default(),
        Duration::from_secs(2),
    );
    let started = std::time::Instant::now();
    let message = denial(&admit(&a, &format!("{silent_host}/demo/app:v1")).await).to_string();
    assert!(message.contains("did not finish within 2s") && message.contains("refused"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10), "the deadline bounds the wait");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_admissions_share_one_registry_verification() {
    let mut registry = Registry::start();
    let host = registry.host.clone();
    registry.keypair("trusted");
    registry.push("demo/app:v1", "app");
    registry.sign("trusted", "demo/app:v1", &[]);
    let a = Arc::new(admitter(&registry, KEY_POLICY, Duration::from_secs(10)).await);
    let image = format!("{host}/demo/app:v1");
    let pods = (0..100).map(|_| {
        let (a, image) = (a.clone(), image.clone());
        tokio::spawn(async move { admit(&a, &image).await })
    });
    for answer in futures::future::join_all(pods).await {
        let answer = answer.unwrap();
        assert!(answer.denial.is_none() && answer.patch.len() == 1, "{answer:?}");
    }
    assert_eq!(a.verifier.registry_verifications(), 1, "one verification for 100 pods");

    // Cached: answered with the registry gone.
    registry.stop();
    assert!(admit(&a, &image).await.denial.is_none());
    // An UPDATE keeping an image is not verified again, even one the cache does not hold.
    let unverified = format!("{host}/demo/never-seen:v1");
    let old = support::pod(&[&unverified]);
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"touched": "yes"});
    let answer = a.admit("default", &new, Some(&old), &Credentials::default()).await;
    assert!(answer.denial.is_none() && answer.facts.is_empty(), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_registry_over_https_with_credentials() {
    let registry = Registry::start_secure("ci", "s3cret");
    let host = registry.host.clone();
    registry.keypair("trusted");
    registry.push("demo/private:v1", "private");
    registry.sign("trusted", "demo/private:v1", &[]);
    let image = format!("{host}/demo/private:v1");
    let ca = std::fs::read(registry.ca.as_ref().unwrap()).unwrap();
    // The docker config.json crane wrote at login.
    let config = std::fs::read(registry.path(".docker/config.json")).unwrap();
    let credentials = Credentials::from_docker_config(&config).unwrap();
    let make = |ca: Vec<Vec<u8>>, credentials: Credentials| {
        let yaml = format!(
            "apiVersion: rampart.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {{name: release}}\nspec:\n  images: [\"{host}/*\"]\n{KEY_POLICY}"
        );
        let documents = parse_documents(&yaml, "p", Some(registry.dir.path())).unwrap();
        let settings =
            RegistrySettings { ca_pem: ca, timeout: Some(Duration::from_secs(5)), ..Default::default() };
        async move {
            ImageAdmitter::new(
                PolicySet::load(documents, &NoExternalKeys).await.unwrap(),
                Verifier::new(OciRegistry::new(&settings).unwrap(), &CacheSettings::default()),
                credentials,
                Duration::from_secs(10),
            )
        }
    };
    let a = make(vec![ca.clone()], credentials.clone()).await;
    assert_eq!(admit(&a, &image).await.denial, None);
    // The same credentials as a pod's imagePullSecret (`.dockerconfigjson`).
    let a = make(vec![ca.clone()], Credentials::default()).await;
    assert_eq!(a.admit("default", &support::pod(&[&image]), None, &credentials).await.denial, None);

    let a = make(vec![ca.clone()], Credentials::default()).await;
    let message = denial(&admit(&a, &image).await).to_string();
    assert!(
        message.contains(&format!("cannot verify: registry {host} refused the credentials")),
        "{message}"
    );

    let a = make(vec![], credentials).await;
    let message = denial(&admit(&a, &image).await).to_string();
    assert!(message.contains(&format!("cannot verify: registry {host} unreachable")), "{message}");
}
