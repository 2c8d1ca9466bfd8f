//! cosign's signature and attestation objects, checked without I/O.
//!
//! - A signature is a layer of the `sha256-<hex>.sig` manifest: a "simple signing" payload
//!   naming the signed digest, the base64 signature in the layer annotation
//!   `dev.cosignproject.cosign/signature`, and for certificate signatures the certificate and
//!   chain in `dev.sigstore.cosign/certificate` and `…/chain`.
//! - An attestation is a layer of `sha256-<hex>.att`: a DSSE envelope whose payload is an
//!   in-toto statement; the signature covers DSSE's pre-authentication encoding.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use crate::authority::{Authority, Signer};
use crate::policy::AttestationSpec;

pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";
const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// One layer of a signature or attestation manifest, with its annotations.
#[derive(Debug, Clone)]
pub struct Layer {
    pub media_type: String,
    pub data: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

/// cosign's payload: what was signed.
#[derive(Debug, Deserialize)]
struct SimpleSigning {
    critical: Critical,
}

#[derive(Debug, Deserialize)]
struct Critical {
    image: CriticalImage,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct CriticalImage {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// Why no signature was accepted, most telling first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureFailure {
    /// The image has no cosign signature at all.
    Unsigned,
    /// Signatures exist but sign other digests (a moved tag, a copied signature).
    OtherDigest(Vec<String>),
    /// Signatures for this digest exist, but no trusted authority made them.
    Untrusted(Vec<String>),
}

impl std::fmt::Display for SignatureFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureFailure::Unsigned => write!(f, "no cosign signature"),
            SignatureFailure::OtherDigest(digests) => {
                write!(f, "its signatures are for another digest ({}), not this one", digests.join(", "))
            }
            SignatureFailure::Untrusted(reasons) => {
                write!(f, "no signature from a trusted authority ({})", reasons.join("; "))
            }
        }
    }
}

/// The signers among `authorities` of the signature layers for `digest`.
pub fn check_signatures(
    digest: &str,
    layers: &[Layer],
    authorities: &[Authority],
) -> Result<Vec<Signer>, SignatureFailure> {
    let mut other_digests = Vec::new();
    let mut reasons = Vec::new();
    let mut signers: Vec<Signer> = Vec::new();
    for layer in layers.iter().filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE) {
        let Some(signature) = layer.annotations.get(SIGNATURE_ANNOTATION).filter(|s| !s.is_empty()) else {
            continue;
        };
        let payload: SimpleSigning = match serde_json::from_slice(&layer.data) {
            Ok(p) => p,
            Err(e) => {
                reasons.push(format!("unreadable signature payload: {e}"));
                continue;
            }
        };
        if payload.critical.kind != SIMPLE_SIGNING_TYPE {
            reasons.push(format!("payload type {:?} is not a cosign image signature", payload.critical.kind));
            continue;
        }
        if payload.critical.image.digest != digest {
            other_digests.push(payload.critical.image.digest);
            continue;
        }
        let certificate = layer.annotations.get(CERTIFICATE_ANNOTATION).map(String::as_str);
        let chain = layer.annotations.get(CHAIN_ANNOTATION).map(String::as_str);
        for authority in authorities {
            match authority.verify(signature, &layer.data, certificate, chain) {
                Ok(signer) if !signers.contains(&signer) => signers.push(signer),
                Ok(_) => {}
                Err(reason) if !reasons.contains(&reason) => reasons.push(reason),
                Err(_) => {}
            }
        }
    }
    if !signers.is_empty() {
        return Ok(signers);
    }
    if !reasons.is_empty() {
        return Err(SignatureFailure::Untrusted(reasons));
    }
    if !other_digests.is_empty() {
        other_digests.dedup();
        return Err(SignatureFailure::OtherDigest(other_digests));
    }
    Err(SignatureFailure::Unsigned)
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "payloadType")]
    payload_type: String,
    payload: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

/// DSSE's pre-authentication encoding: what an envelope's signature covers.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A verified attestation: its predicate type, who signed it, the statement.
#[derive(Debug, Clone)]
pub struct Attestation {
    pub predicate_type: String,
    pub signer: Signer,
    pub statement: Value,
}

