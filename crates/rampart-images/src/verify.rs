//! Verification of one image against the policies that cover it: resolve the tag, read
//! cosign's signature and attestation objects once, check them against every applicable
//! policy, remember the outcome per digest.
//!
//! Caching and coalescing are moka's: `try_get_with` runs one verification per key however
//! many admissions ask at once, the others wait for its result. Definitive outcomes are cached
//! (refusals for less time, so signing an image takes effect quickly); registry failures are
//! not cached at all, so the next admission tries again.
//!
//! The Sigstore crate's own `cosign::Client` is not used for the registry part: it takes
//! `&mut self` (one client per verification), reads a signature-fetch failure as "no
//! signatures" (an outage would look like an unsigned image) and checks certificates only with
//! a Rekor bundle. Its key and signature code is used.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use serde::Serialize;

use crate::authority::{Authority, ExternalKeys};
use crate::cosign::{self, Attestation};
use crate::policy::ImagePolicyDocument;
use crate::reference::{ImageReference, cosign_tag};
use crate::registry::{Credentials, Registry, RegistryError};
use crate::{ImageError, authority};

/// A policy with its signers loaded.
#[derive(Debug)]
pub struct CompiledPolicy {
    pub document: ImagePolicyDocument,
    pub authorities: Vec<Authority>,
    /// Identifies the policy's content, so a changed policy is not answered from the cache.
    fingerprint: u64,
}

/// Every image policy in force.
#[derive(Debug, Default)]
pub struct PolicySet {
    policies: Vec<Arc<CompiledPolicy>>,
}

impl PolicySet {
    /// Load the signers of every policy (keys from files, Secrets or KMS; CA bundles).
    pub async fn load(
        documents: Vec<ImagePolicyDocument>,
        external: &dyn ExternalKeys,
    ) -> Result<Self, ImageError> {
        let mut names = BTreeSet::new();
        let mut policies = Vec::with_capacity(documents.len());
        for document in documents {
            if !names.insert(document.metadata.name.clone()) {
                return Err(ImageError::Policy {
                    origin: "image policies".into(),
                    message: format!("two ImagePolicies are named {:?}", document.metadata.name),
                });
            }
            let authorities = authority::load(&document, external).await?;
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            format!("{document:?}").hash(&mut hasher);
            policies.push(Arc::new(CompiledPolicy { document, authorities, fingerprint: hasher.finish() }));
        }
        Ok(PolicySet { policies })
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// The policies that cover an image (normalised name) in a namespace.
    pub fn applicable(&self, image_name: &str, namespace: &str) -> Vec<Arc<CompiledPolicy>> {
        self.policies.iter().filter(|p| p.document.applies(image_name, namespace)).cloned().collect()
    }
}

/// Tunables, with the defaults `serve` uses.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Outcomes kept (each is a few hundred bytes).
    pub capacity: u64,
    /// How long a verified image stays verified.
    pub verified_ttl: Duration,
    /// How long a refusal is remembered (short: signing an image should take effect soon).
    pub refused_ttl: Duration,
    /// How long a tag's digest is trusted before asking the registry again.
    pub tag_ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            capacity: 10_000,
            verified_ttl: Duration::from_secs(300),
            refused_ttl: Duration::from_secs(30),
            tag_ttl: Duration::from_secs(30),
        }
    }
}

/// What verification established about an image: the facts Cedar admission policies see as
/// `context.images`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ImageFacts {
    /// `registry/repository`.
    pub name: String,
    pub digest: String,
    /// Authority names that signed it.
    pub signers: Vec<String>,
    /// The certificate identities (SAN e-mail or URI) of certificate signatures.
    pub identities: Vec<String>,
    /// Predicate types of the verified attestations.
    pub attestations: Vec<String>,
    /// The policies that covered it.
    pub policies: Vec<String>,
    /// Whether every covering policy was satisfied.
    pub verified: bool,
}

/// One policy's verdict on one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFailure {
    pub policy: String,
    pub missing: String,
}

/// The outcome of verifying one digest against its applicable policies.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub facts: ImageFacts,
    pub failures: Vec<PolicyFailure>,
    /// Whether a covering policy asks for the tag to be rewritten to the digest.
    pub pin: bool,
}

/// Why an image could not be verified at all (nothing is cached for these).
#[derive(Debug, Clone, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Reference(#[from] Arc<ImageError>),
    #[error("{0}")]
    Registry(#[from] RegistryError),
}

type OutcomeKey = (String, String, u64);

struct OutcomeExpiry {
    verified: Duration,
    refused: Duration,
}

impl Expiry<OutcomeKey, Arc<Outcome>> for OutcomeExpiry {
    fn expire_after_create(&self, _: &OutcomeKey, value: &Arc<Outcome>, _: Instant) -> Option<Duration> {
        Some(if value.failures.is_empty() { self.verified } else { self.refused })
    }
}

/// The verifier: a registry client, the caches, and a count of registry verifications.
pub struct Verifier {
    registry: Registry,
    /// Parsed references by the text a pod wrote (parsing is a regular expression match).
    references: moka::sync::Cache<String, Arc<ImageReference>>,
    outcomes: Cache<OutcomeKey, Arc<Outcome>>,
    tags: Cache<(String, String), String>,
    registry_verifications: AtomicU64,
}

impl Verifier {
    pub fn new(registry: Registry, settings: &CacheSettings) -> Self {
        Verifier {
            registry,
            references: moka::sync::Cache::new(settings.capacity),
            outcomes: Cache::builder()
                .max_capacity(settings.capacity)
                .expire_after(OutcomeExpiry {
                    verified: settings.verified_ttl,
                    refused: settings.refused_ttl,
                })
                .build(),
            tags: Cache::builder().max_capacity(settings.capacity).time_to_live(settings.tag_ttl).build(),
            registry_verifications: AtomicU64::new(0),
        }
    }

