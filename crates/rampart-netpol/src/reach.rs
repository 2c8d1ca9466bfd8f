//! One connection, both ends: the egress side of the source and the ingress side of the
//! destination, each either not isolated (everything allowed) or isolated by the policies that
//! select it for that direction, and then allowed only on the ports of the rules whose peers
//! match the other end.

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicy};

use crate::analysis::Analysis;
use crate::ports::PortSet;
use crate::tiers::AdminStep;
use crate::world::{Policy, Workload, World};
pub(crate) use rampart_types::labels::selector_matches as matches;

/// An end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Workload(usize),
    External(usize),
}

/// One side's verdict, tier by tier.
#[derive(Debug, Clone)]
pub struct Side {
    /// AdminNetworkPolicy rules that decided some ports, in precedence order.
    pub admin: Vec<AdminStep>,
    /// What the admin tier left to the NetworkPolicies (all ports without admin policies).
    pub to_policies: PortSet,
    /// Policies selecting this end for this direction (empty: not isolated).
    pub isolating: Vec<usize>,
    /// The rules that allow traffic with the other end: (policy, rule index, their ports).
    pub allowing: Vec<(usize, usize, PortSet)>,
    /// BaselineAdminNetworkPolicy rules that decided some ports (only when not isolated).
    pub baseline: Vec<AdminStep>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

/// Whether a policy applies to a direction: `policyTypes`, or when absent Ingress always and
/// Egress when it has egress rules (the apiserver's defaulting tests `len(spec.Egress) != 0`,
/// so `egress: []` leaves a policy Ingress-only).
pub fn has_type(policy: &NetworkPolicy, direction: Direction) -> bool {
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

/// Whether a policy selects a workload: its namespace, and its podSelector (absent is the
/// empty selector the apiserver defaults it to: every pod).
pub(crate) fn selects(policy: &Policy, workload: &Workload) -> bool {
    policy.namespace == workload.namespace
        && policy
            .policy
            .spec
            .as_ref()
            .is_some_and(|s| s.pod_selector.as_ref().is_none_or(|sel| matches(sel, &workload.labels)))
}

/// Whether an `ipBlock` holds an address range: wholly inside the CIDR and touching none of
/// the `except`s. Pod addresses are not known offline, so blocks name externals only.
pub(crate) fn block_holds(block: &IPBlock, net: &IpNet) -> bool {
    let Ok(cidr) = block.cidr.parse::<IpNet>() else { return false };
    let excepted =
        block.except.iter().flatten().filter_map(|e| e.parse::<IpNet>().ok()).any(|e| overlaps(&e, net));
    cidr.contains(net) && !excepted
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// What passes from `src` to `dst`. This indexes the whole world for one question; to ask
/// many, build an [`Analysis`] once.
pub fn reach(world: &World, src: Endpoint, dst: Endpoint) -> Reach {
    Analysis::new(world).reach(src, dst)
}

/// Every allowed connection between distinct endpoints (workloads, and workloads with the
/// named externals): `(from, to)` → ports. A pair that is absent allows nothing.
pub fn connections(world: &World) -> std::collections::BTreeMap<(String, String), PortSet> {
    Analysis::new(world).matrix().by_name()
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

/// Why, in words: for each side, the admin rules that decided ports, then the
/// NetworkPolicies (or, for a pod none isolates, the baseline) for what remained.
pub fn explain(world: &World, src: Endpoint, dst: Endpoint, reach: &Reach) -> Vec<String> {
    let policies = |side: &Side| {
        if side.isolating.is_empty() {
            return "not isolated (no NetworkPolicy selects it)".to_string();
        }
        let isolating: Vec<String> = side.isolating.iter().map(|i| world.policies[*i].shown()).collect();
        if side.allowing.is_empty() {
            return format!("isolated by {}; no rule allows it", isolating.join(", "));
        }
        let allowing: Vec<String> = side
            .allowing
            .iter()
            .map(|(p, r, set)| format!("{}: {set}", world.policies[*p].rule_shown(&format!("rule {r}"))))
            .collect();
        format!("isolated by {}; allowed by {}", isolating.join(", "), allowing.join("; "))
    };
    let describe = |lines: &mut Vec<String>, label: String, side: &Side| {
        let tiers = !side.admin.is_empty() || !side.baseline.is_empty() || !side.to_policies.is_all();
        if !tiers {
            let verdict = policies(side);
            let all = if side.isolating.is_empty() { ", so all ports" } else { "" };
            lines.push(format!("{label}: {verdict}{all}"));
            return;
        }
        for step in &side.admin {
            lines.push(format!("{label}: {}", step.shown(world)));
        }
        if side.to_policies.is_empty() {
            lines.push(format!("{label}: AdminNetworkPolicies decided every port"));
        } else {
            lines.push(format!("{label}: for {}, {}", side.to_policies, policies(side)));
            for step in &side.baseline {
                lines.push(format!("{label}: {}", step.shown(world)));
            }
            if side.isolating.is_empty() {
                lines.push(format!("{label}: what no rule decided is allowed"));
            }
        }
        lines.push(format!("{label}: allows {}", side.ports));
    };
    let mut lines = Vec::new();
    match &reach.egress {
        Some(side) => describe(&mut lines, format!("egress of {}", name(world, src)), side),
        None => lines.push(format!("egress of {}: outside the cluster, no policy applies", name(world, src))),
    }
    match &reach.ingress {
        Some(side) => describe(&mut lines, format!("ingress of {}", name(world, dst)), side),
        None => {
            lines.push(format!("ingress of {}: outside the cluster, no policy applies", name(world, dst)))
        }
    }
    lines
}
