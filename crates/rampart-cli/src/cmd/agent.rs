//! `rampart agent`: the Pod Identity node agent. Serves `GET /v1/credentials` to the SDKs'
//! container-credentials providers on the link-local addresses, caches per token, refreshes
//! ahead of expiry, and gets credentials from EKS Auth (on EKS) or a Rampart broker (anywhere).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rampart_identity::pod_identity::AGENT_HOSTS;
use rampart_identity::pod_identity::broker::ChainCredentials;
use rampart_identity::pod_identity::cache::{CacheConfig, CredentialCache};
use rampart_identity::pod_identity::eks_auth::{EksAuthClient, Signing, default_endpoint};
use rampart_server::agent::{
    Agent, AgentConfig, ProbeTargets, bind_allowed, credentials_router, probe_router,
};

#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    On EKS (the node role needs eks-auth:AssumeRoleForPodIdentity):
        rampart agent --cluster-name prod --region eu-west-1

    On any cluster, with a Rampart broker:
        rampart agent --cluster-name c1 \\
            --broker https://rampart-broker.rampart-system.svc:10289 \\
            --broker-ca /etc/rampart/broker-ca.pem

    Locally, for tests (SDKs accept loopback URLs):
        rampart agent --cluster-name c1 --broker http://127.0.0.1:10289 \\
            --bind-hosts 127.0.0.1 --port 2710 --accepted-hosts 127.0.0.1 \\
                --probe-port 0 --metrics-port 0

