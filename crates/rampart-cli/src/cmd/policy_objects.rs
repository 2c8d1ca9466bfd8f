//! `rampart serve`'s tiers of cluster `Policy` objects: one watcher per tier, the engine
//! rebuilt on every change, and the status writer (elected) reporting Ready/Invalid.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::bail;
use rampart_kube::policies::{self, PolicyStatus};
use rampart_kube::status::{Election, run_writer};
use rampart_policy::store::{LiveEngine, ObjectTier, PolicySources};
use rampart_server::Metrics;

/// How long start-up waits for the first full list of Policy objects.
const FIRST_LIST: Duration = Duration::from_secs(30);

/// Start a watcher for each `(position, selector)` tier and the status writer; return the tiers
/// once each has its first complete list (Rampart never serves a half-listed tier).
pub async fn start(
    client: &kube::Client,
    tiers: &[(usize, String)],
    sources: &PolicySources,
    live: Arc<OnceLock<Arc<LiveEngine>>>,
    metrics: Arc<Metrics>,
    status_namespace: &str,
) -> anyhow::Result<Vec<(usize, ObjectTier)>> {
    // Each object is checked as a load would check it: same schema and validation level.
    let checker = sources.clone();
    let check: policies::Check = Arc::new(move |doc| {
        checker
            .check_document(doc)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
    });
    let (publish, statuses) = tokio::sync::watch::channel(BTreeMap::<String, PolicyStatus>::new());
    let by_tier: Arc<Mutex<BTreeMap<String, BTreeMap<String, PolicyStatus>>>> = Arc::default();
    let mut out = Vec::new();
    for (position, selector) in tiers {
        let name = if selector.is_empty() { "cluster".to_owned() } else { format!("cluster:{selector}") };
        let tier = ObjectTier::new(name.clone());
        let health = metrics.clone();
        let (live, metrics, by_tier, publish) =
            (live.clone(), metrics.clone(), by_tier.clone(), publish.clone());
        let tier_name = name.clone();
        let on_change: policies::OnChange = Arc::new(move |statuses| {
            if let Some(live) = live.get() {
                super::serve::observe_reload(&metrics, &live.reload());
            }
            let mut all = by_tier.lock().unwrap_or_else(|e| e.into_inner());
            all.insert(tier_name.clone(), statuses.clone());
            let merged = all.values().flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone()))).collect();
            let _ = publish.send(merged);
        });
        let selector = (!selector.is_empty()).then(|| selector.clone());
        let on_health: policies::OnHealth =
            Arc::new(move |outcome| health.report_source("policies", outcome));
        tokio::spawn(policies::watch(
            client.clone(),
            selector,
            tier.clone(),
            check.clone(),
            on_change,
            on_health,
        ));
        out.push((*position, tier));
    }
    let deadline = tokio::time::Instant::now() + FIRST_LIST;
    for (_, tier) in &out {
        while tier.snapshot().is_none() {
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "the Policy objects of tier {} could not be listed within {FIRST_LIST:?}: is the \
                     policies.cedar.k8s.aws CRD installed (deploy/policies/crd.yaml) and may Rampart list it \
                     (deploy/policies/rbac.yaml)?",
                    tier.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let identity =
        format!("{}-{}", std::env::var("HOSTNAME").unwrap_or_else(|_| "rampart".into()), std::process::id());
    let election = Election::new(client.clone(), status_namespace, "rampart-policy-status", &identity);
    tokio::spawn(run_writer(client.clone(), election, statuses));
    Ok(out)
}
