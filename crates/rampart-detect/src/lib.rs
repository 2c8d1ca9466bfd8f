//! Rampart's detective controls.
//!
//! * [`input`]: audit logs as shipped (lines, arrays, EventList, CloudWatch envelopes, gzip).
//! * [`event`]: one audit event, parsed whole in one SIMD pass and read through a borrowed
//!   view of its envelope ([`json`]: the JSON value and pointer helpers).
//! * [`analyzer`]: one pass over events through every detector, duplicates dropped
//!   ([`dedup`]: the bounded memory of what was seen; [`batch`]: lines parsed several at a
//!   time).
//! * [`falco`]: a Falco rule engine with Falco's default k8saudit rules embedded
//!   ([`falco_findings`]: their hits as findings).
//! * [`guardduty`]: the deterministic GuardDuty EKS audit-log finding types; [`baseline`]: the
//!   behavioural ones; [`window`]: rate detections; [`changes`]: sensitive changes.
//! * [`finding`]: what every detector reports; [`group`]: repeats folded with counts; [`workload`], [`aws_auth`]: shared readers.
//! * [`replay`]: audited requests decided again by a candidate policy set.
//! * [`scan`]: posture of a cluster snapshot.

pub mod analyzer;
pub mod aws_auth;
pub mod baseline;
pub mod batch;
pub mod changes;
pub mod dedup;
pub mod event;
pub mod falco;
pub mod falco_findings;
pub mod finding;
pub mod group;
pub mod guardduty;
pub mod input;
pub mod json;
pub mod replay;
pub mod scan;
pub mod window;
pub mod workload;
