//! Trusted signers, loaded once per policy (re)load rather than per request: public keys
//! (ECDSA P-256/P-384, Ed25519, RSA — parsed and checked by the `sigstore` crate) and
//! certificate authorities (see [`crate::certificate`]).
//!
//! Keys in Secrets and in AWS KMS are fetched through [`ExternalKeys`], implemented by the
//! caller (the server has a cluster client and AWS credentials; this crate has neither).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sigstore::crypto::{CosignVerificationKey, Signature};

use crate::ImageError;
use crate::certificate::CertificateAuthority;
use crate::policy::{AuthoritySpec, ImagePolicyDocument, KeySource, SecretKeyRef};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where keys that are not files come from.
pub trait ExternalKeys: Send + Sync {
    /// The bytes of one key of a Secret (a PEM public key).
    fn secret<'a>(&'a self, secret: &'a SecretKeyRef) -> BoxFuture<'a, Result<Vec<u8>, String>>;
    /// The DER SubjectPublicKeyInfo of an AWS KMS asymmetric key (`GetPublicKey`).
    fn kms<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>>;
}

/// No Secrets or KMS: offline use (`check-manifests`) and tests.
pub struct NoExternalKeys;

impl ExternalKeys for NoExternalKeys {
    fn secret<'a>(&'a self, secret: &'a SecretKeyRef) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        let message = format!(
            "Secret {}/{} needs a cluster connection; pass the key as a file to verify offline",
            secret.namespace, secret.name
        );
        Box::pin(async move { Err(message) })
    }
    fn kms<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        let message = format!("KMS key {key} needs AWS credentials (--aws-kms)");
        Box::pin(async move { Err(message) })
    }
}

/// How an authority checks a signature.
#[derive(Clone)]
pub enum Check {
    Key(Arc<CosignVerificationKey>),
    Certificate(Arc<CertificateAuthority>),
}

/// A named, loaded signer.
#[derive(Clone)]
pub struct Authority {
    pub name: String,
    pub check: Check,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").field("name", &self.name).finish_non_exhaustive()
    }
}

/// What verified a signature: the authority, and for certificates the signer's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub authority: String,
    pub identity: Option<String>,
    pub issuer: Option<String>,
}

impl Authority {
    /// Verify `signature` (base64) over `message`; a certificate authority needs the signing
    /// certificate and its chain from the signature's annotations.
    pub fn verify(
        &self,
        signature_b64: &str,
        message: &[u8],
        certificate: Option<&str>,
        chain: Option<&str>,
    ) -> Result<Signer, String> {
        match &self.check {
            Check::Key(key) => key
                .verify_signature(Signature::Base64Encoded(signature_b64.as_bytes()), message)
                .map(|()| Signer { authority: self.name.clone(), identity: None, issuer: None })
                .map_err(|_| format!("not signed by the key of authority {:?}", self.name)),
            Check::Certificate(ca) => {
                let certificate = certificate.ok_or_else(|| {
                    format!("authority {:?} needs a signing certificate; the signature has none", self.name)
                })?;
                let leaf =
                    ca.verify(certificate, chain).map_err(|e| format!("authority {:?}: {e}", self.name))?;
                leaf.key
                    .verify_signature(Signature::Base64Encoded(signature_b64.as_bytes()), message)
                    .map_err(|_| {
                        format!("the signature does not match the certificate of {}", leaf.identity)
                    })?;
                Ok(Signer {
                    authority: self.name.clone(),
                    identity: Some(leaf.identity),
                    issuer: leaf.issuer,
                })
            }
        }
    }
}

/// Load every authority of a policy.
pub async fn load(
    policy: &ImagePolicyDocument,
    external: &dyn ExternalKeys,
) -> Result<Vec<Authority>, ImageError> {
    let mut out = Vec::with_capacity(policy.spec.authorities.len());
    for (i, spec) in policy.spec.authorities.iter().enumerate() {
        let field = format!("ImagePolicy {:?} spec.authorities[{i}]", policy.metadata.name);
        out.push(load_one(spec, external).await.map_err(|message| ImageError::Key { field, message })?);
    }
    Ok(out)
}

async fn load_one(spec: &AuthoritySpec, external: &dyn ExternalKeys) -> Result<Authority, String> {
    let check = match (&spec.key, &spec.certificate) {
        (Some(key), _) => Check::Key(Arc::new(load_key(key, external).await?)),
        (None, Some(cert)) => Check::Certificate(Arc::new(CertificateAuthority::load(cert)?)),
        (None, None) => return Err("names neither a key nor a certificate".into()),
    };
    Ok(Authority { name: spec.name.clone(), check })
}

async fn load_key(source: &KeySource, external: &dyn ExternalKeys) -> Result<CosignVerificationKey, String> {
    let parse_pem = |pem: &[u8], from: &str| {
        CosignVerificationKey::try_from_pem(pem)
            .map_err(|e| format!("{from}: not a PEM public key cosign can use (ECDSA, Ed25519, RSA): {e}"))
    };
    if let Some(file) = &source.file {
        let pem = std::fs::read(file).map_err(|e| format!("key file {}: {e}", file.display()))?;
        return parse_pem(&pem, &format!("key file {}", file.display()));
    }
    if let Some(pem) = &source.pem {
        return parse_pem(pem.as_bytes(), "key.pem");
    }
    if let Some(secret) = &source.secret {
        let pem = external.secret(secret).await?;
        return parse_pem(&pem, &format!("Secret {}/{} key {}", secret.namespace, secret.name, secret.key));
    }
    if let Some(kms) = &source.kms {
        let der = external.kms(kms).await?;
        return CosignVerificationKey::try_from_der(&der)
            .map_err(|e| format!("KMS key {kms}: its public key is not one cosign can use: {e}"));
    }
    Err("names no key source".into())
}
