//! Tiers of `cedar.k8s.aws/v1alpha1` `Policy` objects, kept current by a kube-rs watcher.
//!
//! The watcher resumes a broken watch from its resourceVersion and relists on 410 Gone; a
//! relist is buffered until complete and then swapped in whole, so the tier is never served
//! half-empty. An object whose new content does not parse or validate keeps its last good
//! policies (upstream dropped them) and is reported `Invalid` in its status.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{WatchStreamExt as _, watcher};
use rampart_policy::store::crd::policy_from_object;
use rampart_policy::store::{ObjectTier, ParsedDocument};

/// The Policy resource.
pub fn policy_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cedar.k8s.aws", "v1alpha1", "Policy"),
        "policies",
    )
}

/// What the status condition of one object should say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyStatus {
    pub generation: i64,
    pub ready: bool,
    pub message: String,
}

/// Schema check of one parsed object: `Ok(warnings)` or the error message.
pub type Check = Arc<dyn Fn(&ParsedDocument) -> Result<Vec<String>, String> + Send + Sync>;

/// Called after the tier changed (to rebuild the engine), with the current statuses.
pub type OnChange = Arc<dyn Fn(&BTreeMap<String, PolicyStatus>) + Send + Sync>;

/// Told whether the watch is healthy (`Ok` on every event, `Err` when it broke and retries).
pub type OnHealth = Arc<dyn Fn(Result<(), String>) + Send + Sync>;

struct Entry {
    uid: String,
    good: Option<ParsedDocument>,
    status: PolicyStatus,
}

/// Parse and check one object, keeping `previous`'s policies when the new content is bad.
fn entry(object: &DynamicObject, previous: Option<Entry>, check: &Check) -> Option<(String, Entry)> {
    let name = object.metadata.name.clone()?;
    let uid = object.metadata.uid.clone().unwrap_or_default();
    let generation = object.metadata.generation.unwrap_or_default();
    let value = serde_json::to_value(object).ok()?;
    let checked = policy_from_object(&value)
        .map_err(|e| e.to_string())
        .and_then(|doc| check(&doc).map(|warnings| (doc, warnings)));
    let previous_good = previous.filter(|p| p.uid == uid).and_then(|p| p.good);
    let e = match checked {
        Ok((doc, warnings)) => {
            let mut message = format!("{} policies loaded", doc.policies.len());
            if !warnings.is_empty() {
                message.push_str(&format!("; warnings: {}", warnings.join("; ")));
            }
            Entry { uid, good: Some(doc), status: PolicyStatus { generation, ready: true, message } }
        }
        Err(error) => {
            tracing::error!(policy = %name, "invalid Policy object, keeping its last good policies: {error}");
            let kept = if previous_good.is_some() {
                "; its previous policies stay in force"
            } else {
                "; it contributes no policies"
            };
            Entry {
                uid,
                good: previous_good,
                status: PolicyStatus { generation, ready: false, message: format!("{error}{kept}") },
            }
        }
    };
    Some((name, e))
}