    /// How many verifications went to a registry (cache misses), since start.
    pub fn registry_verifications(&self) -> u64 {
        self.registry_verifications.load(Ordering::Relaxed)
    }

    /// `written` parsed, from a bounded cache.
    pub fn reference(&self, written: &str) -> Result<Arc<ImageReference>, ImageError> {
        if let Some(hit) = self.references.get(written) {
            return Ok(hit);
        }
        let parsed = Arc::new(ImageReference::parse(written)?);
        self.references.insert(written.to_string(), parsed.clone());
        Ok(parsed)
    }

    fn key(name: String, digest: String, policies: &[Arc<CompiledPolicy>]) -> OutcomeKey {
        let mut set = std::collections::hash_map::DefaultHasher::new();
        for p in policies {
            p.fingerprint.hash(&mut set);
        }
        (name, digest, set.finish())
    }

    /// The cached outcome for an image, without any registry call; `None` on a miss.
    pub async fn cached(
        &self,
        image: &ImageReference,
        policies: &[Arc<CompiledPolicy>],
    ) -> Option<Arc<Outcome>> {
        let name = image.name();
        let digest = match image.digest() {
            Some(d) => d.to_string(),
            None => {
                let tag = image.parsed.tag().unwrap_or("latest").to_string();
                self.tags.get(&(name.clone(), tag)).await?
            }
        };
        self.outcomes.get(&Self::key(name, digest, policies)).await
    }

    /// Verify one image against `policies` (those that apply to it; never empty).
    pub async fn verify(
        &self,
        image: &ImageReference,
        policies: &[Arc<CompiledPolicy>],
        credentials: &Credentials,
    ) -> Result<Arc<Outcome>, VerifyError> {
        let name = image.name();
        let auth = credentials.auth_for(image.parsed.registry());
        let digest = match image.digest() {
            Some(d) => d.to_string(),
            None => {
                let tag = image.parsed.tag().unwrap_or("latest").to_string();
                self.tags
                    .try_get_with((name.clone(), tag), self.registry.resolve(&image.parsed, &auth))
                    .await
                    .map_err(|e| VerifyError::Registry(RegistryError::clone(&e)))?
            }
        };
        let key = Self::key(name.clone(), digest.clone(), policies);
        self.outcomes
            .try_get_with(key, async {
                self.registry_verifications.fetch_add(1, Ordering::Relaxed);
                self.check(image, name.clone(), digest.clone(), policies, &auth).await.map(Arc::new)
            })
            .await
            .map_err(|e| VerifyError::Registry(RegistryError::clone(&e)))
    }

    async fn check(
        &self,
        image: &ImageReference,
        name: String,
        digest: String,
        policies: &[Arc<CompiledPolicy>],
        auth: &oci_client::secrets::RegistryAuth,
    ) -> Result<Outcome, RegistryError> {
        let wants_signatures = policies.iter().any(|p| !p.authorities.is_empty());
        let wants_attestations = policies.iter().any(|p| !p.document.spec.attestations.is_empty());
        let signature_ref = image.with_tag(cosign_tag(&digest, "sig"));
        let attestation_ref = image.with_tag(cosign_tag(&digest, "att"));
        let (signatures, attestations) = tokio::try_join!(
            async {
                if wants_signatures {
                    self.registry.cosign_layers(&signature_ref, auth).await
                } else {
                    Ok(None)
                }
            },
            async {
                if wants_attestations {
                    self.registry.cosign_layers(&attestation_ref, auth).await
                } else {
                    Ok(None)
                }
            },
        )?;
        let (signatures, attestations) = (signatures.unwrap_or_default(), attestations.unwrap_or_default());

        let mut facts = ImageFacts {
            name,
            digest: digest.clone(),
            signers: vec![],
            identities: vec![],
            attestations: vec![],
            policies: policies.iter().map(|p| p.document.metadata.name.clone()).collect(),
            verified: false,
        };
        let mut failures = Vec::new();
        for policy in policies {
            let fail =
                |missing: String| PolicyFailure { policy: policy.document.metadata.name.clone(), missing };
            if !policy.authorities.is_empty() {
                match cosign::check_signatures(&digest, &signatures, &policy.authorities) {
                    Ok(signers) => {
                        for s in signers {
                            if !facts.signers.contains(&s.authority) {
                                facts.signers.push(s.authority);
                            }
                            if let Some(id) = s.identity.filter(|id| !facts.identities.contains(id)) {
                                facts.identities.push(id);
                            }
                        }
                    }
                    Err(failure) => failures.push(fail(failure.to_string())),
                }
            }
            if policy.document.spec.attestations.is_empty() {
                continue;
            }
            let (verified, reasons): (Vec<Attestation>, Vec<String>) =
                cosign::verified_attestations(&digest, &attestations, &policy.authorities);
            for a in &verified {
                if !facts.attestations.contains(&a.predicate_type) {
                    facts.attestations.push(a.predicate_type.clone());
                }
            }
            for spec in &policy.document.spec.attestations {
                if let Err(missing) = cosign::check_attestation(spec, &verified) {
                    let why = if attestations.is_empty() {
                        format!("{missing} (the image has no attestations)")
                    } else if verified.is_empty() && !reasons.is_empty() {
                        format!("{missing} ({})", reasons.join("; "))
                    } else {
                        missing
                    };
                    failures.push(fail(why));
                }
            }
        }
        facts.verified = failures.is_empty();
        let pin = policies.iter().any(|p| p.document.spec.mutate_digest);
        Ok(Outcome { facts, failures, pin })
    }
}
