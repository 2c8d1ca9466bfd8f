//! A cluster snapshot: Kubernetes objects (`kubectl get … -o yaml` output: multi-document YAML,
//! JSON, `List` kinds) and, optionally, the EKS cluster description (`aws eks describe-cluster`
//! in the CLI's camelCase, the SDK's PascalCase, or kubescape's `ClusterDescribe` wrapper).

use std::collections::HashMap;
use std::path::Path;

use rampart_types::source_lines::{Place, document_lines};

use serde::Deserialize;
use serde_json::{Map, Value};

/// Snapshot reading errors, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: document {document}: {message}")]
    Parse { path: String, document: usize, message: String },
}

/// Objects and the cluster description.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub objects: Vec<Value>,
    /// `describe-cluster`'s `cluster`, keys normalised to camelCase.
    pub cluster: Option<Value>,
    /// EKS access entries (`accessEntries:` files as `--access-entries` takes them, or
    /// `aws eks describe-access-entry` output).
    pub access_entries: Vec<Value>,
    /// Where each object read from a file starts, by its [`label`] (the first file and line
    /// that names it); objects read from a cluster have none.
    pub places: HashMap<String, Place>,
}

/// `EndpointPublicAccess` → `endpointPublicAccess`, recursively (the SDK's shape → the CLI's).
fn camel(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let mut c = k.chars();
                    let key = match c.next() {
                        Some(f) => f.to_lowercase().chain(c).collect(),
                        None => k,
                    };
                    (key, camel(v))
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(camel).collect()),
        other => other,
    }
}

impl Snapshot {
    /// Add every object (and any cluster description) in `text`, read from `path`.
    pub fn add_text(&mut self, path: &str, text: &str) -> Result<(), SnapshotError> {
        let lines = document_lines(text);
        for (n, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let value = Value::deserialize(doc).map_err(|e| SnapshotError::Parse {
                path: path.into(),
                document: n + 1,
                message: e.to_string(),
            })?;
            let place = |line: usize| Place { file: path.to_string(), line };
            let document = lines.get(n).cloned().unwrap_or_default();
            match value.get("items").and_then(Value::as_array) {
                Some(items)
                    if value.get("kind").and_then(Value::as_str).is_none_or(|k| k.ends_with("List")) =>
                {
                    for (i, item) in items.iter().enumerate() {
                        self.add_value(item.clone(), Some(place(document.item(i))));
                    }
                }
                _ => self.add_value(value, Some(place(document.start))),
            }
        }
        Ok(())
    }

    fn add_value(&mut self, value: Value, place: Option<Place>) {
        if value.is_null() {
            return;
        }
        // describe-cluster (CLI or SDK shape) and kubescape's ClusterDescribe wrapper.
        let description = value
            .get("cluster")
            .or_else(|| value.get("Cluster"))
            .or_else(|| value.pointer("/data/Cluster"))
            .or_else(|| value.pointer("/data/cluster"))
            .filter(|c| c.is_object() && value.get("spec").is_none());
        if let Some(c) = description {
            self.cluster = Some(camel(c.clone()));
            return;
        }
        if let Some(entries) = value.get("accessEntries").and_then(Value::as_array) {
            self.access_entries.extend(entries.iter().filter(|e| e.is_object()).cloned());
            return;
        }
        if let Some(entry) = value.get("accessEntry").filter(|e| e.is_object()) {
            self.access_entries.push(entry.clone());
            return;
        }
        match value.get("items").and_then(Value::as_array) {
            // A List inside a List: its items have no lines of their own here.
            Some(items) if value.get("kind").and_then(Value::as_str).is_none_or(|k| k.ends_with("List")) => {
                for item in items {
                    self.add_value(item.clone(), place.clone());
                }
            }
            _ if value.get("kind").is_some() => {
                if let Some(place) = place {
                    self.places.entry(label(&value)).or_insert(place);
                }
                self.objects.push(value);
            }
            _ => {}
        }
    }

    /// A directory (recursively: `.yaml`, `.yml`, `.json`) or one file.
    pub fn load(path: &Path) -> Result<Self, SnapshotError> {
        let mut snapshot = Snapshot::default();
        snapshot.add_path(path)?;
        Ok(snapshot)
    }

