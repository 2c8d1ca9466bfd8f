//! HTTP handlers. Every review gets a well-formed review back, even when its body is bad:
//! the apiserver then logs a clear message instead of a decoding failure.

use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rampart_guardrails::admission::Guardrails;
use rampart_identity::authenticator::{Authenticator, token_review_response};
use rampart_policy::store::LiveEngine;
use rampart_policy::tier::AuditHit;
use rampart_types::admission::{self, AdmissionResponse};
use rampart_types::sar::{self, SarResponse, SarStatus};
use rampart_unified::live::LiveUnified;

use crate::cache::{CachedAnswer, DecisionCache};
use crate::metrics::{EndpointLabels, Metrics, PolicyLabels};
use crate::mutate::Injection;

use rampart_types::review::limits::{self, MAX_SAR_BODY, MAX_TOKEN_REVIEW_BODY};

/// What the handlers share.
#[derive(Debug)]
pub struct Shared {
    pub live: Arc<LiveEngine>,
    pub metrics: Arc<Metrics>,
    pub cache: DecisionCache,
    /// Pod Security and best-practice rules, run before the Cedar admission tiers. Swappable:
    /// namespace labels read from a live cluster are refreshed while serving.
    pub guardrails: Option<ArcSwap<Guardrails>>,
    /// The TokenReview authenticator (`/v1/authenticate`), when configured.
    pub authenticator: Option<Arc<Authenticator>>,
    /// Workload-identity injection (`/v1/mutate`), when configured.
    pub injection: Option<Injection>,
    /// OIDC issuer documents for self-managed IRSA, when configured.
    pub issuer: Option<rampart_identity::oidc::Issuer>,
    /// Unified policies, asked before the engine's tiers, when configured
    /// ([`AppState::with_unified`]).
    pub unified: std::sync::OnceLock<Arc<LiveUnified>>,
    /// Image-signature verification (`/v1/images`), when configured
    /// ([`AppState::with_images`]).
    pub images: std::sync::OnceLock<crate::images::ImageVerification>,
}

/// Handler state: one `Arc`, because axum clones the state for every request.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(live: Arc<LiveEngine>, metrics: Arc<Metrics>) -> Self {
        Self::from_parts(live, metrics, None, None, None, None)
    }

    /// The same, with guardrails in the admission path.
    pub fn with_guardrails(live: Arc<LiveEngine>, metrics: Arc<Metrics>, guardrails: Guardrails) -> Self {
        Self::from_parts(live, metrics, Some(guardrails), None, None, None)
    }

    /// Everything optional given explicitly.
    pub fn from_parts(
        live: Arc<LiveEngine>,
        metrics: Arc<Metrics>,
        guardrails: Option<Guardrails>,
        authenticator: Option<Arc<Authenticator>>,
        injection: Option<Injection>,
        issuer: Option<rampart_identity::oidc::Issuer>,
    ) -> Self {
        AppState(Arc::new(Shared {
            live,
            metrics,
            cache: DecisionCache::default(),
            guardrails: guardrails.map(ArcSwap::from_pointee),
            authenticator,
            injection,
            issuer,
            unified: std::sync::OnceLock::new(),
            images: std::sync::OnceLock::new(),
        }))
    }

    /// Serve a unified tier too: asked first at authorization, and finished by the validating
    /// webhook when its answer was conditional.
    pub fn with_unified(self, unified: Arc<LiveUnified>) -> Self {
        let _ = self.unified.set(unified);
        self
    }

    /// Verify image signatures at `/v1/images`.
    pub fn with_images(self, images: crate::images::ImageVerification) -> Self {
        let _ = self.images.set(images);
        self
    }

    /// The policy generation decisions are cached under: the engine's and the unified tier's
    /// together. Both only ever grow, so their sum changes whenever either reloads.
    fn generation(&self) -> u64 {
        self.live.generation() + self.unified.get().map_or(0, |u| u.generation())
    }

    /// Replace the guardrails (e.g. with refreshed namespace labels); no-op without guardrails.
    pub fn replace_guardrails(&self, guardrails: Guardrails) {
        if let Some(g) = &self.guardrails {
            g.store(Arc::new(guardrails));
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Build the router.
pub fn router(state: AppState) -> Router {
    let reviews = Router::new()
        .route("/v1/authorize", post(authorize))
        .route("/v1/admit", post(admit))
        .route("/v1/admit/unified", post(admit_unified))
        .route("/v1/authenticate", post(authenticate))
        .route("/v1/mutate", post(crate::mutate::mutate))
        .route("/v1/images", post(crate::images::verify_images))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), until_synced));
    Router::new()
        .merge(reviews)
        .route("/.well-known/openid-configuration", get(oidc_discovery))
        .route("/openid/v1/jwks", get(oidc_jwks))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        // Each review handler reads its body itself ([`read_body`]), so that an oversized one
        // still gets a well-formed review back rather than a bare 413 or a stream reset.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// A review body, at most `limit` bytes; `None` when it is larger (or unreadable).
