//! Kubernetes RBAC, with the upstream authorizer's exact semantics and reason strings, indexed
//! by subject so a decision costs what the requester's own bindings cost, not a scan of every
//! binding in the cluster.
//!
//! * [`access_policies`]: EKS access entries and managed access policies as an allow-only authorizer.
//! * [`model`]: roles, bindings, rules and subjects (serde, lenient like the API's JSON).
//! * [`manifest`]: loading roles and bindings from YAML manifests.
//! * [`matching`]: one rule against one request; one subject against one user.
//! * [`aggregate`]: ClusterRole aggregation, as the controller does it.
//! * [`authorizer`]: the indexed authorizer.
//! * [`query`]: who-can, lookup and risk flags over a whole world.
//! * [`bootstrap`]: the default roles and bindings of kube-apiserver.
//! * [`convert`]: RBAC → Cedar policies (the upstream converter, with its bugs fixed).
//! * [`escalation`]: privilege-escalation checks on writes to roles and bindings.

pub mod access_policies;
pub mod aggregate;
pub mod authorizer;
pub mod bootstrap;
pub mod convert;
pub mod escalation;
pub mod manifest;
pub mod matching;
pub mod model;
pub mod query;

pub use authorizer::{Attributes, Decision, RbacAuthorizer, User};
