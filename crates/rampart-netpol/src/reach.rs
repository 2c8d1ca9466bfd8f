//! One connection, both ends: the egress side of the source and the ingress side of the
//! destination, each either not isolated (everything allowed) or isolated by the policies that
//! select it for that direction, and then allowed only on the ports of the rules whose peers
//! match the other end.

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};

use crate::ports::PortSet;
use crate::world::{Policy, Workload, World};
use rampart_types::labels::selector_matches as matches;

/// An end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Workload(usize),
    External(usize),
}

/// One side's verdict.
#[derive(Debug, Clone)]
pub struct Side {
    /// Policies selecting this end for this direction (empty: not isolated).
    pub isolating: Vec<usize>,
    /// The rules that allow traffic with the other end: (policy, rule index, their ports).
    pub allowing: Vec<(usize, usize, PortSet)>,
    /// What this side allows.
    pub ports: PortSet,
}

/// Both sides and what passes.
#[derive(Debug, Clone)]
pub struct Reach {
    /// `None` when the source is outside the cluster (no policy applies to it).
    pub egress: Option<Side>,
    /// `None` when the destination is outside the cluster.
    pub ingress: Option<Side>,
    pub ports: PortSet,
}

/// A rule's peers (`from` or `to`) and ports, whichever the direction.
type RuleView<'a> = (Option<&'a Vec<NetworkPolicyPeer>>, Option<&'a Vec<NetworkPolicyPort>>);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

/// Whether a policy applies to a direction: `policyTypes`, or when absent Ingress always and
/// Egress when it has egress rules (the apiserver's defaulting).
fn has_type(policy: &NetworkPolicy, direction: Direction) -> bool {
    let spec = policy.spec.as_ref();
    match spec.and_then(|s| s.policy_types.as_ref()) {
        Some(types) => {
            types.iter().any(|t| t == if direction == Direction::Ingress { "Ingress" } else { "Egress" })
        }
        None => match direction {
            Direction::Ingress => true,
            Direction::Egress => spec.and_then(|s| s.egress.as_ref()).is_some_and(|e| !e.is_empty()),
        },
    }
}

fn selects(policy: &Policy, workload: &Workload) -> bool {
    policy.namespace == workload.namespace
        // An absent podSelector is the empty one (the apiserver defaults it): every pod.
        && policy.policy.spec.as_ref().is_some_and(|s| s.pod_selector.as_ref().is_none_or(|sel| matches(sel, &workload.labels)))
}

/// Whether a peer names the endpoint. `ipBlock` names addresses outside the cluster only
/// (pod addresses are not known offline); the selectors name workloads, intersected when both
/// are given, the policy's own namespace when no namespace selector is.
fn peer_matches(world: &World, policy: &Policy, peer: &NetworkPolicyPeer, end: Endpoint) -> bool {
    match (end, &peer.ip_block) {
        (Endpoint::External(i), Some(block)) => {
            let net = world.externals[i].1;
            let Ok(cidr) = block.cidr.parse::<IpNet>() else { return false };
            let excepted = block
                .except
                .iter()
                .flatten()
                .filter_map(|e| e.parse::<IpNet>().ok())
                .any(|e| overlaps(&e, &net));
            cidr.contains(&net) && !excepted
        }
        (Endpoint::External(_), None) | (Endpoint::Workload(_), Some(_)) => false,
        (Endpoint::Workload(i), None) => {
            let w = &world.workloads[i];
            let in_namespace = match &peer.namespace_selector {
                Some(selector) => {
                    world.namespaces.get(&w.namespace).is_some_and(|labels| matches(selector, labels))
                }
                None => w.namespace == policy.namespace,
            };
            in_namespace && peer.pod_selector.as_ref().is_none_or(|s| matches(s, &w.labels))
        }
    }
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// One rule's peers: absent or empty, every endpoint.
fn rule_matches(
    world: &World,
    policy: &Policy,
    peers: Option<&Vec<NetworkPolicyPeer>>,
    end: Endpoint,
) -> bool {
    match peers {
        None => true,
        Some(list) if list.is_empty() => true,
        Some(list) => list.iter().any(|p| peer_matches(world, policy, p, end)),
    }
}

fn side(
    world: &World,
    subject: usize,
    other: Endpoint,
    direction: Direction,
    destination: Option<usize>,
) -> Side {
    let workload = &world.workloads[subject];
    let isolating: Vec<usize> = world
        .policies
        .iter()
        .enumerate()
        .filter(|(_, p)| has_type(&p.policy, direction) && selects(p, workload))
        .map(|(i, _)| i)
        .collect();
    if isolating.is_empty() {
        return Side { isolating, allowing: vec![], ports: PortSet::all() };
    }
    let container_ports = destination.map(|d| world.workloads[d].ports.as_slice());
    let mut allowing = Vec::new();
    for &i in &isolating {
        let policy = &world.policies[i];
        let Some(spec) = policy.policy.spec.as_ref() else { continue };
        let rules: Vec<RuleView<'_>> = match direction {
            Direction::Ingress => {
                spec.ingress.iter().flatten().map(|r| (r.from.as_ref(), r.ports.as_ref())).collect()
            }
            Direction::Egress => {
                spec.egress.iter().flatten().map(|r| (r.to.as_ref(), r.ports.as_ref())).collect()
            }
        };
        for (n, (peers, ports)) in rules.into_iter().enumerate() {
            if rule_matches(world, policy, peers, other) {
                let set = PortSet::of_rule(ports.map(Vec::as_slice), container_ports);
                if !set.is_empty() {
                    allowing.push((i, n, set));
                }
            }
        }
    }
    let ports = allowing.iter().fold(PortSet::none(), |acc, (_, _, set)| acc.union(set));
    Side { isolating, allowing, ports }
}

