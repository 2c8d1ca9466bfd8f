//! Image-signature options shared by `serve` (the `/v1/images` webhook) and `check-manifests
//! --verify-images`: where the ImagePolicies are, how to reach registries, how long to wait.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rampart_images::admission::ImageAdmitter;
use rampart_images::authority::ExternalKeys;
use rampart_images::policy::{ImagePolicyDocument, parse_documents};
use rampart_images::registry::{Credentials, Registry, RegistrySettings};
use rampart_images::verify::{CacheSettings, PolicySet, Verifier};

#[derive(Debug, Clone, clap::Args)]
pub struct ImageArgs {
    /// ImagePolicy files or directories (YAML, `rampart.dev/v1alpha1`; repeatable): which
    /// images need which signatures and attestations. See the README's "Image signatures".
    #[arg(long = "image-policy", value_name = "PATH")]
    pub image_policies: Vec<PathBuf>,
    /// Registry credentials as a docker `config.json` (`auths`).
    #[arg(long, value_name = "FILE")]
    pub registry_config: Option<PathBuf>,
    /// Extra CA certificates (PEM) for HTTPS registries (repeatable).
    #[arg(long = "registry-ca", value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,
    /// A registry on loopback to reach over plain HTTP (`127.0.0.1:5000`; repeatable). Refused
    /// for any other host.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
    /// How long verifying one request's images may take before it is refused (keep it below
    /// the webhook's timeoutSeconds, so the refusal carries Rampart's message).
    #[arg(long, default_value = "8s", value_parser = super::parse_duration, value_name = "DURATION")]
    pub image_verify_timeout: Duration,
    /// How long a verified digest stays verified in the cache.
    #[arg(long, default_value = "5m", value_parser = super::parse_duration, value_name = "DURATION")]
    pub image_cache_ttl: Duration,
    /// Log in to the ECR registry of this region with the AWS credential chain
    /// (`GetAuthorizationToken`, renewed hourly; repeatable).
    #[arg(long = "ecr-region", value_name = "REGION")]
    pub ecr_regions: Vec<String>,
    /// (serve) Also read the cluster's ImagePolicy objects (deploy/images/crd.yaml), re-listed
    /// every --cluster-refresh-interval; an invalid one keeps the last good set (and /readyz
    /// says why).
    #[arg(long)]
    pub image_policies_from_cluster: bool,
}

/// Keys an ImagePolicy names by Secret (read from the cluster) or by AWS KMS key (read with
/// `GetPublicKey` and the AWS credential chain).
pub struct Keys {
    pub secrets: Option<rampart_kube::lookups::KubeSecrets>,
}

impl ExternalKeys for Keys {
    fn secret<'a>(
        &'a self,
        secret: &'a rampart_images::policy::SecretKeyRef,
    ) -> rampart_images::authority::BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            match &self.secrets {
                Some(s) => s.key(secret).await,
                None => rampart_images::authority::NoExternalKeys.secret(secret).await,
            }
        })
    }

    fn kms<'a>(&'a self, key: &'a str) -> rampart_images::authority::BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let env = |k: &str| std::env::var(k).ok();
            // An ARN names its region; an alias or key id uses the environment's.
            let region = key
                .strip_prefix("arn:")
                .and_then(|rest| rest.split(':').nth(2))
                .map(str::to_string)
                .or_else(|| env("AWS_REGION"))
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .ok_or_else(|| format!("KMS key {key}: set AWS_REGION or use the key's ARN"))?;
            let creds = rampart_identity::client::resolve_credentials(&env)
                .await
                .map_err(|e| format!("KMS key {key}: no AWS credentials: {e}"))?;
            let kms = rampart_identity::aws_json::AwsJson::new(creds, &region, "kms", "TrentService", &env)
                .map_err(|e| e.to_string())?;
            rampart_identity::aws_json::kms_public_key(&kms, key).await
        })
    }
}

/// ECR logins for `regions`, as registry credentials.
pub async fn ecr_credentials(regions: &[String]) -> anyhow::Result<Credentials> {
    let mut out = Credentials::default();
    let env = |k: &str| std::env::var(k).ok();
    for region in regions {
        let creds = rampart_identity::client::resolve_credentials(&env)
            .await
            .map_err(|e| anyhow::anyhow!("--ecr-region {region}: no AWS credentials: {e}"))?;
        let ecr = rampart_identity::aws_json::AwsJson::new(
            creds,
            region,
            "ecr",
            "AmazonEC2ContainerRegistry_V20150921",
            &env,
        )?;
        for login in rampart_identity::aws_json::ecr_login(&ecr)
            .await
            .map_err(|e| anyhow::anyhow!("--ecr-region {region}: {e}"))?
        {
            out.insert(&login.registry, login.user, login.password);
        }
    }
    Ok(out)
}

impl ImageArgs {
    pub fn enabled(&self) -> bool {
        !self.image_policies.is_empty() || self.image_policies_from_cluster
    }

    /// Every ImagePolicy in the given files and directories.
    pub fn documents(&self) -> anyhow::Result<Vec<ImagePolicyDocument>> {
        let mut out = Vec::new();
        for path in &self.image_policies {
            for file in yaml_files(path)? {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                out.extend(parse_documents(&text, &file.display().to_string(), file.parent())?);
            }
        }
        if out.is_empty() && !self.image_policies.is_empty() {
            anyhow::bail!(
                "--image-policy: no ImagePolicy in {:?}; an empty set would verify nothing",
                self.image_policies
            );
        }
        Ok(out)
    }

    /// The admitter: policies with their keys loaded, a registry client, the caches.
    pub async fn admitter(
        &self,
        external: &dyn ExternalKeys,
        extra: Credentials,
    ) -> anyhow::Result<ImageAdmitter> {
        let policies = PolicySet::load(self.documents()?, external).await?;
        let mut ca_pem = Vec::new();
        for file in &self.registry_ca {
            ca_pem.push(std::fs::read(file).with_context(|| format!("--registry-ca {}", file.display()))?);
        }
        let settings = RegistrySettings {
            ca_pem,
            insecure_registries: self.insecure_registries.clone(),
            timeout: Some(self.image_verify_timeout),
        };
        let registry = Registry::new(&settings).map_err(|e| anyhow::anyhow!("--insecure-registry: {e}"))?;
        let cache = CacheSettings { verified_ttl: self.image_cache_ttl, ..CacheSettings::default() };
        let credentials = self.config_credentials()?.merged(&extra);
        tracing::info!(policies = policies.len(), "image policies loaded");
        Ok(ImageAdmitter::new(
            policies,
            Verifier::new(registry, &cache),
            credentials,
            self.image_verify_timeout,
        ))
    }
}

impl ImageArgs {
    /// The credentials of --registry-config.
    pub fn config_credentials(&self) -> anyhow::Result<Credentials> {
        let Some(file) = &self.registry_config else { return Ok(Credentials::default()) };
        let bytes = std::fs::read(file).with_context(|| format!("--registry-config {}", file.display()))?;
        Credentials::from_docker_config(&bytes)
            .map_err(|e| anyhow::anyhow!("--registry-config {}: {e}", file.display()))
    }
}

fn yaml_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))? {
        let file = entry?.path();
        if matches!(file.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}
