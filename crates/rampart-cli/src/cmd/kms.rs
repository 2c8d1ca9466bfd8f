//! `rampart kms-plugin` (the kube-apiserver KMS v2 plugin) and `rampart kms status`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rampart_kms::envelope::Envelope;
use rampart_kms::remote::{AwsKmsKey, LocalKeyFile, RemoteKey};

#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    # AWS KMS (the usual credential chain; an alias is followed to its key):
    rampart kms-plugin --socket /var/run/rampart/kms.sock \\
        --aws-kms-key alias/my-cluster-secrets --cluster-name my-cluster
    # Development: a local key file (head -c 32 /dev/urandom > key):
    rampart kms-plugin --socket /tmp/kms.sock --local-key-file key

Print the apiserver's EncryptionConfiguration with `rampart kube-config
--encryption`.")]
pub struct PluginArgs {
    /// Unix socket to serve the KMS v2 API on (created with mode 0600).
    #[arg(long, default_value = "/var/run/rampart/kms.sock", value_name = "PATH")]
    pub socket: PathBuf,
    /// The AWS KMS key that wraps Rampart's local key (ARN, key id or alias/NAME).
    #[arg(
        long,
        value_name = "KEY",
        required_unless_present = "local_key_file",
        conflicts_with = "local_key_file"
    )]
    pub aws_kms_key: Option<String>,
    /// The cluster's name, bound into every AWS KMS ciphertext as the encryption context
    /// (kubernetes.io/cluster), so wrapped keys from another cluster do not open here.
    #[arg(long, value_name = "NAME", requires = "aws_kms_key")]
    pub cluster_name: Option<String>,
    /// AWS region (default: the SDK's: AWS_REGION, the profile, …).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Development: a file of 32 random bytes as the remote key instead of AWS KMS.
    #[arg(long, value_name = "FILE")]
    pub local_key_file: Option<PathBuf>,
    /// How long a health check of the remote key (a real round trip) is reused.
    #[arg(long, default_value = "10s", value_parser = super::parse_duration, value_name = "DURATION")]
    pub health_ttl: Duration,
    /// Serve Prometheus metrics on this loopback address (e.g. 127.0.0.1:10290).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, clap::Subcommand)]
pub enum KmsCommand {
    /// Ask a running plugin for its Status (version, health, key id), as the apiserver does.
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The plugin's unix socket.
    #[arg(long, default_value = "/var/run/rampart/kms.sock", value_name = "PATH")]
    pub socket: PathBuf,
}

pub fn plugin(args: PluginArgs) -> anyhow::Result<ExitCode> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start runtime")?;
    runtime.block_on(async move {
        let remote: Arc<dyn RemoteKey> = match (&args.aws_kms_key, &args.local_key_file) {
            (Some(key), _) => {
                let cluster = args.cluster_name.as_deref().ok_or_else(|| {
                    anyhow::anyhow!(
                        "--cluster-name is required with --aws-kms-key: it binds ciphertexts to this cluster"
                    )
                })?;
                Arc::new(AwsKmsKey::new(key, cluster, args.region.clone()).await)
            }
            (None, Some(file)) => Arc::new(LocalKeyFile::from_file(file)?),
            (None, None) => anyhow::bail!("name the remote key: --aws-kms-key KEY or --local-key-file FILE"),
        };
        let envelope = Arc::new(Envelope::new(remote, args.health_ttl, Arc::default()));
        // A first check now, so the log says at once whether the remote key works; the plugin
        // serves either way (the apiserver's /readyz then shows the failure, and it recovers).
        let status = envelope.status().await;
        if status.healthz == "ok" {
            tracing::info!(key_id = status.key_id, "remote key reachable");
        } else {
            tracing::warn!("remote key unhealthy: {}", status.healthz);
        }
        if let Some(addr) = args.metrics_listen {
            anyhow::ensure!(addr.ip().is_loopback(), "--metrics-listen must be a loopback address");
            let metrics = envelope.metrics.clone();
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let metrics = metrics.clone();
                    async move { metrics.encode() }
                }),
            );
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--metrics-listen {addr}"))?;
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        let listener = rampart_kms::server::bind(&args.socket)?;
        tracing::info!(socket = %args.socket.display(), "KMS v2 plugin serving");
        rampart_kms::server::serve(listener, envelope, async {
            super::shutdown_signal().await;
            tracing::info!("shutting down");
        })
        .await?;
        let _ = std::fs::remove_file(&args.socket);
        Ok(ExitCode::SUCCESS)
    })
}

pub fn run(command: KmsCommand) -> anyhow::Result<ExitCode> {
    match command {
        KmsCommand::Status(args) => status(args),
    }
}

fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let status = rampart_kms::client::status(&args.socket).await.with_context(|| {
            format!("cannot ask the plugin at {} (is `rampart kms-plugin` running?)", args.socket.display())
        })?;
        crate::outln!("version: {}\nhealthz: {}\nkey_id:  {}", status.version, status.healthz, status.key_id);
        Ok(if status.healthz == "ok" { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}
