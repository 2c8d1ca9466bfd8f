//! Prometheus metrics of the plugin: operations and their latency, remote KMS calls, errors.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RemoteLabels {
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub operation: &'static str,
}

/// The plugin's metrics and their registry.
pub struct Metrics {
    pub operations: Family<OperationLabels, Counter>,
    pub latency: Family<LatencyLabels, Histogram>,
    pub remote_calls: Family<RemoteLabels, Counter>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let operations = Family::<OperationLabels, Counter>::default();
        let remote_calls = Family::<RemoteLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            // 10 µs … ~1.3 s.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(1e-5, 2.0, 18))
        });
        let mut registry = Registry::with_prefix("rampart_kms");
        registry.register("operations", "KMS plugin operations by result", operations.clone());
        registry.register("operation_seconds", "KMS plugin operation latency", latency.clone());
        registry.register(
            "remote_calls",
            "Calls to the remote key (AWS KMS or the key file)",
            remote_calls.clone(),
        );
        Metrics { operations, latency, remote_calls, registry }
    }
}

impl Metrics {
    /// Text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
