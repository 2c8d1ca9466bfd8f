//! AdminNetworkPolicy and BaselineAdminNetworkPolicy (`policy.networking.k8s.io/v1alpha1`,
//! sigs.k8s.io/network-policy-api): the cluster administrator's tiers around NetworkPolicies.
//!
//! A connection is judged per port, tier by tier. AdminNetworkPolicies that select the pod are
//! read in priority order (lower first; equal priorities by name, which the API leaves to the
//! implementation), and within one in rule order: the first rule whose peers and ports match
//! decides — Allow (NetworkPolicies cannot take it back), Deny, or Pass (skip the remaining
//! admin rules). What no admin rule decided, and what was passed, goes to the NetworkPolicies
//! when any isolates the pod; otherwise to the BaselineAdminNetworkPolicy (Allow or Deny, first
//! match), and what that leaves is allowed.
//!
//! Peers: `namespaces`, `pods` and, for egress, `networks` (CIDRs naming addresses outside the
//! cluster; `0.0.0.0/0` and `::/0` also hold every pod, as the API warns). `nodes` and
//! `domainNames` name nothing offline: an Allow with them allows nothing here, a Deny denies
//! nothing — documented, and shown in `reach`'s explanation.

use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Deserialize;
use serde_json::Value;

use crate::NetpolError;
use crate::ports::PortSet;
use crate::world::ContainerPort;

/// Which tier a policy belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Before NetworkPolicies; lower priority values first.
    Admin { priority: i32 },
    /// After NetworkPolicies, for pods none isolates.
    Baseline,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Action {
    Allow,
    Deny,
    Pass,
}

/// Pods chosen by namespace labels, or by namespace and pod labels.
#[derive(Debug, Clone, PartialEq)]
pub enum Pods {
    Namespaces(LabelSelector),
    Pods { namespaces: LabelSelector, pods: LabelSelector },
}

/// One `from`/`to` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Peer {
    Pods(Pods),
    /// CIDRs (egress only).
    Networks(Vec<IpNet>),
    /// `nodes` or `domainNames`: not modelled offline, so it names no endpoint.
    Unmodelled(&'static str),
}

/// One entry of a rule's `ports`.
#[derive(Debug, Clone, PartialEq)]
pub enum Port {
    Set(PortSet),
    /// A container port's name, of whatever protocol it has.
    Named(String),
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub action: Action,
    pub peers: Vec<Peer>,
    /// `None`: every port.
    pub ports: Option<Vec<Port>>,
}

impl Rule {
    /// The ports this rule covers towards a destination (`None`: outside the cluster).
    pub fn ports_towards(&self, container_ports: Option<&[ContainerPort]>) -> PortSet {
        let Some(ports) = &self.ports else { return PortSet::all() };
        ports.iter().fold(PortSet::none(), |acc, port| match port {
            Port::Set(set) => acc.union(set),
            Port::Named(name) => container_ports
                .into_iter()
                .flatten()
                .filter(|c| c.name.as_deref() == Some(name.as_str()))
                .fold(acc, |acc, c| acc.union(&PortSet::range(c.protocol, c.port, c.port))),
        })
    }
}

/// An AdminNetworkPolicy or the BaselineAdminNetworkPolicy, and where it was written.
#[derive(Debug, Clone)]
pub struct AdminPolicy {
    pub tier: Tier,
    pub name: String,
    pub subject: Pods,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
    pub origin: String,
    pub line: usize,
}

impl AdminPolicy {
    /// `AdminNetworkPolicy name (priority 10, file:line)`.
    pub fn shown(&self) -> String {
        let place = if self.line == 0 { String::new() } else { format!(", {}:{}", self.origin, self.line) };
        match self.tier {
            Tier::Admin { priority } => {
                format!("AdminNetworkPolicy {} (priority {priority}{place})", self.name)
            }
            Tier::Baseline => format!(
                "BaselineAdminNetworkPolicy {}{}",
                self.name,
                if place.is_empty() { String::new() } else { format!(" ({})", &place[2..]) }
            ),
        }
    }
}

