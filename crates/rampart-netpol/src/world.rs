//! What the analysis reads: namespaces with their labels, workloads (Pods and the pod
//! templates of controllers) with their labels and container ports, NetworkPolicies with the
//! file and line they came from, and named external CIDRs.

use std::collections::BTreeMap;

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde::Deserialize;
use serde_json::Value;

use rampart_types::source_lines::{DocumentLines, document_lines};
use rampart_types::workload::pod_template;

use crate::NetpolError;

/// A container port, for named ports in rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: &'static str,
}

/// A workload: a Pod or a controller's pod template.
#[derive(Debug, Clone)]
pub struct Workload {
    pub namespace: String,
    pub name: String,
    pub kind: String,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<ContainerPort>,
}

impl Workload {
    /// `namespace/name`, how commands name it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A NetworkPolicy and where it was written.
#[derive(Debug, Clone)]
pub struct Policy {
    pub policy: NetworkPolicy,
    pub namespace: String,
    pub name: String,
    pub origin: String,
    pub line: usize,
}

impl Policy {
    /// `namespace/name (file:line)`, or `namespace/name` when read from a cluster.
    pub fn shown(&self) -> String {
        format!("{}/{}{}", self.namespace, self.name, self.place())
    }

    /// `namespace/name RULE (file:line)`: one of its rules, named as `rule` says (`rule 2`,
    /// `egress rule 0`).
    pub fn rule_shown(&self, rule: &str) -> String {
        format!("{}/{} {rule}{}", self.namespace, self.name, self.place())
    }

    /// ` (file:line)` when the policy came from a file.
    pub fn place(&self) -> String {
        if self.line == 0 { String::new() } else { format!(" ({}:{})", self.origin, self.line) }
    }
}

/// Everything the analysis knows.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// Namespace labels; every namespace also carries `kubernetes.io/metadata.name`, as the
    /// apiserver sets it.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub workloads: Vec<Workload>,
    pub policies: Vec<Policy>,
    /// AdminNetworkPolicies and the BaselineAdminNetworkPolicy, in the order read.
    pub admin_policies: Vec<crate::admin::AdminPolicy>,
    /// Named addresses outside the cluster (`metadata` → 169.254.169.254/32).
    pub externals: Vec<(String, IpNet)>,
}

const NAME_LABEL: &str = "kubernetes.io/metadata.name";

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

/// Pods of a ReplicaSet, Job, DaemonSet or StatefulSet, ReplicaSets of a Deployment and Jobs
/// of a CronJob are their owner's pod template over again: a `kubectl get pods,deploy,rs`
/// dump names each workload once, by its controller.
fn owned_by_a_controller(object: &Value) -> bool {
    let owners: &[&str] = match object["kind"].as_str() {
        Some("Pod") => &["ReplicaSet", "Job", "DaemonSet", "StatefulSet"],
        Some("ReplicaSet") => &["Deployment"],
        Some("Job") => &["CronJob"],
        _ => return false,
    };
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|o| o["kind"].as_str().is_some_and(|k| owners.contains(&k)))
}

impl World {
    /// Add every object of a YAML stream (Lists unpacked); `origin` names the file.
    pub fn add_manifests(&mut self, origin: &str, text: &str) -> Result<(), NetpolError> {
        let documents = document_lines(text);
        for (n, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let lines = documents.get(n).cloned().unwrap_or(DocumentLines { start: 1, items: Vec::new() });
            let value = Value::deserialize(document)
                .map_err(|e| NetpolError::Manifest { origin: origin.to_string(), message: e.to_string() })?;
            match value.get("items").and_then(Value::as_array) {
                Some(items) if value["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
                    for (i, item) in items.iter().enumerate() {
                        self.add_object(origin, lines.item(i), item.clone())?;
                    }
                }
                _ => self.add_object(origin, lines.start, value)?,
            }
        }
        self.label_namespaces();
        Ok(())
    }

