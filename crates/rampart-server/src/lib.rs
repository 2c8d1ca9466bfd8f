//! Rampart's webhook server.
//!
//! * [`router`]: the HTTP surface — `POST /v1/authorize` (SubjectAccessReview),
//!   `POST /v1/admit` (AdmissionReview), `/v1/authenticate` (TokenReview), `/healthz`,
//!   `/readyz`, `/metrics`.
//! * [`mutate`]: `POST /v1/mutate`, IRSA and Pod Identity injection into new pods.
//! * [`images`]: `POST /v1/images`, image signatures verified and tags pinned to digests.
//! * [`agent`]: the Pod Identity node agent (`GET /v1/credentials`, probes, metrics).
//! * [`broker`]: the self-managed Pod Identity broker (EKS Auth's wire protocol).
//! * [`cache`]: exact caching of authorization answers per policy generation.
//! * [`metrics`]: Prometheus metrics for decisions, latency and policy reloads.
//! * [`tls`]: certificates (given, or self-signed on first start) and the rustls config.
//! * [`serve`]: binding, TLS by default, plain HTTP only on loopback and only when asked.

pub mod agent;
pub mod broker;
pub mod cache;
pub mod images;
pub mod metrics;
pub mod mutate;
pub mod router;
pub mod serve;
pub mod tls;

pub use metrics::Metrics;
pub use router::{AppState, router};
pub use serve::{ServeConfig, ServerError, Transport, start, start_router};
