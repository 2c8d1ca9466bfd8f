//! Where the injection webhook learns which pods get which identity: ServiceAccount
//! manifests (their `eks.amazonaws.com/*` annotations, for IRSA) and Pod Identity
//! associations, read from files. Accepted association formats:
//!
//! * upstream's watched file, `{"identities":[{"namespace":…,"serviceAccount":…}]}`;
//! * upstream's `pod-identity-webhook` ConfigMap (`data.config`: `{"<ns|*>/<sa>": {"RoleARN",
//!   "Audience", "UseRegionalSTS", "TokenExpiration"}}`, field names in any case);
//! * Rampart `PodIdentityAssociation` objects (`rampart.dev/v1alpha1`, cluster-scoped, with
//!   `spec: {namespace, serviceAccount, roleArn}`), multi-document YAML or a `List`.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::inject::{ConfiguredRole, IdentitySources};

/// Errors reading identity sources; each names the file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: document {document}: {message}")]
    Parse { path: String, document: usize, message: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityRef {
    namespace: String,
    service_account: String,
}

impl IdentitySources {
    /// Add every ServiceAccount and association found in `text` (YAML or JSON, multi-doc).
    pub fn add_manifests(&mut self, path: &str, text: &str) -> Result<(), SourceError> {
        for (n, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let err = |message: String| SourceError::Parse { path: path.into(), document: n + 1, message };
            let value = Value::deserialize(doc).map_err(|e| err(e.to_string()))?;
            self.add_value(&value).map_err(err)?;
        }
        Ok(())
    }

    fn add_value(&mut self, value: &Value) -> Result<(), String> {
        if value.is_null() {
            return Ok(());
        }
        if let Some(identities) = value.get("identities") {
            let list: Vec<IdentityRef> = serde_json::from_value(identities.clone())
                .map_err(|e| format!("identities: {e} (expected [{{namespace, serviceAccount}}])"))?;
            for i in list {
                self.pod_identity.insert((i.namespace, i.service_account));
            }
            return Ok(());
        }
        match value.get("kind").and_then(Value::as_str) {
            Some("List" | "ServiceAccountList" | "PodIdentityAssociationList") => {
                for item in value.get("items").and_then(Value::as_array).into_iter().flatten() {
                    self.add_value(item)?;
                }
                Ok(())
            }
            Some("ServiceAccount") => {
                let meta = value.get("metadata").ok_or("ServiceAccount without metadata")?;
                let name = meta.get("name").and_then(Value::as_str).ok_or("metadata.name is required")?;
                let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or("default");
                let annotations = meta
                    .get("annotations")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect();
                self.service_accounts.insert(format!("{namespace}/{name}"), annotations);
                Ok(())
            }
            Some("ConfigMap")
                if value.pointer("/metadata/name").and_then(Value::as_str)
                    == Some("pod-identity-webhook") =>
            {
                let text = value.pointer("/data/config").and_then(Value::as_str).unwrap_or("{}");
                self.configured = parse_configmap(text)?;
                Ok(())
            }
            Some("PodIdentityAssociation") => {
                let spec = value.get("spec").ok_or("PodIdentityAssociation without spec")?;
                let i: IdentityRef =
                    serde_json::from_value(spec.clone()).map_err(|e| format!("spec: {e}"))?;
                self.pod_identity.insert((i.namespace, i.service_account));
                Ok(())
            }
            // Other kinds (e.g. a whole namespace dump) are not identity sources; skip them.
            _ => Ok(()),
        }
    }

    /// Load several files.
    pub fn from_paths(paths: &[impl AsRef<Path>]) -> Result<Self, SourceError> {
        let mut sources = IdentitySources::default();
        for path in paths {
            let path = path.as_ref();
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|source| SourceError::Read { path: shown.clone(), source })?;
            sources.add_manifests(&shown, &text)?;
        }
        Ok(sources)
    }
}

/// `data.config` of the `pod-identity-webhook` ConfigMap. Go matches JSON field names without
/// regard to case, so this does too; a key without `/` (which crashes upstream) is an error.
fn parse_configmap(text: &str) -> Result<std::collections::BTreeMap<String, ConfiguredRole>, String> {
    let entries: serde_json::Map<String, Value> =
        serde_json::from_str(text).map_err(|e| format!("data.config: {e} (expected a JSON object)"))?;
    let mut out = std::collections::BTreeMap::new();
    for (key, entry) in entries {
        if !key.contains('/') {
            return Err(format!("data.config: key {key:?} must be \"<namespace>/<serviceaccount>\""));
        }
        let field = |name: &str| {
            entry
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
        };
        let role_arn = field("RoleARN").and_then(Value::as_str).unwrap_or_default().to_owned();
        out.insert(
            key,
            ConfiguredRole {
                role_arn,
                audience: field("Audience").and_then(Value::as_str).map(str::to_owned),
                use_regional_sts: field("UseRegionalSTS").and_then(Value::as_bool).unwrap_or(false),
                token_expiration: field("TokenExpiration").and_then(Value::as_i64).unwrap_or(0),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_service_accounts_lists_and_both_association_formats() {
        let mut s = IdentitySources::default();
        s.add_manifests(
            "a.yaml",
            r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
  namespace: team-a
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/app
---
kind: List
items:
- kind: ServiceAccount
  metadata: {name: other}
- kind: ConfigMap
  metadata: {name: ignored}
---
apiVersion: rampart.dev/v1alpha1
kind: PodIdentityAssociation
metadata: {name: team-b-app}
spec: {namespace: team-b, serviceAccount: app, roleArn: "arn:aws:iam::111122223333:role/b"}
"#,
        )
        .unwrap();
        s.add_manifests("pi.json", r#"{"identities":[{"namespace":"ns","serviceAccount":"sa"}]}"#).unwrap();
        assert_eq!(
            s.service_accounts["team-a/app"]["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::111122223333:role/app"
        );
        assert!(s.service_accounts["default/other"].is_empty());
        assert!(s.pod_identity.contains(&("team-b".into(), "app".into())));
        assert!(s.pod_identity.contains(&("ns".into(), "sa".into())));
        assert_eq!(s.service_accounts.len(), 2);
    }

    #[test]
    fn errors_name_the_file_document_and_field() {
        let mut s = IdentitySources::default();
        let e = s.add_manifests("x.yaml", "kind: ServiceAccount\nmetadata: {}\n---\n").unwrap_err();
        assert_eq!(e.to_string(), "x.yaml: document 1: metadata.name is required");
        let e = s.add_manifests("pi.json", r#"{"identities":[{"namespace":"n"}]}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `serviceAccount`"), "{e}");
    }

    #[test]
    fn reads_the_upstream_configmap_with_any_field_case() {
        let mut s = IdentitySources::default();
        s.add_manifests(
            "cm.yaml",
            r#"
kind: ConfigMap
metadata: {name: pod-identity-webhook, namespace: eks}
data:
  config: '{"*/mysa":{"rolearn":"arn:aws:iam::111122223333:role/r","Audience":"sts.amazonaws.com","TokenExpiration":3600}}'
"#,
        )
        .unwrap();
        let entry = &s.configured["*/mysa"];
        assert_eq!(entry.role_arn, "arn:aws:iam::111122223333:role/r");
        assert_eq!(entry.token_expiration, 3600);
        let e = s
            .add_manifests(
                "cm.yaml",
                "kind: ConfigMap\nmetadata: {name: pod-identity-webhook}\ndata: {config: '{\"nosl\":{}}'}\n",
            )
            .unwrap_err();
        assert!(e.to_string().contains("\"nosl\" must be"), "{e}");
    }
}
