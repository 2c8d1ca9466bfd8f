//! `rampart broker`: Pod Identity for self-managed clusters. Validates pod tokens, maps
//! `(namespace, service account)` to a role through admin-owned associations, and calls STS
//! `AssumeRole` with EKS's session name and session tags; agents reach it over TLS with EKS
//! Auth's wire protocol.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rampart_identity::inject::IdentitySources;
use rampart_identity::pod_identity::broker::{Broker, BrokerConfig, ChainCredentials};
use rampart_server::ServeConfig;
use rampart_server::broker::{BrokerState, broker_router};

#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    Validate tokens with the apiserver (TokenReview) and serve TLS with a generated certificate:
        rampart broker --cluster-name c1 --region eu-west-1 \\
            --associations /etc/rampart/associations.yaml

    Validate tokens locally against the service-account key, checking pods through the API:
        rampart broker --cluster-name c1 --region eu-west-1 \\
            --associations assoc.yaml \\
            --token-validation jwks --issuer https://oidc.example.com/c1 \\
                --service-account-key-file sa.pub

The broker's own AWS credentials come from the standard chain (environment, web identity,
shared file, container, IMDS). Each association's role must trust the broker's principal with
sts:AssumeRole and sts:TagSession (see the README for the trust policy).")]
pub struct Args {
    /// Cluster name: the `{name}` of the request path and the `eks-cluster-name` session tag.
    #[arg(long, env = "RAMPART_CLUSTER_NAME")]
    pub cluster_name: String,
    /// The `eks-cluster-arn` session tag (default arn:<partition>:eks:<region>:<role account>:cluster/<name>).
    #[arg(long, value_name = "ARN")]
    pub cluster_arn: Option<String>,
    /// Region of STS and of the cluster ARN.
    #[arg(long, env = "AWS_REGION")]
    pub region: String,
    /// AWS partition (aws, aws-cn, aws-us-gov…) of the role ARNs and STS endpoint.
    #[arg(long, default_value = "aws")]
    pub partition: String,
    /// PodIdentityAssociation manifests (repeatable; re-read every 10 s, a bad edit keeps the
    /// last good set). Keep them where only cluster admins can write.
    #[arg(long = "associations", value_name = "FILE", required_unless_present = "associations_from_cluster")]
    pub associations: Vec<PathBuf>,
    /// Also read PodIdentityAssociation objects (rampart.dev/v1alpha1, cluster-scoped) from the
    /// cluster, re-listed every 10 s (needs `list podidentityassociations.rampart.dev`).
    #[arg(long)]
    pub associations_from_cluster: bool,
    /// How pod tokens are validated (`none` is refused: the broker is the check).
    #[arg(long, value_enum, default_value = "token-review")]
    pub token_validation: super::token_validation::Mode,
    #[command(flatten)]
    pub validation: super::token_validation::ValidationArgs,
    /// STS endpoint (default https://sts.<region>.amazonaws.com).
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL_STS")]
    pub sts_endpoint: Option<String>,
    /// Session duration of the first role (EKS uses 6 h); retried at 1 h when STS refuses it.
    #[arg(long, default_value_t = 21600, value_name = "SECONDS")]
    pub session_duration: u32,
    /// Address to listen on (IP:PORT or HOST:PORT).
    #[arg(long, default_value = "0.0.0.0:10289", value_parser = super::parse_listen, value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub tls: super::TlsArgs,
}

fn load_associations(
    paths: &[PathBuf],
) -> anyhow::Result<rampart_identity::pod_identity::broker::Associations> {
    Ok(IdentitySources::from_paths(paths)?.associations)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let associations = load_associations(&args.associations)?;
    if associations.is_empty() {
        tracing::warn!(
            "no PodIdentityAssociation with a roleArn in the association files: every request will get 404"
        );
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start runtime")?;
    runtime.block_on(async move {
        if args.token_validation == super::token_validation::Mode::None {
            bail!("the broker must validate pod tokens: use --token-validation token-review or jwks");
        }
        let needs_cluster = args.associations_from_cluster || args.validation.needs_cluster(args.token_validation);
        let client = if needs_cluster { Some(super::cluster::client(args.validation.kubeconfig.as_deref()).await?) } else { None };
        let validator = args
            .validation
            .build(args.token_validation, client.as_ref())
            .await?
            .context("no token validator")?;
        let config = BrokerConfig {
            cluster_name: args.cluster_name.clone(),
            cluster_arn: args.cluster_arn.clone(),
            region: args.region.clone(),
            partition: args.partition.clone(),
            sts_endpoint: args
                .sts_endpoint
                .clone()
                .unwrap_or_else(|| format!("https://{}", rampart_identity::client::sts_host(&args.region))),
            duration_seconds: args.session_duration,
        };
        let association_client = if args.associations_from_cluster { client.clone() } else { None };
        let mut associations = associations;
        if let Some(c) = &association_client {
            associations.extend(super::cluster::identity_sources(c).await?.associations);
        }
        let broker = Arc::new(Broker::new(config, validator, associations, Arc::new(ChainCredentials::default()))?);
        tracing::info!(associations = broker.association_count(), cluster = %args.cluster_name, "broker ready");
        let reload = broker.clone();
        let paths = args.associations.clone();
        tokio::spawn(async move {
            let mut last = None;
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let texts: Vec<_> = paths.iter().map(std::fs::read_to_string).filter_map(Result::ok).collect();
                if Some(&texts) == last.as_ref() && association_client.is_none() {
                    continue;
                }
                let merged = async {
                    let mut a = load_associations(&paths)?;
                    if let Some(c) = &association_client {
                        a.extend(super::cluster::identity_sources(c).await?.associations);
                    }
                    anyhow::Ok(a)
                };
                match merged.await {
                    Ok(a) => {
                        tracing::debug!(associations = a.len(), "associations reloaded");
                        reload.set_associations(a);
                    }
                    Err(e) => tracing::error!("association files are invalid, keeping the last good set: {e:#}"),
                }
                last = Some(texts);
            }
        });
        let broker_names = ["rampart-broker", "rampart-broker.rampart-system", "rampart-broker.rampart-system.svc"];
        let transport = args.tls.transport("rampart-broker-certs", &broker_names);
        let server = rampart_server::start_router(
            &ServeConfig { addr: args.listen, transport },
            broker_router(BrokerState::new(broker)),
        )?;
        let handle = server.handle();
        tokio::spawn(async move {
            super::shutdown_signal().await;
            handle.graceful_shutdown(Some(Duration::from_secs(10)));
        });
        server.wait().await?;
        Ok(ExitCode::SUCCESS)
    })
}
