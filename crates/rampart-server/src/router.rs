//! HTTP handlers. Every review gets a well-formed review back, even when its body is bad:
//! the apiserver then logs a clear message instead of a decoding failure.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rampart_policy::store::LiveEngine;
use rampart_policy::tier::AuditHit;
use rampart_types::admission::{self, AdmissionResponse};
use rampart_types::sar::{self, SarResponse, SarStatus};

use crate::metrics::{DecisionLabels, EndpointLabels, Metrics, PolicyLabels};

/// Admission objects can be large (etcd allows ~1.5 MiB objects, and UPDATE sends two).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    pub live: Arc<LiveEngine>,
    pub metrics: Arc<Metrics>,
}

/// Build the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/authorize", post(authorize))
        .route("/v1/admit", post(admit))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn json(body: &impl serde::Serialize) -> Response {
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

async fn authorize(State(state): State<AppState>, body: Bytes) -> Response {
    let started = Instant::now();
    let endpoint = "authorize";
    let review = match sar::decode(&body) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "undecodable SubjectAccessReview");
            state.metrics.bad_requests.get_or_create(&EndpointLabels { endpoint }).inc();
            return json(&SarResponse::decode_failure(&e));
        }
    };
    let engine = state.live.engine();
    let verdict = engine.authorize(&review.spec);
    let user = review.spec.user.as_deref().unwrap_or_default();
    tracing::debug!(user, decision = %verdict.decision, reason = %verdict.reason, "authorize");
    record_audit(&state.metrics, &verdict.audit, user);
    state
        .metrics
        .decisions
        .get_or_create(&DecisionLabels {
            endpoint,
            decision: verdict.decision.as_str(),
            tier: verdict.tier.clone().unwrap_or_default(),
        })
        .inc();
    state
        .metrics
        .latency
        .get_or_create(&EndpointLabels { endpoint })
        .observe(started.elapsed().as_secs_f64());
    json(&SarResponse::new(SarStatus::new(verdict.decision, verdict.reason, verdict.evaluation_error)))
}

async fn admit(State(state): State<AppState>, body: Bytes) -> Response {
    let started = Instant::now();
    let endpoint = "admit";
    let review = match admission::decode(&body) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "undecodable AdmissionReview");
            state.metrics.bad_requests.get_or_create(&EndpointLabels { endpoint }).inc();
            let uid = admission::salvage_uid(&body);
            return json(&AdmissionResponse::reject(uid, 400, e.to_string()).into_review());
        }
    };
    let engine = state.live.engine();
    let verdict = engine.admit(&review.request);
    let decision = if verdict.response.allowed { "allow" } else { "deny" };
    let user = review.request.user_info.username.as_deref().unwrap_or_default();
    if !verdict.response.allowed {
        tracing::info!(uid = %review.request.uid, user, kind = %review.request.kind.kind,
            message = verdict.response.status.as_ref().map(|s| s.message.as_str()).unwrap_or_default(),
            "admission denied");
    }
    record_audit(&state.metrics, &verdict.audit, user);
    state
        .metrics
        .decisions
        .get_or_create(&DecisionLabels { endpoint, decision, tier: verdict.tier.clone().unwrap_or_default() })
        .inc();
    state
        .metrics
        .latency
        .get_or_create(&EndpointLabels { endpoint })
        .observe(started.elapsed().as_secs_f64());
    json(&verdict.response.into_review())
}

async fn readyz(State(state): State<AppState>) -> String {
    format!("ok: {} policies loaded\n", state.live.engine().policy_count())
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.encode(),
    )
        .into_response()
}
