//! Rampart's EKS operations, where EKS teams live day to day:
//!
//! - [`securityhub`]: findings to AWS Security Hub in ASFF, with stable ids so a repeat updates
//!   the finding instead of duplicating it.
pub mod securityhub;
