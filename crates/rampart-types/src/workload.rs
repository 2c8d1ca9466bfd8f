//! Workload vocabulary shared by the policy engine and the guardrails: where a pod spec lives
//! in an object, and what an image reference is made of.

use serde_json::Value;

/// The pod template (`{metadata, spec}`) of an object: the Pod itself, a controller's
/// `spec.template` (CronJob: `spec.jobTemplate.spec.template`), or a PodTemplate's `template`.
pub fn pod_template(object: &Value) -> Option<&Value> {
    match object.get("kind").and_then(Value::as_str) {
        Some("Pod") => Some(object),
        _ => object
            .pointer("/spec/jobTemplate/spec/template")
            .or_else(|| object.pointer("/spec/template"))
            .or_else(|| object.get("template")),
    }
}

/// What image-signature verification established about an admission request's images, put in
/// Cedar's `context.images` so admission policies can require it themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageContext {
    /// Images (as written in the object) every covering ImagePolicy accepted.
    pub verified: Vec<String>,
    /// The others: covered by no policy, or refused.
    pub unverified: Vec<String>,
    /// Authorities that signed every image of the object (empty unless all are verified).
    pub signers: Vec<String>,
    /// Attestation predicate types every image of the object carries, verified.
    pub attestations: Vec<String>,
}

/// The parts of a container image reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Registry host as a container runtime resolves it (`docker.io` when none is named).
    pub registry: &'a str,
    /// The tag, if one is written (`nginx:1.25` → `1.25`).
    pub tag: Option<&'a str>,
    /// The digest, if pinned (`…@sha256:…`).
    pub digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    pub fn parse(image: &'a str) -> Self {
        let (name, digest) = match image.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (image, None),
        };
        let registry = match name.split_once('/') {
            Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first,
            _ => "docker.io",
        };
        // The tag follows the last `:` of the last path part (`localhost:5000/app` has none).
        let last = name.rsplit('/').next().unwrap_or(name);
        ImageRef { registry, tag: last.split_once(':').map(|(_, t)| t), digest }
    }

    /// `latest` when written, or when neither tag nor digest is (the runtime's default).
    pub fn is_latest(&self) -> bool {
        match self.tag {
            Some(t) => t == "latest",
            None => self.digest.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        let r = ImageRef::parse("nginx");
        assert_eq!((r.registry, r.tag, r.digest, r.is_latest()), ("docker.io", None, None, true));
        let r = ImageRef::parse("localhost:5000/app");
        assert_eq!((r.registry, r.tag), ("localhost:5000", None));
        let r = ImageRef::parse("r.io/app:1@sha256:ab");
        assert_eq!(
            (r.registry, r.tag, r.digest, r.is_latest()),
            ("r.io", Some("1"), Some("sha256:ab"), false)
        );
        assert!(!ImageRef::parse("registry.k8s.io/app@sha256:00").is_latest());
        assert_eq!(ImageRef::parse("library/nginx:latest").registry, "docker.io");
        assert_eq!(ImageRef::parse("localhost/app").registry, "localhost");
    }

    #[test]
    fn templates() {
        let cron = serde_json::json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {}}}}}});
        assert!(pod_template(&cron).is_some());
        let pod = serde_json::json!({"kind": "Pod", "spec": {}});
        assert_eq!(pod_template(&pod), Some(&pod));
        assert!(pod_template(&serde_json::json!({"kind": "ConfigMap"})).is_none());
    }
}
