//! One module per subcommand, plus the policy-source flags they share.

pub mod agent;
pub mod audit;
pub mod broker;
pub mod can_i;
pub mod check;
pub mod check_manifests;
pub mod cluster;
pub mod convert;
pub mod demo;
pub mod guardrails;
pub mod kube_config;
pub mod rbac_query;
pub mod replay;
pub mod scan;
pub mod serve;
pub mod token;
pub mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use rampart_policy::EngineOptions;
use rampart_policy::store::{PolicySources, Validation};

/// Schema validation level at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ValidationArg {
    /// Do not validate.
    Off,
    /// Report failures as warnings (Policy objects with `validation.enforced: true` still fail).
    #[default]
    Warn,
    /// Every policy must validate.
    Enforce,
}

/// Where policies come from.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// A policy tier: a directory of `.cedar` files and `Policy` YAML, or a single file.
    /// Repeat for more tiers, highest priority first.
    #[arg(long = "policies", short = 'p', value_name = "PATH", required_unless_present_any = ["rbac", "access_entries", "bootstrap_roles"])]
    pub tiers: Vec<PathBuf>,
    /// RBAC manifests (Roles, ClusterRoles and their bindings; files or directories) evaluated
    /// as one more tier, after the Cedar tiers (so Cedar forbids win), or first with --rbac-first.
    #[arg(long = "rbac", value_name = "PATH")]
    pub rbac: Vec<PathBuf>,
    /// Evaluate the RBAC (and access-policy) tiers before the Cedar tiers (their grants then win
    /// over Cedar forbids).
    #[arg(long)]
    pub rbac_first: bool,
    /// EKS access entries with their associated access policies (YAML `accessEntries:`), an
    /// allow-only tier placed with the RBAC tier.
    #[arg(long, value_name = "FILE")]
    pub access_entries: Option<PathBuf>,
    /// Add kube-apiserver's default roles and bindings (cluster-admin, admin/edit/view,
    /// discovery…) to the RBAC tier.
    #[arg(long)]
    pub bootstrap_roles: bool,
    /// Schema validation of policies at load time.
    #[arg(long, value_enum, default_value_t)]
    pub validation: ValidationArg,
    /// Validate against this Cedar schema instead of the embedded Kubernetes schema.
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
}

impl PolicyArgs {
    /// Cedar tiers only, unvalidated: for the query commands, which decide with policies that
    /// `serve` (and `validate`) already checked.
    pub fn cedar_only(tiers: Vec<PathBuf>) -> Self {
        PolicyArgs {
            tiers,
            validation: ValidationArg::Off,
            schema: None,
            rbac: vec![],
            rbac_first: false,
            access_entries: None,
            bootstrap_roles: false,
        }
    }

    pub fn sources(&self, options: EngineOptions) -> anyhow::Result<PolicySources> {
        let mut sources = PolicySources::new(self.tiers.clone(), options);
        sources.rbac = self.rbac.clone();
        sources.rbac_first = self.rbac_first;
        sources.access_entries = self.access_entries.clone();
        sources.rbac_bootstrap = self.bootstrap_roles;
        sources.validation = match self.validation {
            ValidationArg::Off => Validation::Off,
            ValidationArg::Warn => Validation::Warn,
            ValidationArg::Enforce => Validation::Enforce,
        };
        if let Some(path) = &self.schema {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read schema {}", path.display()))?;
            let schema = rampart_policy::schema::parse_schema(&text)
                .map_err(|e| anyhow::anyhow!("{}: invalid Cedar schema: {e}", path.display()))?;
            sources.schema = Some(Arc::new(schema));
        }
        Ok(sources)
    }
}

/// Resolves on SIGTERM or Ctrl-C (graceful shutdown of the servers).
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
