//! `POST /v1/images`: the image-signature mutating webhook. Every image of a pod or pod
//! template that an `ImagePolicy` covers is verified (see [`rampart_images::admission`]); the
//! request is refused naming each image, policy and what was missing, or allowed with a patch
//! pinning each verified tag to its digest.
//!
//! Unlike `/v1/mutate`, this webhook fails *closed* (`failurePolicy: Fail`): a wrong allow lets
//! an unverified image run, which is what the policy exists to prevent. The control plane is
//! not locked out: the webhook configuration leaves kube-system and Rampart's own namespace out,
//! and images no policy covers are never verified.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use base64::Engine as _;
use rampart_images::admission::ImageAdmitter;
use rampart_images::authority::BoxFuture;
use rampart_images::registry::Credentials;
use rampart_types::admission::{AdmissionResponse, Operation};

use crate::metrics::EndpointLabels;
use crate::router::{AppState, json};

/// Reads the registry credentials of a pod's `imagePullSecrets` (`.dockerconfigjson`) from
/// the cluster.
pub trait PullSecrets: Send + Sync {
    fn credentials<'a>(
        &'a self,
        namespace: &'a str,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<Credentials, String>>;
}

/// The verifier and where pull secrets come from.
pub struct ImageVerification {
    pub admitter: Arc<ImageAdmitter>,
    pub pull_secrets: Option<Arc<dyn PullSecrets>>,
}

impl std::fmt::Debug for ImageVerification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageVerification").finish_non_exhaustive()
    }
}

impl ImageVerification {
    /// The credentials of the object's `imagePullSecrets`; a lookup failure is logged and the
    /// verification goes on with the other credentials (the registry then says what it
    /// refused).
    async fn pull_secrets(&self, namespace: &str, object: &serde_json::Value) -> Credentials {
        let Some(lookup) = &self.pull_secrets else { return Credentials::default() };
        let names: Vec<String> = rampart_images::admission::pod_spec_pointer(object)
            .and_then(|p| object.pointer(&format!("{p}/imagePullSecrets")))
            .and_then(|s| s.as_array())
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("name").and_then(|n| n.as_str()).map(str::to_string))
            .collect();
        if names.is_empty() {
            return Credentials::default();
        }
        match tokio::time::timeout(self.admitter.deadline / 2, lookup.credentials(namespace, &names)).await {
            Ok(Ok(credentials)) => credentials,
            Ok(Err(e)) => {
                tracing::warn!(namespace, "imagePullSecrets {names:?}: {e}");
                Credentials::default()
            }
            Err(_) => {
                tracing::warn!(namespace, "imagePullSecrets {names:?}: the apiserver did not answer in time");
                Credentials::default()
            }
        }
    }
}

pub(crate) async fn verify_images(State(state): State<AppState>, body: axum::body::Body) -> Response {
    let started = Instant::now();
    let endpoint = "images";
    let review = match crate::mutate::read_admission(&state, endpoint, body).await {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let request = &review.request;
    let finish = |decision: &'static str, outcome: &'static str, response: AdmissionResponse| {
        state.metrics.decision_counter(endpoint, decision, outcome).inc();
        state
            .metrics
            .latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(started.elapsed().as_secs_f64());
        json(&response.into_review())
    };
    let subresource = request.sub_resource.as_deref().unwrap_or_default();
    let relevant = matches!(request.operation, Operation::Create | Operation::Update)
        && (subresource.is_empty() || subresource == "ephemeralcontainers");
    let (Some(images), Some(object), true) = (state.images.get(), request.object.as_ref(), relevant) else {
        return finish("allow", "not-covered", AdmissionResponse::allow(&request.uid));
    };
    let namespace = request
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .or_else(|| object.pointer("/metadata/namespace").and_then(|n| n.as_str()))
        .unwrap_or("default");
    let old = match request.operation {
        Operation::Update => request.old_object.as_ref().filter(|o| !o.is_null()),
        _ => None,
    };
    let pull_secrets = images.pull_secrets(namespace, object).await;
    let answer = images.admitter.admit(namespace, object, old, &pull_secrets).await;
    if let Some(denial) = answer.denial {
        tracing::info!(uid = %request.uid, namespace, name = request.name.as_deref().unwrap_or_default(),
            message = %denial, "image verification refused the request");
        return finish("deny", "unverified", AdmissionResponse::reject(&request.uid, 403, denial));
    }
    if answer.patch.is_empty() {
        return finish("allow", "verified", AdmissionResponse::allow(&request.uid));
    }
    let patch = serde_json::Value::Array(answer.patch);
    let encoded = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
    finish("allow", "pinned", AdmissionResponse::allow_with_patch(&request.uid, encoded))
}
