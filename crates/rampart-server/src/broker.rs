//! The broker's HTTP surface: EKS Auth's `POST /clusters/{name}/assume-role-for-pod-identity`
//! (rest-json: `x-amzn-ErrorType` and `{"message"}` on errors, `x-amzn-RequestId` always), so
//! Rampart's agent and the official agent (`--endpoint`) can both use it; `GET /associations`
//! (association versions, so agents drop stale cached credentials); `/healthz`, `/readyz` and
//! `/metrics`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use rampart_identity::pod_identity::broker::Broker;
use rampart_identity::pod_identity::wire::PodIdentityError;
use serde::Deserialize;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    code: String,
}

/// The broker and its counters.
pub struct BrokerState {
    pub broker: Arc<Broker>,
    registry: Mutex<Registry>,
    outcomes: Family<OutcomeLabels, Counter>,
}

impl BrokerState {
    pub fn new(broker: Arc<Broker>) -> Arc<Self> {
        let mut registry = Registry::with_prefix("rampart_broker");
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register("requests", "AssumeRoleForPodIdentity answers by result code", outcomes.clone());
        Arc::new(BrokerState { broker, registry: Mutex::new(registry), outcomes })
    }
}

#[derive(Deserialize)]
struct Request {
    token: Option<String>,
}

/// The broker's routes.
pub fn broker_router(state: Arc<BrokerState>) -> Router {
    Router::new()
        .route("/clusters/{cluster}/assume-role-for-pod-identity", post(assume))
        .route("/associations", get(associations))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `{"associations": {"ns/sa": version}}`: lets agents drop cached credentials of changed
/// associations at once (EKS keeps them up to 6 h).
async fn associations(State(state): State<Arc<BrokerState>>) -> Response {
    axum::Json(serde_json::json!({ "associations": state.broker.association_versions() })).into_response()
}

async fn metrics(State(state): State<Arc<BrokerState>>) -> String {
    let mut out = String::new();
    if let Ok(registry) = state.registry.lock() {
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    }
    out
}

async fn assume(State(state): State<Arc<BrokerState>>, Path(cluster): Path<String>, body: Bytes) -> Response {
    let request_id = request_id();
    let token = match serde_json::from_slice::<Request>(&body) {
        Ok(Request { token: Some(t) }) if !t.is_empty() => t,
        Ok(_) => {
            return error(
                &state,
                &request_id,
                PodIdentityError::new(400, "InvalidParameterException", "token is required"),
            );
        }
        Err(e) => {
            return error(
                &state,
                &request_id,
                PodIdentityError::new(
                    400,
                    "InvalidRequestException",
                    format!("body must be {{\"token\": \"<jwt>\"}}: {e}"),
                ),
            );
        }
    };
    let now = rampart_identity::client::now();
    match state.broker.assume_role_for_pod_identity(&cluster, &token, now).await {
        Ok(answer) => {
            state.outcomes.get_or_create(&OutcomeLabels { code: "OK".into() }).inc();
            tracing::info!(
                role = %answer.assumed_role_user.arn,
                namespace = %answer.subject.namespace,
                service_account = %answer.subject.service_account,
                "issued pod identity credentials"
            );
            let mut response = axum::Json(answer).into_response();
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert("x-amzn-requestid", v);
            }
            response
        }
        Err(e) => error(&state, &request_id, e),
    }
}

fn error(state: &BrokerState, request_id: &str, e: PodIdentityError) -> Response {
    state.outcomes.get_or_create(&OutcomeLabels { code: e.code.clone() }).inc();
    tracing::warn!(code = %e.code, status = e.status, request_id, "refused: {}", e.message);
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(serde_json::json!({ "message": e.message }))).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&e.code) {
        headers.insert("x-amzn-errortype", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn request_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}