/// The in-toto statements among `layers` that a trusted authority signed for `digest`.
/// Layers that fail are skipped with the reason, so a refusal can say what was found.
pub fn verified_attestations(
    digest: &str,
    layers: &[Layer],
    authorities: &[Authority],
) -> (Vec<Attestation>, Vec<String>) {
    let (mut found, mut reasons) = (Vec::new(), Vec::new());
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    for layer in layers.iter().filter(|l| l.media_type == DSSE_MEDIA_TYPE) {
        let envelope: Envelope = match serde_json::from_slice(&layer.data) {
            Ok(e) => e,
            Err(e) => {
                reasons.push(format!("unreadable attestation envelope: {e}"));
                continue;
            }
        };
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
            continue;
        }
        let Ok(payload) = base64::engine::general_purpose::STANDARD.decode(&envelope.payload) else {
            reasons.push("attestation payload is not base64".into());
            continue;
        };
        let message = pae(&envelope.payload_type, &payload);
        let certificate = layer.annotations.get(CERTIFICATE_ANNOTATION).map(String::as_str);
        let chain = layer.annotations.get(CHAIN_ANNOTATION).map(String::as_str);
        let signer = envelope.signatures.iter().find_map(|s| {
            authorities.iter().find_map(|a| match a.verify(&s.sig, &message, certificate, chain) {
                Ok(signer) => Some(signer),
                Err(reason) => {
                    reasons.push(reason);
                    None
                }
            })
        });
        let Some(signer) = signer else { continue };
        let statement: Value = match serde_json::from_slice(&payload) {
            Ok(s) => s,
            Err(e) => {
                reasons.push(format!("attestation statement is not JSON: {e}"));
                continue;
            }
        };
        let covers_digest = statement["subject"]
            .as_array()
            .is_some_and(|subjects| subjects.iter().any(|s| s["digest"]["sha256"].as_str() == Some(hex)));
        if !covers_digest {
            reasons.push("an attestation's subject is another digest".into());
            continue;
        }
        let predicate_type = statement["predicateType"].as_str().unwrap_or_default().to_string();
        found.push(Attestation { predicate_type, signer, statement });
    }
    reasons.dedup();
    (found, reasons)
}

