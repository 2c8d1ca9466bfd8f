//! Rampart's secrets-at-rest layer: a KMS v2 plugin for kube-apiserver.
//!
//! - [`proto`]: the KMS v2 gRPC API (`v2.KeyManagementService`), generated from our own .proto
//!   written from the published field numbers;
//! - [`remote`]: the remote keys that wrap Rampart's local key-encryption key — AWS KMS (the
//!   official SDK, an encryption context binding ciphertexts to the cluster) and, for
//!   development, an AES-256-GCM key file;
//! - [`envelope`]: the key hierarchy without I/O of its own: a local key-encryption key (KEK),
//!   wrapped once by the remote key and carried in the response annotations, encrypts the
//!   apiserver's data-key seeds, so the remote KMS is called once per local key, not once per
//!   secret or per data key;
//! - [`metrics`]: operations, latency, remote calls and errors;
//! - [`server`]: the gRPC service on a unix socket (mode 0600); [`client`]: the same API as
//!   the apiserver calls it, for `rampart kms status`, tests and benchmarks.

pub mod client;
pub mod envelope;
pub mod metrics;
pub mod remote;
pub mod server;

/// The generated KMS v2 types and service.
pub mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("v2");
}

/// What can go wrong, each naming its cause.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KmsError {
    /// The remote key could not be reached or refused the operation.
    #[error("remote key {key}: {message}")]
    Remote { key: String, message: String },
    /// A ciphertext that is not Rampart's, is damaged, or was encrypted under another key.
    #[error("cannot decrypt: {0}")]
    Ciphertext(String),
    /// The plugin refuses to encrypt while the remote key is unhealthy.
    #[error("refusing to encrypt: the remote key is unhealthy ({0})")]
    Unhealthy(String),
    /// Bad configuration (a key file of the wrong size, an unusable socket path).
    #[error("{0}")]
    Config(String),
}
