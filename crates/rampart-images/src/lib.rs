//! Rampart's image-signature layer: only signed images run.
//!
//! - [`policy`]: `ImagePolicy` documents — which images (registry/repository globs, by
//!   namespace) need signatures from which authorities and which in-toto attestations;
//! - [`authority`] and [`certificate`]: the trusted signers (public keys, your own CA);
//! - [`cosign`]: cosign's signature and attestation objects, checked without I/O;
//! - [`registry`]: resolving tags and reading those objects with `oci-client`;
//! - [`verify`]: one image against its policies, cached per digest, one verification in
//!   flight per digest;
//! - [`admission`]: every image of a pod or pod template, a denial naming what is missing or
//!   a patch pinning each tag to the verified digest.

pub mod admission;
pub mod authority;
pub mod certificate;
pub mod cosign;
pub mod policy;
pub mod reference;
pub mod registry;
pub mod verify;

/// Errors loading policies and keys, or reading an image reference.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{origin}: {message}")]
    Policy { origin: String, message: String },
    #[error("{field}: {message}")]
    Key { field: String, message: String },
    #[error("image reference {image:?} is not valid: {reason}")]
    Reference { image: String, reason: String },
}