// The wire shapes, as the CRDs define them.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireNamespacedPod {
    namespace_selector: LabelSelector,
    pod_selector: LabelSelector,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireSubject {
    namespaces: Option<LabelSelector>,
    pods: Option<WireNamespacedPod>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WirePeer {
    namespaces: Option<LabelSelector>,
    pods: Option<WireNamespacedPod>,
    networks: Option<Vec<String>>,
    nodes: Option<LabelSelector>,
    domain_names: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WirePortNumber {
    protocol: Option<String>,
    port: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WirePortRange {
    protocol: Option<String>,
    start: i32,
    end: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WirePort {
    port_number: Option<WirePortNumber>,
    named_port: Option<String>,
    port_range: Option<WirePortRange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireRule {
    #[serde(default)]
    name: String,
    action: Action,
    #[serde(alias = "to")]
    from: Vec<WirePeer>,
    ports: Option<Vec<WirePort>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireSpec {
    priority: Option<i32>,
    subject: WireSubject,
    #[serde(default)]
    ingress: Vec<WireRule>,
    #[serde(default)]
    egress: Vec<WireRule>,
}

fn pods(
    namespaces: Option<LabelSelector>,
    pods: Option<WireNamespacedPod>,
    field: &str,
) -> Result<Pods, String> {
    match (namespaces, pods) {
        (Some(n), None) => Ok(Pods::Namespaces(n)),
        (None, Some(p)) => Ok(Pods::Pods { namespaces: p.namespace_selector, pods: p.pod_selector }),
        _ => Err(format!("{field}: set exactly one of namespaces and pods")),
    }
}

fn port_number(protocol: Option<String>, port: i32, field: &str) -> Result<(&'static str, u16), String> {
    let protocol = match protocol.as_deref().unwrap_or("TCP") {
        "TCP" => "TCP",
        "UDP" => "UDP",
        "SCTP" => "SCTP",
        other => return Err(format!("{field}.protocol: {other:?} is not TCP, UDP or SCTP")),
    };
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{field}: {port} is not a port (1-65535)"))?;
    Ok((protocol, port))
}

fn rule(wire: WireRule, egress: bool, baseline: bool, field: &str) -> Result<Rule, String> {
    if baseline && wire.action == Action::Pass {
        return Err(format!(
            "{field}.action: Pass is for AdminNetworkPolicies; a baseline rule allows or denies"
        ));
    }
    if wire.from.is_empty() {
        return Err(format!("{field}.{}: needs at least one peer", if egress { "to" } else { "from" }));
    }
    let mut peers = Vec::new();
    for (i, p) in wire.from.into_iter().enumerate() {
        let field = format!("{field}.{}[{i}]", if egress { "to" } else { "from" });
        let set = [
            p.namespaces.is_some(),
            p.pods.is_some(),
            p.networks.is_some(),
            p.nodes.is_some(),
            p.domain_names.is_some(),
        ];
        if set.iter().filter(|s| **s).count() != 1 {
            return Err(format!(
                "{field}: set exactly one of namespaces, pods, networks, nodes, domainNames"
            ));
        }
        if !egress && (p.networks.is_some() || p.nodes.is_some() || p.domain_names.is_some()) {
            return Err(format!("{field}: ingress peers are namespaces or pods"));
        }
        peers.push(if let Some(networks) = p.networks {
            let nets = networks
                .iter()
                .map(|n| n.parse::<IpNet>().map_err(|e| format!("{field}.networks: {n:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            Peer::Networks(nets)
        } else if p.nodes.is_some() {
            Peer::Unmodelled("nodes")
        } else if p.domain_names.is_some() {
            Peer::Unmodelled("domainNames")
        } else {
            Peer::Pods(pods(p.namespaces, p.pods, &field)?)
        });
    }
    let ports = match wire.ports {
        None => None,
        Some(list) => Some(
            list.into_iter()
                .enumerate()
                .map(|(i, p)| {
                    let field = format!("{field}.ports[{i}]");
                    match (p.port_number, p.named_port, p.port_range) {
                        (Some(n), None, None) => {
                            let (protocol, port) =
                                port_number(n.protocol, n.port, &format!("{field}.portNumber"))?;
                            Ok(Port::Set(PortSet::range(protocol, port, port)))
                        }
                        (None, Some(name), None) => Ok(Port::Named(name)),
                        (None, None, Some(r)) => {
                            let (protocol, start) = port_number(
                                r.protocol.clone(),
                                r.start,
                                &format!("{field}.portRange.start"),
                            )?;
                            let (_, end) = port_number(r.protocol, r.end, &format!("{field}.portRange.end"))?;
                            if start >= end {
                                return Err(format!(
                                    "{field}.portRange: start {start} must be below end {end}"
                                ));
                            }
                            Ok(Port::Set(PortSet::range(protocol, start, end)))
                        }
                        _ => Err(format!("{field}: set exactly one of portNumber, namedPort, portRange")),
                    }
                })
                .collect::<Result<Vec<_>, String>>()?,
        ),
    };
    Ok(Rule { name: wire.name, action: wire.action, peers, ports })
}

/// An AdminNetworkPolicy or BaselineAdminNetworkPolicy object, checked as its CRD would.
pub fn parse(object: &Value, origin: &str, line: usize) -> Result<AdminPolicy, NetpolError> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let baseline = kind == "BaselineAdminNetworkPolicy";
    let bad = |message: String| NetpolError::Manifest {
        origin: if line == 0 { origin.to_string() } else { format!("{origin}:{line}") },
        message: format!("{kind} {name}: {message}"),
    };
    let spec: WireSpec = serde_json::from_value(object.get("spec").cloned().unwrap_or(Value::Null))
        .map_err(|e| bad(format!("spec: {e}")))?;
    let tier = if baseline {
        if name != "default" {
            return Err(bad(
                "metadata.name: the BaselineAdminNetworkPolicy is a singleton named \"default\"".into(),
            ));
        }
        Tier::Baseline
    } else {
        let priority = spec.priority.ok_or_else(|| bad("spec.priority: required (0-1000)".into()))?;
        if !(0..=1000).contains(&priority) {
            return Err(bad(format!("spec.priority: {priority} is outside 0-1000")));
        }
        Tier::Admin { priority }
    };
    let subject = pods(spec.subject.namespaces, spec.subject.pods, "spec.subject").map_err(bad)?;
    let rules = |list: Vec<WireRule>, egress: bool| {
        list.into_iter()
            .enumerate()
            .map(|(i, r)| {
                rule(r, egress, baseline, &format!("spec.{}[{i}]", if egress { "egress" } else { "ingress" }))
            })
            .collect::<Result<Vec<_>, String>>()
    };
    let ingress = rules(spec.ingress, false).map_err(bad)?;
    let egress = rules(spec.egress, true).map_err(bad)?;
    Ok(AdminPolicy { tier, name, subject, ingress, egress, origin: origin.to_string(), line })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn reads_both_kinds_and_names_the_field_of_a_mistake() {
        let anp = parse(
            &object("kind: AdminNetworkPolicy\nmetadata: {name: a}\nspec:\n  priority: 10\n  subject: {namespaces: {}}\n  egress:\n    - {name: dns, action: Allow, to: [{pods: {namespaceSelector: {}, podSelector: {}}}], ports: [{portNumber: {protocol: UDP, port: 53}}, {namedPort: dns}, {portRange: {start: 8000, end: 8100}}]}\n    - {action: Deny, to: [{networks: [0.0.0.0/0]}]}\n"),
            "f.yaml",
            3,
        )
        .unwrap();
        assert_eq!(anp.tier, Tier::Admin { priority: 10 });
        assert_eq!(anp.shown(), "AdminNetworkPolicy a (priority 10, f.yaml:3)");
        assert_eq!(anp.egress.len(), 2);
        let dns = ContainerPort { name: Some("dns".into()), port: 5353, protocol: "UDP" };
        assert_eq!(
            anp.egress[0].ports_towards(Some(&[dns])),
            PortSet::range("UDP", 53, 53)
                .union(&PortSet::range("UDP", 5353, 5353))
                .union(&PortSet::range("TCP", 8000, 8100))
        );
        let banp = parse(&object("kind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec: {subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {a: b}}}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}"), "f", 0).unwrap();
        assert_eq!(banp.shown(), "BaselineAdminNetworkPolicy default");
        for (yaml, says) in [
            (
                "kind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {subject: {namespaces: {}}}",
                "spec.priority: required",
            ),
            (
                "kind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 1001, subject: {namespaces: {}}}",
                "outside 0-1000",
            ),
            (
                "kind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 1, subject: {}}",
                "spec.subject: set exactly one",
            ),
            (
                "kind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 1, subject: {namespaces: {}}, ingress: [{action: Allow, from: [{networks: [10.0.0.0/8]}]}]}",
                "spec.ingress[0].from[0]: ingress peers",
            ),
            (
                "kind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 1, subject: {namespaces: {}}, egress: [{action: Allow, to: [{networks: [nope]}]}]}",
                "spec.egress[0].to[0].networks: \"nope\"",
            ),
            (
                "kind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 1, subject: {namespaces: {}}, egress: [{action: Allow, to: [{namespaces: {}}], ports: [{portRange: {start: 9, end: 9}}]}]}",
                "portRange: start 9 must be below end 9",
            ),
            (
                "kind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 1, subject: {namespaces: {}}, egress: [{action: Maybe, to: [{namespaces: {}}]}]}",
                "unknown variant `Maybe`",
            ),
            (
                "kind: BaselineAdminNetworkPolicy\nmetadata: {name: other}\nspec: {subject: {namespaces: {}}}",
                "singleton named \"default\"",
            ),
            (
                "kind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec: {subject: {namespaces: {}}, ingress: [{action: Pass, from: [{namespaces: {}}]}]}",
                "Pass is for AdminNetworkPolicies",
            ),
        ] {
            let err = parse(&object(yaml), "f.yaml", 7).unwrap_err().to_string();
            assert!(err.contains(says) && err.starts_with("f.yaml:7: "), "{yaml}: {err}");
        }
    }
}
