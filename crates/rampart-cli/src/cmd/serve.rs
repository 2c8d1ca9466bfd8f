//! `rampart serve`: the webhooks, with hot reload and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use rampart_policy::EngineOptions;
use rampart_policy::engine::OnMappingError;
use rampart_policy::store::LiveEngine;
use rampart_policy::store::live::ReloadEvent;
use rampart_server::metrics::ReloadLabels;
use rampart_server::{AppState, Metrics, ServeConfig};

use rampart_identity::inject::IdentitySources;

use super::PolicyArgs;
use super::policy_objects;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub policies: PolicyArgs,
    /// Address to listen on. The upstream wiring runs the webhook beside the apiserver on
    /// loopback; use 0.0.0.0:10288 behind a Service.
    #[arg(long, default_value = "127.0.0.1:10288", value_parser = super::parse_listen, value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub tls: super::TlsArgs,
    #[command(flatten)]
    pub images: super::images::ImageArgs,
    /// Load a tier from the cluster's `cedar.k8s.aws` Policy objects (with an optional label
    /// selector, e.g. `--policies-from-cluster rampart.dev/tier=org`), after the -p tiers;
    /// repeatable. `-p cluster:[SELECTOR]` places such a tier among the -p tiers. Changes apply
    /// within a second; an invalid object keeps its last good policies.
    #[arg(long, value_name = "SELECTOR", num_args = 0..=1, default_missing_value = "")]
    pub policies_from_cluster: Vec<String>,
    /// Namespace of the Lease that elects the one replica writing Policy status.
    #[arg(long, default_value = "rampart-system", value_name = "NS")]
    pub status_namespace: String,
    /// Unified policies (`.cedar` files or directories, one tier; `rampart schema --unified`
    /// prints their schema). Asked before the other tiers at authorization; a conditional
    /// answer is allowed there and finished by the validating webhook (/v1/admit), which must
    /// then see every write to the resources they name (`rampart kube-config --unified`).
    #[arg(long = "unified", value_name = "PATH")]
    pub unified: Vec<PathBuf>,
    /// Do not watch the policy paths for changes.
    #[arg(long)]
    pub no_watch: bool,
    /// Apply a reload even when it leaves a policy file that had policies, or a whole tier,
    /// with none. Off by default: a truncated file or a ConfigMap glitch would otherwise
    /// silently drop forbids; such reloads are refused, logged and counted instead.
    #[arg(long)]
    pub allow_policy_removal: bool,
    /// Admission: what to do with objects that cannot be mapped to Cedar.
    #[arg(long, value_enum, default_value = "deny")]
    pub on_mapping_error: OnErrorArg,
    /// Namespaces admission never evaluates (repeatable; replaces the default list).
    #[arg(long = "exempt-namespace", value_name = "NS", default_values = ["kube-system", "rampart-system", "cedar-k8s-authz-system"])]
    pub exempt_namespaces: Vec<String>,
    /// Guardrails config (Pod Security defaults and exemptions, best-practice rules), YAML.
    /// Enables Pod Security and the rules in the admission path, before the Cedar tiers.
    #[arg(long, value_name = "FILE")]
    pub guardrails: Option<PathBuf>,
    /// Namespaces with their `pod-security.kubernetes.io/*` labels (`kubectl get ns -o yaml`).
    /// Namespaces not listed get the configured defaults.
    #[arg(long, value_name = "FILE")]
    pub namespaces: Option<PathBuf>,
    /// Read namespace labels from the cluster (re-listed every --cluster-refresh-interval)
    /// instead of --namespaces.
    #[arg(long, conflicts_with = "namespaces")]
    pub namespaces_from_cluster: bool,
    /// Kubeconfig for the *-from-cluster sources (default: KUBECONFIG, ~/.kube/config, or
    /// in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// How often the *-from-cluster sources (namespace labels, aws-auth, service accounts and
    /// associations) and the identity files are read again, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = super::parse_duration, value_name = "DURATION")]
    pub cluster_refresh_interval: Duration,
    /// Enable `POST /v1/authenticate` (aws-iam-authenticator-compatible TokenReview) for this
    /// cluster id (the `x-k8s-aws-id` clients sign; the cluster name on EKS).
    #[arg(long, value_name = "ID", env = "RAMPART_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// aws-auth ConfigMap (YAML) for IAM → Kubernetes user mapping.
    #[arg(long, value_name = "FILE", requires = "cluster_id")]
    pub aws_auth: Option<PathBuf>,
    /// Read kube-system/aws-auth from the cluster instead (re-read every
    /// --cluster-refresh-interval; see --kubeconfig).
    #[arg(long, requires = "cluster_id", conflicts_with = "aws_auth")]
    pub aws_auth_from_cluster: bool,
    /// How IAM principals are mapped: CONFIG_MAP (aws-auth), API_AND_CONFIG_MAP (access
    /// entries first, then aws-auth) or API (access entries only; --access-entries).
    #[arg(long, default_value = "API_AND_CONFIG_MAP", requires = "cluster_id")]
    pub authentication_mode: String,
    /// AWS partition of the accepted STS hosts.
    #[arg(long, default_value = "aws")]
    pub partition: String,
    /// This cluster's region: also accepts `sts.<region>.<partition domain>` for regions the
    /// endpoint rules do not know yet.
    #[arg(long, default_value = "")]
    pub region: String,
    /// Send STS calls here instead of the token's host (private endpoints, tests). Tokens may
    /// name this endpoint or a valid STS host; any other host is still refused.
    #[arg(long, value_name = "URL")]
    pub sts_endpoint: Option<String>,
    /// Look instances up with ec2:DescribeInstances for `{{EC2PrivateDNSName}}` templates,
    /// using the server's AWS credentials (environment or shared file) in --region.
    #[arg(long, requires = "cluster_id")]
    pub ec2_lookups: bool,
    /// EC2 endpoint for --ec2-lookups (default https://ec2.<region>.amazonaws.com).
    #[arg(long, value_name = "URL")]
    pub ec2_endpoint: Option<String>,
    /// Enable `POST /v1/mutate` (IRSA injection) with these ServiceAccount manifests
    /// (`kubectl get sa -A -o yaml`; repeatable). Their `eks.amazonaws.com/*` annotations
    /// decide which pods get which role; upstream's `pod-identity-webhook` ConfigMap is read too.
    /// Re-read every --cluster-refresh-interval; a bad file keeps the last good set.
    #[arg(long = "service-accounts", value_name = "FILE")]
    pub service_accounts: Vec<PathBuf>,
    /// Enable `POST /v1/mutate` (Pod Identity injection) for these associations: upstream's
    /// `{"identities":[…]}` file or PodIdentityAssociation objects (repeatable; re-read like --service-accounts).
    #[arg(long = "pod-identity-associations", value_name = "FILE")]
    pub pod_identity_associations: Vec<PathBuf>,
    /// Read ServiceAccounts, PodIdentityAssociation objects (rampart.dev/v1alpha1) and the
    /// `pod-identity-webhook` ConfigMap from the cluster (re-listed every
    /// --cluster-refresh-interval; see --kubeconfig).
    /// Enables `POST /v1/mutate`; files given as well are merged in.
    #[arg(long)]
    pub identity_from_cluster: bool,
    /// With --identity-from-cluster: how long to look for a pod's service account that is not
    /// listed yet (created with the pod) before admitting the pod unchanged, e.g. 2s.
    #[arg(long, default_value = "0s", value_parser = super::parse_duration, value_name = "DURATION")]
    pub service_account_lookup_grace_period: Duration,
    /// Complete `role-arn` annotations that hold only a role name or path with this account
    /// (and the partition of --aws-default-region): `team/app` → arn:aws:iam::ACCOUNT:role/team/app.
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub compose_role_arn: Option<String>,
    /// Region injected as AWS_REGION and AWS_DEFAULT_REGION (unless a container sets them).
    #[arg(long, value_name = "REGION")]
    pub aws_default_region: Option<String>,
    /// Inject AWS_STS_REGIONAL_ENDPOINTS=regional unless a service account says otherwise.
    #[arg(long)]
    pub sts_regional_endpoints: bool,
    /// Injection settings with amazon-eks-pod-identity-webhook's flag names and defaults.
    #[command(flatten)]
    pub injection: InjectionArgs,
    /// Publish `/.well-known/openid-configuration` and `/openid/v1/jwks` for this issuer (the
    /// apiserver's --service-account-issuer, an https URL where STS can fetch them), so IAM can
    /// trust IRSA tokens of a self-managed cluster. Needs --service-account-key-file.
    #[arg(long, value_name = "URL", requires = "service_account_key_files")]
    pub oidc_issuer: Option<String>,
    /// The apiserver's service-account signing key(s), public or private PEM (repeatable, for
    /// rotation: publish old and new keys). Only public halves are ever served.
    #[arg(long = "service-account-key-file", value_name = "FILE")]
    pub service_account_key_files: Vec<PathBuf>,
    /// The webhook's own user, always allowed to read policies and RBAC.
    #[arg(long, default_value = "system:authorizer:cedar-authorizer", value_name = "USER")]
    pub self_identity: String,
    /// How denials read in kubectl and the audit log: `text` names each deciding policy by
    /// its `@id` (or generated id) and file:line:col; `cedar-go` is the Go webhook's JSON,
    /// byte for byte, for log parsers written against it.
    #[arg(long, value_enum, default_value = "text")]
    pub reason_format: ReasonFormatArg,
}

