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
use serde_json::Value;

use crate::EntityError;

/// The pod spec of a Pod, or of a controller's template (CronJob: job template's).
pub fn pod_spec(object: &Value) -> Option<&Value> {
    match object.get("kind").and_then(Value::as_str) {
        Some("Pod") => object.get("spec"),
        _ => object
            .pointer("/spec/jobTemplate/spec/template/spec")
            .or_else(|| object.pointer("/spec/template/spec"))
            .or_else(|| object.pointer("/template/spec")),
    }
}

/// The registry host of an image reference, as a container runtime resolves it.
pub fn registry(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first,
        _ => "docker.io",
    }
}

fn set(items: impl IntoIterator<Item = String>) -> RestrictedExpression {
    RestrictedExpression::new_set(items.into_iter().map(RestrictedExpression::new_string))
}

/// `context.workload`, or `None` when the object has no pod spec.
pub fn facts(object: &Value) -> Result<Option<RestrictedExpression>, EntityError> {
    let Some(spec) = pod_spec(object) else { return Ok(None) };
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
        let (reference, digest) = match image.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (image, None),
        };
        let last = reference.rsplit('/').next().unwrap_or(reference);
        match last.split_once(':') {
            Some((_, tag)) => tags.push(tag.to_owned()),
            // An untagged, undigested image means `latest` to the runtime.
            None if digest.is_none() => tags.push("latest".to_owned()),
            None => {}
        }
        if digest.is_none() {
            unpinned.push(image.to_owned());
        }
        registries.push(registry(reference).to_owned());
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
    fn registries_follow_runtime_rules() {
        assert_eq!(registry("nginx"), "docker.io");
        assert_eq!(registry("library/nginx"), "docker.io");
        assert_eq!(registry("registry.k8s.io/pause"), "registry.k8s.io");
        assert_eq!(registry("localhost:5000/app"), "localhost:5000");
        assert_eq!(registry("localhost/app"), "localhost");
    }

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
