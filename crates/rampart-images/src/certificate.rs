//! Certificate-based signatures against your own CA, as `cosign verify --certificate-chain
//! ca.pem --certificate-identity … --certificate-oidc-issuer …` checks them: the signing
//! certificate chains to a trusted root (path building and signature checks by `rustls-webpki`),
//! carries the code-signing extended key usage, is valid now, and names the expected identity
//! (a SAN e-mail or URI) and OIDC issuer (Fulcio's extension, OID 1.3.6.1.4.1.57264.1.8, or
//! the older 1.3.6.1.4.1.57264.1.1).
//!
//! Without a transparency log there is no signing time to check the certificate at, so it must
//! be valid at verification time (cosign's behaviour with `--insecure-ignore-tlog`).

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime, pem::PemObject};
use sigstore::crypto::CosignVerificationKey;
use x509_parser::prelude::*;

use crate::policy::CertificateSpec;

/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), DER contents.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
const FULCIO_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const FULCIO_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";

/// A text matched exactly or by a regular expression (anchored, as cosign anchors it).
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    Regex(regex::Regex),
}

impl Matcher {
    fn new(exact: &Option<String>, pattern: &Option<String>) -> Result<Option<Self>, String> {
        Ok(match (exact, pattern) {
            (Some(e), _) => Some(Matcher::Exact(e.clone())),
            (None, Some(p)) => {
                Some(Matcher::Regex(regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| e.to_string())?))
            }
            (None, None) => None,
        })
    }
    fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::Exact(e) => e == text,
            Matcher::Regex(r) => r.is_match(text),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Exact(e) => write!(f, "{e:?}"),
            Matcher::Regex(r) => write!(f, "/{}/", r.as_str()),
        }
    }
}

/// A trusted CA bundle and the identity constraints for the certificates it issues.
#[derive(Debug)]
pub struct CertificateAuthority {
    roots: Vec<TrustAnchor<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    identity: Option<Matcher>,
    issuer: Option<Matcher>,
}

/// A signing certificate that passed every check.
pub struct VerifiedLeaf {
    pub key: CosignVerificationKey,
    pub identity: String,
    pub issuer: Option<String>,
}

impl CertificateAuthority {
    pub fn load(spec: &CertificateSpec) -> Result<Self, String> {
        let pem = match (&spec.ca_file, &spec.ca) {
            (Some(file), _) => std::fs::read(file).map_err(|e| format!("CA file {}: {e}", file.display()))?,
            (None, Some(pem)) => pem.clone().into_bytes(),
            (None, None) => return Err("names no CA (caFile or ca)".into()),
        };
        Self::from_pem(
            &pem,
            Matcher::new(&spec.identity, &spec.identity_regexp)?,
            Matcher::new(&spec.oidc_issuer, &spec.oidc_issuer_regexp)?,
        )
    }

    fn from_pem(pem: &[u8], identity: Option<Matcher>, issuer: Option<Matcher>) -> Result<Self, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("CA bundle: {e}"))?;
        if certs.is_empty() {
            return Err("CA bundle holds no certificate".into());
        }
        // Self-signed certificates are the roots; the others may serve as intermediates.
        let (mut roots, mut intermediates) = (Vec::new(), Vec::new());
        for der in certs {
            let (_, cert) = X509Certificate::from_der(&der).map_err(|e| format!("CA bundle: {e}"))?;
            if cert.subject() == cert.issuer() {
                let anchor =
                    webpki::anchor_from_trusted_cert(&der).map_err(|e| format!("CA bundle: {e:?}"))?;
                roots.push(anchor.to_owned());
            } else {
                intermediates.push(der);
            }
        }
        if roots.is_empty() {
            return Err("CA bundle holds no self-signed root".into());
        }
        Ok(CertificateAuthority { roots, intermediates, identity, issuer })
    }

    /// Check a signing certificate (PEM) and the chain the signature carries (PEM, untrusted:
    /// used only to build a path to the roots).
    pub fn verify(&self, leaf_pem: &str, chain_pem: Option<&str>) -> Result<VerifiedLeaf, String> {
        let leaf = CertificateDer::from_pem_slice(leaf_pem.as_bytes())
            .map_err(|e| format!("the signing certificate is not PEM: {e}"))?;
        let mut intermediates = self.intermediates.clone();
        if let Some(chain) = chain_pem {
            for der in CertificateDer::pem_slice_iter(chain.as_bytes()).flatten() {
                intermediates.push(der);
            }
        }
        let end_entity =
            webpki::EndEntityCert::try_from(&leaf).map_err(|e| format!("signing certificate: {e:?}"))?;
        end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.roots,
                &intermediates,
                UnixTime::now(),
                webpki::KeyUsage::required(CODE_SIGNING),
                None,
                None,
            )
            .map_err(|e| {
                format!("the signing certificate does not chain to the trusted CA for code signing: {e:?}")
            })?;

        let (_, cert) = X509Certificate::from_der(&leaf).map_err(|e| format!("signing certificate: {e}"))?;
        let identities = subject_identities(&cert);
        let issuer = oidc_issuer(&cert);
        let identity = match &self.identity {
            Some(want) => identities
                .iter()
                .find(|i| want.matches(i))
                .cloned()
                .ok_or_else(|| format!("certificate identity {} is not {want}", shown(&identities)))?,
            None => identities.first().cloned().unwrap_or_default(),
        };
        if let Some(want) = &self.issuer {
            match &issuer {
                Some(found) if want.matches(found) => {}
                Some(found) => return Err(format!("certificate OIDC issuer {found:?} is not {want}")),
                None => return Err(format!("the certificate names no OIDC issuer; {want} is required")),
            }
        }
        let key = CosignVerificationKey::try_from_der(cert.tbs_certificate.subject_pki.raw)
            .map_err(|e| format!("the signing certificate's key is not one cosign can use: {e}"))?;
        Ok(VerifiedLeaf { key, identity, issuer })
    }
}

fn shown(identities: &[String]) -> String {
    if identities.is_empty() { "(none)".into() } else { format!("{identities:?}") }
}

/// SAN e-mail addresses and URIs, as cosign reads identities.
fn subject_identities(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else { return vec![] };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::RFC822Name(e) => Some(e.to_string()),
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect()
}

/// Fulcio's issuer extension: v2 holds a DER UTF8String, v1 the raw bytes.
fn oidc_issuer(cert: &X509Certificate<'_>) -> Option<String> {
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        if oid == FULCIO_ISSUER_V2 {
            if let Ok((_, any)) = x509_parser::der_parser::asn1_rs::Any::from_der(ext.value)
                && let Ok(s) = any.as_str()
            {
                return Some(s.to_string());
            }
        } else if oid == FULCIO_ISSUER_V1 {
            return std::str::from_utf8(ext.value).ok().map(str::to_string);
        }
    }
    None
}
