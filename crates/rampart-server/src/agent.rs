//! The Pod Identity node agent's HTTP surface (spec §2.3, §4.7): `GET /v1/credentials` on the
//! link-local addresses the SDKs call, with upstream's checks in upstream's order and wording
//! (rate limit, `Host`, token present, parseable, time claims) plus Rampart's hardening: only
//! `GET` (SDKs never send anything else), the Pod Identity audience (agent PR #151), an
//! optional node binding and optional full local validation (signature, issuer, live pod) so a
//! cached credential is never handed to the token of a pod that is gone. Every other path answers 404, which the probes rely on.
//!
//! Errors are plain text, as Go's `http.Error` writes them; credentials are JSON.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use rampart_identity::pod_identity::cache::{CredentialCache, Lookup, Refreshed};
use rampart_identity::pod_identity::claims::TokenClaims;
use rampart_identity::pod_identity::eks_auth::EksAuthClient;
use rampart_identity::pod_identity::verify::Validator;
use rampart_identity::pod_identity::{AGENT_HOSTS, AUDIENCE};

/// Agent settings.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `Host` values accepted (without port or brackets); default the two link-local ones.
    pub accepted_hosts: Vec<String>,
    /// This node's name: tokens bound to another node are refused (replay defence).
    pub node_name: Option<String>,
    /// Requests per second on the credentials route, and the burst (upstream 1000/500).
    pub rate_per_second: u32,
    pub burst: u32,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            accepted_hosts: AGENT_HOSTS.iter().map(|h| h.to_string()).collect(),
            node_name: None,
            rate_per_second: 1000,
            burst: 500,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    r#type: &'static str,
    code: String,
}

/// Upstream's metric names, so existing dashboards keep working.
struct AgentMetrics {
    registry: Mutex<Registry>,
    responses: Family<CodeLabels, Counter>,
    cache_state: Family<StateLabels, Counter>,
    cache_errors: Family<ErrorLabels, Counter>,
}

impl AgentMetrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let responses = Family::<CodeLabels, Counter>::default();
        let cache_state = Family::<StateLabels, Counter>::default();
        let cache_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "pod_identity_http_response",
            "Credential responses by HTTP status",
            responses.clone(),
        );
        registry.register(
            "pod_identity_cache_state",
            "Cache hits, misses and evictions",
            cache_state.clone(),
        );
        registry.register(
            "pod_identity_cache_errors",
            "Refresh errors by class and code",
            cache_errors.clone(),
        );
        AgentMetrics { registry: Mutex::new(registry), responses, cache_state, cache_errors }
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }
}

/// The agent: checks, cache, upstream.
pub struct Agent {
    config: AgentConfig,
    /// Full local validation of every token (signature, issuer, live pod) before anything is
    /// served, cached credentials included; `None` leaves it to the broker or EKS Auth.
    validator: Option<Validator>,
    cache: CredentialCache,
    upstream: EksAuthClient,
    limiter: DefaultDirectRateLimiter,
    metrics: AgentMetrics,
}

impl Agent {
    pub fn new(config: AgentConfig, cache: CredentialCache, upstream: EksAuthClient) -> Arc<Self> {
        Self::with_validator(config, cache, upstream, None)
    }

    /// An agent that also validates every token locally.
    pub fn with_validator(
        config: AgentConfig,
        cache: CredentialCache,
        upstream: EksAuthClient,
        validator: Option<Validator>,
    ) -> Arc<Self> {
        let rate = NonZeroU32::new(config.rate_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.burst).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::direct(Quota::per_second(rate).allow_burst(burst));
        Arc::new(Agent { config, validator, cache, upstream, limiter, metrics: AgentMetrics::new() })
    }

    /// Prometheus text.
    pub fn metrics_text(&self) -> String {
        self.metrics.encode()
    }