    /// Add objects already parsed (a cluster snapshot); `origin` names where they came from.
    pub fn add_objects<'a>(
        &mut self,
        origin: &str,
        objects: impl IntoIterator<Item = &'a Value>,
    ) -> Result<(), NetpolError> {
        for object in objects {
            self.add_object(origin, 0, object.clone())?;
        }
        self.label_namespaces();
        Ok(())
    }

    /// Every namespace a workload or policy names exists, and carries the
    /// `kubernetes.io/metadata.name` label the apiserver gives it.
    fn label_namespaces(&mut self) {
        for w in &self.workloads {
            self.namespaces.entry(w.namespace.clone()).or_default();
        }
        for labels in self.namespaces.iter_mut() {
            labels.1.insert(NAME_LABEL.to_string(), labels.0.clone());
        }
    }

    fn add_object(&mut self, origin: &str, line: usize, object: Value) -> Result<(), NetpolError> {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let namespace =
            object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_string();
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let bad = |message: String| NetpolError::Manifest { origin: format!("{origin}:{line}"), message };
        match kind.as_str() {
            "Namespace" => {
                let labels = string_map(object.pointer("/metadata/labels"));
                self.namespaces.entry(name).or_default().extend(labels);
            }
            "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy" => {
                self.admin_policies.push(crate::admin::parse(&object, origin, line)?);
            }
            "NetworkPolicy" => {
                let policy: NetworkPolicy = serde_json::from_value(object)
                    .map_err(|e| bad(format!("NetworkPolicy {namespace}/{name}: {e}")))?;
                self.namespaces.entry(namespace.clone()).or_default();
                self.policies.push(Policy { policy, namespace, name, origin: origin.to_string(), line });
            }
            _ if owned_by_a_controller(&object) => {}
            _ => {
                let Some(template) = pod_template(&object) else { return Ok(()) };
                // A hostNetwork pod uses its node's address: NetworkPolicies do not apply to it
                // (CIS 4.2.4 is where `rampart scan` reports those).
                if template.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true) {
                    return Ok(());
                }
                let labels = string_map(template.pointer("/metadata/labels"));
                let mut ports = Vec::new();
                for list in ["containers", "initContainers"] {
                    for c in template
                        .pointer(&format!("/spec/{list}"))
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        for p in c.get("ports").and_then(Value::as_array).into_iter().flatten() {
                            let Some(port) = p
                                .get("containerPort")
                                .and_then(Value::as_u64)
                                .and_then(|p| u16::try_from(p).ok())
                            else {
                                continue;
                            };
                            let protocol = match p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") {
                                "UDP" => "UDP",
                                "SCTP" => "SCTP",
                                _ => "TCP",
                            };
                            let name = p.get("name").and_then(Value::as_str).map(str::to_string);
                            ports.push(ContainerPort { name, port, protocol });
                        }
                    }
                }
                self.workloads.push(Workload { namespace, name, kind, labels, ports });
            }
        }
        Ok(())
    }

    /// A workload by `namespace/name`.
    pub fn workload(&self, id: &str) -> Option<usize> {
        self.workloads.iter().position(|w| w.id() == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_namespaces_workloads_ports_and_policies_with_lines() {
        let mut world = World::default();
        world
            .add_manifests(
                "m.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: a}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - name: c\n          ports: [{name: http, containerPort: 8080}, {containerPort: 53, protocol: UDP}]\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: shop}\nspec: {podSelector: {}}\n",
            )
            .unwrap();
        assert_eq!(world.namespaces["shop"]["team"], "a");
        assert_eq!(world.namespaces["shop"][NAME_LABEL], "shop");
        let web = &world.workloads[world.workload("shop/web").unwrap()];
        assert_eq!(web.labels["app"], "web");
        assert_eq!(web.ports[0], ContainerPort { name: Some("http".into()), port: 8080, protocol: "TCP" });
        assert_eq!(web.ports[1].protocol, "UDP");
        assert_eq!(world.policies[0].shown(), "shop/deny (m.yaml:16)");
    }

    #[test]
    fn policies_of_a_kubectl_list_have_their_own_lines() {
        let mut world = World::default();
        world
            .add_manifests(
                "netpol.yaml",
                "apiVersion: v1\nitems:\n- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n  metadata: {name: a, namespace: shop}\n  spec: {podSelector: {}}\n- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n  metadata: {name: b, namespace: shop}\n  spec: {podSelector: {}}\nkind: List\n",
            )
            .unwrap();
        let shown: Vec<String> = world.policies.iter().map(Policy::shown).collect();
        assert_eq!(shown, ["shop/a (netpol.yaml:3)", "shop/b (netpol.yaml:7)"]);
    }

    #[test]
    fn controllers_stand_for_their_pods() {
        let mut world = World::default();
        world
            .add_manifests(
                "m.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: a, labels: {app: web}, ownerReferences: [{kind: ReplicaSet, name: web-5d}]}\nspec: {containers: [{name: c}]}\n---\napiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web-5d, namespace: a, ownerReferences: [{kind: Deployment, name: web}]}\nspec: {template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c}]}}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: a}\nspec: {template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c}]}}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: job-pod, namespace: a, ownerReferences: [{kind: Workflow, name: w}]}\nspec: {containers: [{name: c}]}\n",
            )
            .unwrap();
        let names: Vec<String> = world.workloads.iter().map(Workload::id).collect();
        assert_eq!(names, ["a/web", "a/job-pod"], "a pod of an unknown owner is kept");
    }
}