pub(crate) async fn read_body(body: axum::body::Body, limit: usize) -> Option<Bytes> {
    axum::body::to_bytes(body, limit).await.ok()
}

/// What an oversized body is told.
pub(crate) fn too_large(limit: usize) -> String {
    format!("the request body is larger than {limit} bytes, the most Rampart reads for this review")
}

pub(crate) fn json(body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode response: {e}")).into_response(),
    }
}

fn record_audit(metrics: &Metrics, audit: &[AuditHit], what: &str) {
    for hit in audit.iter().filter(|h| h.would_deny()) {
        tracing::warn!(policy = %hit.policy.policy, position = %hit.policy.position, tier = %hit.tier,
            request = what, "audit-mode policy would deny");
        metrics.would_deny.get_or_create(&PolicyLabels { policy: hit.policy.policy.clone() }).inc();
    }
}

fn json_bytes(body: &impl serde::Serialize) -> Bytes {
    // Our response types serialize plain strings and booleans; this cannot fail.
    serde_json::to_vec(body).map(Bytes::from).unwrap_or_default()
}

fn json_response(bytes: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

async fn authorize(State(state): State<AppState>, body: axum::body::Body) -> Response {
    let started = Instant::now();
    let endpoint = "authorize";
    let Some(body) = read_body(body, MAX_SAR_BODY).await else {
        state.metrics.bad_requests.get_or_create(&EndpointLabels { endpoint }).inc();
        return json(&SarResponse::refused(too_large(MAX_SAR_BODY)));
    };
    let generation = state.generation();
    if let Some(hit) = state.cache.get(generation, &body) {
        state.metrics.cache_hits.inc();
        record_audit(&state.metrics, &hit.audit, "cached");
        hit.counter.inc();
        state.metrics.authorize_latency.observe(started.elapsed().as_secs_f64());
        return json_response(hit.response);
    }
    let review = match sar::decode(&body) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "undecodable SubjectAccessReview");
            state.metrics.bad_requests.get_or_create(&EndpointLabels { endpoint }).inc();
            return json(&SarResponse::decode_failure(&e));
        }
    };
    if let Err(over) = limits::check_sar(&review.spec) {
        tracing::warn!("SubjectAccessReview refused: {over}");
        state.metrics.bad_requests.get_or_create(&EndpointLabels { endpoint }).inc();
        return json(&SarResponse::refused(over));
    }
    let engine = state.live.engine();
    let verdict = match state.unified.get() {
        Some(unified) => rampart_unified::review::authorize(&unified.tier(), &engine, &review.spec),
        None => engine.authorize(&review.spec),
    };
    let user = review.spec.user.as_deref().unwrap_or_default();
    tracing::debug!(user, decision = %verdict.decision, reason = %verdict.reason, "authorize");
    record_audit(&state.metrics, &verdict.audit, user);
    let counter = state.metrics.decision_counter(
        endpoint,
        verdict.decision.as_str(),
        verdict.tier.as_deref().unwrap_or_default(),
    );
    counter.inc();
    state.metrics.authorize_latency.observe(started.elapsed().as_secs_f64());
    let response = json_bytes(&SarResponse::new(SarStatus::new(
        verdict.decision,
        verdict.reason,
        verdict.evaluation_error,
    )));
    let answer = CachedAnswer { response: response.clone(), counter, audit: Arc::new(verdict.audit) };
    state.cache.put(generation, body, answer);
    json_response(response)
}

