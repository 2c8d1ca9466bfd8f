//! The key hierarchy: remote key → local key-encryption key (KEK) → the apiserver's data-key
//! seeds.
//!
//! The plugin generates a 256-bit KEK, has the remote key wrap it once, and encrypts every
//! seed the apiserver sends with it (AES-256-GCM, the key id as associated data). The wrapped
//! KEK travels with each ciphertext in the `kek.rampart.dev` annotation, so any replica and any
//! later process can decrypt: it unwraps a KEK it has not seen once, then caches it. The remote
//! key is therefore called once per KEK — when the plugin starts and when the remote key
//! changes — not once per secret or per data key.
//!
//! Health is a real round trip to the remote key (`DescribeKey` for AWS KMS), cached for
//! `health_ttl`. While it fails, `Status` reports it and `Encrypt` is refused (the apiserver
//! then fails the write: nothing is ever stored in plaintext); `Decrypt` keeps working for KEKs
//! already unwrapped.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use arc_swap::ArcSwapOption;

use crate::KmsError;
use crate::metrics::{Metrics, RemoteLabels};
use crate::remote::RemoteKey;

/// The annotation carrying the wrapped KEK (annotation keys must be domain names).
pub const KEK_ANNOTATION: &str = "kek.rampart.dev";
/// Version byte of Rampart's ciphertext layout: version ‖ nonce (12) ‖ AES-GCM output.
const FORMAT: u8 = 1;
/// At most this many unwrapped KEKs are kept (each is one remote key's generation).
const KEK_CACHE: usize = 1024;

struct Current {
    key_id: String,
    cipher: Arc<Aes256Gcm>,
    wrapped: Vec<u8>,
}

struct Health {
    checked: Option<Instant>,
    result: Result<(), String>,
}

/// The plugin's state.
pub struct Envelope {
    remote: Arc<dyn RemoteKey>,
    current: ArcSwapOption<Current>,
    keks: Mutex<HashMap<Vec<u8>, Arc<Aes256Gcm>>>,
    health: tokio::sync::Mutex<Health>,
    health_ttl: Duration,
    pub metrics: Arc<Metrics>,
}

/// What `Status` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub healthz: String,
    pub key_id: String,
}

/// What `Encrypt` answers.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub key_id: String,
    pub annotations: BTreeMap<String, Vec<u8>>,
}

impl Envelope {
    /// A plugin over `remote`; the first health check generates and wraps the first KEK.
    pub fn new(remote: Arc<dyn RemoteKey>, health_ttl: Duration, metrics: Arc<Metrics>) -> Self {
        Envelope {
            remote,
            current: ArcSwapOption::empty(),
            keks: Mutex::new(HashMap::new()),
            health: tokio::sync::Mutex::new(Health { checked: None, result: Err("not checked yet".into()) }),
            health_ttl,
            metrics,
        }
    }

    /// Remote calls so far.
    pub fn remote_calls(&self) -> u64 {
        self.remote.calls()
    }

    fn count_remote(&self, operation: &'static str) {
        self.metrics.remote_calls.get_or_create(&RemoteLabels { operation }).inc();
    }

    /// Health and the current key id, checking the remote key when the last check is older
    /// than `health_ttl`; a changed remote key id is a rotation: a new KEK is wrapped under it.
    pub async fn status(&self) -> Status {
        let mut health = self.health.lock().await;
        let fresh = health.checked.is_some_and(|t| t.elapsed() < self.health_ttl);
        if !fresh {
            health.result = self.check().await;
            health.checked = Some(Instant::now());
        }
        let key_id = self.current.load().as_ref().map(|c| c.key_id.clone()).unwrap_or_default();
        match &health.result {
            Ok(()) => Status { healthz: "ok".into(), key_id },
            Err(e) => Status {
                healthz: e.clone(),
                key_id: if key_id.is_empty() { "unavailable".into() } else { key_id },
            },
        }
    }

    async fn check(&self) -> Result<(), String> {
        self.count_remote("describe");
        let key_id = self.remote.current_key_id().await.map_err(|e| e.to_string())?;
        let unchanged = self.current.load().as_ref().is_some_and(|c| c.key_id == key_id);
        if !unchanged {
            self.rotate().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// A new KEK, wrapped by the remote key now in use.
    async fn rotate(&self) -> Result<(), KmsError> {
        let kek: [u8; 32] = rand::random();
        self.count_remote("encrypt");
        let (wrapped, key_id) = self.remote.wrap(&kek).await?;
        let cipher = Arc::new(Aes256Gcm::new_from_slice(&kek).map_err(|e| KmsError::Config(e.to_string()))?);
        self.remember(wrapped.clone(), cipher.clone());
        tracing::info!(key_id, "new key-encryption key wrapped by the remote key");
        self.current.store(Some(Arc::new(Current { key_id, cipher, wrapped })));
        Ok(())
    }

    fn remember(&self, wrapped: Vec<u8>, cipher: Arc<Aes256Gcm>) {
        if let Ok(mut keks) = self.keks.lock() {
            if keks.len() >= KEK_CACHE {
                keks.clear();
            }
            keks.insert(wrapped, cipher);
        }
    }

    /// Encrypt a data-key seed with the current KEK.
    pub async fn encrypt(&self, plaintext: &[u8]) -> Result<Sealed, KmsError> {
        let healthy = {
            let health = self.health.lock().await;
            health.checked.is_some() && health.result.is_ok()
        };
        if !healthy {
            // The apiserver calls Status first; make sure the answer is current before refusing.
            let status = self.status().await;
            if status.healthz != "ok" {
                return Err(KmsError::Unhealthy(status.healthz));
            }
        }
        let current = self
            .current
            .load_full()
            .ok_or_else(|| KmsError::Unhealthy("no key-encryption key yet".into()))?;
        let nonce: [u8; 12] = rand::random();
        let sealed = current
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: current.key_id.as_bytes() })
            .map_err(|_| KmsError::Config("AES-GCM encryption failed".into()))?;
        let ciphertext = [&[FORMAT][..], &nonce, &sealed].concat();
        Ok(Sealed {
            ciphertext,
            key_id: current.key_id.clone(),
            annotations: BTreeMap::from([(KEK_ANNOTATION.to_string(), current.wrapped.clone())]),
        })
    }