Pods reach the agent at http://169.254.170.23/v1/credentials (the webhook injects it). Run it as a
hostNetwork DaemonSet; an init container adds the addresses to a dummy link (see the README).")]
pub struct Args {
    /// Cluster name, sent as the `{name}` of AssumeRoleForPodIdentity.
    #[arg(long, short = 'c', env = "RAMPART_CLUSTER_NAME")]
    pub cluster_name: String,
    /// Port of the credentials listeners.
    #[arg(long, short = 'p', default_value_t = 80)]
    pub port: u16,
    /// Addresses to listen on (repeatable): link-local or loopback only. IPv6 failures are
    /// warnings (nodes with IPv6 disabled), IPv4 failures are fatal.
    #[arg(long = "bind-hosts", short = 'b', value_name = "IP", default_values = AGENT_HOSTS)]
    pub bind_hosts: Vec<IpAddr>,
    /// Extra `Host` values to accept besides 169.254.170.23 and fd00:ec2::23 (repeatable);
    /// needed when binding elsewhere, since the Host check is the DNS-rebinding defence.
    #[arg(long = "accepted-hosts", value_name = "HOST")]
    pub accepted_hosts: Vec<String>,
    /// Probe listener on localhost (`/healthz`, `/readyz`); 0 picks a free port.
    #[arg(long, default_value_t = 2703)]
    pub probe_port: u16,
    /// Metrics listener address (`/metrics`, `/healthz`, `/readyz`).
    #[arg(long, default_value = "0.0.0.0")]
    pub metrics_address: IpAddr,
    /// Port of the Prometheus metrics endpoint (/metrics).
    #[arg(long, default_value_t = 2705)]
    pub metrics_port: u16,
    /// Longest time credentials are cached before a refresh (e.g. 3h, 90m); 0 disables the cache.
    #[arg(long, default_value = "3h", value_parser = super::parse_duration, value_name = "DURATION")]
    pub max_credential_retention_before_renewal: Duration,
    /// Cached entries at most; 0 disables the cache.
    #[arg(long, default_value_t = 2000)]
    pub max_cache_size: usize,
    /// Background refreshes per second at most (EKS Auth throttles per account).
    #[arg(long, default_value_t = 3)]
    pub max_service_qps: u32,
    /// A Rampart broker's URL (self-managed clusters). Without it the agent calls EKS Auth.
    #[arg(long, value_name = "URL", conflicts_with = "endpoint")]
    pub broker: Option<String>,
    /// CA bundle (PEM) that signs the broker's certificate.
    #[arg(long, value_name = "FILE", requires = "broker")]
    pub broker_ca: Option<PathBuf>,
    /// Override the EKS Auth endpoint (default https://eks-auth.<region>.api.aws).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Region of EKS Auth (signing and default endpoint).
    #[arg(long, env = "AWS_REGION", default_value = "")]
    pub region: String,
    /// This node's name: tokens bound to another node are refused.
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// Validate every token locally as well (default none: the broker or EKS Auth validates on
    /// each fetch). With jwks or token-review, cached credentials are served only to tokens
    /// that still validate — a deleted pod's token is refused at once, not when its credentials
    /// expire. Live-pod answers are reused for 5 s.
    #[arg(long, value_enum, default_value = "none")]
    pub token_validation: super::token_validation::Mode,
    #[command(flatten)]
    pub validation: super::token_validation::ValidationArgs,
    /// Timeout of one upstream attempt (3 attempts on 5xx and transport errors).
    #[arg(long, default_value = "5s", value_parser = super::parse_duration, value_name = "DURATION")]
    pub upstream_timeout: Duration,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut http = reqwest::Client::builder()
        .timeout(args.upstream_timeout)
        .connect_timeout(Duration::from_millis(500).max(args.upstream_timeout / 4))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = &args.broker_ca {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        http = http
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).context("--broker-ca is not PEM")?);
    }
    let http = http.build().context("cannot build the HTTP client")?;
    let upstream = match &args.broker {
        Some(url) => EksAuthClient::new(http, url.clone(), args.cluster_name.clone(), Signing::Unsigned),
        None => {
            if args.region.is_empty() {
                bail!("EKS mode needs --region (or AWS_REGION); for self-managed clusters pass --broker URL");
            }
            let endpoint = args.endpoint.clone().unwrap_or_else(|| default_endpoint(&args.region));
            let signing = Signing::SigV4 {
                region: args.region.clone(),
                credentials: Arc::new(ChainCredentials::default()),
            };
            EksAuthClient::new(http, endpoint, args.cluster_name.clone(), signing)
        }
    };
    let retention = i64::try_from(args.max_credential_retention_before_renewal.as_secs()).unwrap_or(i64::MAX);
    let cache =
        CredentialCache::new(CacheConfig { retention_seconds: retention, max_size: args.max_cache_size });
    let mut config = AgentConfig { node_name: args.node_name.clone(), ..AgentConfig::default() };
    config.accepted_hosts.extend(args.accepted_hosts.iter().cloned());
    for ip in &args.bind_hosts {
        if !bind_allowed(*ip) {
            bail!(
                "refusing to listen on {ip}: the agent binds only link-local (169.254.0.0/16, fd00:ec2::23) or loopback addresses, so credentials never leave the node"
            );
        }
    }
    tracing::info!(upstream = upstream.endpoint(), cluster = %args.cluster_name, "pod identity agent starting");
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start runtime")?;
    runtime.block_on(async move {
        // Fail at start when validation was asked for but cannot be set up: serving without it
        // would silently drop a check the operator relies on.
        let client = if args.validation.needs_cluster(args.token_validation) {
            Some(super::cluster::client(args.validation.kubeconfig.as_deref()).await?)
        } else {
            None
        };
        let validator = args.validation.build(args.token_validation, client.as_ref()).await?;
        let agent = Agent::with_validator(config, cache, upstream, validator);
        let mut listeners = Vec::new();
        for ip in &args.bind_hosts {
            let addr = SocketAddr::new(*ip, args.port);
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => listeners.push(l),
                Err(e) if ip.is_ipv6() => tracing::warn!(%addr, "cannot listen on IPv6 (disabled on this node?): {e}"),
                Err(e) => return Err(anyhow::anyhow!("cannot listen on {addr}: {e} (run the init step that adds the address to a dummy link, or pick --bind-hosts)")),
            }
        }
        if listeners.is_empty() {
            bail!("no credentials listener could be bound");
        }
        let bound: Vec<SocketAddr> = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();
        for listener in listeners {
            let app = credentials_router(agent.clone());
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        let probe_http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        let targets = ProbeTargets { listeners: bound.clone(), http: probe_http };
        let probe = tokio::net::TcpListener::bind(("127.0.0.1", args.probe_port)).await.context("probe port")?;
        let metrics = tokio::net::TcpListener::bind((args.metrics_address, args.metrics_port)).await.context("metrics port")?;
        tracing::info!(credentials = ?bound, probe = ?probe.local_addr().ok(), metrics = ?metrics.local_addr().ok(), "listening");
        let probe_app = probe_router(targets.clone(), None);
        tokio::spawn(async move { axum::serve(probe, probe_app).await });
        let metrics_app = probe_router(targets, Some(agent.clone()));
        tokio::spawn(async move { axum::serve(metrics, metrics_app).await });
        let budget = governor::RateLimiter::direct(governor::Quota::per_second(
            NonZeroU32::new(args.max_service_qps).unwrap_or(NonZeroU32::MIN),
        ));
        if args.broker.is_some() {
            // Association changes reach the cache within 10 s (EKS: up to 6 h).
            let syncer = agent.clone();
            tokio::spawn(async move {
                let mut last = None;
                loop {
                    syncer.sync_associations(&mut last).await;
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
            });
        }
        let refresher = agent.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                refresher.refresh_due(rampart_identity::client::now(), &budget).await;
            }
        });
        super::shutdown_signal().await;
        Ok(ExitCode::SUCCESS)
    })
}
