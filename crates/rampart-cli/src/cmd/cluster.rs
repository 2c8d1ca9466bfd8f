//! The query commands' RBAC source flags; everything that talks to the cluster lives in the
//! `rampart-kube` crate, re-exported here for the commands.

pub use rampart_kube::lookups::{KubePods, KubeServiceAccounts, KubeTokenReview};
pub use rampart_kube::sources::{
    aws_auth_configmap, cluster_jwks, identity_sources, namespace_labels, snapshot,
};

/// A client from `kubeconfig`, or from the environment.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    Ok(rampart_kube::client(kubeconfig).await?)
}

/// RBAC from manifests, or from the live cluster when `from_cluster` (blocking).
pub fn rbac_from(source: &RbacSource) -> anyhow::Result<rampart_rbac::manifest::World> {
    let world = if source.rbac_from_cluster {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let client = client(source.kubeconfig.as_deref()).await?;
            Ok::<_, anyhow::Error>(rampart_kube::sources::rbac_world(&client).await?)
        })?
    } else {
        rampart_rbac::manifest::World::from_paths(&source.rbac)?
    };
    Ok(if source.bootstrap_roles { world.with_bootstrap_version(&source.kubernetes_version)? } else { world })
}

/// Where RBAC objects come from, for the query commands.
#[derive(Debug, Clone, clap::Args)]
pub struct RbacSource {
    /// RBAC manifests (files or directories of YAML: roles, bindings; `kubectl get … -o yaml` output).
    #[arg(long = "rbac", value_name = "PATH")]
    pub rbac: Vec<std::path::PathBuf>,
    /// Read Roles, ClusterRoles and bindings from the cluster instead of --rbac files.
    #[arg(long, conflicts_with = "rbac")]
    pub rbac_from_cluster: bool,
    /// Kubeconfig for --rbac-from-cluster (default: KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Add kube-apiserver's default roles and bindings (cluster-admin, admin/edit/view, discovery…).
    #[arg(long)]
    pub bootstrap_roles: bool,
    /// The Kubernetes release whose default roles --bootstrap-roles adds (1.36, 1.35, 1.34).
    #[arg(long, default_value = rampart_rbac::bootstrap::DEFAULT_VERSION, value_name = "VERSION")]
    pub kubernetes_version: String,
}
