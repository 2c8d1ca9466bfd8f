//! The OIDC issuer documents that let STS trust a self-managed cluster's service-account
//! tokens (IRSA): `/.well-known/openid-configuration` and the JWKS, built from the cluster's
//! service-account signing key(s) the same way kube-apiserver serves them — RS256 keys with
//! `kid` = base64url(SHA-256(DER of the PKIX public key)), so the `kid` in tokens the
//! apiserver signs matches.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::RsaPublicKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

/// Errors reading signing keys; each says which file and what it needs to be.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error(
        "{path}: no RSA key found; expected PEM `PUBLIC KEY`, `RSA PUBLIC KEY`, `PRIVATE KEY` or `RSA PRIVATE KEY` (the --service-account-key-file of kube-apiserver)"
    )]
    NoKey { path: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("issuer {0:?} must be an https URL without query or fragment (STS only trusts those)")]
    Issuer(String),
}

/// The public half of one signing key, ready for the JWKS.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub kid: String,
    public: RsaPublicKey,
}

impl SigningKey {
    /// Every RSA key in a PEM file (a public or private key file, PKCS#1 or PKCS#8).
    pub fn from_pem(path: &str, text: &str) -> Result<Vec<SigningKey>, OidcError> {
        let mut keys = Vec::new();
        for block in pem_blocks(text) {
            let public = match block.label {
                "PUBLIC KEY" => RsaPublicKey::from_public_key_pem(block.text).map_err(|e| e.to_string()),
                "RSA PUBLIC KEY" => RsaPublicKey::from_pkcs1_pem(block.text).map_err(|e| e.to_string()),
                "RSA PRIVATE KEY" => rsa::RsaPrivateKey::from_pkcs1_pem(block.text)
                    .map(|k| k.to_public_key())
                    .map_err(|e| e.to_string()),
                "PRIVATE KEY" => rsa::RsaPrivateKey::from_pkcs8_pem(block.text)
                    .map(|k| k.to_public_key())
                    .map_err(|e| e.to_string()),
                _ => continue,
            }
            .map_err(|message| OidcError::Invalid { path: path.into(), message })?;
            keys.push(
                SigningKey::new(public)
                    .map_err(|message| OidcError::Invalid { path: path.into(), message })?,
            );
        }
        if keys.is_empty() {
            return Err(OidcError::NoKey { path: path.into() });
        }
        Ok(keys)
    }

    fn new(public: RsaPublicKey) -> Result<Self, String> {
        let der = public.to_public_key_der().map_err(|e| e.to_string())?;
        let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, der.as_bytes()));
        Ok(SigningKey { kid, public })
    }

    /// The JWK, as kube-apiserver publishes it.
    pub fn jwk(&self) -> Value {
        json!({
            "use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(self.public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(self.public.e().to_bytes_be()),
        })
    }
}

struct PemBlock<'a> {
    label: &'a str,
    text: &'a str,
}

/// Split a file into its PEM blocks (a key file may hold several keys, or a cert and a key).
fn pem_blocks(text: &str) -> Vec<PemBlock<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else { break };
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else { break };
        let stop = start + end + end_marker.len();
        out.push(PemBlock { label, text: &rest[start..stop] });
        rest = &rest[stop..];
    }
    out
}

/// The issuer's published documents.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub url: String,
    pub keys: Vec<SigningKey>,
}

impl Issuer {
    /// Check the issuer URL (it must equal the apiserver's `--service-account-issuer`).
    pub fn new(url: &str, keys: Vec<SigningKey>) -> Result<Self, OidcError> {
        let url = url.trim_end_matches('/');
        let ok =
            url.strip_prefix("https://").is_some_and(|rest| !rest.is_empty() && !rest.contains(['?', '#']));
        if !ok {
            return Err(OidcError::Issuer(url.into()));
        }
        // A key listed twice (public and private file of the same key) is published once.
        let mut seen = std::collections::HashSet::new();
        let keys = keys.into_iter().filter(|k| seen.insert(k.kid.clone())).collect();
        Ok(Issuer { url: url.into(), keys })
    }

    /// `/.well-known/openid-configuration`, with kube-apiserver's fields.
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.url,
            "jwks_uri": format!("{}/openid/v1/jwks", self.url),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.keys.iter().map(SigningKey::jwk).collect::<Vec<_>>()})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIVATE: &str = include_str!("../tests/fixtures/oidc/sa.key");
    const PUBLIC: &str = include_str!("../tests/fixtures/oidc/sa.pub");
    /// Computed with openssl: `openssl rsa -pubout -outform DER | openssl dgst -sha256 -binary | base64url`.
    const KID: &str = "pvqU2G2qoOlETl5WaA_R_IQUcurlt4Jv6zpLLKtvJpQ";

    #[test]
    fn kid_and_modulus_match_openssl_for_private_and_public_files() {
        let from_private = SigningKey::from_pem("sa.key", PRIVATE).unwrap();
        let from_public = SigningKey::from_pem("sa.pub", PUBLIC).unwrap();
        assert_eq!(from_private[0].kid, KID);
        assert_eq!(from_private[0].jwk(), from_public[0].jwk());
        let jwk = from_public[0].jwk();
        assert_eq!(jwk["e"], "AQAB");
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len(), 256);
        assert_eq!(&n[..4], &[0xDD, 0x83, 0x22, 0xCF]); // `openssl rsa -noout -modulus` starts DD8322CF
    }

    #[test]
    fn both_keys_of_a_rotation_bundle_are_published() {
        let bundle = format!("{PUBLIC}\n{PRIVATE}\n{}", include_str!("../tests/fixtures/oidc/old.pub"));
        let issuer =
            Issuer::new("https://oidc.example.com/cluster-1/", SigningKey::from_pem("b", &bundle).unwrap())
                .unwrap();
        assert_eq!(issuer.jwks()["keys"].as_array().unwrap().len(), 2);
        assert_eq!(issuer.discovery()["jwks_uri"], "https://oidc.example.com/cluster-1/openid/v1/jwks");
        assert_eq!(issuer.discovery()["issuer"], "https://oidc.example.com/cluster-1");
    }

    #[test]
    fn bad_inputs_are_named() {
        let e =
            SigningKey::from_pem("cert.pem", "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n")
                .unwrap_err();
        assert!(e.to_string().starts_with("cert.pem: no RSA key found"), "{e}");
        let e =
            SigningKey::from_pem("k", "-----BEGIN PUBLIC KEY-----\nnotbase64\n-----END PUBLIC KEY-----\n")
                .unwrap_err();
        assert!(e.to_string().starts_with("k: "), "{e}");
        assert!(Issuer::new("http://oidc.example.com", vec![]).is_err());
        assert!(Issuer::new("https://oidc.example.com/?x=1", vec![]).is_err());
    }
}