/// Whether the verified attestations satisfy one required attestation; the failure says what
/// was missing or which condition failed.
pub fn check_attestation(spec: &AttestationSpec, attestations: &[Attestation]) -> Result<(), String> {
    let mut candidates = attestations
        .iter()
        .filter(|a| a.predicate_type == spec.predicate_type)
        .filter(|a| spec.authorities.is_empty() || spec.authorities.contains(&a.signer.authority));
    let mut failures = Vec::new();
    for attestation in candidates.by_ref() {
        match spec.conditions.iter().try_for_each(|c| c.check(&attestation.statement)) {
            Ok(()) => return Ok(()),
            Err(failure) => failures.push(failure),
        }
    }
    if failures.is_empty() {
        Err(format!("no verified {} attestation", spec.predicate_type))
    } else {
        Err(format!("{} attestation fails its condition: {}", spec.predicate_type, failures.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::Check;
    use sigstore::crypto::SigningScheme;
    use std::sync::Arc;

    const DIGEST: &str = "sha256:c567f55239b1a07514a6892e4556b0d09a340f1f171fe0784aba342294f050e6";

    struct Key {
        signer: sigstore::crypto::SigStoreSigner,
        authority: Authority,
    }

    fn key(name: &str) -> Key {
        key_of(name, SigningScheme::ECDSA_P256_SHA256_ASN1)
    }

    fn key_of(name: &str, scheme: SigningScheme) -> Key {
        let signer = scheme.create_signer().unwrap();
        let verifier = signer.to_verification_key().unwrap();
        Key { signer, authority: Authority { name: name.into(), check: Check::Key(Arc::new(verifier)) } }
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn signature_layer(key: &Key, digest: &str) -> Layer {
        let data = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
        )
        .into_bytes();
        let sig = b64(&key.signer.sign(&data).unwrap());
        Layer {
            media_type: SIMPLE_SIGNING_MEDIA_TYPE.into(),
            data,
            annotations: [(SIGNATURE_ANNOTATION.to_string(), sig)].into(),
        }
    }

    fn attestation_layer(key: &Key, digest: &str, predicate: Value) -> Layer {
        let hex = digest.trim_start_matches("sha256:");
        let statement = serde_json::json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{"name": "r/app", "digest": {"sha256": hex}}],
            "predicate": predicate,
        });
        let payload = serde_json::to_vec(&statement).unwrap();
        let sig = b64(&key.signer.sign(&pae(IN_TOTO_PAYLOAD_TYPE, &payload)).unwrap());
        let envelope = serde_json::json!({"payloadType": IN_TOTO_PAYLOAD_TYPE, "payload": b64(&payload), "signatures": [{"keyid": "", "sig": sig}]});
        Layer {
            media_type: DSSE_MEDIA_TYPE.into(),
            data: serde_json::to_vec(&envelope).unwrap(),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn a_trusted_signature_names_its_authority() {
        let (trusted, other) = (key("release"), key("other"));
        let layers = [signature_layer(&other, DIGEST), signature_layer(&trusted, DIGEST)];
        let signers = check_signatures(DIGEST, &layers, std::slice::from_ref(&trusted.authority)).unwrap();
        assert_eq!(signers.len(), 1);
        assert_eq!(signers[0].authority, "release");
    }

    #[test]
    fn every_key_type_cosign_uses() {
        for scheme in [
            SigningScheme::ED25519,
            SigningScheme::ECDSA_P384_SHA384_ASN1,
            SigningScheme::RSA_PKCS1_SHA256(2048),
        ] {
            let trusted = key_of("k", scheme);
            let layers = [signature_layer(&trusted, DIGEST)];
            assert!(check_signatures(DIGEST, &layers, std::slice::from_ref(&trusted.authority)).is_ok());
            let other = key_of("k", SigningScheme::ECDSA_P256_SHA256_ASN1);
            assert!(check_signatures(DIGEST, &layers, &[other.authority]).is_err());
        }
    }

    #[test]
    fn each_failure_says_what_it_is() {
        let (trusted, other) = (key("release"), key("other"));
        let trust = [trusted.authority.clone()];
        assert_eq!(check_signatures(DIGEST, &[], &trust), Err(SignatureFailure::Unsigned));
        let untrusted = check_signatures(DIGEST, &[signature_layer(&other, DIGEST)], &trust).unwrap_err();
        assert!(
            untrusted.to_string().contains("not signed by the key of authority \"release\""),
            "{untrusted}"
        );
        let moved = check_signatures(DIGEST, &[signature_layer(&trusted, "sha256:00")], &trust).unwrap_err();
        assert_eq!(moved, SignatureFailure::OtherDigest(vec!["sha256:00".into()]));
        // A payload edited after signing no longer verifies.
        let mut tampered = signature_layer(&trusted, DIGEST);
        tampered.data = String::from_utf8(tampered.data).unwrap().replace("r/app", "r/evil").into_bytes();
        assert!(matches!(check_signatures(DIGEST, &[tampered], &trust), Err(SignatureFailure::Untrusted(_))));
    }

    #[test]
    fn attestations_are_verified_then_checked() {
        let trusted = key("release");
        let trust = [trusted.authority.clone()];
        let spec: AttestationSpec = serde_yaml::from_str(
            "{predicateType: 'https://slsa.dev/provenance/v0.2', conditions: [{path: /predicate/builder/id, equals: ci}]}",
        )
        .unwrap();
        let good = attestation_layer(&trusted, DIGEST, serde_json::json!({"builder": {"id": "ci"}}));
        let (found, _) = verified_attestations(DIGEST, &[good], &trust);
        assert_eq!(found.len(), 1);
        check_attestation(&spec, &found).unwrap();

        let bad = attestation_layer(&trusted, DIGEST, serde_json::json!({"builder": {"id": "laptop"}}));
        let (found, _) = verified_attestations(DIGEST, &[bad], &trust);
        let e = check_attestation(&spec, &found).unwrap_err();
        assert!(e.contains("fails its condition") && e.contains("laptop"), "{e}");

        let other_image =
            attestation_layer(&trusted, "sha256:00", serde_json::json!({"builder": {"id": "ci"}}));
        let (found, reasons) = verified_attestations(DIGEST, &[other_image], &trust);
        assert!(found.is_empty() && reasons[0].contains("another digest"), "{reasons:?}");
        assert!(check_attestation(&spec, &found).unwrap_err().contains("no verified"));

        let forged = attestation_layer(&key("mallory"), DIGEST, serde_json::json!({"builder": {"id": "ci"}}));
        let (found, reasons) = verified_attestations(DIGEST, &[forged], &trust);
        assert!(found.is_empty() && reasons[0].contains("not signed by the key"), "{reasons:?}");
    }
}
