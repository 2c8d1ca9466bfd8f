//! The world indexed once, so that questions are cheap: which policies isolate each workload
//! in each direction, and for every rule the set of endpoints its peers name (a bitset) and its
//! ports (interned; a rule with named ports is resolved per destination). A `reach` query then
//! reads a few rules; the full matrix is built row by row on interned port sets, so a pair
//! costs a table lookup rather than a walk over the policies.

use fixedbitset::FixedBitSet;
use k8s_openapi::api::networking::v1::{NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rustc_hash::FxHashMap;

use crate::ports::PortSet;
use crate::reach::{Direction, Endpoint, Reach, Side, block_holds, has_type, matches, selects};
use crate::tiers::AdminIndex;
use crate::world::{Policy, World};

/// An interned [`PortSet`].
pub type SetId = u32;
/// The empty set's id.
pub const NONE: SetId = 0;
/// The id of every port of every protocol.
pub const ALL: SetId = 1;

/// Port sets by id, with unions and intersections remembered: a cluster has few distinct
/// port sets and asks for the same combinations over and over.
#[derive(Debug, Clone)]
pub struct PortSets {
    table: Vec<PortSet>,
    ids: FxHashMap<PortSet, SetId>,
    unions: FxHashMap<(SetId, SetId), SetId>,
    intersections: FxHashMap<(SetId, SetId), SetId>,
    differences: FxHashMap<(SetId, SetId), SetId>,
}

impl Default for PortSets {
    fn default() -> Self {
        let mut sets = PortSets {
            table: Vec::new(),
            ids: FxHashMap::default(),
            unions: FxHashMap::default(),
            intersections: FxHashMap::default(),
            differences: FxHashMap::default(),
        };
        sets.intern(PortSet::none());
        sets.intern(PortSet::all());
        sets
    }
}

impl PortSets {
    pub fn intern(&mut self, set: PortSet) -> SetId {
        if let Some(id) = self.ids.get(&set) {
            return *id;
        }
        let id = SetId::try_from(self.table.len()).unwrap_or(SetId::MAX);
        self.table.push(set.clone());
        self.ids.insert(set, id);
        id
    }

    pub fn get(&self, id: SetId) -> &PortSet {
        &self.table[id as usize]
    }

    pub fn union(&mut self, a: SetId, b: SetId) -> SetId {
        if a == b || b == NONE || a == ALL {
            return a;
        }
        if a == NONE || b == ALL {
            return b;
        }
        let key = (a.min(b), a.max(b));
        if let Some(id) = self.unions.get(&key) {
            return *id;
        }
        let id = self.intern(self.get(a).union(self.get(b)));
        self.unions.insert(key, id);
        id
    }

    pub fn intersect(&mut self, a: SetId, b: SetId) -> SetId {
        if a == b || b == ALL || a == NONE {
            return a;
        }
        if a == ALL || b == NONE {
            return b;
        }
        let key = (a.min(b), a.max(b));
        if let Some(id) = self.intersections.get(&key) {
            return *id;
        }
        let id = self.intern(self.get(a).intersect(self.get(b)));
        self.intersections.insert(key, id);
        id
    }
}

impl PortSets {
    /// The ports of `a` not in `b`.
    pub fn minus(&mut self, a: SetId, b: SetId) -> SetId {
        if b == NONE || a == NONE {
            return a;
        }
        if a == b || b == ALL {
            return NONE;
        }
        if let Some(id) = self.differences.get(&(a, b)) {
            return *id;
        }
        let id = self.intern(self.get(a).minus(self.get(b)));
        self.differences.insert((a, b), id);
        id
    }
}

/// What a rule's `ports` allow: the same set towards every destination, or (with a named
/// port) a set resolved against each destination's container ports.
#[derive(Debug, Clone)]
enum RulePorts<'w> {
    Fixed(SetId),
    Named(Option<&'w [NetworkPolicyPort]>),
}

/// One rule of one policy, indexed.
#[derive(Debug, Clone)]
struct Rule<'w> {
    policy: usize,
    direction: Direction,
    index: usize,
    /// Whether a peer is an ipBlock (addresses not known offline: such a rule cannot be
    /// judged redundant).
    names_addresses: bool,
    /// The endpoints (workloads, then externals) the rule's peers name.
    peers: FixedBitSet,
    ports: RulePorts<'w>,
}

