//! The pod-token validation flags shared by `rampart broker` (always validates) and `rampart
//! agent` (optionally validates locally too, so a cached credential is never handed to a token
//! whose pod is gone).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use rampart_identity::pod_identity::verify::{JwksValidator, PodDirectory, TokenReviewValidator, Validator};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// No local validation (the agent's default: the broker or EKS Auth validates).
    None,
    /// Ask the apiserver (TokenReview): signature, issuer, expiry, audience and bound pod.
    TokenReview,
    /// Verify the signature locally (--jwks, --service-account-key-file, or the cluster's
    /// /openid/v1/jwks) and check the pod through the API.
    Jwks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PodCheck {
    Cluster,
    Off,
}

/// Token validation settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidationArgs {
    /// Issuer tokens must carry (the apiserver's --service-account-issuer), for jwks validation.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// JWKS file (`kubectl get --raw /openid/v1/jwks`), for jwks validation.
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// The apiserver's service-account signing key(s), PEM (repeatable), for jwks validation.
    #[arg(long = "service-account-key-file", value_name = "FILE")]
    pub service_account_key_files: Vec<PathBuf>,
    /// Whether a token's pod must still exist (looked up in the cluster; needs `get pods`).
    /// `off` lets a deleted pod's token buy credentials until it expires: only for tests.
    #[arg(long, value_enum, default_value = "cluster")]
    pub pod_check: PodCheck,
    /// Kubeconfig (default: KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

impl ValidationArgs {
    fn local_keys(&self) -> anyhow::Result<jsonwebtoken::jwk::JwkSet> {
        if let Some(path) = &self.jwks {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            return serde_json::from_str(&text)
                .with_context(|| format!("{}: not a JWKS ({{\"keys\": [...]}})", path.display()));
        }
        let mut keys = Vec::new();
        for path in &self.service_account_key_files {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let shown = path.display().to_string();
            keys.extend(rampart_identity::oidc::SigningKey::from_pem(&shown, &text)?.iter().map(|k| k.jwk()));
        }
        Ok(serde_json::from_value(serde_json::json!({ "keys": keys }))?)
    }

    /// Whether `mode` needs a connection to the cluster.
    pub fn needs_cluster(&self, mode: Mode) -> bool {
        match mode {
            Mode::None => false,
            Mode::TokenReview => true,
            Mode::Jwks => {
                self.pod_check == PodCheck::Cluster
                    || (self.jwks.is_none() && self.service_account_key_files.is_empty())
            }
        }
    }

    /// The validator for `mode` (`None` for `Mode::None`).
    pub async fn build(
        &self,
        mode: Mode,
        client: Option<&kube::Client>,
    ) -> anyhow::Result<Option<Validator>> {
        Ok(Some(match (mode, client) {
            (Mode::None, _) => return Ok(None),
            (Mode::TokenReview, Some(c)) => Validator::TokenReview(TokenReviewValidator::new(Arc::new(
                super::cluster::KubeTokenReview(c.clone()),
            ))),
            (Mode::TokenReview, None) => bail!("TokenReview needs a cluster connection"),
            (Mode::Jwks, client) => {
                let issuer =
                    self.issuer.clone().context("--issuer is required with --token-validation jwks")?;
                let keys = match (client, self.jwks.is_none() && self.service_account_key_files.is_empty()) {
                    (Some(c), true) => super::cluster::cluster_jwks(c).await?,
                    _ => self.local_keys()?,
                };
                if keys.keys.is_empty() {
                    bail!("no signing keys: give --jwks or --service-account-key-file");
                }
                let pods: Option<Arc<dyn PodDirectory>> = match (self.pod_check, client) {
                    (PodCheck::Cluster, Some(c)) => Some(Arc::new(super::cluster::KubePods(c.clone()))),
                    _ => {
                        tracing::warn!(
                            "--pod-check off: tokens of deleted pods stay valid until they expire"
                        );
                        None
                    }
                };
                Validator::Jwks(JwksValidator::new(issuer, keys, pods))
            }
        }))
    }
}
