//! Rampart's identity layer: who is calling, as AWS IAM says.
//!
//! * [`authenticator`]: token → STS → mapping, cached until the token expires; TokenReview replies.
//! * [`client`]: the token client (aws-sigv4 presigning, ExecCredential).
//! * [`arn`]: ARN parsing and canonicalization (assumed-role sessions → their role).
//! * [`host`]: the STS endpoint allow-list per partition (FIPS, dual-stack, fallback region).
//! * [`inject`]: the workload-identity mutating webhook (IRSA and Pod Identity injection).
//! * [`mapping`]: aws-auth, access entries and authentication modes → Kubernetes users.
//! * [`migrate`]: aws-auth → access entries (file, AWS CLI commands, what cannot be expressed).
//! * [`oidc`]: the OIDC issuer documents (discovery, JWKS) for self-managed IRSA.
//! * [`pod_identity`]: EKS Pod Identity — agent token checks and cache, EKS Auth client, and
//!   the self-managed broker (token validation, STS with session tags).
//! * [`sdk`]: the official AWS SDK's configuration on ring, and profile credentials through it.
//! * [`sts`]: the GetCallerIdentity call (JSON or strict XML) and identity extraction.
//! * [`token`]: `k8s-aws-v1.` tokens — the pre-STS checks of aws-iam-authenticator, in its order,
//!   with the CVE-2022-2385 duplicate-parameter check first.
//! * [`workload_sources`]: ServiceAccount annotations and Pod Identity associations from files.

pub mod arn;
pub mod authenticator;
pub mod aws_json;
pub mod client;
pub mod host;
pub mod inject;
pub mod mapping;
pub mod migrate;
pub mod oidc;
pub mod pod_identity;
pub mod sdk;
pub mod sts;
pub mod token;
pub mod workload_sources;