/// The pod-identity webhook's knobs, named and defaulted as upstream names them, so its
/// deployments' flags carry over.
#[derive(Debug, Clone, clap::Args)]
pub struct InjectionArgs {
    /// Prefix of the service-account and pod annotations (`<prefix>/role-arn`, …).
    #[arg(long, default_value = "eks.amazonaws.com", value_name = "PREFIX")]
    pub annotation_prefix: String,
    /// Default audience of injected IRSA tokens.
    #[arg(long, default_value = "sts.amazonaws.com", value_name = "AUD")]
    pub token_audience: String,
    /// Where the IRSA token is mounted in each container.
    #[arg(long, default_value = "/var/run/secrets/eks.amazonaws.com/serviceaccount", value_name = "DIR")]
    pub token_mount_path: String,
    /// Default lifetime of injected tokens, in seconds (below 600 is raised to 600).
    #[arg(long, default_value_t = 86_400, value_name = "SECONDS")]
    pub token_expiration: i64,
    /// Audience of Pod Identity tokens.
    #[arg(long, default_value = "pods.eks.amazonaws.com", value_name = "AUD")]
    pub container_credentials_audience: String,
    /// Where the Pod Identity token is mounted.
    #[arg(
        long,
        default_value = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount",
        value_name = "DIR"
    )]
    pub container_credentials_token_mount_path: String,
    /// Name of the Pod Identity token volume.
    #[arg(long, default_value = "eks-pod-identity-token", value_name = "NAME")]
    pub container_credentials_token_volume_name: String,
    /// File name of the Pod Identity token inside its mount.
    #[arg(long, default_value = "eks-pod-identity-token", value_name = "FILE")]
    pub container_credentials_token_path: String,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` injected for Pod Identity (the node agent).
    #[arg(long, default_value = "http://169.254.170.23/v1/credentials", value_name = "URL")]
    pub container_credentials_full_uri: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReasonFormatArg {
    /// `forbidden by policy no-prod-configmaps (org/admission.cedar:12:1)`.
    Text,
    /// `{"reasons":[{"policy":…,"position":{…}}]}`, as cedar-access-control-for-k8s writes it.
    CedarGo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnErrorArg {
    /// Reject (fail closed).
    Deny,
    /// Allow and log (fail open).
    Allow,
}

pub fn engine_options(exempt: Vec<String>, self_identity: String, on_error: OnErrorArg) -> EngineOptions {
    EngineOptions {
        self_identity,
        admission_exempt_namespaces: exempt,
        on_mapping_error: match on_error {
            OnErrorArg::Deny => OnMappingError::Deny,
            OnErrorArg::Allow => OnMappingError::Allow,
        },
        ..EngineOptions::default()
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut options =
        engine_options(args.exempt_namespaces.clone(), args.self_identity.clone(), args.on_mapping_error);
    options.reason_format = match args.reason_format {
        ReasonFormatArg::Text => rampart_types::ReasonFormat::Text,
        ReasonFormatArg::CedarGo => rampart_types::ReasonFormat::CedarGo,
    };
    // `-p cluster:[SELECTOR]` tiers sit among the path tiers; --policies-from-cluster ones follow.
    let (policy_args, mut cluster_tiers) = args.policies.split_cluster_tiers();
    for selector in &args.policies_from_cluster {
        cluster_tiers.push((policy_args.tiers.len(), selector.clone()));
    }
    let mut sources = policy_args.sources(options)?;
    sources.allow_policy_removal = args.allow_policy_removal;
    let metrics = Arc::new(Metrics::new());
    let transport = args.tls.transport("rampart-certs", &[]);
    let guardrails = if args.namespaces_from_cluster {
        Some(super::guardrails::build(args.guardrails.as_deref(), None)?)
    } else {
        super::guardrails::load(args.guardrails.as_deref(), args.namespaces.as_deref())?
    };
    let authenticator = authenticator(&args)?;
    let injection = injection(&args)?;
    let issuer = issuer(&args)?;
    let injection_files: Vec<PathBuf> =
        args.service_accounts.iter().chain(&args.pod_identity_associations).cloned().collect();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start runtime")?;
    let refresh = args.cluster_refresh_interval.max(Duration::from_millis(500));
    runtime.block_on(async move {
        let live_cell: Arc<OnceLock<Arc<LiveEngine>>> = Arc::default();
        if !cluster_tiers.is_empty() {
            let client = super::cluster::client(args.kubeconfig.as_deref()).await?;
            sources.object_tiers = policy_objects::start(
                &client,
                &cluster_tiers,
                &sources,
                live_cell.clone(),
                metrics.clone(),
                &args.status_namespace,
            )
            .await?;
        }
        let (live, warnings) = LiveEngine::load(sources).map_err(|e| {
            anyhow::anyhow!("{e}\nfix the policies above and start again; nothing was served")
        })?;
        warnings.iter().for_each(|w| tracing::warn!("{w}"));
        let _ = live_cell.set(live.clone());
        let count = live.engine().policy_count();
        metrics.policies_loaded.set(i64::try_from(count).unwrap_or(i64::MAX));
        tracing::info!(
            policies = count,
            tiers = args.policies.tiers.len() + args.policies_from_cluster.len(),
            "policies loaded"
        );
        let _watch = if args.no_watch {
            None
        } else {
            let m = metrics.clone();
            let guard = live
                .watch(move |event| observe_reload(&m, event))
                .context("cannot watch the policy paths (use --no-watch to run without reloading)")?;
            Some(guard)
        };
        let config = ServeConfig { addr: args.listen, transport };
        // Live sources from the cluster: each must be read once before this replica answers a
        // review (until then /readyz says which is missing and reviews get 503); later read
        // errors keep the last good state.
        let mut cluster: Option<kube::Client> = None;
        if args.aws_auth_from_cluster || args.identity_from_cluster || args.namespaces_from_cluster {
            cluster = Some(super::cluster::client(args.kubeconfig.as_deref()).await?);
        }
        let mut injection = injection;
        if let (Some(inj), true, Some(client)) = (&mut injection, args.identity_from_cluster, &cluster) {
            let lookup: Arc<dyn rampart_server::mutate::ServiceAccountLookup> =
                Arc::new(super::cluster::KubeServiceAccounts(client.clone()));
            inj.lookup = Some((lookup, args.service_account_lookup_grace_period));
        }
        let mut state =
            AppState::from_parts(live, metrics.clone(), guardrails, authenticator, injection, issuer);
        let mut _unified_watch = None;
        if !args.unified.is_empty() {
            let unified =
                rampart_unified::live::LiveUnified::load(args.unified.clone(), args.allow_policy_removal)
                    .map_err(|e| {
                        anyhow::anyhow!("unified policies: {e}\nfix them and start again; nothing was served")
                    })?;
            tracing::info!(policies = unified.tier().policy_count(), "unified policies loaded");
            if !args.no_watch {
                let m = metrics.clone();
                _unified_watch = Some(
                    unified
                        .watch(move |event| observe_unified_reload(&m, event))
                        .context("cannot watch the unified policy paths (use --no-watch)")?,
                );
            }
            state = state.with_unified(unified);
        }
        if args.images.enabled() {
            let images =
                image_verification(&args.images, args.kubeconfig.as_deref(), cluster.clone()).await?;
            if args.images.image_policies_from_cluster {
                let client = match &cluster {
                    Some(c) => c.clone(),
                    None => super::cluster::client(args.kubeconfig.as_deref()).await?,
                };
                image_policies_from_cluster(&state, &args.images, client, images.admitter.clone(), refresh)?;
            }
            state = state.with_images(images);
        }
        if let (true, Some(authn), Some(client)) =
            (args.aws_auth_from_cluster, state.authenticator.clone(), cluster.clone())
        {
            // An empty mapping would lock every IAM user out silently: not ready until read.
            live_source(&state, "aws-auth", refresh, move || {
                let (client, authn) = (client.clone(), authn.clone());
                async move {
                    let text = super::cluster::aws_auth_configmap(&client).await?;
                    let (auth, warnings) =
                        rampart_identity::mapping::AwsAuth::from_configmap(text.as_deref().unwrap_or("{}"))
                            .map_err(|e| anyhow::anyhow!("invalid: {e}"))?;
                    warnings.iter().for_each(|w| tracing::debug!("{w}"));
                    authn.set_aws_auth(auth).await;
                    Ok(())
                }
            });
        }
        if let (true, Some(g), Some(client)) =
            (args.namespaces_from_cluster, state.guardrails.as_ref(), cluster.clone())
        {
            // Pod Security without namespace labels would enforce the defaults everywhere.
            let base = g.load_full();
            let target = state.clone();
            live_source(&state, "namespaces", refresh, move || {
                let (client, base, target) = (client.clone(), base.clone(), target.clone());
                async move {
                    let labels = super::cluster::namespace_labels(&client).await?;
                    target.replace_guardrails(base.with_namespace_labels(labels));
                    Ok(())
                }
            });
        }
        if state.injection.is_some() {
            let target = state.clone();
            let files = injection_files.clone();
            let read_identity = move || {
                let (target, files, client) = (target.clone(), files.clone(), cluster.clone());
                async move {
                    let contents = read_all(&files);
                    let mut sources = sources_from(&files, &contents)?;
                    if let (true, Some(client)) = (args.identity_from_cluster, &client) {
                        sources.merge(super::cluster::identity_sources(client).await?);
                    }
                    if let Some(i) = target.injection.as_ref() {
                        tracing::debug!(
                            service_accounts = sources.service_accounts.len(),
                            associations = sources.pod_identity.len(),
                            "identity sources read"
                        );
                        i.sources.store(Arc::new(sources));
                    }
                    Ok(())
                }
            };
            // An empty source set would silently stop injecting credentials.
            live_source(&state, "identity", refresh, read_identity);
        }
        let server = rampart_server::start(&config, state)?;
        let handle = server.handle();
        tokio::spawn(async move {
            super::shutdown_signal().await;
            tracing::info!("shutting down");
            handle.graceful_shutdown(Some(Duration::from_secs(10)));
        });
        server.wait().await.context("server failed")?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The `/v1/images` verifier: policies with their keys, registry credentials (config.json,
/// ECR logins renewed hourly, the pods' imagePullSecrets when a cluster is reachable).
async fn image_verification(
    images: &super::images::ImageArgs,
    kubeconfig: Option<&std::path::Path>,
    cluster: Option<kube::Client>,
) -> anyhow::Result<rampart_server::images::ImageVerification> {
    let cluster = match cluster {
        Some(c) => Some(c),
        None => match super::cluster::client(kubeconfig).await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::info!("no cluster connection, so no imagePullSecrets or Secret keys: {e}");
                None
            }
        },
    };
    let keys = super::images::Keys { secrets: cluster.clone().map(rampart_kube::lookups::KubeSecrets) };
    let ecr = super::images::ecr_credentials(&images.ecr_regions).await?;
    let admitter = Arc::new(images.admitter(&keys, ecr).await?);
    if !images.ecr_regions.is_empty() {
        // ECR tokens last 12 hours; renewing hourly leaves room for failures (logged, the
        // previous token keeps serving until it expires).
        let (target, regions, base) =
            (admitter.clone(), images.ecr_regions.clone(), images.config_credentials()?);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                match super::images::ecr_credentials(&regions).await {
                    Ok(ecr) => target.credentials.store(Arc::new(base.merged(&ecr))),
                    Err(e) => tracing::warn!("ECR login renewal failed: {e:#}"),
                }
            }
        });
    }
    let pull_secrets = cluster.map(|c| {
        Arc::new(rampart_kube::lookups::KubeSecrets(c)) as Arc<dyn rampart_server::images::PullSecrets>
    });
    Ok(rampart_server::images::ImageVerification { admitter, pull_secrets })
}

/// Keep the admitter's policies current with the cluster's ImagePolicy objects (and the
/// --image-policy files): reloaded, keys included, only when an object changed.
fn image_policies_from_cluster(
    state: &AppState,
    images: &super::images::ImageArgs,
    client: kube::Client,
    admitter: Arc<rampart_images::admission::ImageAdmitter>,
    refresh: Duration,
) -> anyhow::Result<()> {
    let files = images.documents()?;
    let seen: Arc<tokio::sync::Mutex<Option<Vec<String>>>> = Arc::default();
    live_source(state, "image-policies", refresh, move || {
        let (client, admitter, files, seen) = (client.clone(), admitter.clone(), files.clone(), seen.clone());
        async move {
            let objects = rampart_kube::sources::image_policies(&client).await?;
            let versions: Vec<String> = objects.iter().map(|(v, _)| v.clone()).collect();
            let mut seen = seen.lock().await;
            if seen.as_ref() == Some(&versions) {
                return Ok(());
            }
            let mut documents = files;
            for (version, object) in objects {
                documents
                    .push(rampart_images::policy::from_object(object, &format!("ImagePolicy {version}"))?);
            }
            let keys =
                super::images::Keys { secrets: Some(rampart_kube::lookups::KubeSecrets(client.clone())) };
            let policies = rampart_images::verify::PolicySet::load(documents, &keys).await?;
            tracing::info!(policies = policies.len(), "image policies loaded from the cluster");
            admitter.policies.store(Arc::new(policies));
            *seen = Some(versions);
            Ok(())
        }
    });
    Ok(())
}

/// Keep a live source current: read it until the first read succeeds (retrying with backoff;
/// the replica is not ready meanwhile), then every `refresh`. A failed read is logged and
/// counted, shown by `/readyz`, and the last good state keeps serving.
fn live_source<F, Fut>(state: &AppState, name: &'static str, refresh: Duration, mut read: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let metrics = state.metrics.clone();
    metrics.expect_source(name);
    tokio::spawn(async move {
        let mut synced = false;
        let mut backoff = Duration::from_millis(500);
        loop {
            match read().await {
                Ok(()) => {
                    if !synced {
                        tracing::info!(source = name, "read from the cluster");
                        synced = true;
                    }
                    metrics.report_source(name, Ok(()));
                    tokio::time::sleep(refresh).await;
                }
                Err(e) if synced => {
                    tracing::warn!(source = name, "refresh failed, keeping the last good state: {e:#}");
                    metrics.report_source(name, Err(format!("{e:#}")));
                    tokio::time::sleep(refresh).await;
                }
                Err(e) => {
                    tracing::warn!(
                        source = name,
                        "not ready: the first read failed, retrying in {backoff:?}: {e:#}"
                    );
                    metrics.report_source(name, Err(format!("{e:#}")));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    });
}

/// Log and count one reload attempt (file watch or Policy objects).
pub(crate) fn observe_reload(m: &Metrics, event: &ReloadEvent) {
    match event {
        ReloadEvent::Reloaded { policies, warnings } => {
            m.reloads.get_or_create(&ReloadLabels { result: "ok" }).inc();
            m.policies_loaded.set(i64::try_from(*policies).unwrap_or(i64::MAX));
            warnings.iter().for_each(|w| tracing::warn!("{w}"));
            tracing::info!(policies, "policies reloaded");
        }
        ReloadEvent::Refused { emptied } => {
            m.reloads.get_or_create(&ReloadLabels { result: "refused" }).inc();
            tracing::error!(
                emptied = %emptied.join(", "),
                "policy reload refused: it would remove every policy of these sources; still \
                 serving the previous policies (restore the files, or start with \
                 --allow-policy-removal to let emptied files take effect)"
            );
        }
        ReloadEvent::Failed(e) => {
            m.reloads.get_or_create(&ReloadLabels { result: "error" }).inc();
            tracing::error!("policy reload failed, still serving the previous policies:\n{e}");
        }
    }
}

fn observe_unified_reload(m: &Metrics, event: &rampart_unified::live::Reload) {
    use rampart_unified::live::Reload;
    match event {
        Reload::Reloaded { policies } => {
            m.reloads.get_or_create(&ReloadLabels { result: "ok" }).inc();
            tracing::info!(policies, "unified policies reloaded");
        }
        Reload::Refused { emptied } => {
            m.reloads.get_or_create(&ReloadLabels { result: "refused" }).inc();
            tracing::error!(
                emptied = %emptied.join(", "),
                "unified policy reload refused: it would remove every policy of these files; \
                 still serving the previous policies (restore the files, or start with \
                 --allow-policy-removal)"
            );
        }
        Reload::Failed(e) => {
            m.reloads.get_or_create(&ReloadLabels { result: "error" }).inc();
            tracing::error!("unified policy reload failed, still serving the previous policies: {e}");
        }
    }
}

/// File contents, to notice changes cheaply (ServiceAccount dumps are small).
fn read_all(paths: &[PathBuf]) -> Vec<Option<String>> {
    paths.iter().map(|p| std::fs::read_to_string(p).ok()).collect()
}

/// Identity sources from contents already read by [`read_all`] (no second read).
fn sources_from(
    paths: &[PathBuf],
    contents: &[Option<String>],
) -> anyhow::Result<rampart_identity::inject::IdentitySources> {
    let mut sources = rampart_identity::inject::IdentitySources::default();
    for (path, text) in paths.iter().zip(contents) {
        let text = text.as_deref().with_context(|| format!("cannot read {}", path.display()))?;
        sources.add_manifests(&path.display().to_string(), text)?;
    }
    Ok(sources)
}

/// The OIDC issuer documents, when `--oidc-issuer` is given.
fn issuer(args: &Args) -> anyhow::Result<Option<rampart_identity::oidc::Issuer>> {
    use rampart_identity::oidc::{Issuer, SigningKey};
    let Some(url) = &args.oidc_issuer else { return Ok(None) };
    let mut keys = Vec::new();
    for path in &args.service_account_key_files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        keys.extend(SigningKey::from_pem(&path.display().to_string(), &text)?);
    }
    let issuer = Issuer::new(url, keys)?;
    tracing::info!(issuer = %issuer.url, keys = issuer.keys.len(), "OIDC issuer documents published");
    Ok(Some(issuer))
}

/// The `/v1/mutate` injector, when service accounts or associations are given.
fn injection(args: &Args) -> anyhow::Result<Option<rampart_server::mutate::Injection>> {
    if args.service_accounts.is_empty()
        && args.pod_identity_associations.is_empty()
        && !args.identity_from_cluster
    {
        return Ok(None);
    }
    let paths: Vec<&PathBuf> = args.service_accounts.iter().chain(&args.pod_identity_associations).collect();
    let sources = IdentitySources::from_paths(&paths)?;
    tracing::info!(
        service_accounts = sources.service_accounts.len(),
        associations = sources.pod_identity.len(),
        "workload identity injection enabled"
    );
    Ok(Some(rampart_server::mutate::Injection::new(inject_config(args), sources)))
}

/// The injection settings from the flags.
fn inject_config(args: &Args) -> rampart_identity::inject::InjectConfig {
    use rampart_identity::inject::InjectConfig;
    InjectConfig {
        region: args.aws_default_region.clone(),
        sts_regional: args.sts_regional_endpoints,
        annotation_prefix: args.injection.annotation_prefix.clone(),
        audience: args.injection.token_audience.clone(),
        mount_path: args.injection.token_mount_path.clone(),
        token_expiration: args.injection.token_expiration,
        pi_audience: args.injection.container_credentials_audience.clone(),
        pi_mount_path: args.injection.container_credentials_token_mount_path.clone(),
        pi_volume_name: args.injection.container_credentials_token_volume_name.clone(),
        pi_token_path: args.injection.container_credentials_token_path.clone(),
        pi_full_uri: args.injection.container_credentials_full_uri.clone(),
        compose_role_arn: args
            .compose_role_arn
            .clone()
            .map(|account| (account, args.aws_default_region.clone().unwrap_or_default())),
        ..InjectConfig::default()
    }
}

/// The TokenReview authenticator, when `--cluster-id` is given.
fn authenticator(args: &Args) -> anyhow::Result<Option<Arc<rampart_identity::authenticator::Authenticator>>> {
    use rampart_identity::mapping::{AccessEntries, AwsAuth, Mapper, NoEc2};
    let Some(cluster_id) = &args.cluster_id else { return Ok(None) };
    let aws_auth = match &args.aws_auth {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            let (auth, warnings) = AwsAuth::from_configmap(&text)?;
            warnings.iter().for_each(|w| tracing::warn!("{w}"));
            auth
        }
        None => AwsAuth::default(),
    };
    let entries = match &args.policies.access_entries {
        Some(p) => AccessEntries::from_yaml(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        )?,
        None => AccessEntries::default(),
    };
    let ec2: Box<dyn rampart_identity::mapping::InstanceResolver> = if args.ec2_lookups {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let creds = rampart_identity::client::load_credentials(&env)?;
        Box::new(rampart_identity::client::Ec2Lookup::new(creds, &args.region, args.ec2_endpoint.clone())?)
    } else {
        Box::new(NoEc2)
    };
    let mapper = Mapper { mode: args.authentication_mode.parse()?, aws_auth, entries, ec2 };
    let sts = rampart_identity::sts::StsClient::new(cluster_id.clone(), args.sts_endpoint.clone())?;
    let mut hosts = rampart_identity::host::HostVerifier::new(args.partition.clone(), args.region.clone());
    if let Some(endpoint) = &args.sts_endpoint {
        hosts = hosts.trusting(endpoint);
    }
    tracing::info!(cluster_id, mode = %args.authentication_mode, "IAM authentication enabled on /v1/authenticate");
    Ok(Some(Arc::new(rampart_identity::authenticator::Authenticator::new(hosts, sts, mapper))))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: super::Args,
    }

    /// The pod-identity webhook's flags carry over with its names; defaults are upstream's.
    #[test]
    fn upstream_injection_flags_reach_the_injector() {
        let defaults = super::inject_config(&Cli::parse_from(["serve"]).serve);
        let upstream = rampart_identity::inject::InjectConfig::default();
        assert_eq!(
            (defaults.mount_path.as_str(), defaults.pi_full_uri.as_str(), defaults.token_expiration),
            (upstream.mount_path.as_str(), upstream.pi_full_uri.as_str(), upstream.token_expiration)
        );
        let set = super::inject_config(
            &Cli::parse_from([
                "serve",
                "--annotation-prefix=irsa.example.com",
                "--token-audience=sts.example.com",
                "--token-mount-path=/irsa",
                "--token-expiration=3600",
                "--container-credentials-audience=pods.example.com",
                "--container-credentials-token-mount-path=/pi",
                "--container-credentials-token-volume-name=pi-token",
                "--container-credentials-token-path=t",
                "--container-credentials-full-uri=http://169.254.170.23/v2/credentials",
            ])
            .serve,
        );
        assert_eq!(set.annotation_prefix, "irsa.example.com");
        assert_eq!(
            (set.audience.as_str(), set.mount_path.as_str(), set.token_expiration),
            ("sts.example.com", "/irsa", 3600)
        );
        assert_eq!((set.pi_audience.as_str(), set.pi_mount_path.as_str()), ("pods.example.com", "/pi"));
        assert_eq!((set.pi_volume_name.as_str(), set.pi_token_path.as_str()), ("pi-token", "t"));
        assert_eq!(set.pi_full_uri, "http://169.254.170.23/v2/credentials");
    }
}
