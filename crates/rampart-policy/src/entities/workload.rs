//! Workload facts: a summary of a pod spec's containers, put in `context.workload` for Pods
//! and for the pod templates of workload controllers.
//!
//! Cedar cannot quantify over a set ("every container sets X"), so per-container rules are
//! otherwise inexpressible (a limitation the upstream project documents). With the facts as
//! sets, they become set algebra:
//!
//! ```cedar
//! forbid (principal, action == k8s::admission::Action::"create", resource)
//! when { context has workload && !["registry.k8s.io", "public.ecr.aws"].containsAll(context.workload.registries) };
//! ```
//!
//! This is a Rampart extension; it adds a context key, so upstream policies are unaffected.

use cedar_policy::RestrictedExpression;
use rampart_types::workload::{ImageRef, pod_template};
use serde_json::Value;

use crate::EntityError;

fn set(items: impl IntoIterator<Item = String>) -> RestrictedExpression {
    RestrictedExpression::new_set(items.into_iter().map(RestrictedExpression::new_string))
}

/// `context.workload`, or `None` when the object has no pod spec.
pub fn facts(object: &Value) -> Result<Option<RestrictedExpression>, EntityError> {
    let Some(spec) = pod_template(object).and_then(|t| t.get("spec")) else { return Ok(None) };
    let containers: Vec<&Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut images = Vec::new();
    let mut registries = Vec::new();
    let mut tags = Vec::new();
    let mut unpinned = Vec::new();
    let mut writable_root = Vec::new();
    for c in &containers {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
        let parsed = ImageRef::parse(image);
        // An untagged, undigested image means `latest` to the runtime.
        match parsed.tag {
            Some(tag) => tags.push(tag.to_owned()),
            None if parsed.is_latest() => tags.push("latest".to_owned()),
            None => {}
        }
        if parsed.digest.is_none() {
            unpinned.push(image.to_owned());
        }
        registries.push(parsed.registry.to_owned());
        images.push(image.to_owned());
        if c.pointer("/securityContext/readOnlyRootFilesystem") != Some(&Value::Bool(true)) {
            writable_root.push(name);
        }
    }
    let automount = spec.get("automountServiceAccountToken") != Some(&Value::Bool(false));
    RestrictedExpression::new_record([
        ("images".to_owned(), set(images)),
        ("registries".to_owned(), set(registries)),
        ("tags".to_owned(), set(tags)),
        ("unpinnedImages".to_owned(), set(unpinned)),
        ("containersWithoutReadOnlyRootFilesystem".to_owned(), set(writable_root)),
        ("automountServiceAccountToken".to_owned(), RestrictedExpression::new_bool(automount)),
    ])
    .map(Some)
    .map_err(|e| EntityError::Object(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_pods_have_facts_others_do_not() {
        let pod =
            serde_json::json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "nginx"}]}});
        assert!(facts(&pod).unwrap().is_some());
        let cron = serde_json::json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}});
        assert!(facts(&cron).unwrap().is_some());
        assert!(facts(&serde_json::json!({"kind": "ConfigMap", "data": {}})).unwrap().is_none());
    }
}
