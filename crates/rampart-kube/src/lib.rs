//! Everything Rampart reads from or writes to a live kube-apiserver, in one place, used by
//! `rampart serve`, the agent, the broker and the query commands alike:
//!
//! - [`client`]: a client from a kubeconfig, or from the environment;
//! - [`sources`]: the live sources — namespace labels, RBAC, aws-auth, workload-identity
//!   sources, the service-account JWKS, scan snapshots;
//! - [`lookups`]: per-request lookups (pods, service accounts, TokenReviews);
//! - [`policies`]: tiers of `cedar.k8s.aws` `Policy` objects kept current by a watcher;
//! - [`status`]: their status conditions, written by one replica at a time (Lease election).
//!
//! Errors are typed ([`KubeError`]) and say which permission a refused call needs.

pub mod lookups;
pub mod policies;
pub mod sources;
pub mod status;

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

/// What can go wrong talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("cannot read kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("no cluster configuration found (set KUBECONFIG, pass --kubeconfig, or run in a pod): {0}")]
    NoConfig(#[source] kube::config::InferConfigError),
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// An API call failed; `needs` names the permission it takes.
    #[error("cannot {what} (needs {needs}): {source}")]
    Api {
        what: String,
        needs: &'static str,
        #[source]
        source: kube::Error,
    },
    /// The cluster answered with something Rampart cannot use.
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}

impl KubeError {
    pub(crate) fn api(what: impl Into<String>, needs: &'static str) -> impl FnOnce(kube::Error) -> Self {
        move |source| KubeError::Api { what: what.into(), needs, source }
    }
    pub(crate) fn invalid(what: impl Into<String>, message: impl ToString) -> Self {
        KubeError::Invalid { what: what.into(), message: message.to_string() }
    }
}

/// A client from `kubeconfig`, or from the environment (`KUBECONFIG`, `~/.kube/config`, or the
/// in-cluster service account) when none is given.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, KubeError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|source| KubeError::Kubeconfig { path: path.to_path_buf(), source })?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|source| KubeError::Kubeconfig { path: path.to_path_buf(), source })?
        }
        None => kube::Config::infer().await.map_err(KubeError::NoConfig)?,
    };
    kube::Client::try_from(config).map_err(KubeError::Client)
}
