//! The admin tiers indexed: for every workload and direction, the AdminNetworkPolicy rules
//! that apply to it in precedence order and the BaselineAdminNetworkPolicy rules, each with
//! the endpoints its peers name as a bitset; and the evaluation of one side through the tiers
//! (see [`crate::admin`] for the semantics), on port sets or on interned ids.

use fixedbitset::FixedBitSet;

use crate::admin::{Action, AdminPolicy, Peer, Pods, Rule, Tier};
use crate::analysis::{ALL, NONE, PortSets, SetId};
use crate::ports::PortSet;
use crate::reach::matches;
use crate::world::World;

/// One admin-tier rule, indexed.
#[derive(Debug, Clone)]
pub(crate) struct IndexedRule<'w> {
    pub policy: usize,
    pub index: usize,
    pub rule: &'w Rule,
    pub peers: FixedBitSet,
    /// Its ports when they are the same towards every destination (no named port).
    pub fixed: Option<SetId>,
}

/// A rule that decided some ports of a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminStep {
    /// Index into `World::admin_policies`.
    pub policy: usize,
    pub egress: bool,
    /// Position among the policy's rules of that direction.
    pub rule: usize,
    pub action: Action,
    /// The ports this rule decided (those no earlier rule had).
    pub ports: PortSet,
}

impl AdminStep {
    /// `AdminNetworkPolicy a (priority 10, f:3) egress rule 0 "dns" allows UDP 53`.
    pub fn shown(&self, world: &World) -> String {
        let policy = &world.admin_policies[self.policy];
        let rules = if self.egress { &policy.egress } else { &policy.ingress };
        let name = rules.get(self.rule).map(|r| r.name.as_str()).filter(|n| !n.is_empty());
        let verb = match self.action {
            Action::Allow => "allows",
            Action::Deny => "denies",
            Action::Pass => "passes to NetworkPolicies",
        };
        format!(
            "{} {} rule {}{} {verb} {}",
            policy.shown(),
            if self.egress { "egress" } else { "ingress" },
            self.rule,
            name.map(|n| format!(" {n:?}")).unwrap_or_default(),
            self.ports
        )
    }
}

/// The admin tiers of a world.
#[derive(Debug, Clone, Default)]
pub(crate) struct AdminIndex<'w> {
    pub rules: Vec<IndexedRule<'w>>,
    /// Per direction (0 ingress, 1 egress), per workload: AdminNetworkPolicy rules in
    /// precedence order.
    pub admin: [Vec<Vec<usize>>; 2],
    /// The same for the BaselineAdminNetworkPolicy.
    pub baseline: [Vec<Vec<usize>>; 2],
}

fn selects(world: &World, pods: &Pods, workload: usize) -> bool {
    let w = &world.workloads[workload];
    let namespace =
        |selector| world.namespaces.get(&w.namespace).is_some_and(|labels| matches(selector, labels));
    match pods {
        Pods::Namespaces(selector) => namespace(selector),
        Pods::Pods { namespaces, pods } => namespace(namespaces) && matches(pods, &w.labels),
    }
}

fn mark(world: &World, peer: &Peer, bits: &mut FixedBitSet) {
    let workloads = world.workloads.len();
    match peer {
        Peer::Pods(pods) => {
            for w in 0..workloads {
                if selects(world, pods, w) {
                    bits.insert(w);
                }
            }
        }
        Peer::Networks(nets) => {
            for (e, (_, net)) in world.externals.iter().enumerate() {
                if nets.iter().any(|n| n.contains(net)) {
                    bits.insert(workloads + e);
                }
            }
            // "If you Allow or Deny traffic to 0.0.0.0/0, that will allow or deny all IPv4
            // pod-to-pod traffic as well": a /0 holds every pod, whatever its address.
            if nets.iter().any(|n| n.prefix_len() == 0) {
                bits.insert_range(..workloads);
            }
        }
        Peer::Unmodelled(_) => {}
    }
}

impl<'w> AdminIndex<'w> {
    pub fn new(world: &'w World, sets: &mut PortSets) -> Self {
        let workloads = world.workloads.len();
        let ends = workloads + world.externals.len();
        let mut index = AdminIndex {
            rules: Vec::new(),
            admin: [vec![Vec::new(); workloads], vec![Vec::new(); workloads]],
            baseline: [vec![Vec::new(); workloads], vec![Vec::new(); workloads]],
        };
        let mut order: Vec<(usize, &AdminPolicy)> = world.admin_policies.iter().enumerate().collect();
        order.sort_by(|a, b| (a.1.tier, &a.1.name).cmp(&(b.1.tier, &b.1.name)));
        for (p, policy) in order {
            let subjects: Vec<usize> =
                (0..workloads).filter(|&w| selects(world, &policy.subject, w)).collect();
            for (egress, rules) in [(false, &policy.ingress), (true, &policy.egress)] {
                for (n, rule) in rules.iter().enumerate() {
                    let mut peers = FixedBitSet::with_capacity(ends);
                    for peer in &rule.peers {
                        mark(world, peer, &mut peers);
                    }
                    let named =
                        rule.ports.iter().flatten().any(|p| matches!(p, crate::admin::Port::Named(_)));
                    let fixed = (!named).then(|| sets.intern(rule.ports_towards(None)));
                    let id = index.rules.len();
                    index.rules.push(IndexedRule { policy: p, index: n, rule, peers, fixed });
                    let table = match policy.tier {
                        Tier::Admin { .. } => &mut index.admin[usize::from(egress)],
                        Tier::Baseline => &mut index.baseline[usize::from(egress)],
                    };
                    for &w in &subjects {
                        table[w].push(id);
                    }
                }
            }
        }
        index
    }