    /// One pass of the background refresher: refresh what is due, at most `budget` calls.
    pub async fn refresh_due(&self, now: i64, budget: &DefaultDirectRateLimiter) -> usize {
        let mut done = 0;
        for token in self.cache.due(now) {
            if budget.check().is_err() {
                break; // over the STS/EKS Auth budget: the rest waits for the next pass
            }
            let outcome =
                self.cache.refresh(&token, now, |t| async move { self.upstream.credentials(&t).await }).await;
            match outcome {
                Refreshed::Renewed => self.count_state("hit"),
                Refreshed::Evicted(e) => {
                    self.count_state("evicted");
                    self.metrics
                        .cache_errors
                        .get_or_create(&ErrorLabels { r#type: "NonRecoverable", code: e.code.clone() })
                        .inc();
                    tracing::info!(code = %e.code, "removing credentials from cache: {}", e.message);
                }
                Refreshed::Kept(e) => {
                    self.metrics
                        .cache_errors
                        .get_or_create(&ErrorLabels { r#type: "Recoverable", code: e.code })
                        .inc();
                }
                Refreshed::Skipped => {}
            }
            done += 1;
        }
        done
    }

    /// Poll the broker's association versions; drop cached credentials of associations that
    /// changed or disappeared since `last` (the first call only records them).
    pub async fn sync_associations(&self, last: &mut Option<std::collections::BTreeMap<String, String>>) {
        let now = match self.upstream.association_versions().await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!("association versions unavailable: {}", e.message);
                return;
            }
        };
        if let Some(before) = last.as_ref() {
            let changed: std::collections::HashSet<(String, String)> = before
                .iter()
                .filter(|(k, v)| now.get(*k) != Some(*v))
                .filter_map(|(k, _)| k.split_once('/').map(|(ns, sa)| (ns.to_owned(), sa.to_owned())))
                .collect();
            if !changed.is_empty() {
                let n = self.cache.evict_subjects(&changed);
                tracing::info!(
                    associations = changed.len(),
                    evicted = n,
                    "associations changed: cached credentials dropped"
                );
            }
        }
        *last = Some(now);
    }

    fn count_state(&self, state: &'static str) {
        self.metrics.cache_state.get_or_create(&StateLabels { state }).inc();
    }

    fn text(&self, status: u16, body: &str) -> Response {
        self.metrics.responses.get_or_create(&CodeLabels { code: status }).inc();
        text_response(status, body)
    }
}

/// A Go `http.Error`-style answer.
fn text_response(status: u16, body: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, format!("{body}\n")).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `Host` without port and brackets, as upstream reduces it (`net.SplitHostPort`, or the
/// whole value when it has no port).
pub fn host_of(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((h, _)) if !h.contains(':') => h,
        _ => host,
    }
}

/// The credentials listener's routes.
pub fn credentials_router(agent: Arc<Agent>) -> Router {
    Router::new().route("/v1/credentials", any(credentials)).fallback(not_found).with_state(agent)
}

async fn not_found() -> Response {
    text_response(404, "404 page not found")
}

async fn credentials(State(agent): State<Arc<Agent>>, method: Method, headers: HeaderMap) -> Response {
    if agent.limiter.check().is_err() {
        return agent.text(429, "Too Many Requests");
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if !agent.config.accepted_hosts.iter().any(|a| a == host_of(host)) {
        // The only defence against DNS rebinding and relays: the SDK always names the IP.
        return agent.text(
            403,
            &format!(
                "Access Denied. Called agent through invalid address, please use either [{}] address not {}",
                agent.config.accepted_hosts.join(" "),
                host_of(host)
            ),
        );
    }
    if method != Method::GET {
        return agent.text(405, "Method Not Allowed: credentials are fetched with GET");
    }
    // Only the header counts: a request forgery inside the pod cannot set it (query strings,
    // bodies and cookies are ignored on purpose).
    let token = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if token.is_empty() {
        return agent.text(400, "Service account token cannot be empty");
    }
    let claims = match TokenClaims::parse_unverified(token) {
        Ok(c) => c,
        Err(e) => return agent.text(400, &format!("Service account token cannot be parsed: {e}")),
    };
    let now = rampart_identity::client::now();
    if let Err(e) = claims.check_times(now, 0) {
        return agent.text(400, &format!("Service account token failed basic claim validations: {e}"));
    }
    if !claims.has_pod_identity_audience() {
        return agent.text(
            400,
            &format!(
                "Service account token failed basic claim validations: token audience must include {AUDIENCE}"
            ),
        );
    }
    if let (Some(node), Some(bound)) = (&agent.config.node_name, &claims.node_name)
        && node != bound
    {
        return agent.text(
            403,
            &format!("Service account token is bound to node {bound}, not to this node ({node})"),
        );
    }
    if let Some(validator) = &agent.validator
        && let Err(e) = validator.validate(token, now).await
    {
        return agent.text(e.status, &e.agent_body());
    }
    let (result, lookup) = agent
        .cache
        .get(token, claims.pod_uid.as_deref(), now, |t| {
            let agent = agent.clone();
            async move { agent.upstream.credentials(&t).await }
        })
        .await;
    agent.count_state(match lookup {
        Lookup::Hit => "hit",
        Lookup::Miss => "miss",
    });
    match result {
        Ok(creds) => {
            agent.metrics.responses.get_or_create(&CodeLabels { code: 200 }).inc();
            let body = serde_json::to_string(&creds).unwrap_or_default();
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => {
            tracing::warn!(code = %e.code, status = e.status, "credentials request failed: {}", e.message);
            agent.text(e.status, &e.agent_body())
        }
    }
}

/// What the probes check: each credentials listener must answer 404 on `/`.
#[derive(Clone)]
pub struct ProbeTargets {
    pub listeners: Vec<SocketAddr>,
    pub http: reqwest::Client,
}

/// `/healthz` and `/readyz` (the probe listener), plus `/metrics` when an agent is given.
pub fn probe_router(targets: ProbeTargets, agent: Option<Arc<Agent>>) -> Router {
    let router = Router::new().route("/healthz", get(probe)).route("/readyz", get(probe));
    let router = match agent {
        Some(agent) => router.route("/metrics", get(move || async move { agent.metrics_text() })),
        None => router,
    };
    router.with_state(targets)
}

async fn probe(State(targets): State<ProbeTargets>) -> Response {
    let check = async {
        for addr in &targets.listeners {
            let answer = targets.http.get(format!("http://{addr}/")).send().await;
            if !answer.is_ok_and(|r| r.status() == StatusCode::NOT_FOUND) {
                return false;
            }
        }
        true
    };
    match tokio::time::timeout(Duration::from_secs(10), check).await {
        Ok(true) => (StatusCode::OK, "ok").into_response(),
        Ok(false) => text_response(500, "Internal Server Error occurred"),
        Err(_) => text_response(408, "Request Timeout"),
    }
}

/// Whether the agent may listen on `ip`: loopback (tests, sidecars), the link-local range
/// (169.254.0.0/16) and EKS's IPv6 address. Never an unspecified address: hostNetwork
/// listeners are outside NetworkPolicy, and the credentials must stay on the node.
pub fn bind_allowed(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a02_a03_host_reduction() {
        for ok in
            ["169.254.170.23", "169.254.170.23:80", "fd00:ec2::23", "[fd00:ec2::23]", "[fd00:ec2::23]:4213"]
        {
            assert!(AGENT_HOSTS.contains(&host_of(ok)), "{ok}");
        }
        for bad in ["127.0.0.1:24432", "", "localhost", "169.254.170.23.nip.io", "10.0.0.5"] {
            assert!(!AGENT_HOSTS.contains(&host_of(bad)), "{bad}");
        }
    }

    #[test]
    fn binds_only_where_credentials_stay_on_the_node() {
        for ok in ["127.0.0.1", "169.254.170.23", "::1", "fd00:ec2::23"] {
            assert!(bind_allowed(ok.parse().unwrap()), "{ok}");
        }
        for bad in ["0.0.0.0", "::", "10.0.0.5", "fd00::1"] {
            assert!(!bind_allowed(bad.parse().unwrap()), "{bad}");
        }
    }
}
