//! Remote keys: what wraps and unwraps Rampart's local key-encryption key.
//!
//! - [`AwsKmsKey`]: an AWS KMS key (ARN, key id or `alias/…`), with the official SDK and the
//!   usual credential chain; `Encrypt`/`Decrypt` carry an encryption context naming the cluster,
//!   so a wrapped key from another cluster does not unwrap here; `DescribeKey` resolves an alias
//!   to the key it points at, which is the key id the apiserver sees (a re-pointed alias is a
//!   rotation).
//! - [`LocalKeyFile`]: 32 bytes in a file, AES-256-GCM; for development and tests.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::Digest as _;

use crate::KmsError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A key that wraps local keys.
pub trait RemoteKey: Send + Sync {
    /// The id of the key now in use (an alias resolved to its key); a change is a rotation.
    /// Also the health check: it fails when the key is unreachable or disabled.
    fn current_key_id(&self) -> BoxFuture<'_, Result<String, KmsError>>;
    /// Wrap `plaintext`; returns the wrapped bytes and the id of the key that wrapped them.
    fn wrap<'a>(&'a self, plaintext: &'a [u8]) -> BoxFuture<'a, Result<(Vec<u8>, String), KmsError>>;
    /// Unwrap what [`RemoteKey::wrap`] returned (with any key version that still exists).
    fn unwrap<'a>(&'a self, wrapped: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, KmsError>>;
    /// Calls made to the remote service so far.
    fn calls(&self) -> u64;
}

/// An AWS KMS symmetric key.
pub struct AwsKmsKey {
    client: aws_sdk_kms::Client,
    key: String,
    context: HashMap<String, String>,
    calls: AtomicU64,
}

impl AwsKmsKey {
    /// `key`: an ARN, key id or `alias/…`; `cluster`: bound into every ciphertext as the
    /// encryption context `{"kubernetes.io/cluster": cluster}`.
    pub async fn new(key: &str, cluster: &str, region: Option<String>) -> Self {
        // Every call ends within 2 s, inside the apiserver's 3 s KMS timeout: a hung AWS KMS
        // must surface as an error the plugin reports, not as a stalled Status.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(std::time::Duration::from_secs(2))
            .connect_timeout(std::time::Duration::from_secs(1))
            .build();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http_client())
            .timeout_config(timeouts);
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region));
        }
        Self::from_config(key, cluster, &loader.load().await)
    }

    /// The same from an SDK configuration built by the caller (tests point it at moto).
    pub fn from_config(key: &str, cluster: &str, config: &aws_config::SdkConfig) -> Self {
        AwsKmsKey {
            client: aws_sdk_kms::Client::new(config),
            key: key.to_string(),
            context: HashMap::from([("kubernetes.io/cluster".to_string(), cluster.to_string())]),
            calls: AtomicU64::new(0),
        }
    }

    fn failed(&self, operation: &str) -> impl Fn(String) -> KmsError + '_ {
        let operation = operation.to_string();
        move |message| KmsError::Remote { key: self.key.clone(), message: format!("{operation}: {message}") }
    }
}

pub use rampart_identity::sdk::http_client;

/// The SDK's error with its service message (`DisabledException: … is disabled`), not just
/// "service error".
fn sdk_message<E: std::error::Error + 'static>(e: aws_sdk_kms::error::SdkError<E>) -> String {
    use aws_sdk_kms::error::DisplayErrorContext;
    DisplayErrorContext(e).to_string()
}

impl RemoteKey for AwsKmsKey {
    fn current_key_id(&self) -> BoxFuture<'_, Result<String, KmsError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let described = self
                .client
                .describe_key()
                .key_id(&self.key)
                .send()
                .await
                .map_err(|e| self.failed("DescribeKey")(sdk_message(e)))?;
            let metadata =
                described.key_metadata.ok_or_else(|| self.failed("DescribeKey")("no key metadata".into()))?;
            if !metadata.enabled {
                return Err(self.failed("DescribeKey")(format!("key {} is disabled", metadata.key_id)));
            }
            Ok(metadata.arn.unwrap_or(metadata.key_id))
        })
    }

    fn wrap<'a>(&'a self, plaintext: &'a [u8]) -> BoxFuture<'a, Result<(Vec<u8>, String), KmsError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let out = self
                .client
                .encrypt()
                .key_id(&self.key)
                .plaintext(aws_sdk_kms::primitives::Blob::new(plaintext))
                .set_encryption_context(Some(self.context.clone()))
                .send()
                .await
                .map_err(|e| self.failed("Encrypt")(sdk_message(e)))?;
            let blob = out.ciphertext_blob.ok_or_else(|| self.failed("Encrypt")("no ciphertext".into()))?;
            Ok((blob.into_inner(), out.key_id.unwrap_or_else(|| self.key.clone())))
        })
    }

    fn unwrap<'a>(&'a self, wrapped: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, KmsError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let out = self
                .client
                .decrypt()
                .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(wrapped))
                .set_encryption_context(Some(self.context.clone()))
                .send()
                .await
                .map_err(|e| self.failed("Decrypt")(sdk_message(e)))?;
            Ok(out.plaintext.ok_or_else(|| self.failed("Decrypt")("no plaintext".into()))?.into_inner())
        })
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// A 32-byte AES-256-GCM key in a file (development; the file is the secret).
pub struct LocalKeyFile {
    cipher: Aes256Gcm,
    id: String,
    calls: AtomicU64,
}

impl LocalKeyFile {
    pub fn new(key: &[u8]) -> Result<Self, KmsError> {
        if key.len() != 32 {
            return Err(KmsError::Config(format!(
                "a local key file holds exactly 32 random bytes (head -c 32 /dev/urandom > key), not {}",
                key.len()
            )));
        }
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|e| KmsError::Config(e.to_string()))?;
        let fingerprint = sha2::Sha256::digest(key);
        Ok(LocalKeyFile {
            cipher,
            id: format!("local:{}", hex::encode(&fingerprint[..8])),
            calls: AtomicU64::new(0),
        })
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, KmsError> {
        let key =
            std::fs::read(path).map_err(|e| KmsError::Config(format!("key file {}: {e}", path.display())))?;
        Self::new(&key).map_err(|e| KmsError::Config(format!("key file {}: {e}", path.display())))
    }
}

impl RemoteKey for LocalKeyFile {
    fn current_key_id(&self) -> BoxFuture<'_, Result<String, KmsError>> {
        Box::pin(async move { Ok(self.id.clone()) })
    }

    fn wrap<'a>(&'a self, plaintext: &'a [u8]) -> BoxFuture<'a, Result<(Vec<u8>, String), KmsError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let nonce: [u8; 12] = rand::random();
            let sealed = self.cipher.encrypt(Nonce::from_slice(&nonce), plaintext).map_err(|_| {
                KmsError::Remote { key: self.id.clone(), message: "encryption failed".into() }
            })?;
            Ok(([nonce.as_slice(), &sealed].concat(), self.id.clone()))
        })
    }

    fn unwrap<'a>(&'a self, wrapped: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, KmsError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if wrapped.len() < 12 + 16 {
                return Err(KmsError::Ciphertext("the wrapped key is too short".into()));
            }
            let (nonce, sealed) = wrapped.split_at(12);
            self.cipher
                .decrypt(Nonce::from_slice(nonce), sealed)
                .map_err(|_| KmsError::Ciphertext(format!("the wrapped key does not open with {}", self.id)))
        })
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}