/// Where a rule is: its policy (index into `World::policies`), direction, and position among
/// that direction's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef {
    pub policy: usize,
    pub egress: bool,
    pub index: usize,
}

impl RuleRef {
    /// `ns/name ingress rule 1 (file:line)`.
    pub fn shown(&self, world: &World) -> String {
        let direction = if self.egress { "egress" } else { "ingress" };
        world.policies[self.policy].rule_shown(&format!("{direction} rule {}", self.index))
    }
}

impl Rule<'_> {
    fn reference(&self) -> RuleRef {
        RuleRef { policy: self.policy, egress: self.direction == Direction::Egress, index: self.index }
    }
}

/// A world, indexed for questions.
#[derive(Debug, Clone)]
pub struct Analysis<'w> {
    world: &'w World,
    /// Per workload, per direction (0 ingress, 1 egress): the policies isolating it.
    isolating: [Vec<Vec<usize>>; 2],
    /// Per policy, per direction: its rules' indices into `rules`.
    policy_rules: [Vec<Vec<usize>>; 2],
    rules: Vec<Rule<'w>>,
    sets: PortSets,
    /// AdminNetworkPolicy and BaselineAdminNetworkPolicy rules around the NetworkPolicies.
    admin: AdminIndex<'w>,
    /// Per workload, an id shared by workloads with identical container ports (a named port
    /// resolves the same for all of them).
    port_shapes: Vec<u32>,
}

