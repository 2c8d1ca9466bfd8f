//! Rampart's policy engine: Kubernetes access control and admission with Cedar.
//!
//! The pieces, in the order a request meets them:
//!
//! * [`entities`] maps a SubjectAccessReview or AdmissionReview to a Cedar request and entity
//!   store, exactly as cedar-access-control-for-k8s does (with its known bugs fixed).
//! * [`document`] parses policy documents and remembers where each policy came from, so every
//!   decision can name `file:line:col`.
//! * [`index`] narrows a tier to the policies whose scope can match the request.
//! * [`tier`] evaluates one tier (forbid beats permit; audit-mode policies only observe).
//! * [`engine`] walks the ordered tiers and turns the result into a webhook decision.
//! * [`store`] loads tiers from directories of `.cedar` and `Policy` YAML files and reloads
//!   them when they change.
//! * [`schema`] is the embedded Cedar schema for Kubernetes types, used to validate policies.

pub mod document;
pub mod engine;
pub mod entities;
pub mod error;
pub mod index;
pub mod schema;
pub mod source;
pub mod store;
pub mod tier;

pub use document::{DocumentKind, LoadedPolicy, PolicyMode};
pub use engine::{AdmissionVerdict, AuthorizationVerdict, Engine, EngineOptions};
pub use error::{EnforcedBy, EntityError, PolicyLoadError};
pub use tier::{Tier, TierOutcome};
