//! One module per subcommand, plus the policy-source flags they share.

pub mod agent;
pub mod audit;
pub mod broker;
pub mod can_i;
pub mod certificate;
pub mod check;
pub mod check_manifests;
pub mod check_unified;
pub mod cluster;
pub mod convert;
pub mod demo;
pub mod guardrails;
pub mod images;
// Generates the Helm chart's webhook template; run by its test (the chart is committed).
#[cfg(test)]
mod helm_webhooks;
pub mod kms;
pub mod kube_config;
pub mod migrate;
pub mod netpol;
pub mod policy_objects;
pub mod rbac_query;
pub mod replay;
pub mod scan;
pub mod serve;
pub mod test;
pub mod token;
pub mod token_validation;
pub mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use rampart_policy::EngineOptions;
use rampart_policy::store::{PolicySources, Validation};

/// A duration as people write it: `90` (seconds), `90s`, `500ms`, `15m`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    // A bare number is seconds, as before humantime (`--window 90`).
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(std::time::Duration::from_secs).map_err(|e| format!("{text:?}: {e}"));
    }
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e} (e.g. 500ms, 10s, 5m, 1h30m)"))
}

/// A listen address: `IP:PORT`, or `HOST:PORT` with a host name that resolves
/// (`localhost:10288`; IPv4 preferred, as most clients try it first).
pub fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let addrs: Vec<std::net::SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|e| format!("{text:?}: expected IP:PORT or HOST:PORT ({e})"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{text:?}: the host name resolves to no address"))
}

/// How a server talks to its clients: TLS from given files, TLS with a self-signed
/// certificate generated on first start, or (loopback only) plain HTTP.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// Serving certificate (PEM). Without it a self-signed one is generated in --cert-dir.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Private key for --tls-cert (PEM).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Where the self-signed certificate is kept (generated on first start, then reused;
    /// default rampart-certs, or rampart-broker-certs for the broker).
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Extra DNS name or IP on the generated certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    pub tls_sans: Vec<String>,
    /// Serve plain HTTP instead of TLS. Refused unless the listen address is loopback.
    #[arg(long)]
    pub insecure_http: bool,
}

impl TlsArgs {
    /// The transport; a generated certificate names `extra_names` besides the defaults and
    /// --tls-san, and lives in --cert-dir or `default_dir`.
    pub fn transport(&self, default_dir: &str, extra_names: &[&str]) -> rampart_server::Transport {
        use rampart_server::Transport;
        use rampart_server::tls::{CertSource, default_names};
        if self.insecure_http {
            return Transport::PlainHttp;
        }
        if let (Some(cert), Some(key)) = (self.tls_cert.clone(), self.tls_key.clone()) {
            return Transport::Tls(CertSource::Files { cert, key });
        }
        let mut names = default_names();
        names.extend(extra_names.iter().map(|n| n.to_string()));
        names.extend(self.tls_sans.iter().cloned());
        let dir = self.cert_dir.clone().unwrap_or_else(|| PathBuf::from(default_dir));
        Transport::Tls(CertSource::SelfSigned { dir, names })
    }
}

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
    /// Repeat for more tiers, highest priority first. `rampart serve` also takes
    /// `cluster:[SELECTOR]`: the cluster's Policy objects (matching the label selector).
    #[arg(long = "policies", short = 'p', value_name = "PATH")]
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
    /// The Kubernetes release whose default roles --bootstrap-roles adds (1.36, 1.35, 1.34).
    #[arg(long, default_value = rampart_rbac::bootstrap::DEFAULT_VERSION, value_name = "VERSION")]
    pub kubernetes_version: String,
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
            kubernetes_version: rampart_rbac::bootstrap::DEFAULT_VERSION.into(),
        }
    }

    /// Fail with what to pass when no policy source was given.
    pub fn ensure_any(&self) -> anyhow::Result<()> {
        if self.tiers.is_empty()
            && self.rbac.is_empty()
            && self.access_entries.is_none()
            && !self.bootstrap_roles
        {
            anyhow::bail!(
                "no policies given: pass -p PATH (a policy tier), --rbac, --access-entries or --bootstrap-roles"
            );
        }
        Ok(())
    }

    /// The path tiers, and the `-p cluster:[SELECTOR]` tiers as `(position among the path
    /// tiers, selector)`.
    pub fn split_cluster_tiers(&self) -> (PolicyArgs, Vec<(usize, String)>) {
        let mut paths = self.clone();
        paths.tiers.clear();
        let mut cluster = Vec::new();
        for tier in &self.tiers {
            match tier.to_str().and_then(|t| t.strip_prefix("cluster:")) {
                Some(selector) => cluster.push((paths.tiers.len(), selector.to_owned())),
                None => paths.tiers.push(tier.clone()),
            }
        }
        (paths, cluster)
    }

    pub fn sources(&self, options: EngineOptions) -> anyhow::Result<PolicySources> {
        let mut sources = PolicySources::new(self.tiers.clone(), options);
        sources.rbac = self.rbac.clone();
        sources.rbac_first = self.rbac_first;
        sources.access_entries = self.access_entries.clone();
        sources.rbac_bootstrap = self.bootstrap_roles;
        sources.kubernetes_version = self.kubernetes_version.clone();
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

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("3h").unwrap().as_secs(), 10800);
        assert_eq!(super::parse_duration("90").unwrap().as_secs(), 90);
        assert!(super::parse_listen("localhost:10288").unwrap().ip().is_loopback());
        assert_eq!(super::parse_listen("0.0.0.0:1").unwrap().port(), 1);
        assert!(super::parse_listen("nowhere").is_err());
        assert_eq!(super::parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(super::parse_duration("500ms").unwrap().as_millis(), 500);
        assert!(super::parse_duration("3 parsecs").unwrap_err().contains("3 parsecs"));
    }
}
