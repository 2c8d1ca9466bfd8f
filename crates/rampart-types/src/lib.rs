//! Rampart's shared vocabulary, with no I/O.
//!
//! * [`review`]: the Kubernetes webhook wire formats Rampart speaks (SubjectAccessReview,
//!   AdmissionReview), decoded with errors that name the offending field.
//! * [`selector`]: `kubectl`-style label and field selectors → the requirements on the wire.
//! * [`workload`]: where pod specs live in workload objects; image references.
//! * [`decision`]: authorization decisions and the reason strings the kube-apiserver shows,
//!   byte-compatible with cedar-access-control-for-k8s.
//! * [`glob`]: `*` (and `?`) wildcard patterns, matched in linear time.
//! * [`labels`]: label selectors matched as the apiserver matches them.
//! * [`wiring`]: the apiserver authorizer chain Rampart's wiring installs, as data.
//! * [`source_lines`]: where each object of a manifest file starts, for `file:line`.

pub mod decision;
pub mod glob;
pub mod labels;
pub mod review;
pub mod selector;
pub mod source_lines;
pub mod sso;
pub mod wiring;
pub mod workload;

pub use decision::{Decision, Diagnostic, PolicyErrorRef, PolicyRef, ReasonFormat, SourcePosition};
pub use review::{DecodeError, admission, sar};
