//! The credential broker (self-managed mode): EKS Auth's `AssumeRoleForPodIdentity`, done by
//! Rampart. It validates the pod's token, looks up the association for the token's namespace
//! and service account, and calls STS `AssumeRole` as EKS does — session name
//! `eks-<cluster>-<pod>-<uuid>`, the six transitive session tags, optional target-role chaining
//! — then answers in EKS Auth's shape so agents (Rampart's or the official one with
//! `--endpoint`) need not know which side they talk to.
//!
//! The role always comes from the admin-controlled association store, never from the request.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::verify::{Validator, VerifiedPod};
use super::wire::{
    AssociationRef, AssumeRoleForPodIdentityResponse, AssumedRoleUser, EksAuthCredentials, PodIdentityError,
    Subject, account_of,
};
use super::{AUDIENCE, BoxFuture, SESSION_TAG_KEYS};
use crate::client::{AssumeRoleError, AssumeRoleRequest, AssumedRole, AwsCredentials, assume_role_with};
use crate::workload_sources::Association;

/// Associations by `(namespace, service account)`.
pub type Associations = BTreeMap<(String, String), Association>;

/// The broker's own AWS credentials (re-resolved by the implementation when they expire).
pub trait CredentialSource: Send + Sync {
    fn credentials(&self) -> BoxFuture<'_, Result<AwsCredentials, String>>;
}

/// Fixed credentials (tests, static keys).
pub struct StaticCredentials(pub AwsCredentials);

impl CredentialSource for StaticCredentials {
    fn credentials(&self) -> BoxFuture<'_, Result<AwsCredentials, String>> {
        let creds = self.0.clone();
        Box::pin(async move { Ok(creds) })
    }
}

/// The standard credential chain (environment, web identity, shared file, container, IMDS),
/// re-resolved five minutes before temporary credentials expire.
#[derive(Default)]
pub struct ChainCredentials {
    cached: tokio::sync::Mutex<Option<AwsCredentials>>,
}

impl CredentialSource for ChainCredentials {
    fn credentials(&self) -> BoxFuture<'_, Result<AwsCredentials, String>> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            let now = crate::client::now();
            if let Some(c) = cached.as_ref().filter(|c| c.expires_at.is_none_or(|e| e - now > 300)) {
                return Ok(c.clone());
            }
            let env = |k: &str| std::env::var(k).ok();
            let fresh = crate::client::resolve_credentials(&env).await.map_err(|e| e.to_string())?;
            *cached = Some(fresh.clone());
            Ok(fresh)
        })
    }
}

/// Broker settings.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub cluster_name: String,
    /// The `eks-cluster-arn` tag; default `arn:<partition>:eks:<region>:<role account>:cluster/<name>`
    /// so policies written for EKS keep working.
    pub cluster_arn: Option<String>,
    pub region: String,
    pub partition: String,
    /// STS base URL.
    pub sts_endpoint: String,
    /// First session's duration (EKS: 6 h); falls back to 1 h when STS refuses it.
    pub duration_seconds: u32,
}

/// Chained sessions (target roles, or a broker on role credentials) are capped at 1 h by STS.
const CHAINED_MAX_SECONDS: u32 = 3600;

/// The broker.
pub struct Broker {
    config: BrokerConfig,
    validator: Validator,
    associations: ArcSwap<Associations>,
    credentials: Arc<dyn CredentialSource>,
    http: reqwest::Client,
}

