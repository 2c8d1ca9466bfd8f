//! Where the injection webhook learns which pods get which identity: ServiceAccount
//! manifests (their `eks.amazonaws.com/*` annotations, for IRSA) and Pod Identity
//! associations, read from files. Accepted association formats:
//!
//! * upstream's watched file, `{"identities":[{"namespace":…,"serviceAccount":…}]}`;
//! * upstream's `pod-identity-webhook` ConfigMap (`data.config`: `{"<ns|*>/<sa>": {"RoleARN",
//!   "Audience", "UseRegionalSTS", "TokenExpiration"}}`, field names in any case);
//! * Rampart `PodIdentityAssociation` objects (`rampart.dev/v1alpha1`, cluster-scoped, with
//!   `spec: {namespace, serviceAccount, roleArn, targetRoleArn?, disableSessionTags?,
//!   sessionPolicy?}`), multi-document YAML or a `List`; these also feed the broker.

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

/// A Pod Identity association: which role a service account's pods get from the broker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Association {
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
    /// Assumed with the first role's credentials (cross-account, role chaining, ≤ 1 h).
    #[serde(default)]
    pub target_role_arn: Option<String>,
    /// Drop the six session tags (works around `PackedPolicyTooLarge`).
    #[serde(default)]
    pub disable_session_tags: bool,
    /// An inline session policy that narrows the role further.
    #[serde(default)]
    pub session_policy: Option<String>,
    /// The association id (the object's name).
    #[serde(skip)]
    pub id: String,
}

/// `arn:<partition>:iam::<12 digits>:role/<path/name>`.
fn check_role_arn(field: &str, arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].strip_prefix("role/").is_some_and(|n| !n.is_empty());
    if ok {
        Ok(())
    } else {
        Err(format!("{field}: {arn:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/name)"))
    }
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
                let mut a: Association =
                    serde_json::from_value(spec.clone()).map_err(|e| format!("spec: {e}"))?;
                check_role_arn("spec.roleArn", &a.role_arn)?;
                if let Some(target) = &a.target_role_arn {
                    check_role_arn("spec.targetRoleArn", target)?;
                }
                a.id = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
                if a.id.is_empty() {
                    a.id = format!("{}-{}", a.namespace, a.service_account);
                }
                let key = (a.namespace.clone(), a.service_account.clone());
                self.pod_identity.insert(key.clone());
                self.associations.insert(key, a);
                Ok(())
            }
            // Other kinds (e.g. a whole namespace dump) are not identity sources; skip them.
            _ => Ok(()),
        }
    }

    /// Add everything `other` holds (its entries win on a clash).
    pub fn merge(&mut self, other: IdentitySources) {
        self.service_accounts.extend(other.service_accounts);
        self.pod_identity.extend(other.pod_identity);
        self.configured.extend(other.configured);
        self.associations.extend(other.associations);
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
        let a = &s.associations[&("team-b".to_owned(), "app".to_owned())];
        assert_eq!((a.role_arn.as_str(), a.id.as_str()), ("arn:aws:iam::111122223333:role/b", "team-b-app"));
        assert!(
            !s.associations.contains_key(&("ns".to_owned(), "sa".to_owned())),
            "no role, no broker entry"
        );
    }

    #[test]
    fn associations_need_a_role_arn_and_known_fields() {
        let doc = |spec: &str| format!("kind: PodIdentityAssociation\nmetadata: {{name: x}}\nspec: {spec}\n");
        let mut s = IdentitySources::default();
        let e = s
            .add_manifests(
                "a.yaml",
                &doc("{namespace: n, serviceAccount: s, roleArn: arn:aws:iam::1:role/r}"),
            )
            .unwrap_err();
        assert!(e.to_string().contains("spec.roleArn"), "{e}");
        let e = s.add_manifests("a.yaml", &doc("{namespace: n, serviceAccount: s, roleArn: arn:aws:iam::111122223333:role/r, rolearn: x}")).unwrap_err();
        assert!(e.to_string().contains("unknown field `rolearn`"), "{e}");
        s.add_manifests("a.yaml", &doc("{namespace: n, serviceAccount: s, roleArn: arn:aws:iam::111122223333:role/r, targetRoleArn: arn:aws:iam::222233334444:role/t, disableSessionTags: true}")).unwrap();
        let a = &s.associations[&("n".to_owned(), "s".to_owned())];
        assert!(a.disable_session_tags);
        assert_eq!(a.id, "x");
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

    #[test]
    fn the_shipped_example_association_loads() {
        let mut s = IdentitySources::default();
        s.add_manifests("example", include_str!("../../../deploy/pod-identity/example-association.yaml"))
            .unwrap();
        assert_eq!(s.associations.len(), 1);
    }
}
