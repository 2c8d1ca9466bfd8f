//! EKS Pod Identity semantics, on EKS and on any cluster.
//!
//! The node agent (`rampart agent`) answers the SDKs' container-credentials requests; it asks
//! either the real EKS Auth API (`AssumeRoleForPodIdentity`) or Rampart's broker, which speaks
//! the same wire protocol, so one client ([`eks_auth`]) serves both modes and the official
//! agent can point at the broker too.
//!
//! * [`claims`]: the agent's local, unverified token checks (upstream 0.1.37 order and wording,
//!   plus the audience check of agent PR #151).
//! * [`verify`]: the broker's full token validation — local JWKS with a live-pod check, or
//!   TokenReview (spec §4.4).
//! * [`broker`]: association lookup and the STS `AssumeRole` call with EKS's session name and
//!   six transitive session tags, target-role chaining, EKS Auth response shape (spec §4.5).
//! * [`eks_auth`]: the `AssumeRoleForPodIdentity` client (SigV4 `eks-auth`, retries).
//! * [`cache`]: the agent's per-token credential cache with single flight, refresh ahead of
//!   expiry and eviction on irrecoverable errors (spec §2.3.6, §4.6).
//! * [`wire`]: the JSON shapes (EKS Auth response, container-credentials answer) and the error
//!   type with its EKS error code and HTTP status.

pub mod broker;
pub mod cache;
pub mod claims;
pub mod eks_auth;
pub mod verify;
pub mod wire;

/// The only audience a Pod Identity token may carry.
pub const AUDIENCE: &str = "pods.eks.amazonaws.com";

/// The addresses SDKs reach the agent on; the `Host` header must name one of them.
pub const AGENT_HOSTS: [&str; 2] = ["169.254.170.23", "fd00:ec2::23"];

/// The six session tags EKS adds to the AssumeRole call, all transitive (spec §2.1.3).
pub const SESSION_TAG_KEYS: [&str; 6] = [
    "eks-cluster-arn",
    "eks-cluster-name",
    "kubernetes-namespace",
    "kubernetes-service-account",
    "kubernetes-pod-name",
    "kubernetes-pod-uid",
];

/// A boxed future, for the pluggable lookups (pods, TokenReview, credential sources).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