async fn admit(State(state): State<AppState>, body: axum::body::Body) -> Response {
    let started = Instant::now();
    let endpoint = "admit";
    let review = match crate::mutate::read_admission(&state, endpoint, body).await {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    if let Some(error) = invalid_policy_object(&state, &review.request) {
        state.metrics.decision_counter(endpoint, "deny", "policy-objects").inc();
        tracing::info!(uid = %review.request.uid, "Policy object refused: {error}");
        let message = format!("this Policy would not load, so it is refused: {error}");
        return json(&AdmissionResponse::reject(&review.request.uid, 422, message).into_review());
    }
    // Guardrails first: a Pod Security or rule violation is final; otherwise their warnings
    // and audit annotations ride along with the Cedar answer.
    let guard = state.guardrails.as_ref().map(|g| g.load().admit(&review.request)).unwrap_or_default();
    if let Some(denial) = guard.denial {
        state.metrics.decision_counter(endpoint, "deny", "guardrails").inc();
        state.metrics.admit_latency.observe(started.elapsed().as_secs_f64());
        tracing::info!(uid = %review.request.uid, message = %denial, "admission denied by guardrails");
        let mut response = AdmissionResponse::reject(&review.request.uid, 403, denial);
        response.warnings = guard.warnings;
        response.audit_annotations = guard.audit_annotations;
        return json(&response.into_review());
    }
    let engine = state.live.engine();
    // A request the unified tier answered conditionally at authorization is finished here,
    // before the admission tiers (it was authorized only on that condition).
    if let Some(unified) = state.unified.get()
        && let Some(mut rejection) =
            rampart_unified::review::complete_admission(&unified.tier(), &engine, &review.request)
    {
        state.metrics.decision_counter(endpoint, "deny", rampart_unified::review::TIER).inc();
        state.metrics.admit_latency.observe(started.elapsed().as_secs_f64());
        tracing::info!(uid = %review.request.uid, message = rejection.status.as_ref().map(|s| s.message.as_str()).unwrap_or_default(),
            "admission denied by unified policies");
        rejection.warnings = guard.warnings;
        rejection.audit_annotations = guard.audit_annotations;
        return json(&rejection.into_review());
    }
    // What image verification found (answered from its cache after the mutating webhook),
    // as `context.images` for Cedar admission policies.
    let images = match (state.images.get(), review.request.object.as_ref()) {
        (Some(images), Some(object)) if review.request.operation != admission::Operation::Delete => {
            let namespace = review.request.namespace.as_deref().unwrap_or_default();
            images.admitter.context(namespace, object).await
        }
        _ => None,
    };
    let mut verdict = engine.admit_with_images(&review.request, images.as_ref());
    verdict.response.warnings.extend(guard.warnings);
    verdict.response.audit_annotations.extend(guard.audit_annotations);
    let decision = if verdict.response.allowed { "allow" } else { "deny" };
    let user = review.request.user_info.username.as_deref().unwrap_or_default();
    if !verdict.response.allowed {
        tracing::info!(uid = %review.request.uid, user, kind = %review.request.kind.kind,
            message = verdict.response.status.as_ref().map(|s| s.message.as_str()).unwrap_or_default(),
            "admission denied");
    }
    record_audit(&state.metrics, &verdict.audit, user);
    state.metrics.decision_counter(endpoint, decision, verdict.tier.as_deref().unwrap_or_default()).inc();
    state.metrics.admit_latency.observe(started.elapsed().as_secs_f64());
    json(&verdict.response.into_review())
}

/// The unified webhook (`kube-config --unified`): only the completion of unified policies'
/// conditional answers, for every request the authorizer may have answered conditionally
/// (the general webhook above skips some users and namespaces, and runs the admission tiers).
async fn admit_unified(State(state): State<AppState>, body: axum::body::Body) -> Response {
    let started = Instant::now();
    let endpoint = "admit-unified";
    let review = match crate::mutate::read_admission(&state, endpoint, body).await {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let rejection = state.unified.get().and_then(|unified| {
        rampart_unified::review::complete_admission(&unified.tier(), &state.live.engine(), &review.request)
    });
    let decision = if rejection.is_some() { "deny" } else { "allow" };
    state.metrics.decision_counter(endpoint, decision, rampart_unified::review::TIER).inc();
    state.metrics.admit_latency.observe(started.elapsed().as_secs_f64());
    let response = rejection.unwrap_or_else(|| AdmissionResponse::allow(&review.request.uid));
    json(&response.into_review())
}

/// A `cedar.k8s.aws` `Policy` that would not parse or validate with the serving settings is
/// refused at `kubectl apply` time, with Cedar's error and its line:col (upstream accepted it
/// and silently dropped its policies).
fn invalid_policy_object(state: &AppState, req: &admission::AdmissionRequest) -> Option<String> {
    let is_policy = req.resource.group == "cedar.k8s.aws"
        && req.resource.resource == "policies"
        && req.sub_resource.as_deref().unwrap_or_default().is_empty();
    if !is_policy || !matches!(req.operation, admission::Operation::Create | admission::Operation::Update) {
        return None;
    }
    state.live.check_policy_object(req.object.as_ref()?).err()
}

async fn oidc_discovery(State(state): State<AppState>) -> Response {
    match &state.issuer {
        Some(issuer) => json(&issuer.discovery()),
        None => {
            (StatusCode::NOT_FOUND, "no OIDC issuer: start rampart serve with --oidc-issuer").into_response()
        }
    }
}

async fn oidc_jwks(State(state): State<AppState>) -> Response {
    match &state.issuer {
        Some(issuer) => {
            ([(header::CONTENT_TYPE, "application/jwk-set+json")], json_bytes(&issuer.jwks())).into_response()
        }
        None => {
            (StatusCode::NOT_FOUND, "no OIDC issuer: start rampart serve with --oidc-issuer").into_response()
        }
    }
}

/// A TokenReview that authenticates no one, with why (the apiserver logs `status.error`).
fn token_review_refused(code: StatusCode, error: String) -> Response {
    let body = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "status": {"authenticated": false, "error": error},
    });
    let mut response = json(&body);
    *response.status_mut() = code;
    response
}

