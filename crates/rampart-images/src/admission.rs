//! Image verification at admission: every container, init container and ephemeral container
//! image of a pod or pod template, verified within a deadline, answered with a denial naming
//! each image, policy and what was missing — or with a JSON patch pinning each verified tag to
//! its digest.
//!
//! Fails closed: an image a policy covers and that could not be verified (registry down,
//! deadline passed) is refused. Images no policy covers are left alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::{Value, json};

use rampart_types::workload::ImageContext;

use crate::registry::Credentials;
use crate::verify::{ImageFacts, PolicySet, Verifier, VerifyError};

/// Where the containers are, relative to a pod spec.
const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// The JSON pointer of the pod spec inside an object (a Pod, a controller's template, a
/// CronJob's job template, a PodTemplate).
pub fn pod_spec_pointer(object: &Value) -> Option<&'static str> {
    match object.get("kind").and_then(Value::as_str) {
        Some("Pod") => Some("/spec"),
        Some("CronJob") => Some("/spec/jobTemplate/spec/template/spec"),
        Some("PodTemplate") => Some("/template/spec"),
        _ if object.pointer("/spec/template/spec").is_some() => Some("/spec/template/spec"),
        _ => None,
    }
}

/// Every image of an object with the JSON pointer of its `image` field.
pub fn images_of(object: &Value) -> Vec<(String, String)> {
    let Some(prefix) = pod_spec_pointer(object) else { return vec![] };
    let Some(spec) = object.pointer(prefix) else { return vec![] };
    let mut out = Vec::new();
    for list in CONTAINER_LISTS {
        for (i, container) in spec.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
            if let Some(image) = container.get("image").and_then(Value::as_str) {
                out.push((format!("{prefix}/{list}/{i}/image"), image.to_string()));
            }
        }
    }
    out
}

/// The answer for one admission request.
#[derive(Debug, Default)]
pub struct ImageAdmission {
    /// Set when the request must be refused: every failing image, `; `-separated.
    pub denial: Option<String>,
    /// The same, one entry per failing image and policy: (image, message).
    pub refusals: Vec<(String, String)>,
    /// JSON patch operations rewriting tags to digests.
    pub patch: Vec<Value>,
    /// What verification established, per image.
    pub facts: Vec<ImageFacts>,
}

/// Policies, verifier and credentials, as `serve` holds them.
pub struct ImageAdmitter {
    pub policies: ArcSwap<PolicySet>,
    pub verifier: Verifier,
    /// Credentials for every request (a docker config.json, ECR tokens).
    pub credentials: ArcSwap<Credentials>,
    /// The whole verification of one request must end by then: below the webhook's timeout,
    /// so the refusal carries Rampart's message rather than the apiserver's.
    pub deadline: Duration,
}

impl ImageAdmitter {
    pub fn new(
        policies: PolicySet,
        verifier: Verifier,
        credentials: Credentials,
        deadline: Duration,
    ) -> Self {
        ImageAdmitter {
            policies: ArcSwap::from_pointee(policies),
            verifier,
            credentials: ArcSwap::from_pointee(credentials),
            deadline,
        }
    }

    /// Verify the images of `object` in `namespace`. On UPDATE, images already in `old` are not
    /// verified again: they were admitted before.
    pub async fn admit(
        &self,
        namespace: &str,
        object: &Value,
        old: Option<&Value>,
        pull_secrets: &Credentials,
    ) -> ImageAdmission {
        let policies = self.policies.load_full();
        let known: Vec<String> = old.map(images_of).unwrap_or_default().into_iter().map(|(_, i)| i).collect();
        // Each distinct image once, however many containers use it.
        let mut pending: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (pointer, image) in images_of(object) {
            if !known.contains(&image) {
                pending.entry(image).or_default().push(pointer);
            }
        }
        if pending.is_empty() || policies.is_empty() {
            return ImageAdmission::default();
        }
        // Every image answered from the caches: no timer, no registry, no credentials.
        let mut cached = Vec::with_capacity(pending.len());
        for (image, pointers) in &pending {
            match cached_check(&self.verifier, &policies, image, namespace).await {
                Some(checked) => cached.push((image.clone(), pointers.clone(), checked)),
                None => break,
            }
        }
        let results = if cached.len() == pending.len() {
            Ok(cached)
        } else {
            let credentials = pull_secrets.merged(&self.credentials.load());
            let checks = pending.into_iter().map(|(image, pointers)| {
                let (policies, credentials) = (&policies, &credentials);
                async move {
                    let outcome = check_one(&self.verifier, policies, &image, namespace, credentials).await;
                    (image, pointers, outcome)
                }
            });
            tokio::time::timeout(self.deadline, futures::future::join_all(checks)).await
        };
        let results = match results {
            Ok(results) => results,
            Err(_) => {
                let message = format!(
                    "image verification did not finish within {:?} (a registry is slow or unreachable); \
                     refused because an unverified image must not run",
                    self.deadline
                );
                return ImageAdmission {
                    denial: Some(message.clone()),
                    refusals: vec![(String::new(), message)],
                    ..Default::default()
                };
            }
        };
        let mut answer = ImageAdmission::default();
        let mut refusals = Vec::new();
        for (image, pointers, outcome) in results {
            match outcome {
                Checked::NotCovered => {}
                Checked::Failed(why) => refusals.push((image.clone(), format!("image {image:?}: {why}"))),
                Checked::Done(outcome) => {
                    if outcome.failures.is_empty() {
                        if outcome.pin {
                            let reference = self.verifier.reference(&image).ok();
                            let pinned = reference.map(|r| r.pinned(&outcome.facts.digest));
                            for pointer in
                                pointers.iter().filter(|_| pinned.as_deref() != Some(image.as_str()))
                            {
                                if let Some(pinned) = &pinned {
                                    answer
                                        .patch
                                        .push(json!({"op": "replace", "path": pointer, "value": pinned}));
                                }
                            }
                        }
                    } else {
                        for f in &outcome.failures {
                            let message = format!(
                                "image {image:?} ({}): policy {:?}: {}",
                                outcome.facts.digest, f.policy, f.missing
                            );
                            refusals.push((image.clone(), message));
                        }
                    }
                    answer.facts.push(outcome.facts.clone());
                }
            }
        }
        if !refusals.is_empty() {
            let messages: Vec<&str> = refusals.iter().map(|(_, m)| m.as_str()).collect();
            answer.denial = Some(messages.join("; "));
            answer.refusals = refusals;
            answer.patch.clear();
        }
        answer
    }
}

