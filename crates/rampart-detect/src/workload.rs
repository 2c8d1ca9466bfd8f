//! Pod specs inside workload objects as audit events carry them, and the risky parts of them.
//! (`rampart_types::workload::pod_template` is the same lookup over `serde_json::Value`.)

use crate::json::{Json, JsonContainerTrait, JsonExt, JsonValueTrait};

use crate::guardduty::SENSITIVE_HOST_PATHS;

/// The pod spec of a Pod, a workload (`spec.template.spec`) or a CronJob
/// (`spec.jobTemplate.spec.template.spec`); a body without `kind` (some patches) is read as a
/// pod spec if it has containers.
pub fn pod_spec(obj: &Json) -> Option<&Json> {
    match obj.get("kind").and_then(Json::as_str) {
        Some("Pod") => obj.get("spec"),
        Some("CronJob") => obj.at("/spec/jobTemplate/spec/template/spec"),
        _ => obj
            .at("/spec/template/spec")
            .or_else(|| obj.get("spec").filter(|s| s.get("containers").is_some())),
    }
}

/// Every container of the spec (regular, init, ephemeral).
pub fn containers(spec: &Json) -> impl Iterator<Item = &Json> {
    ["containers", "initContainers", "ephemeralContainers"]
        .into_iter()
        .filter_map(|k| spec.get(k).and_then(Json::as_array))
        .flatten()
}

/// Images of privileged containers.
pub fn privileged_images(spec: &Json) -> Vec<String> {
    containers(spec)
        .filter(|c| c.at("/securityContext/privileged").and_then(Json::as_bool) == Some(true))
        .map(|c| c.get("image").and_then(Json::as_str).unwrap_or_default().to_owned())
        .collect()
}

/// `volume → path` of sensitive hostPath volumes some container mounts writable.
pub fn sensitive_writable_mounts(spec: &Json) -> Vec<String> {
    let mut out = Vec::new();
    for volume in spec.get("volumes").and_then(Json::as_array).into_iter().flatten() {
        let Some(path) = volume.at("/hostPath/path").and_then(Json::as_str) else { continue };
        let normalized = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        if !SENSITIVE_HOST_PATHS.contains(&normalized) {
            continue;
        }
        let name = volume.get("name").and_then(Json::as_str).unwrap_or_default();
        let writable = containers(spec).any(|c| {
            c.get("volumeMounts").and_then(Json::as_array).into_iter().flatten().any(|m| {
                m.get("name").and_then(Json::as_str) == Some(name)
                    && m.get("readOnly").and_then(Json::as_bool) != Some(true)
            })
        });
        if writable {
            out.push(format!("{name}={path}"));
        }
    }
    out
}

/// Image names of every container.
pub fn images(spec: &Json) -> Vec<String> {
    containers(spec).filter_map(|c| c.get("image").and_then(Json::as_str)).map(str::to_owned).collect()
}