/// What passes from `src` to `dst`.
pub fn reach(world: &World, src: Endpoint, dst: Endpoint) -> Reach {
    let destination = match dst {
        Endpoint::Workload(d) => Some(d),
        Endpoint::External(_) => None,
    };
    let egress = match src {
        Endpoint::Workload(s) => Some(side(world, s, dst, Direction::Egress, destination)),
        Endpoint::External(_) => None,
    };
    let ingress = match dst {
        Endpoint::Workload(d) => Some(side(world, d, src, Direction::Ingress, Some(d))),
        Endpoint::External(_) => None,
    };
    let ports = [egress.as_ref(), ingress.as_ref()]
        .into_iter()
        .flatten()
        .fold(PortSet::all(), |acc, side| acc.intersect(&side.ports));
    Reach { egress, ingress, ports }
}

/// Every allowed connection between distinct endpoints (workloads, and workloads with the
/// named externals): `(from, to)` → ports. A pair that is absent allows nothing.
pub fn connections(world: &World) -> std::collections::BTreeMap<(String, String), PortSet> {
    let ends: Vec<Endpoint> = (0..world.workloads.len())
        .map(Endpoint::Workload)
        .chain((0..world.externals.len()).map(Endpoint::External))
        .collect();
    let mut out = std::collections::BTreeMap::new();
    for &s in &ends {
        for &d in &ends {
            if s == d || (matches!(s, Endpoint::External(_)) && matches!(d, Endpoint::External(_))) {
                continue;
            }
            let ports = reach(world, s, d).ports;
            if !ports.is_empty() {
                out.insert((name(world, s), name(world, d)), ports);
            }
        }
    }
    out
}

/// An endpoint by name: `namespace/name` of a workload, or an external's name.
pub fn endpoint(world: &World, name: &str) -> Result<Endpoint, crate::NetpolError> {
    if let Some(i) = world.workload(name) {
        return Ok(Endpoint::Workload(i));
    }
    world
        .externals
        .iter()
        .position(|(n, _)| n == name)
        .map(Endpoint::External)
        .ok_or_else(|| crate::NetpolError::UnknownEndpoint(name.to_string()))
}

/// The name of an endpoint.
pub fn name(world: &World, end: Endpoint) -> String {
    match end {
        Endpoint::Workload(i) => world.workloads[i].id(),
        Endpoint::External(i) => world.externals[i].0.clone(),
    }
}

/// Why, in words: one line per side.
pub fn explain(world: &World, src: Endpoint, dst: Endpoint, reach: &Reach) -> Vec<String> {
    let mut lines = Vec::new();
    let describe = |label: String, side: &Side| {
        if side.isolating.is_empty() {
            return format!("{label}: not isolated (no policy selects it), so all ports");
        }
        let isolating: Vec<String> = side.isolating.iter().map(|i| world.policies[*i].shown()).collect();
        if side.allowing.is_empty() {
            return format!("{label}: isolated by {}; no rule allows it", isolating.join(", "));
        }
        let allowing: Vec<String> = side
            .allowing
            .iter()
            .map(|(p, r, set)| {
                let policy = &world.policies[*p];
                format!(
                    "{}/{} rule {r} ({}:{}): {set}",
                    policy.namespace, policy.name, policy.origin, policy.line
                )
            })
            .collect();
        format!("{label}: isolated by {}; allowed by {}", isolating.join(", "), allowing.join("; "))
    };
    if let Some(side) = &reach.egress {
        lines.push(describe(format!("egress of {}", name(world, src)), side));
    } else {
        lines.push(format!("egress of {}: outside the cluster, no policy applies", name(world, src)));
    }
    if let Some(side) = &reach.ingress {
        lines.push(describe(format!("ingress of {}", name(world, dst)), side));
    } else {
        lines.push(format!("ingress of {}: outside the cluster, no policy applies", name(world, dst)));
    }
    lines
}