impl ImageAdmitter {
    /// What verification establishes about an object's images, for Cedar's `context.images`
    /// (`None` when the object has no images). Answered from the cache for images the
    /// mutating webhook just verified; an image that cannot be verified in time counts as
    /// unverified.
    pub async fn context(&self, namespace: &str, object: &Value) -> Option<ImageContext> {
        let mut images: Vec<String> = images_of(object).into_iter().map(|(_, image)| image).collect();
        if images.is_empty() {
            return None;
        }
        images.sort();
        images.dedup();
        let policies = self.policies.load_full();
        let credentials = self.credentials.load_full();
        let checks = images.iter().map(|image| {
            let (policies, credentials) = (&policies, &credentials);
            async move {
                (image.clone(), check_one(&self.verifier, policies, image, namespace, credentials).await)
            }
        });
        let results =
            tokio::time::timeout(self.deadline, futures::future::join_all(checks)).await.unwrap_or_default();
        let mut context = ImageContext::default();
        let mut common: Option<(Vec<String>, Vec<String>)> = None;
        for (image, checked) in &results {
            match checked {
                Checked::Done(outcome) if outcome.failures.is_empty() => {
                    context.verified.push(image.clone());
                    let (signers, attestations) = common.get_or_insert_with(|| {
                        (outcome.facts.signers.clone(), outcome.facts.attestations.clone())
                    });
                    signers.retain(|s| outcome.facts.signers.contains(s));
                    attestations.retain(|a| outcome.facts.attestations.contains(a));
                }
                _ => context.unverified.push(image.clone()),
            }
        }
        context.unverified.extend(images.iter().filter(|i| !results.iter().any(|(r, _)| r == *i)).cloned());
        if context.unverified.is_empty()
            && let Some((signers, attestations)) = common
        {
            context.signers = signers;
            context.attestations = attestations;
        }
        Some(context)
    }
}

enum Checked {
    NotCovered,
    Failed(String),
    Done(Arc<crate::verify::Outcome>),
}

/// [`check_one`] from the caches alone; `None` when the registry would be needed.
async fn cached_check(
    verifier: &Verifier,
    policies: &PolicySet,
    image: &str,
    namespace: &str,
) -> Option<Checked> {
    let Ok(reference) = verifier.reference(image) else { return None };
    let applicable = policies.applicable(&reference.name(), namespace);
    if applicable.is_empty() {
        return Some(Checked::NotCovered);
    }
    verifier.cached(&reference, &applicable).await.map(Checked::Done)
}

async fn check_one(
    verifier: &Verifier,
    policies: &PolicySet,
    image: &str,
    namespace: &str,
    credentials: &Credentials,
) -> Checked {
    let reference = match verifier.reference(image) {
        Ok(r) => r,
        // An unparseable reference cannot be matched against policies; the apiserver and the
        // runtime refuse it anyway, but a policy might have meant to cover it: refuse.
        Err(e) => return Checked::Failed(e.to_string()),
    };
    let applicable = policies.applicable(&reference.name(), namespace);
    if applicable.is_empty() {
        return Checked::NotCovered;
    }
    match verifier.verify(&reference, &applicable, credentials).await {
        Ok(outcome) => Checked::Done(outcome),
        Err(VerifyError::Registry(e)) => Checked::Failed(format!("cannot verify: {e}")),
        Err(e) => Checked::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_with_their_paths() {
        let pod = json!({"kind": "Pod", "spec": {
            "initContainers": [{"name": "i", "image": "init:1"}],
            "containers": [{"name": "a", "image": "app:1"}, {"name": "b", "image": "side:1"}],
            "ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}});
        assert_eq!(
            images_of(&pod),
            vec![
                ("/spec/containers/0/image".into(), "app:1".into()),
                ("/spec/containers/1/image".into(), "side:1".into()),
                ("/spec/initContainers/0/image".into(), "init:1".into()),
                ("/spec/ephemeralContainers/0/image".into(), "busybox".into()),
            ]
        );
        let cron = json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"image": "c:1"}]}}}}}});
        assert_eq!(images_of(&cron)[0].0, "/spec/jobTemplate/spec/template/spec/containers/0/image");
        let deployment =
            json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"image": "d:1"}]}}}});
        assert_eq!(images_of(&deployment)[0].0, "/spec/template/spec/containers/0/image");
        assert!(images_of(&json!({"kind": "ConfigMap"})).is_empty());
    }
}
