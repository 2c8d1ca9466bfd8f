//! Rampart's admission guardrails.
//!
//! * [`rules`]: best-practice rules (token automount, read-only root, image registries, tags, digests).
//! * [`pss`]: the Kubernetes Pod Security Standards (baseline and restricted, every version
//!   from v1.0 to the newest), with upstream's check ids, reasons and message format.

pub mod admission;
pub mod pss;
pub mod rules;