    /// Whether any admin-tier rule applies to this workload in this direction.
    pub fn applies(&self, egress: bool, workload: usize) -> bool {
        self.admin.get(usize::from(egress)).and_then(|t| t.get(workload)).is_some_and(|r| !r.is_empty())
            || self
                .baseline
                .get(usize::from(egress))
                .and_then(|t| t.get(workload))
                .is_some_and(|r| !r.is_empty())
    }

    /// One side through the tiers, on port sets: `(admin steps, what reaches NetworkPolicies,
    /// baseline steps, allowed)`. `policies` is what the NetworkPolicies allow, or `None` when
    /// none isolates the subject.
    pub fn side(
        &self,
        egress: bool,
        subject: usize,
        other: usize,
        destination_ports: Option<&[crate::world::ContainerPort]>,
        policies: Option<&PortSet>,
    ) -> (Vec<AdminStep>, PortSet, Vec<AdminStep>, PortSet) {
        let d = usize::from(egress);
        let mut undecided = PortSet::all();
        let (mut allowed, mut passed) = (PortSet::none(), PortSet::none());
        let mut steps = Vec::new();
        let decide =
            |id: usize, open: &mut PortSet, steps: &mut Vec<AdminStep>| -> Option<(Action, PortSet)> {
                let r = &self.rules[id];
                if !r.peers.contains(other) {
                    return None;
                }
                let ports = r.rule.ports_towards(destination_ports).intersect(open);
                if ports.is_empty() {
                    return None;
                }
                *open = open.minus(&ports);
                steps.push(AdminStep {
                    policy: r.policy,
                    egress,
                    rule: r.index,
                    action: r.rule.action,
                    ports: ports.clone(),
                });
                Some((r.rule.action, ports))
            };
        for &id in &self.admin[d][subject] {
            match decide(id, &mut undecided, &mut steps) {
                Some((Action::Allow, p)) => allowed = allowed.union(&p),
                Some((Action::Pass, p)) => passed = passed.union(&p),
                _ => {}
            }
        }
        let to_policies = undecided.union(&passed);
        let mut baseline = Vec::new();
        match policies {
            Some(np) => allowed = allowed.union(&to_policies.intersect(np)),
            None => {
                let mut open = to_policies.clone();
                for &id in &self.baseline[d][subject] {
                    if let Some((Action::Allow, p)) = decide(id, &mut open, &mut baseline) {
                        allowed = allowed.union(&p);
                    }
                }
                allowed = allowed.union(&open);
            }
        }
        (steps, to_policies, baseline, allowed)
    }

    /// The same on interned ids, for the matrix: `policies` is the NetworkPolicy tier's id
    /// (`None` when none isolates), `ports_of` resolves a rule's ports towards the destination.
    pub fn side_id(
        &self,
        egress: bool,
        subject: usize,
        other: usize,
        policies: Option<SetId>,
        sets: &mut PortSets,
        ports_of: &mut dyn FnMut(usize, &mut PortSets) -> SetId,
    ) -> SetId {
        let d = usize::from(egress);
        let (mut undecided, mut allowed, mut passed) = (ALL, NONE, NONE);
        for &id in &self.admin[d][subject] {
            if !self.rules[id].peers.contains(other) {
                continue;
            }
            let rule_ports = ports_of(id, sets);
            let ports = sets.intersect(rule_ports, undecided);
            if ports == NONE {
                continue;
            }
            undecided = sets.minus(undecided, ports);
            match self.rules[id].rule.action {
                Action::Allow => allowed = sets.union(allowed, ports),
                Action::Pass => passed = sets.union(passed, ports),
                Action::Deny => {}
            }
        }
        let to_policies = sets.union(undecided, passed);
        let rest = match policies {
            Some(np) => sets.intersect(to_policies, np),
            None => {
                let (mut open, mut granted) = (to_policies, NONE);
                for &id in &self.baseline[d][subject] {
                    if !self.rules[id].peers.contains(other) {
                        continue;
                    }
                    let rule_ports = ports_of(id, sets);
                    let ports = sets.intersect(rule_ports, open);
                    if ports == NONE {
                        continue;
                    }
                    open = sets.minus(open, ports);
                    if self.rules[id].rule.action == Action::Allow {
                        granted = sets.union(granted, ports);
                    }
                }
                sets.union(granted, open)
            }
        };
        sets.union(allowed, rest)
    }
}
