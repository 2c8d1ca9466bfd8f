//! Rampart's admission guardrails.
//!
//! * [`pss`]: the Kubernetes Pod Security Standards (baseline and restricted, every version
//!   from v1.0 to the newest), with upstream's check ids, reasons and message format.

pub mod pss;
