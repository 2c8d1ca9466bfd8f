//! Prometheus metrics (text exposition on `/metrics`).
//!
//! Unlike upstream, every decision is counted (Go never counted Deny, Appendix A #13), per
//! endpoint and deciding tier, and admission latency is recorded too.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub endpoint: &'static str,
    pub decision: &'static str,
    pub tier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub policy: String,
}

/// All metrics of the server, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    pub decisions: Family<DecisionLabels, Counter>,
    pub latency: Family<EndpointLabels, Histogram>,
    pub bad_requests: Family<EndpointLabels, Counter>,
    pub reloads: Family<ReloadLabels, Counter>,
    pub policies_loaded: Gauge,
    pub would_deny: Family<PolicyLabels, Counter>,
    pub cache_hits: Counter,
    /// Failed refreshes of the live sources read from the cluster, by source.
    pub source_errors: Family<SourceLabels, Counter>,
    /// Live sources whose last refresh failed, with the error (they keep their last good state).
    failing_sources: Mutex<std::collections::BTreeMap<&'static str, String>>,
    /// Live sources expected to be read but not read successfully yet: until each has been,
    /// the replica is not ready and answers no review.
    pending_sources: Mutex<std::collections::BTreeSet<&'static str>>,
    /// No source pending: the fast path every review checks (no lock).
    all_synced: std::sync::atomic::AtomicBool,
    /// Handles into `latency` for the two endpoints, fetched once (no label lookup per request).
    pub authorize_latency: Histogram,
    pub admit_latency: Histogram,
}

fn latency_histogram() -> Histogram {
    // 5 µs … ~80 ms: decisions are microseconds; the tail matters.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(5e-6, 2.0, 15))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rampart");
        let decisions = Family::<DecisionLabels, Counter>::default();
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(latency_histogram);
        let bad_requests = Family::<EndpointLabels, Counter>::default();
        let reloads = Family::<ReloadLabels, Counter>::default();
        let policies_loaded = Gauge::default();
        let would_deny = Family::<PolicyLabels, Counter>::default();
        registry.register("decisions", "Decisions by endpoint, result and deciding tier", decisions.clone());
        registry.register("decision_duration_seconds", "Time to decide a review", latency.clone());
        registry.register("bad_requests", "Review bodies that could not be decoded", bad_requests.clone());
        registry.register("policy_reloads", "Policy reload attempts by result", reloads.clone());
        registry.register("policies_loaded", "Policies in the serving engine", policies_loaded.clone());
        registry.register(
            "audit_would_deny",
            "Requests an audit-mode forbid would have denied, by policy",
            would_deny.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "decision_cache_hits",
            "Authorization answers served from the exact-request cache",
            cache_hits.clone(),
        );
        let source_errors = Family::<SourceLabels, Counter>::default();
        registry.register(
            "live_source_errors",
            "Failed refreshes of sources read from the cluster (the last good state keeps serving)",
            source_errors.clone(),
        );
        let authorize_latency = latency.get_or_create(&EndpointLabels { endpoint: "authorize" }).clone();
        let admit_latency = latency.get_or_create(&EndpointLabels { endpoint: "admit" }).clone();
        Metrics {
            authorize_latency,
            admit_latency,
            cache_hits,
            source_errors,
            failing_sources: Mutex::default(),
            pending_sources: Mutex::default(),
            all_synced: std::sync::atomic::AtomicBool::new(true),
            registry: Mutex::new(registry),
            decisions,
            latency,
            bad_requests,
            reloads,
            policies_loaded,
            would_deny,
        }
    }

    /// Record the outcome of one refresh of a live source (`namespaces`, `aws-auth`,
    /// `identity`): a failure is counted and shown by `/readyz` until the next success.
    pub fn report_source(&self, source: &'static str, outcome: Result<(), String>) {
        let mut failing = self.failing_sources.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(()) => {
                failing.remove(source);
                let mut pending = self.pending_sources.lock().unwrap_or_else(|e| e.into_inner());
                if pending.remove(source) && pending.is_empty() {
                    self.all_synced.store(true, std::sync::atomic::Ordering::Release);
                }
            }
            Err(message) => {
                self.source_errors.get_or_create(&SourceLabels { source }).inc();
                failing.insert(source, message);
            }
        }
    }

    /// A live source this replica must read once before it is ready (see [`Metrics::synced`]).
    pub fn expect_source(&self, source: &'static str) {
        self.pending_sources.lock().unwrap_or_else(|e| e.into_inner()).insert(source);
        self.all_synced.store(false, std::sync::atomic::Ordering::Release);
    }

    /// Whether every expected live source has been read once.
    pub fn synced(&self) -> bool {
        self.all_synced.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The expected live sources not read yet.
    pub fn pending_sources(&self) -> Vec<&'static str> {
        self.pending_sources.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect()
    }

    /// The live sources whose last refresh failed, with their errors.
    pub fn failing_sources(&self) -> Vec<(&'static str, String)> {
        let failing = self.failing_sources.lock().unwrap_or_else(|e| e.into_inner());
        failing.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// The decision counter for these labels; keep the handle to count without a lookup.
    pub fn decision_counter(&self, endpoint: &'static str, decision: &'static str, tier: &str) -> Counter {
        self.decisions.get_or_create(&DecisionLabels { endpoint, decision, tier: tier.to_owned() }).clone()
    }

    /// Text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
