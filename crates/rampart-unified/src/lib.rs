//! Unified Cedar policies: one policy for authorization and admission.
//!
//! A unified policy names a verb and a resource type (`k8s::unified::Action::"create"`,
//! `core::configmaps`) and may read the object being written (`resource.object`) and the one
//! stored (`resource.oldObject`). Authorization sees no object, so it evaluates with Cedar's
//! typed partial evaluation, the objects unknown: a policy decided without them decides; one
//! that still depends on them makes the answer [`Outcome::Conditional`], and the admission
//! phase, which has the objects, finishes the evaluation. See the README's "Unified policies".
//!
//! Modules: [`schema`] and [`narrow`] (the model and per-resource schemas), [`request`] (a
//! request's entities), [`tier`] (both phases), [`shape`] (deciding writes without the
//! partial evaluator), [`selector`] (lists proven by their label selectors), [`errors`]
//! (forbids that could error), [`review`] (composition with the engine for the webhooks) and
//! [`live`] (hot reload while serving).

pub mod errors;
pub mod live;
pub mod narrow;
pub mod request;
pub mod review;
pub mod schema;
pub mod selector;
pub mod shape;
pub mod tier;

pub use tier::{Completion, Outcome, UnifiedTier};

/// Why a unified tier could not load or answer.
#[derive(Debug, thiserror::Error)]
pub enum UnifiedError {
    #[error("the unified schema does not parse: {0}")]
    Schema(String),
    #[error("{location}: {message}")]
    Policy { location: String, message: String },
    #[error("cannot build the Cedar request: {0}")]
    Request(String),
    #[error("partial evaluation failed: {0}")]
    Evaluation(String),
}
