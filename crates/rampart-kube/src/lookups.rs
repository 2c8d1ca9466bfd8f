//! Per-request lookups against the apiserver: pods for the broker's live-pod check,
//! TokenReviews for the agent and broker, service accounts for the mutating webhook's
//! grace period.

use std::collections::BTreeMap;

use kube::api::Api;

/// Pods by name from the apiserver, for the broker's live-pod check (needs `get pods`).
pub struct KubePods(pub kube::Client);

impl rampart_identity::pod_identity::verify::PodDirectory for KubePods {
    fn pod<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> rampart_identity::pod_identity::BoxFuture<
        'a,
        Result<Option<rampart_identity::pod_identity::verify::PodFacts>, String>,
    > {
        Box::pin(async move {
            let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(self.0.clone(), namespace);
            let pod = api.get_opt(name).await.map_err(|e| format!("get pod {namespace}/{name}: {e}"))?;
            Ok(pod.map(|p| rampart_identity::pod_identity::verify::PodFacts {
                uid: p.metadata.uid.unwrap_or_default(),
                deleting: p.metadata.deletion_timestamp.is_some(),
                service_account: p
                    .spec
                    .and_then(|s| s.service_account_name)
                    .unwrap_or_else(|| "default".to_owned()),
                phase: p.status.and_then(|s| s.phase).unwrap_or_default(),
            }))
        })
    }
}

/// TokenReview through the apiserver (needs `create tokenreviews`, e.g. system:auth-delegator).
pub struct KubeTokenReview(pub kube::Client);

impl rampart_identity::pod_identity::verify::TokenReviewer for KubeTokenReview {
    fn review<'a>(
        &'a self,
        token: &'a str,
        audience: &'a str,
    ) -> rampart_identity::pod_identity::BoxFuture<'a, Result<serde_json::Value, String>> {
        use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
        Box::pin(async move {
            let api: Api<TokenReview> = Api::all(self.0.clone());
            let review = TokenReview {
                spec: TokenReviewSpec {
                    token: Some(token.to_owned()),
                    audiences: Some(vec![audience.to_owned()]),
                },
                ..Default::default()
            };
            let answer = api
                .create(&kube::api::PostParams::default(), &review)
                .await
                .map_err(|e| format!("create tokenreview: {e}"))?;
            serde_json::to_value(answer.status.unwrap_or_default()).map_err(|e| e.to_string())
        })
    }
}

/// One ServiceAccount's annotations, for the webhook's missing-SA grace period.
pub struct KubeServiceAccounts(pub kube::Client);

impl rampart_server::mutate::ServiceAccountLookup for KubeServiceAccounts {
    fn annotations<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> rampart_identity::pod_identity::BoxFuture<'a, Result<Option<BTreeMap<String, String>>, String>> {
        Box::pin(async move {
            let api: Api<k8s_openapi::api::core::v1::ServiceAccount> =
                Api::namespaced(self.0.clone(), namespace);
            let sa = api.get_opt(name).await.map_err(|e| format!("get serviceaccount: {e}"))?;
            Ok(sa.map(|sa| sa.metadata.annotations.unwrap_or_default()))
        })
    }
}

/// Secrets read for image verification (needs `get secrets` in the namespaces involved):
/// public keys an ImagePolicy names by Secret, and the registry credentials of a pod's
/// `imagePullSecrets`.
pub struct KubeSecrets(pub kube::Client);

impl KubeSecrets {
    async fn data(&self, namespace: &str, name: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
        let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(self.0.clone(), namespace);
        let secret = api
            .get_opt(name)
            .await
            .map_err(|e| format!("get secret {namespace}/{name} (needs get secrets): {e}"))?
            .ok_or_else(|| format!("Secret {namespace}/{name} does not exist"))?;
        Ok(secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect())
    }
}

impl rampart_server::images::PullSecrets for KubeSecrets {
    fn credentials<'a>(
        &'a self,
        namespace: &'a str,
        names: &'a [String],
    ) -> rampart_images::authority::BoxFuture<'a, Result<rampart_images::registry::Credentials, String>> {
        Box::pin(async move {
            let mut out = rampart_images::registry::Credentials::default();
            for name in names {
                let data = self.data(namespace, name).await?;
                let Some(config) = data.get(".dockerconfigjson") else { continue };
                let found = rampart_images::registry::Credentials::from_docker_config(config)
                    .map_err(|e| format!("Secret {namespace}/{name}: {e}"))?;
                // The first secret naming a registry wins, as the kubelet tries them in order.
                out = out.merged(&found);
            }
            Ok(out)
        })
    }
}

impl KubeSecrets {
    /// One key of a Secret (a PEM public key an ImagePolicy names).
    pub async fn key(&self, secret: &rampart_images::policy::SecretKeyRef) -> Result<Vec<u8>, String> {
        let data = self.data(&secret.namespace, &secret.name).await?;
        data.get(&secret.key)
            .cloned()
            .ok_or_else(|| format!("Secret {}/{} has no key {:?}", secret.namespace, secret.name, secret.key))
    }
}
