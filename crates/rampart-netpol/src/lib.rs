//! Rampart's network layer: what Kubernetes NetworkPolicies (v1) allow, who can reach whom,
//! and why.
//!
//! - [`world`]: namespaces, workloads (pods and pod templates, with their labels and container
//!   ports) and policies, read from manifests, each policy rule with its file and line;
//! - [`admin`]: AdminNetworkPolicy and BaselineAdminNetworkPolicy, the tiers around
//!   NetworkPolicies (priorities, Allow/Deny/Pass);
//! - [`ports`]: sets of ports per protocol, with named ports resolved per destination;
//! - [`reach`]: the connection from one endpoint to another — the egress side of the source
//!   and the ingress side of the destination, each isolated or not, and which rule allows it;
//! - [`analysis`]: the world indexed once (isolation per workload, each rule's peers as a
//!   bitset, interned port sets), for fast queries and the full matrix;
//! - [`findings`]: what `rampart scan` reports (no default-deny, policies selecting nothing,
//!   redundant rules, the metadata endpoint reachable, egress anywhere, open system pods);
//! - [`group`] and [`render`]: endpoints no policy tells apart grouped, and the matrix drawn
//!   (Graphviz DOT, SVG).
//!
//! The semantics are the NetworkPolicy v1 API's: a pod is isolated for ingress (egress) only if
//! a policy selecting it has that type (`policyTypes` defaulting to Ingress, plus Egress when
//! egress rules are present); rules and peers are unions; a peer with both `podSelector` and
//! `namespaceSelector` is their intersection; a rule whose `from`/`to` or `ports` is absent or
//! empty matches every peer or port, while an empty list of rules (`ingress: []`) allows
//! nothing; `ipBlock` matches addresses outside the cluster (pod addresses are not known
//! offline, as in network-config-analyzer), an address range only when it lies wholly inside
//! the block and outside its `except`s; both ends must allow.

pub mod admin;
pub mod analysis;
pub mod findings;
pub mod group;
pub mod ports;
pub mod reach;
pub mod render;
pub mod tiers;
pub mod world;

/// Manifests that cannot be read as workloads or policies, naming where.
#[derive(Debug, thiserror::Error)]
pub enum NetpolError {
    #[error("{origin}: {message}")]
    Manifest { origin: String, message: String },
    #[error("no endpoint named {0:?} (use NAMESPACE/NAME of a workload, or the name of an --external CIDR)")]
    UnknownEndpoint(String),
}