impl Broker {
    pub fn new(
        config: BrokerConfig,
        validator: Validator,
        associations: Associations,
        credentials: Arc<dyn CredentialSource>,
    ) -> Result<Self, PodIdentityError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PodIdentityError::internal(e.to_string()))?;
        Ok(Broker { config, validator, associations: ArcSwap::from_pointee(associations), credentials, http })
    }

    /// Swap in a new association set (file re-read, watch event); takes effect for the next
    /// request, so a changed role is never served from a stale mapping.
    pub fn set_associations(&self, associations: Associations) {
        self.associations.store(Arc::new(associations));
    }

    /// `namespace/serviceAccount` → a version of its association (a digest of everything that
    /// decides the credentials), so agents can drop cached credentials when it changes.
    pub fn association_versions(&self) -> BTreeMap<String, String> {
        self.associations
            .load()
            .iter()
            .map(|((ns, sa), a)| {
                let material = format!(
                    "{}|{}|{}|{}",
                    a.role_arn,
                    a.target_role_arn.as_deref().unwrap_or_default(),
                    a.disable_session_tags,
                    a.session_policy.as_deref().unwrap_or_default()
                );
                let digest = ring::digest::digest(&ring::digest::SHA256, material.as_bytes());
                let hex: String = digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
                (format!("{ns}/{sa}"), hex)
            })
            .collect()
    }

    pub fn association_count(&self) -> usize {
        self.associations.load().len()
    }

    pub fn cluster_name(&self) -> &str {
        &self.config.cluster_name
    }

    /// `POST /clusters/{cluster}/assume-role-for-pod-identity` with `token` at `now`.
    pub async fn assume_role_for_pod_identity(
        &self,
        cluster: &str,
        token: &str,
        now: i64,
    ) -> Result<AssumeRoleForPodIdentityResponse, PodIdentityError> {
        if cluster != self.config.cluster_name {
            return Err(PodIdentityError::not_found(format!(
                "No cluster found for name: {cluster}. This broker serves {}.",
                self.config.cluster_name
            )));
        }
        let pod = self.validator.validate(token, now).await?;
        let key = (pod.namespace.clone(), pod.service_account.clone());
        let association = self.associations.load().get(&key).cloned().ok_or_else(|| {
            PodIdentityError::not_found(format!(
                "No Pod Identity Association for namespace {} and service account {}",
                pod.namespace, pod.service_account
            ))
        })?;
        let broker_creds = self
            .credentials
            .credentials()
            .await
            .map_err(|e| PodIdentityError::internal(format!("broker has no AWS credentials: {e}")))?;
        let first = self.first_call(&association, &pod);
        let mut assumed = self.assume(&broker_creds, &first, now).await?;
        if let Some(target) = &association.target_role_arn {
            assumed =
                self.assume(&assumed.credentials, &self.second_call(&association, &pod, target), now).await?;
        }
        let expiration = assumed
            .credentials
            .expires_at
            .ok_or_else(|| PodIdentityError::internal("STS answered without an Expiration"))?;
        Ok(AssumeRoleForPodIdentityResponse {
            subject: Subject { namespace: pod.namespace, service_account: pod.service_account },
            audience: AUDIENCE.into(),
            pod_identity_association: AssociationRef {
                association_arn: format!(
                    "arn:{}:eks:{}:{}:podidentityassociation/{}/{}",
                    self.config.partition,
                    self.config.region,
                    account_of(&association.role_arn),
                    self.config.cluster_name,
                    association.id
                ),
                association_id: association.id.clone(),
            },
            assumed_role_user: AssumedRoleUser { arn: assumed.arn, assume_role_id: assumed.assumed_role_id },
            credentials: EksAuthCredentials {
                access_key_id: assumed.credentials.access_key_id,
                secret_access_key: assumed.credentials.secret_access_key,
                session_token: assumed.credentials.session_token.unwrap_or_default(),
                expiration,
            },
        })
    }

    fn cluster_arn(&self, association: &Association) -> String {
        self.config.cluster_arn.clone().unwrap_or_else(|| {
            format!(
                "arn:{}:eks:{}:{}:cluster/{}",
                self.config.partition,
                self.config.region,
                account_of(&association.role_arn),
                self.config.cluster_name
            )
        })
    }

    fn first_call(&self, association: &Association, pod: &VerifiedPod) -> AssumeRoleRequest {
        let mut request = AssumeRoleRequest {
            role_arn: association.role_arn.clone(),
            session_name: session_name(&self.config.cluster_name, &pod.pod_name, &uuid_v4()),
            policy: association.session_policy.clone(),
            duration_seconds: Some(self.config.duration_seconds),
            ..Default::default()
        };
        if !association.disable_session_tags {
            let values = [
                self.cluster_arn(association),
                self.config.cluster_name.clone(),
                pod.namespace.clone(),
                pod.service_account.clone(),
                pod.pod_name.clone(),
                pod.pod_uid.clone(),
            ];
            request.tags = SESSION_TAG_KEYS.iter().map(|k| k.to_string()).zip(values).collect();
            request.transitive_tag_keys = SESSION_TAG_KEYS.iter().map(|k| k.to_string()).collect();
        }
        request
    }

    /// The chained call to the target role. With tags on, the six transitive tags of the first
    /// session travel with it on their own (STS refuses a request tag that repeats an
    /// inherited transitive key); with tags off, EKS's external id stands in for them.
    fn second_call(&self, association: &Association, pod: &VerifiedPod, target: &str) -> AssumeRoleRequest {
        AssumeRoleRequest {
            role_arn: target.to_owned(),
            session_name: session_name(&self.config.cluster_name, &pod.pod_name, &uuid_v4()),
            external_id: association.disable_session_tags.then(|| {
                format!(
                    "{}/{}/{}/{}/{}",
                    self.config.region,
                    account_of(&association.role_arn),
                    self.config.cluster_name,
                    pod.namespace,
                    pod.service_account
                )
            }),
            duration_seconds: Some(CHAINED_MAX_SECONDS),
            ..Default::default()
        }
    }

    /// One AssumeRole, retried once at 1 h when STS refuses a longer chained session.
    async fn assume(
        &self,
        creds: &AwsCredentials,
        request: &AssumeRoleRequest,
        now: i64,
    ) -> Result<AssumedRole, PodIdentityError> {
        let call = |r: AssumeRoleRequest| async move {
            assume_role_with(&self.http, creds, &self.config.sts_endpoint, &self.config.region, &r, now).await
        };
        match call(request.clone()).await {
            Err(AssumeRoleError::Sts(e))
                if e.code == "ValidationError"
                    && request.duration_seconds.is_some_and(|d| d > CHAINED_MAX_SECONDS)
                    && (e.message.contains("DurationSeconds") || e.message.contains("chaining")) =>
            {
                let retry =
                    AssumeRoleRequest { duration_seconds: Some(CHAINED_MAX_SECONDS), ..request.clone() };
                call(retry).await.map_err(sts_error)
            }
            other => other.map_err(sts_error),
        }
    }
}

