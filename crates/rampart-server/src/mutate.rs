//! `POST /v1/mutate`: the workload-identity mutating webhook. Pods being created get IRSA or
//! Pod Identity credentials wiring from their service account (see
//! [`rampart_identity::inject`]); every other request is allowed unchanged.
//!
//! This webhook fails *open* on purpose: it grants nothing, it only adds the plumbing a pod
//! needs to ask for credentials, and the credential endpoints check the pod's token on their
//! own. Rejecting a pod because its identity could not be injected would turn a missing
//! annotation into an outage (upstream runs with `failurePolicy: Ignore` for the same reason).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use rampart_identity::inject::{IdentitySources, InjectConfig};
use rampart_types::admission::{self, AdmissionRequest, AdmissionResponse, Operation};

use crate::metrics::EndpointLabels;
use crate::router::{AppState, json};

/// Fetches one ServiceAccount's annotations straight from the apiserver (`Ok(None)`: absent).
pub trait ServiceAccountLookup: Send + Sync {
    fn annotations<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> rampart_identity::pod_identity::BoxFuture<'a, Result<Option<BTreeMap<String, String>>, String>>;
}

/// Injection settings and the (swappable) service-account and association sources.
pub struct Injection {
    pub config: InjectConfig,
    pub sources: ArcSwap<IdentitySources>,
    /// For a pod whose service account the sources do not know yet (created together with the
    /// pod, spec W24): ask the apiserver for it, for at most `grace`.
    pub lookup: Option<(Arc<dyn ServiceAccountLookup>, Duration)>,
}

impl std::fmt::Debug for Injection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injection").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Injection {
    pub fn new(config: InjectConfig, sources: IdentitySources) -> Self {
        Injection { config, sources: ArcSwap::from_pointee(sources), lookup: None }
    }

    /// [`Injection::patch_for`], waiting up to the grace period for a service account that
    /// is not in the sources yet (upstream's `--service-account-lookup-grace-period`).
    pub async fn patch_for_with_grace(&self, request: &AdmissionRequest) -> Option<String> {
        let patch = self.patch_for(request);
        let (Some((lookup, grace)), None) = (&self.lookup, &patch) else { return patch };
        let pod = request.object.as_ref()?;
        let namespace = namespace_of(request, pod);
        let sa = pod.pointer("/spec/serviceAccountName").and_then(|n| n.as_str()).unwrap_or("default");
        let key = format!("{namespace}/{sa}");
        if grace.is_zero() || self.sources.load().service_accounts.contains_key(&key) {
            return None;
        }
        let deadline = tokio::time::Instant::now() + *grace;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, lookup.annotations(namespace, sa)).await {
                Ok(Ok(Some(annotations))) => {
                    let mut sources = IdentitySources::clone(&self.sources.load());
                    sources.service_accounts.insert(key, annotations);
                    let ops = self.config.mutate(pod, namespace, &sources, &mut || fastrand::i64(..))?;
                    let bytes = serde_json::to_vec(&ops).ok()?;
                    return Some(base64::engine::general_purpose::STANDARD.encode(bytes));
                }
                Ok(Err(e)) => tracing::warn!("service account {key}: {e}"),
                Ok(Ok(None)) | Err(_) => {}
            }
            if tokio::time::Instant::now() + Duration::from_millis(50) >= deadline {
                tracing::warn!(
                    "service account {key} not found within the grace period; pod admitted unchanged"
                );
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The base64 JSON patch for this request, or `None` when nothing is injected.
    pub fn patch_for(&self, request: &AdmissionRequest) -> Option<String> {
        let is_pod_create = request.kind.group.is_empty()
            && request.kind.kind == "Pod"
            && request.operation == Operation::Create
            && request.sub_resource.as_deref().unwrap_or_default().is_empty();
        if !is_pod_create {
            return None;
        }
        let pod = request.object.as_ref()?;
        // The opt-out label is normally enforced by the webhook's objectSelector; checking it
        // here too keeps the promise when the configuration was written by hand without it.
        if pod.pointer("/metadata/labels/eks.amazonaws.com~1skip-pod-identity-webhook").is_some() {
            return None;
        }
        let namespace = namespace_of(request, pod);
        let ops = self.config.mutate(pod, namespace, &self.sources.load(), &mut || fastrand::i64(..))?;
        let bytes = serde_json::to_vec(&ops).ok()?;
        Some(base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

fn namespace_of<'a>(request: &'a AdmissionRequest, pod: &'a serde_json::Value) -> &'a str {
    request
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .or_else(|| pod.pointer("/metadata/namespace").and_then(|n| n.as_str()))
        .unwrap_or("default")
}

/// Read and decode an AdmissionReview, within the limits; the refusal is itself a
/// well-formed AdmissionReview (with the request's uid when it can be read).
pub(crate) async fn read_admission(
    state: &AppState,
    endpoint: &'static str,
    body: axum::body::Body,
) -> Result<admission::AdmissionReview, Response> {
    let bad = || state.metrics.bad_requests.get_or_create(&EndpointLabels { endpoint }).inc();
    let limit = rampart_types::review::limits::MAX_BODY;
    let Some(body) = crate::router::read_body(body, limit).await else {
        bad();
        return Err(json(&AdmissionResponse::reject("", 413, crate::router::too_large(limit)).into_review()));
    };
    let review = match admission::decode(&body) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "undecodable AdmissionReview");
            bad();
            return Err(json(
                &AdmissionResponse::reject(admission::salvage_uid(&body), 400, e.to_string()).into_review(),
            ));
        }
    };
    let user = &review.request.user_info;
    if let Err(over) = rampart_types::review::limits::check_user(
        "request.userInfo",
        user.groups.as_deref(),
        user.extra.as_ref(),
    ) {
        tracing::warn!("AdmissionReview refused: {over}");
        bad();
        return Err(json(&AdmissionResponse::reject(&review.request.uid, 400, over).into_review()));
    }
    Ok(review)
}

pub(crate) async fn mutate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let started = Instant::now();
    let endpoint = "mutate";
    // The apiserver always sends JSON. A missing Content-Type (curl, scripts) is read as
    // JSON; another type is refused with a review saying so (upstream answers a bare 415).
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    if content_type.split(';').next().map(str::trim) != Some("application/json") {
        state.metrics.bad_requests.get_or_create(&EndpointLabels { endpoint }).inc();
        let message =
            format!("Content-Type {content_type:?} is not application/json: send an AdmissionReview as JSON");
        let mut response = json(&AdmissionResponse::reject("", 415, message).into_review());
        *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return response;
    }
    let review = match read_admission(&state, endpoint, body).await {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let request = &review.request;
    let patch = match state.injection.as_ref() {
        Some(i) => i.patch_for_with_grace(request).await,
        None => None,
    };
    let outcome = if patch.is_some() { "patched" } else { "unchanged" };
    state.metrics.decision_counter(endpoint, "allow", outcome).inc();
    state
        .metrics
        .latency
        .get_or_create(&EndpointLabels { endpoint })
        .observe(started.elapsed().as_secs_f64());
    if patch.is_some() {
        tracing::info!(uid = %request.uid, namespace = request.namespace.as_deref().unwrap_or_default(),
            name = request.name.as_deref().unwrap_or_default(), "pod identity injected");
    }
    let response = match patch {
        Some(p) => AdmissionResponse::allow_with_patch(&request.uid, p),
        None => AdmissionResponse::allow(&request.uid),
    };
    json(&response.into_review())
}