/// Watch the Policy objects matching `selector` (every one when `None`) and keep `tier`
/// current, calling `on_change` after each change. Runs until the task is dropped.
pub async fn watch(
    client: kube::Client,
    selector: Option<String>,
    tier: ObjectTier,
    check: Check,
    on_change: OnChange,
    on_health: OnHealth,
) {
    let api: Api<DynamicObject> = Api::all_with(client, &policy_resource());
    let mut config = watcher::Config::default();
    if let Some(selector) = &selector {
        config = config.labels(selector);
    }
    let mut objects: BTreeMap<String, Entry> = BTreeMap::new();
    let mut pending: Option<BTreeMap<String, Entry>> = None;
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    while let Some(event) = stream.next().await {
        on_health(event.as_ref().map(|_| ()).map_err(ToString::to_string));
        let changed = match event {
            Ok(watcher::Event::Init) => {
                pending = Some(BTreeMap::new());
                false
            }
            Ok(watcher::Event::InitApply(object)) => {
                if let Some(buffer) = pending.as_mut() {
                    let name = object.metadata.name.clone().unwrap_or_default();
                    if let Some((name, e)) = entry(&object, objects.remove(&name), &check) {
                        buffer.insert(name, e);
                    }
                }
                false
            }
            Ok(watcher::Event::InitDone) => {
                if let Some(buffer) = pending.take() {
                    objects = buffer;
                }
                true
            }
            Ok(watcher::Event::Apply(object)) => {
                let name = object.metadata.name.clone().unwrap_or_default();
                if let Some((name, e)) = entry(&object, objects.remove(&name), &check) {
                    objects.insert(name, e);
                }
                true
            }
            Ok(watcher::Event::Delete(object)) => {
                objects.remove(object.metadata.name.as_deref().unwrap_or_default());
                true
            }
            Err(e) => {
                // The watcher retries with backoff; the last good tier keeps serving.
                tracing::warn!(tier = %tier.name, "Policy watch interrupted, retrying: {e}");
                false
            }
        };
        if changed {
            tier.set(objects.values().filter_map(|e| e.good.clone()).collect());
            let statuses = objects.iter().map(|(n, e)| (n.clone(), e.status.clone())).collect();
            on_change(&statuses);
        }
    }
}

/// One list of the Policy objects matching `selector`, for commands that decide once (replay):
/// the good documents, and `(name, error)` for each object the watcher would report Invalid.
pub async fn list(
    client: &kube::Client,
    selector: Option<&str>,
    check: &Check,
) -> Result<(Vec<ParsedDocument>, Vec<(String, String)>), crate::KubeError> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &policy_resource());
    let mut params = kube::api::ListParams::default();
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    let objects = api
        .list(&params)
        .await
        .map_err(crate::KubeError::api("list Policy objects", "list on policies.cedar.k8s.aws"))?;
    let mut good = Vec::new();
    let mut invalid = Vec::new();
    for object in &objects.items {
        if let Some((name, e)) = entry(object, None, check) {
            match e.good {
                Some(doc) => good.push(doc),
                None => invalid.push((name, e.status.message)),
            }
        }
    }
    Ok((good, invalid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(uid: &str, generation: i64, content: &str) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "cedar.k8s.aws/v1alpha1", "kind": "Policy",
            "metadata": {"name": "p", "uid": uid, "generation": generation},
            "spec": {"validation": {"enforced": false}, "content": content},
        }))
        .unwrap()
    }

    fn accept_all() -> Check {
        Arc::new(|_| Ok(vec![]))
    }

    #[test]
    fn a_bad_update_keeps_the_last_good_policies_and_says_so() {
        let check = accept_all();
        let (_, good) =
            entry(&object("u1", 1, "forbid(principal, action, resource);"), None, &check).unwrap();
        assert!(good.status.ready);
        assert_eq!(good.status.message, "1 policies loaded");
        let (_, bad) = entry(&object("u1", 2, "forbid(principal,"), Some(good), &check).unwrap();
        assert!(!bad.status.ready);
        assert_eq!(bad.status.generation, 2);
        assert!(bad.status.message.contains("spec.content:1:"), "{}", bad.status.message);
        assert!(bad.status.message.ends_with("its previous policies stay in force"));
        assert_eq!(bad.good.map(|d| d.policies.len()), Some(1));
    }

    #[test]
    fn a_recreated_object_does_not_inherit_the_old_policies() {
        let check = accept_all();
        let (_, old) = entry(&object("u1", 1, "forbid(principal, action, resource);"), None, &check).unwrap();
        let (_, new) = entry(&object("u2", 1, "nonsense"), Some(old), &check).unwrap();
        assert!(new.good.is_none());
        assert!(new.status.message.ends_with("it contributes no policies"));
    }

    #[test]
    fn schema_errors_are_reported_like_parse_errors() {
        let check: Check = Arc::new(|_| Err("attribute `nope` not found".into()));
        let (_, e) = entry(&object("u1", 1, "permit(principal, action, resource);"), None, &check).unwrap();
        assert!(!e.status.ready && e.status.message.starts_with("attribute `nope`"));
    }
}