    fn add_path(&mut self, path: &Path) -> Result<(), SnapshotError> {
        let err = |source| SnapshotError::Read { path: path.display().to_string(), source };
        if path.is_dir() {
            let mut entries: Vec<_> =
                std::fs::read_dir(path).map_err(err)?.filter_map(Result::ok).map(|e| e.path()).collect();
            entries.sort();
            for entry in entries {
                let wanted = entry.is_dir()
                    || entry
                        .extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
                if wanted {
                    self.add_path(&entry)?;
                }
            }
            return Ok(());
        }
        let text = std::fs::read_to_string(path).map_err(err)?;
        self.add_text(&path.display().to_string(), &text)
    }

    /// Where the first object an offender's text names (`Deployment shop/web: …`,
    /// `User a via ClusterRoleBinding ops`) starts, when it was read from a file. Names are
    /// found as `Kind name` or `Kind namespace/name`, the way [`label`] writes them.
    pub fn place_named(&self, text: &str) -> Option<&Place> {
        if self.places.is_empty() {
            return None;
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        words.windows(2).find_map(|pair| {
            let kind = pair[0].trim_start_matches('(');
            if !kind.starts_with(|c: char| c.is_ascii_uppercase()) {
                return None;
            }
            let name = pair[1].trim_end_matches([':', ',', ';', ')']);
            self.places.get(&format!("{kind} {name}"))
        })
    }

    /// Objects of a kind.
    pub fn of_kind<'s>(&'s self, kind: &'s str) -> impl Iterator<Item = &'s Value> + 's {
        self.objects.iter().filter(move |o| o.get("kind").and_then(Value::as_str) == Some(kind))
    }
}

/// `metadata.<key>` as text.
pub fn meta<'v>(o: &'v Value, key: &str) -> &'v str {
    o.get("metadata").and_then(|m| m.get(key)).and_then(Value::as_str).unwrap_or_default()
}

/// `Kind namespace/name` (or `Kind name`).
pub fn label(o: &Value) -> String {
    let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
    match meta(o, "namespace") {
        "" => format!("{kind} {}", meta(o, "name")),
        ns => format!("{kind} {ns}/{}", meta(o, "name")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_documents_and_cluster_descriptions() {
        let mut s = Snapshot::default();
        s.add_text("a.yaml", "apiVersion: v1\nkind: List\nitems:\n- {kind: Pod, metadata: {name: p, namespace: n}}\n---\nkind: Namespace\nmetadata: {name: n}\n").unwrap();
        s.add_text("c.json", r#"{"Cluster": {"ResourcesVpcConfig": {"EndpointPublicAccess": true}}}"#)
            .unwrap();
        assert_eq!(s.objects.len(), 2);
        assert_eq!(s.of_kind("Pod").count(), 1);
        assert_eq!(
            s.cluster.as_ref().unwrap().pointer("/resourcesVpcConfig/endpointPublicAccess"),
            Some(&Value::Bool(true))
        );
        assert_eq!(label(&s.objects[0]), "Pod n/p");
        assert_eq!(s.places["Pod n/p"].to_string(), "a.yaml:4");
        assert_eq!(s.places["Namespace n"].to_string(), "a.yaml:6");
        let named = |text: &str| s.place_named(text).map(ToString::to_string);
        assert_eq!(named("Pod n/p: runs as root").as_deref(), Some("a.yaml:4"));
        assert_eq!(named("User x via (Namespace n)").as_deref(), Some("a.yaml:6"));
        assert_eq!(named("Pod n/p2: runs as root"), None);
        assert_eq!(named("audit logging is off"), None);
        assert!(s.add_text("bad.yaml", "kind: [").is_err());
        s.add_text("ae.json", r#"{"accessEntry": {"principalArn": "arn:aws:iam::1:role/a"}}"#).unwrap();
        s.add_text("ae.yaml", "accessEntries:\n- principalArn: arn:aws:iam::1:role/b\n").unwrap();
        assert_eq!(s.access_entries.len(), 2);
    }
}