fn slot(direction: Direction) -> usize {
    match direction {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

impl<'w> Analysis<'w> {
    pub fn new(world: &'w World) -> Self {
        let (workloads, externals) = (world.workloads.len(), world.externals.len());
        let ends = workloads + externals;
        let mut by_namespace: FxHashMap<&str, Vec<usize>> = FxHashMap::default();
        for (i, w) in world.workloads.iter().enumerate() {
            by_namespace.entry(w.namespace.as_str()).or_default().push(i);
        }
        let mut isolating = [vec![Vec::new(); workloads], vec![Vec::new(); workloads]];
        let mut policy_rules =
            [vec![Vec::new(); world.policies.len()], vec![Vec::new(); world.policies.len()]];
        let mut rules = Vec::new();
        let mut sets = PortSets::default();
        for (p, policy) in world.policies.iter().enumerate() {
            let Some(spec) = policy.policy.spec.as_ref() else { continue };
            for direction in [Direction::Ingress, Direction::Egress] {
                if !has_type(&policy.policy, direction) {
                    continue;
                }
                for &w in by_namespace.get(policy.namespace.as_str()).into_iter().flatten() {
                    if selects(policy, &world.workloads[w]) {
                        isolating[slot(direction)][w].push(p);
                    }
                }
                let views: Vec<_> = match direction {
                    Direction::Ingress => {
                        spec.ingress.iter().flatten().map(|r| (r.from.as_ref(), r.ports.as_deref())).collect()
                    }
                    Direction::Egress => {
                        spec.egress.iter().flatten().map(|r| (r.to.as_ref(), r.ports.as_deref())).collect()
                    }
                };
                for (index, (peers, ports)) in views.into_iter().enumerate() {
                    let mut matched = FixedBitSet::with_capacity(ends);
                    match peers {
                        Some(list) if !list.is_empty() => {
                            for peer in list {
                                mark_peer(world, &by_namespace, policy, peer, &mut matched);
                            }
                        }
                        // Absent or empty `from`/`to`: every endpoint.
                        _ => matched.insert_range(..),
                    }
                    let named =
                        ports.into_iter().flatten().any(|p| matches!(p.port, Some(IntOrString::String(_))));
                    let ports = if named {
                        RulePorts::Named(ports)
                    } else {
                        RulePorts::Fixed(sets.intern(PortSet::of_rule(ports, None)))
                    };
                    let names_addresses = peers.into_iter().flatten().any(|peer| peer.ip_block.is_some());
                    policy_rules[slot(direction)][p].push(rules.len());
                    rules.push(Rule { policy: p, direction, index, names_addresses, peers: matched, ports });
                }
            }
        }
        let mut shapes: FxHashMap<String, u32> = FxHashMap::default();
        let port_shapes = world
            .workloads
            .iter()
            .map(|w| {
                let next = u32::try_from(shapes.len()).unwrap_or(u32::MAX);
                *shapes.entry(format!("{:?}", w.ports)).or_insert(next)
            })
            .collect();
        let admin = AdminIndex::new(world, &mut sets);
        Analysis { world, isolating, policy_rules, rules, sets, admin, port_shapes }
    }

    pub fn world(&self) -> &'w World {
        self.world
    }

    fn index(&self, end: Endpoint) -> usize {
        match end {
            Endpoint::Workload(i) => i,
            Endpoint::External(i) => self.world.workloads.len() + i,
        }
    }

    /// A rule's ports towards `destination` (a workload index, or `None` outside the cluster).
    fn rule_ports(&self, rule: &Rule<'_>, destination: Option<usize>) -> PortSet {
        match rule.ports {
            RulePorts::Fixed(id) => self.sets.get(id).clone(),
            RulePorts::Named(ports) => {
                PortSet::of_rule(ports, destination.map(|d| self.world.workloads[d].ports.as_slice()))
            }
        }
    }

    fn side(
        &self,
        subject: usize,
        other: Endpoint,
        direction: Direction,
        destination: Option<usize>,
    ) -> Side {
        let isolating = self.isolating[slot(direction)][subject].clone();
        let other = self.index(other);
        let mut allowing = Vec::new();
        for &p in &isolating {
            for &r in &self.policy_rules[slot(direction)][p] {
                let rule = &self.rules[r];
                if rule.peers.contains(other) {
                    let set = self.rule_ports(rule, destination);
                    if !set.is_empty() {
                        allowing.push((rule.policy, rule.index, set));
                    }
                }
            }
        }
        let policies = if isolating.is_empty() {
            PortSet::all()
        } else {
            allowing.iter().fold(PortSet::none(), |acc, (_, _, set)| acc.union(set))
        };
        let egress = direction == Direction::Egress;
        if !self.admin.applies(egress, subject) {
            return Side {
                isolating,
                allowing,
                ports: policies,
                admin: vec![],
                to_policies: PortSet::all(),
                baseline: vec![],
            };
        }
        let container_ports = destination.map(|d| self.world.workloads[d].ports.as_slice());
        let isolated = (!isolating.is_empty()).then_some(&policies);
        let (admin, to_policies, baseline, ports) =
            self.admin.side(egress, subject, other, container_ports, isolated);
        Side { isolating, allowing, ports, admin, to_policies, baseline }
    }

    /// The policies isolating a workload for ingress (or egress).
    pub fn isolating(&self, workload: usize, egress: bool) -> &[usize] {
        &self.isolating[usize::from(egress)][workload]
    }

    /// Rules that add nothing on these workloads: every connection they allow, on every port,
    /// other rules of the policies isolating the same pod allow too. Each comes with the rules
    /// that cover it. Rules with an ipBlock are left out (other addresses may need them), as
    /// are rules of policies that select no pod (reported on their own).
    pub fn redundant_rules(&self) -> Vec<(RuleRef, Vec<RuleRef>)> {
        let workloads = self.world.workloads.len();
        let mut out = Vec::new();
        for (r, rule) in self.rules.iter().enumerate() {
            if rule.names_addresses {
                continue;
            }
            let d = slot(rule.direction);
            let subjects: Vec<usize> =
                (0..workloads).filter(|&w| self.isolating[d][w].contains(&rule.policy)).collect();
            if subjects.is_empty() {
                continue;
            }
            let mut covering = Vec::new();
            let redundant = subjects.iter().all(|&subject| {
                rule.peers.ones().filter(|&other| other != subject).all(|other| {
                    let destination = match rule.direction {
                        Direction::Ingress => Some(subject),
                        Direction::Egress => (other < workloads).then_some(other),
                    };
                    let mine = self.rule_ports(rule, destination);
                    if mine.is_empty() {
                        return true;
                    }
                    let mut others = PortSet::none();
                    for &p in &self.isolating[d][subject] {
                        for &o in &self.policy_rules[d][p] {
                            let cover = &self.rules[o];
                            if o != r && cover.peers.contains(other) {
                                let theirs = self.rule_ports(cover, destination);
                                if !theirs.intersect(&mine).is_empty() {
                                    let at = cover.reference();
                                    if !covering.contains(&at) {
                                        covering.push(at);
                                    }
                                }
                                others = others.union(&theirs);
                            }
                        }
                    }
                    mine.intersect(&others) == mine
                })
            });
            if redundant {
                out.push((rule.reference(), covering));
            }
        }
        out
    }

    /// What passes from `src` to `dst`, and which policies and rules decide it.
    pub fn reach(&self, src: Endpoint, dst: Endpoint) -> Reach {
        let destination = match dst {
            Endpoint::Workload(d) => Some(d),
            Endpoint::External(_) => None,
        };
        let egress = match src {
            Endpoint::Workload(s) => Some(self.side(s, dst, Direction::Egress, destination)),
            Endpoint::External(_) => None,
        };
        let ingress = match dst {
            Endpoint::Workload(d) => Some(self.side(d, src, Direction::Ingress, Some(d))),
            Endpoint::External(_) => None,
        };
        let ports = [egress.as_ref(), ingress.as_ref()]
            .into_iter()
            .flatten()
            .fold(PortSet::all(), |acc, side| acc.intersect(&side.ports));
        Reach { egress, ingress, ports }
    }

    /// For each workload `subject`, what its side of `direction` allows with every endpoint
    /// (`rows[subject * ends + other]`).
    fn sides(&self, direction: Direction, sets: &mut PortSets) -> Vec<SetId> {
        let workloads = self.world.workloads.len();
        let ends = workloads + self.world.externals.len();
        let mut rows = vec![ALL; workloads * ends];
        let mut named: FxHashMap<(usize, u32), SetId> = FxHashMap::default();
        for subject in 0..workloads {
            let isolating = &self.isolating[slot(direction)][subject];
            if isolating.is_empty() {
                continue;
            }
            let row = &mut rows[subject * ends..(subject + 1) * ends];
            row.fill(NONE);
            for &p in isolating {
                for &r in &self.policy_rules[slot(direction)][p] {
                    let rule = &self.rules[r];
                    for other in rule.peers.ones() {
                        let destination = match direction {
                            Direction::Ingress => Some(subject),
                            Direction::Egress => (other < workloads).then_some(other),
                        };
                        let id = match rule.ports {
                            RulePorts::Fixed(id) => id,
                            RulePorts::Named(_) => {
                                let shape = destination.map_or(u32::MAX, |d| self.port_shapes[d]);
                                match named.get(&(r, shape)) {
                                    Some(id) => *id,
                                    None => {
                                        let id = sets.intern(self.rule_ports(rule, destination));
                                        named.insert((r, shape), id);
                                        id
                                    }
                                }
                            }
                        };
                        row[other] = sets.union(row[other], id);
                    }
                }
            }
        }
        let egress = direction == Direction::Egress;
        let mut admin_named: FxHashMap<(usize, u32), SetId> = FxHashMap::default();
        for subject in 0..workloads {
            if !self.admin.applies(egress, subject) {
                continue;
            }
            let isolated = !self.isolating[slot(direction)][subject].is_empty();
            for other in 0..ends {
                let destination = if egress { (other < workloads).then_some(other) } else { Some(subject) };
                let mut ports_of = |id: usize, sets: &mut PortSets| {
                    let rule = &self.admin.rules[id];
                    if let Some(fixed) = rule.fixed {
                        return fixed;
                    }
                    let shape = destination.map_or(u32::MAX, |d| self.port_shapes[d]);
                    *admin_named.entry((id, shape)).or_insert_with(|| {
                        sets.intern(
                            rule.rule
                                .ports_towards(destination.map(|d| self.world.workloads[d].ports.as_slice())),
                        )
                    })
                };
                let cell = subject * ends + other;
                let policies = isolated.then_some(rows[cell]);
                rows[cell] = self.admin.side_id(egress, subject, other, policies, sets, &mut ports_of);
            }
        }
        rows
    }

    /// Every pair's connection at once.
    pub fn matrix(&self) -> Matrix {
        let workloads = self.world.workloads.len();
        let ends = workloads + self.world.externals.len();
        let mut sets = self.sets.clone();
        let egress = self.sides(Direction::Egress, &mut sets);
        let ingress = self.sides(Direction::Ingress, &mut sets);
        let mut cells = vec![NONE; ends * ends];
        for s in 0..ends {
            for d in 0..ends {
                if s == d || (s >= workloads && d >= workloads) {
                    continue;
                }
                let out = if s < workloads { egress[s * ends + d] } else { ALL };
                let into = if d < workloads { ingress[d * ends + s] } else { ALL };
                cells[s * ends + d] = sets.intersect(out, into);
            }
        }
        let names = (0..ends).map(|i| crate::reach::name(self.world, endpoint(self.world, i))).collect();
        Matrix { names, workloads, sets, cells }
    }
}

/// Marks the endpoints a peer names. `ipBlock` names externals only; the selectors name
/// workloads, intersected when both are given, the policy's own namespace when no namespace
/// selector is (namespaces first, so a peer costs its namespaces' pods, not the cluster's).
fn mark_peer(
    world: &World,
    by_namespace: &FxHashMap<&str, Vec<usize>>,
    policy: &Policy,
    peer: &NetworkPolicyPeer,
    matched: &mut FixedBitSet,
) {
    let workloads = world.workloads.len();
    if let Some(block) = &peer.ip_block {
        for (e, (_, net)) in world.externals.iter().enumerate() {
            if block_holds(block, net) {
                matched.insert(workloads + e);
            }
        }
        return;
    }
    let namespaces: Vec<&str> = match &peer.namespace_selector {
        Some(selector) => world
            .namespaces
            .iter()
            .filter(|(_, labels)| matches(selector, labels))
            .map(|(name, _)| name.as_str())
            .collect(),
        None => vec![policy.namespace.as_str()],
    };
    for namespace in namespaces {
        for &w in by_namespace.get(namespace).into_iter().flatten() {
            if peer.pod_selector.as_ref().is_none_or(|s| matches(s, &world.workloads[w].labels)) {
                matched.insert(w);
            }
        }
    }
}

/// Endpoint `i` of the numbering workloads-then-externals.
fn endpoint(world: &World, i: usize) -> Endpoint {
    if i < world.workloads.len() {
        Endpoint::Workload(i)
    } else {
        Endpoint::External(i - world.workloads.len())
    }
}

/// The connectivity between all endpoints (workloads, then the named externals).
#[derive(Debug, Clone)]
pub struct Matrix {
    names: Vec<String>,
    workloads: usize,
    sets: PortSets,
    cells: Vec<SetId>,
}

impl Matrix {
    /// Endpoint names, workloads (`namespace/name`) first, then externals.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// How many of [`Matrix::names`] are workloads.
    pub fn workloads(&self) -> usize {
        self.workloads
    }

    /// What passes from endpoint `s` to endpoint `d`.
    pub fn get(&self, s: usize, d: usize) -> &PortSet {
        self.sets.get(self.cells[s * self.names.len() + d])
    }

    /// The set behind an id from [`Matrix::cell`].
    pub fn set(&self, id: SetId) -> &PortSet {
        self.sets.get(id)
    }

    /// The interned id of a cell, for grouping endpoints whose rows and columns are equal.
    pub fn cell(&self, s: usize, d: usize) -> SetId {
        self.cells[s * self.names.len() + d]
    }

    /// Every allowed connection: `(source, destination, ports)` by endpoint index.
    pub fn connections(&self) -> impl Iterator<Item = (usize, usize, &PortSet)> {
        let n = self.names.len();
        self.cells
            .iter()
            .enumerate()
            .filter(|(_, id)| **id != NONE)
            .map(move |(i, id)| (i / n, i % n, self.sets.get(*id)))
    }

    /// The allowed connections by name, for diffs and tests.
    pub fn by_name(&self) -> std::collections::BTreeMap<(String, String), PortSet> {
        self.connections()
            .map(|(s, d, p)| ((self.names[s].clone(), self.names[d].clone()), p.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_algebra_agrees_with_the_sets() {
        let mut sets = PortSets::default();
        let a = sets.intern(PortSet::range("TCP", 80, 90));
        let b = sets.intern(PortSet::range("TCP", 85, 100));
        let either = sets.union(a, b);
        assert_eq!(sets.get(either), &PortSet::range("TCP", 80, 100));
        let both = sets.intersect(a, b);
        assert_eq!(sets.get(both), &PortSet::range("TCP", 85, 90));
        assert_eq!(sets.union(a, NONE), a);
        assert_eq!(sets.union(a, ALL), ALL);
        assert_eq!(sets.intersect(a, ALL), a);
        assert_eq!(sets.intersect(a, NONE), NONE);
        assert_eq!(sets.intern(PortSet::range("TCP", 80, 90)), a, "one id per set");
    }
}
