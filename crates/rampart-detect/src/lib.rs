//! Rampart's detective controls.
//!
//! * [`event`]: one audit event, decoded with borrowed strings and lazily parsed bodies.
//! * [`falco`]: a Falco rule engine with Falco's default k8saudit rules embedded.

pub mod analyzer;
pub mod baseline;
pub mod changes;
pub mod event;
pub mod falco;
pub mod falco_findings;
pub mod finding;
pub mod guardduty;
pub mod input;
pub mod json;
pub mod replay;
pub mod scan;
pub mod window;
pub mod workload;
