//! Rampart's EKS operations, where EKS teams live day to day:
//!
//! - [`securityhub`]: findings to AWS Security Hub in ASFF, with stable ids so a repeat updates
//!   the finding instead of duplicating it.
//! - [`sources`]: audit logs from CloudWatch Logs (`FilterLogEvents`) and from a CloudWatch
//!   subscription's Kinesis stream, with checkpoints so a restart neither loses nor repeats.
pub mod securityhub;
pub mod sources;
