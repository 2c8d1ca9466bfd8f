//! Rampart's detective controls.
//!
//! * [`event`]: one audit event, decoded with borrowed strings and lazily parsed bodies.
//! * [`falco`]: a Falco rule engine with Falco's default k8saudit rules embedded.

pub mod event;
pub mod falco;