    /// Decrypt a data-key seed; `key_id` and the annotations are what `Encrypt` returned.
    pub async fn decrypt(
        &self,
        ciphertext: &[u8],
        key_id: &str,
        annotations: &HashMap<String, Vec<u8>>,
    ) -> Result<Vec<u8>, KmsError> {
        let wrapped = annotations.get(KEK_ANNOTATION).ok_or_else(|| {
            KmsError::Ciphertext(format!(
                "no {KEK_ANNOTATION} annotation: this ciphertext was not written by Rampart's plugin"
            ))
        })?;
        let cached = self.keks.lock().ok().and_then(|k| k.get(wrapped).cloned());
        let cipher = match cached {
            Some(c) => c,
            None => {
                self.count_remote("decrypt");
                let kek = self.remote.unwrap(wrapped).await?;
                let cipher = Arc::new(
                    Aes256Gcm::new_from_slice(&kek)
                        .map_err(|_| KmsError::Ciphertext("the unwrapped key is not 256 bits".into()))?,
                );
                self.remember(wrapped.clone(), cipher.clone());
                cipher
            }
        };
        let (version, rest) =
            ciphertext.split_first().ok_or_else(|| KmsError::Ciphertext("empty ciphertext".into()))?;
        if *version != FORMAT || rest.len() < 12 + 16 {
            return Err(KmsError::Ciphertext(format!(
                "unknown ciphertext format {version} or a truncated ciphertext"
            )));
        }
        let (nonce, sealed) = rest.split_at(12);
        cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: key_id.as_bytes() }).map_err(|_| {
            KmsError::Ciphertext(format!(
                "the ciphertext does not authenticate under key id {key_id:?}: it was altered, or belongs to another key"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::LocalKeyFile;

    fn envelope(key: [u8; 32]) -> Envelope {
        Envelope::new(Arc::new(LocalKeyFile::new(&key).unwrap()), Duration::from_secs(60), Arc::default())
    }

    fn annotations(sealed: &Sealed) -> HashMap<String, Vec<u8>> {
        sealed.annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    #[tokio::test]
    async fn round_trip_with_one_remote_call_per_kek() {
        let e = envelope([7; 32]);
        assert_eq!(e.status().await.healthz, "ok");
        let mut sealed = Vec::new();
        for i in 0..100u8 {
            let s = e.encrypt(&[i; 32]).await.unwrap();
            assert!(s.ciphertext.len() <= 1024, "the apiserver takes at most 1 KB");
            sealed.push(s);
        }
        for (i, s) in sealed.iter().enumerate() {
            assert_eq!(
                e.decrypt(&s.ciphertext, &s.key_id, &annotations(s)).await.unwrap(),
                vec![i as u8; 32]
            );
        }
        assert_eq!(e.remote_calls(), 1, "one wrap for the KEK, nothing per seed");
        // Another process with the same remote key: one unwrap, then cached.
        let other = envelope([7; 32]);
        for s in &sealed {
            other.decrypt(&s.ciphertext, &s.key_id, &annotations(s)).await.unwrap();
        }
        assert_eq!(other.remote_calls(), 1);
    }

    #[tokio::test]
    async fn tampered_foreign_and_unannotated_ciphertexts_name_the_cause() {
        let e = envelope([7; 32]);
        e.status().await;
        let s = e.encrypt(b"seed").await.unwrap();
        let mut tampered = s.ciphertext.clone();
        *tampered.last_mut().unwrap() ^= 1;
        let err = e.decrypt(&tampered, &s.key_id, &annotations(&s)).await.unwrap_err().to_string();
        assert!(err.contains("does not authenticate"), "{err}");
        let err = e.decrypt(&s.ciphertext, "another-key", &annotations(&s)).await.unwrap_err().to_string();
        assert!(err.contains("does not authenticate under key id \"another-key\""), "{err}");
        let err = e.decrypt(&s.ciphertext, &s.key_id, &HashMap::new()).await.unwrap_err().to_string();
        assert!(err.contains("not written by Rampart"), "{err}");
        // Wrapped by another remote key: it does not unwrap here.
        let foreign = envelope([9; 32]);
        let err = foreign.decrypt(&s.ciphertext, &s.key_id, &annotations(&s)).await.unwrap_err().to_string();
        assert!(err.contains("does not open"), "{err}");
    }
}