/// STS failures as EKS Auth reports them (AccessDenied is a 400 there).
fn sts_error(e: AssumeRoleError) -> PodIdentityError {
    match e {
        AssumeRoleError::Sts(e) => match e.code.as_str() {
            "AccessDenied" => PodIdentityError::new(400, "AccessDeniedException", e.message),
            "Throttling" | "ThrottlingException" => {
                PodIdentityError::new(429, "ThrottlingException", e.message)
            }
            _ => PodIdentityError::internal(format!("sts AssumeRole: {}: {}", e.code, e.message)),
        },
        AssumeRoleError::Client(e) => PodIdentityError::internal(e.to_string()),
    }
}

/// `eks-<cluster ≤10>-<pod ≤ 22−len(cluster)>-<uuid>`: at most 64 characters, only the
/// characters STS allows (`[\w+=,.@-]`, others become `-`).
pub fn session_name(cluster: &str, pod: &str, uuid: &str) -> String {
    let cluster: String = cluster.chars().take(10).collect();
    let pod: String = pod.chars().take(22 - cluster.chars().count()).collect();
    format!("eks-{cluster}-{pod}-{uuid}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) { c } else { '-' })
        .collect()
}

/// A random (version 4) UUID.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b12_session_names_fit_sts() {
        let uuid = uuid_v4();
        assert_eq!(uuid.len(), 36);
        let name = session_name("very-long-cluster-name-xyz", "a-very-long-pod-name-0123456789-abcde", &uuid);
        assert!(name.len() <= 64, "{name}");
        assert!(name.starts_with("eks-very-long--a-very-long-"), "{name}");
        let short = session_name("c1", "app-7d9c", &uuid);
        assert_eq!(short, format!("eks-c1-app-7d9c-{uuid}"));
        assert!(session_name("c:1", "p", &uuid).starts_with("eks-c-1-p-"));
    }
}