async fn authenticate(State(state): State<AppState>, body: axum::body::Body) -> Response {
    let started = Instant::now();
    let Some(authenticator) = state.authenticator.clone() else {
        return token_review_refused(
            StatusCode::NOT_FOUND,
            "authentication is not configured: start rampart serve with --cluster-id".into(),
        );
    };
    let Some(body) = read_body(body, MAX_TOKEN_REVIEW_BODY).await else {
        return token_review_refused(StatusCode::PAYLOAD_TOO_LARGE, too_large(MAX_TOKEN_REVIEW_BODY));
    };
    let review: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return token_review_refused(
                StatusCode::BAD_REQUEST,
                format!("expected a request body to be a TokenReview: {e}"),
            );
        }
    };
    let Some(token) = review.pointer("/spec/token").and_then(|t| t.as_str()) else {
        return token_review_refused(
            StatusCode::BAD_REQUEST,
            "expected a TokenReview with spec.token".into(),
        );
    };
    let api_version =
        review.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("authentication.k8s.io/v1").to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let result = authenticator.authenticate(token, now).await;
    let (status, label) = match &result {
        Ok(a) => {
            tracing::info!(username = %a.username, uid = %a.uid, "authenticated");
            (StatusCode::OK, "success")
        }
        Err(e) => {
            tracing::info!(error = %e, "access denied");
            (StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN), e.metric_label())
        }
    };
    state.metrics.decision_counter("authenticate", label, "").inc();
    state
        .metrics
        .latency
        .get_or_create(&EndpointLabels { endpoint: "authenticate" })
        .observe(started.elapsed().as_secs_f64());
    let body = json_bytes(&token_review_response(&api_version, &result));
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Ready while a policy set serves. A refused reload keeps the replica ready (the last good
/// set still decides) but is reported here, as in the metrics, until the files are fixed.
/// Reviews are answered only once every live source has been read: a replica that has not
/// seen the namespace labels, aws-auth or the service accounts yet would decide with empty
/// state. Until then it answers 503 — fail closed: the apiserver applies the webhook's
/// failure policy, under which break-glass users and the control plane still work.
async fn until_synced(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if state.metrics.synced() {
        return next.run(request).await;
    }
    (StatusCode::SERVICE_UNAVAILABLE, not_synced(&state)).into_response()
}

fn not_synced(state: &AppState) -> String {
    let pending = state.metrics.pending_sources();
    let failing = state.metrics.failing_sources();
    let mut text =
        format!("not ready: waiting for the first read of {} from the cluster", pending.join(", "));
    for (source, error) in failing.iter().filter(|(s, _)| pending.contains(s)) {
        text.push_str(&format!("; {source}: {error}"));
    }
    text.push('\n');
    text
}

async fn readyz(State(state): State<AppState>) -> Response {
    if !state.metrics.synced() {
        return (StatusCode::SERVICE_UNAVAILABLE, not_synced(&state)).into_response();
    }
    let count = state.live.engine().policy_count();
    let mut text = format!("ok: {count} policies loaded");
    let refused = state.live.refused();
    if !refused.is_empty() {
        text.push_str(&format!(
            "; the last reload was refused because it would empty {}",
            refused.join(", ")
        ));
    }
    // A live source that stopped refreshing keeps its last good state, so the replica stays
    // ready; what failed is said here (and counted in rampart_live_source_errors_total).
    for (source, error) in state.metrics.failing_sources() {
        text.push_str(&format!("; {source} from the cluster is stale (last refresh failed: {error})"));
    }
    text.push('\n');
    text.into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.encode(),
    )
        .into_response()
}
