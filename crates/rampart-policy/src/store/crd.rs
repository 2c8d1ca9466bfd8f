//! `cedar.k8s.aws/v1alpha1` `Policy` objects in YAML (multi-document, `List`s allowed).
//!
//! ```yaml
//! apiVersion: cedar.k8s.aws/v1alpha1
//! kind: Policy
//! metadata: {name: viewer-group}
//! spec:
//!   validation: {enforced: true}
//!   content: |
//!     permit (principal in k8s::Group::"viewers", action == k8s::Action::"get", resource);
//! ```

use serde::Deserialize;

use super::{ParsedDocument, parse_located};
use crate::PolicyLoadError;
use crate::document::DocumentKind;

#[derive(Debug, Deserialize)]
struct Metadata {
    name: Option<String>,
    uid: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct ValidationSpec {
    #[serde(default)]
    enforced: bool,
}

#[derive(Debug, Deserialize)]
struct Spec {
    content: Option<String>,
    #[serde(default)]
    validation: ValidationSpec,
}

fn err(location: &str, message: impl Into<String>) -> PolicyLoadError {
    PolicyLoadError::Parse { location: location.to_owned(), message: message.into() }
}

/// Parse every `Policy` object in a YAML text. Objects of other API groups (a Secret in the
/// same manifest) are skipped; an unknown kind in the `cedar.k8s.aws` group is an error, so a
/// typo in `kind` cannot silently drop a forbid.
pub fn parse_policy_objects(
    text: &str,
    location: &str,
) -> Result<Vec<Result<ParsedDocument, PolicyLoadError>>, PolicyLoadError> {
    let mut out = Vec::new();
    for (n, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = serde_yaml::Value::deserialize(doc).map_err(|e| {
            let at = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
            err(&format!("{location}{at}"), format!("invalid YAML: {e}"))
        })?;
        if value.is_null() {
            continue;
        }
        let doc_location = format!("{location} (document {})", n + 1);
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("List" | "PolicyList") => {
                let items = value.get("items").and_then(|i| i.as_sequence()).cloned().unwrap_or_default();
                for (i, item) in items.into_iter().enumerate() {
                    out.extend(policy_object(item, &format!("{doc_location} items[{i}]")).transpose());
                }
            }
            _ => out.extend(policy_object(value, &doc_location).transpose()),
        }
    }
    Ok(out)
}

/// One `Policy` object as the apiserver serves it (a watch event, an AdmissionReview's
/// `object`): its policies, or the error naming `spec.content:line:col`.
pub fn policy_from_object(value: &serde_json::Value) -> Result<ParsedDocument, PolicyLoadError> {
    let name = value.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or("(unnamed)");
    let location = format!("Policy {name:?}");
    let yaml = serde_yaml::to_value(value).map_err(|e| err(&location, e.to_string()))?;
    policy_object(yaml, "cluster")?.ok_or_else(|| err(&location, "not a cedar.k8s.aws Policy"))
}

fn policy_object(
    value: serde_yaml::Value,
    location: &str,
) -> Result<Option<ParsedDocument>, PolicyLoadError> {
    let api_version = value.get("apiVersion").and_then(|v| v.as_str()).unwrap_or_default();
    let kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or_default();
    if !api_version.starts_with("cedar.k8s.aws/") {
        tracing::debug!(%location, api_version, kind, "skipping non-policy object");
        return Ok(None);
    }
    if kind != "Policy" {
        return Err(err(
            location,
            format!("expected apiVersion cedar.k8s.aws/v1alpha1 kind Policy, found {api_version:?} {kind:?}"),
        ));
    }
    let metadata: Metadata = value
        .get("metadata")
        .cloned()
        .map(serde_yaml::from_value)
        .transpose()
        .map_err(|e| err(location, format!("metadata: {e}")))?
        .ok_or_else(|| err(location, "metadata.name is required"))?;
    let name = metadata.name.ok_or_else(|| err(location, "metadata.name is required"))?;
    let location = format!("{location} Policy {name:?}");
    let spec: Spec = value
        .get("spec")
        .cloned()
        .map(serde_yaml::from_value)
        .transpose()
        .map_err(|e| err(&location, format!("spec: {e}")))?
        .ok_or_else(|| err(&location, "spec is required"))?;
    let content = spec.content.ok_or_else(|| err(&location, "spec.content is required"))?;
    let kind = DocumentKind::PolicyObject { name, uid: metadata.uid };
    let content_location = format!("{location} spec.content");
    let policies = parse_located(&kind, &content, &content_location)?;
    Ok(Some(ParsedDocument {
        location,
        content_location,
        policies,
        enforce_validation: spec.validation.enforced,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_and_lists() {
        let text = r#"
apiVersion: cedar.k8s.aws/v1alpha1
kind: Policy
metadata: {name: a, uid: u1}
spec:
  validation: {enforced: false}
  content: |
    permit(principal, action, resource);
---
kind: List
apiVersion: v1
items:
- apiVersion: cedar.k8s.aws/v1alpha1
  kind: Policy
  metadata: {name: b}
  spec: {validation: {enforced: true}, content: "forbid(principal, action, resource);"}
"#;
        let docs: Vec<_> =
            parse_policy_objects(text, "f.yaml").unwrap().into_iter().map(Result::unwrap).collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].policies[0].id, "a0-u1");
        assert_eq!(docs[1].policies[0].id, "b0");
        assert!(docs[1].enforce_validation);
    }

    #[test]
    fn errors_name_the_object_and_field() {
        let text = "apiVersion: cedar.k8s.aws/v1alpha1\nkind: Policy\nmetadata: {name: a}\nspec: {validation: {enforced: false}}\n";
        let e = parse_policy_objects(text, "f.yaml").unwrap().pop().unwrap().err().unwrap();
        assert!(e.to_string().contains("spec.content is required"), "{e}");
        let bad = "apiVersion: cedar.k8s.aws/v1alpha1\nkind: Policy\nmetadata: {name: a}\nspec:\n  content: |\n    permit(principal, action, resource)\n    oops\n";
        let e = parse_policy_objects(bad, "f.yaml").unwrap().pop().unwrap().err().unwrap();
        assert!(e.to_string().contains("spec.content:"), "{e}");
        let typo = "apiVersion: cedar.k8s.aws/v1alpha1\nkind: Polcy\nmetadata: {name: a}\n";
        assert!(parse_policy_objects(typo, "f.yaml").unwrap().pop().unwrap().is_err());
        let other = "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n";
        assert!(parse_policy_objects(other, "f.yaml").unwrap().is_empty());
        let yaml = "a: [";
        assert!(parse_policy_objects(yaml, "f.yaml").unwrap_err().to_string().contains("f.yaml:"));
    }
}
