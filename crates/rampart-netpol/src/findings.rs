//! What `rampart scan` reports about a cluster's network policies: namespaces without a
//! default-deny, policies that select no pod, rules that add nothing, workloads that can reach
//! the instance metadata endpoint, egress to anywhere, and system pods open to any address.
//!
//! Each finding names its offenders with the policy, rule and file:line that cause them, so
//! a reviewer can go straight to the line to change.

use ipnet::IpNet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::admin::{Action, Peer, Pods};
use crate::analysis::Analysis;
use crate::reach::{Endpoint, Side};
use crate::world::World;

/// Namespaces whose pods are Kubernetes' own: a default-deny there can cut the control plane's
/// add-ons off, so none is demanded; their pods are instead checked for ingress from anywhere.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gravity {
    High,
    Medium,
    Low,
}

/// One check over the policies: passes when `offenders` is empty.
#[derive(Debug, Clone)]
pub struct Finding {
    /// `rampart/netpol-…`.
    pub id: &'static str,
    pub title: &'static str,
    pub gravity: Gravity,
    /// A failure (true) or something to review (false).
    pub fails: bool,
    pub offenders: Vec<String>,
    pub remediation: &'static str,
}

/// The addresses the findings probe: the instance metadata endpoint (IPv4 and the Nitro IPv6
/// one) and one public address standing for "anywhere outside".
pub fn probes() -> Vec<(String, IpNet)> {
    [
        ("instance metadata", "169.254.169.254/32"),
        ("instance metadata (IPv6)", "fd00:ec2::254/128"),
        ("any address", "203.0.113.7/32"),
    ]
    .iter()
    .filter_map(|(n, c)| Some((n.to_string(), c.parse().ok()?)))
    .collect()
}

/// Why one side lets traffic through, in a few words.
fn because(world: &World, side: &Side, direction: &str) -> String {
    if side.isolating.is_empty() {
        return format!("not isolated for {direction}");
    }
    let rules: Vec<String> =
        side.allowing.iter().map(|(p, r, _)| world.policies[*p].rule_shown(&format!("rule {r}"))).collect();
    format!("allowed by {}", rules.join(", "))
}

/// Every finding, in a fixed order. `world.externals` must hold [`probes`] (and may hold more).
pub fn findings(world: &World) -> Vec<Finding> {
    let analysis = Analysis::new(world);
    vec![
        default_deny(world),
        selecting_nothing(world, &analysis),
        redundant_rules(world, &analysis),
        metadata_endpoint(world, &analysis),
        egress_anywhere(world),
        system_ingress(world, &analysis),
    ]
}

fn default_deny(world: &World) -> Finding {
    let mut offenders = Vec::new();
    for namespace in world.namespaces.keys().filter(|n| !SYSTEM_NAMESPACES.contains(&n.as_str())) {
        // A policy with an empty podSelector isolates every pod of the namespace, present and
        // future, for its types: that is what a default-deny does, whatever it then allows.
        let covers = |direction: &str| {
            world.policies.iter().any(|p| {
                &p.namespace == namespace
                    && p.policy.spec.as_ref().is_some_and(|s| s.pod_selector.as_ref().is_none_or(empty))
                    && crate::reach::has_type(
                        &p.policy,
                        if direction == "ingress" {
                            crate::reach::Direction::Ingress
                        } else {
                            crate::reach::Direction::Egress
                        },
                    )
            })
        };
        let missing: Vec<&str> = ["ingress", "egress"]
            .into_iter()
            .filter(|d| !covers(d) && !admin_denies_all(world, namespace, *d == "egress"))
            .collect();
        if !missing.is_empty() {
            offenders.push(format!("Namespace {namespace}: no default-deny for {}", missing.join(" or ")));
        }
    }
    Finding {
        id: "rampart/netpol-default-deny",
        title: "Every namespace denies by default (a NetworkPolicy with an empty podSelector for Ingress and Egress, or an admin-tier Deny of all)",
        gravity: Gravity::Medium,
        fails: true,
        offenders,
        remediation: "Add `podSelector: {}` with `policyTypes: [Ingress, Egress]` to each namespace, then allow what each workload needs; check the result with `rampart netpol matrix`.",
    }
}

fn empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector.match_expressions.as_ref().is_none_or(|e| e.is_empty())
}

/// Whether an AdminNetworkPolicy or the BaselineAdminNetworkPolicy denies every pod of the
/// namespace all traffic from (to) every pod, on every port: a default-deny written in the
/// admin tiers. (An earlier admin Allow may still open some; `netpol matrix` shows what.)
fn admin_denies_all(world: &World, namespace: &str, egress: bool) -> bool {
    let Some(labels) = world.namespaces.get(namespace) else { return false };
    world.admin_policies.iter().any(|policy| {
        let whole_namespace = match &policy.subject {
            Pods::Namespaces(selector) => crate::reach::matches(selector, labels),
            Pods::Pods { namespaces, pods } => crate::reach::matches(namespaces, labels) && empty(pods),
        };
        let rules = if egress { &policy.egress } else { &policy.ingress };
        whole_namespace
            && rules.iter().any(|rule| {
                rule.action == Action::Deny
                    && rule.ports.is_none()
                    && rule.peers.iter().any(|peer| match peer {
                        Peer::Pods(Pods::Namespaces(selector)) => empty(selector),
                        Peer::Pods(Pods::Pods { namespaces, pods }) => empty(namespaces) && empty(pods),
                        Peer::Networks(nets) => nets.iter().any(|n| n.prefix_len() == 0),
                        Peer::Unmodelled(_) => false,
                    })
            })
    })
}

fn selecting_nothing(world: &World, analysis: &Analysis<'_>) -> Finding {
    let offenders = world
        .policies
        .iter()
        .enumerate()
        .filter(|(p, _)| {
            (0..world.workloads.len()).all(|w| {
                !analysis.isolating(w, false).contains(p) && !analysis.isolating(w, true).contains(p)
            })
        })
        .map(|(_, policy)| format!("NetworkPolicy {}: its podSelector matches no workload", policy.shown()))
        .collect();
    Finding {
        id: "rampart/netpol-selects-nothing",
        title: "Every NetworkPolicy selects a workload",
        gravity: Gravity::Low,
        fails: false,
        offenders,
        remediation: "Fix the podSelector's labels (a typo leaves the pods it meant unprotected) or delete the policy.",
    }
}

fn redundant_rules(world: &World, analysis: &Analysis<'_>) -> Finding {
    let offenders = analysis
        .redundant_rules()
        .into_iter()
        .map(|(rule, covering)| {
            if covering.is_empty() {
                format!("{}: allows no connection (its peers match no workload)", rule.shown(world))
            } else {
                let by: Vec<String> = covering.iter().map(|r| r.shown(world)).collect();
                format!("{}: shadowed by {}", rule.shown(world), by.join("; "))
            }
        })
        .collect();
    Finding {
        id: "rampart/netpol-shadowed-rule",
        title: "Every NetworkPolicy rule allows something no other rule does",
        gravity: Gravity::Low,
        fails: false,
        offenders,
        remediation: "Delete the rule, or narrow the rule that shadows it if that one allows more than meant.",
    }
}

fn probe(world: &World, name: &str) -> Option<usize> {
    world.externals.iter().position(|(n, _)| n == name)
}

fn metadata_endpoint(world: &World, analysis: &Analysis<'_>) -> Finding {
    let mut offenders = Vec::new();
    for w in 0..world.workloads.len() {
        for name in ["instance metadata", "instance metadata (IPv6)"] {
            let Some(e) = probe(world, name) else { continue };
            let reach = analysis.reach(Endpoint::Workload(w), Endpoint::External(e));
            if let (false, Some(side)) = (reach.ports.is_empty(), &reach.egress) {
                offenders.push(format!(
                    "{} → {} {}: {} ({})",
                    world.workloads[w].id(),
                    name,
                    world.externals[e].1.addr(),
                    reach.ports,
                    because(world, side, "egress")
                ));
            }
        }
    }
    Finding {
        id: "rampart/netpol-metadata-endpoint",
        title: "No workload can reach the instance metadata endpoint (169.254.169.254, fd00:ec2::254)",
        gravity: Gravity::High,
        fails: true,
        offenders,
        remediation: "Isolate egress and write ipBlocks with `except: [169.254.169.254/32]` (and fd00:ec2::254/128); give pods AWS credentials through IRSA or Pod Identity instead of the node's role, and set the instance's IMDSv2 hop limit to 1.",
    }
}

fn egress_anywhere(world: &World) -> Finding {
    let mut offenders = Vec::new();
    for policy in &world.policies {
        if !crate::reach::has_type(&policy.policy, crate::reach::Direction::Egress) {
            continue;
        }
        let rules = policy.policy.spec.as_ref().and_then(|s| s.egress.as_ref());
        for (n, rule) in rules.into_iter().flatten().enumerate() {
            let to = rule.to.as_deref().unwrap_or_default();
            let wide = to.is_empty()
                || to.iter().any(|peer| {
                    peer.ip_block.as_ref().is_some_and(|b| b.cidr == "0.0.0.0/0" || b.cidr == "::/0")
                });
            if wide {
                let what = if to.is_empty() { "any destination" } else { "0.0.0.0/0" };
                let ports = crate::ports::PortSet::of_rule(rule.ports.as_deref(), None);
                let on = if rule.ports.as_ref().is_some_and(|p| !p.is_empty()) && !ports.is_empty() {
                    format!(" on {ports}")
                } else if rule.ports.as_ref().is_some_and(|p| !p.is_empty()) {
                    " on named ports".to_string()
                } else {
                    String::new()
                };
                offenders.push(format!(
                    "{}/{} egress rule {n}{}: to {what}{on}",
                    policy.namespace,
                    policy.name,
                    policy.place()
                ));
            }
        }
    }
    Finding {
        id: "rampart/netpol-egress-anywhere",
        title: "No egress rule allows every address (0.0.0.0/0, ::/0, or no `to`)",
        gravity: Gravity::Medium,
        fails: false,
        offenders,
        remediation: "Name the destinations: the CIDRs of the services used, namespaces and pods by selector; keep 169.254.169.254/32 in an `except`.",
    }
}

fn system_ingress(world: &World, analysis: &Analysis<'_>) -> Finding {
    let mut offenders = Vec::new();
    if let Some(anywhere) = probe(world, "any address") {
        for (w, workload) in world.workloads.iter().enumerate() {
            if !SYSTEM_NAMESPACES.contains(&workload.namespace.as_str()) {
                continue;
            }
            let reach = analysis.reach(Endpoint::External(anywhere), Endpoint::Workload(w));
            if let (false, Some(side)) = (reach.ports.is_empty(), &reach.ingress) {
                offenders.push(format!(
                    "{} from any address: {} ({})",
                    workload.id(),
                    reach.ports,
                    because(world, side, "ingress")
                ));
            }
        }
    }
    Finding {
        id: "rampart/netpol-system-ingress",
        title: "No pod in a system namespace accepts connections from any address",
        gravity: Gravity::High,
        fails: true,
        offenders,
        remediation: "Isolate ingress of kube-system's pods and allow only the sources that need them (the apiserver's address, the nodes' CIDR, the namespaces that use DNS on 53).",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(text: &str) -> World {
        let mut world = World::default();
        world.add_manifests("m.yaml", text).unwrap();
        world.externals = probes();
        world
    }

    fn by_id<'f>(findings: &'f [Finding], id: &str) -> &'f Finding {
        findings.iter().find(|f| f.id == id).unwrap()
    }

    const APP: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\nspec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: shop, labels: {app: db}}\nspec: {containers: [{name: c}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}\nspec: {containers: [{name: c}]}\n---\n";

    #[test]
    fn without_policies_everything_is_reported() {
        let f = findings(&world(APP));
        assert_eq!(
            by_id(&f, "rampart/netpol-default-deny").offenders,
            ["Namespace shop: no default-deny for ingress or egress"]
        );
        let metadata = &by_id(&f, "rampart/netpol-metadata-endpoint").offenders;
        assert!(
            metadata.contains(
                &"shop/web → instance metadata 169.254.169.254: all ports (not isolated for egress)"
                    .to_string()
            ),
            "{metadata:?}"
        );
        assert!(metadata.iter().any(|o| o.contains("fd00:ec2::254")));
        assert_eq!(
            by_id(&f, "rampart/netpol-system-ingress").offenders,
            ["kube-system/coredns from any address: all ports (not isolated for ingress)"]
        );
    }

    #[test]
    fn a_baseline_deny_of_everything_is_a_default_deny() {
        let banp = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec:\n  subject: {namespaces: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system]}]}}\n  ingress: [{action: Deny, from: [{namespaces: {}}]}]\n  egress: [{action: Deny, to: [{networks: [0.0.0.0/0]}]}]\n";
        let f = findings(&world(&format!("{APP}{banp}")));
        assert!(by_id(&f, "rampart/netpol-default-deny").offenders.is_empty());
        let f = findings(&world(&format!("{APP}{}", banp.replace("action: Deny, to", "action: Allow, to"))));
        assert_eq!(
            by_id(&f, "rampart/netpol-default-deny").offenders,
            ["Namespace shop: no default-deny for egress"]
        );
    }

    #[test]
    fn a_careful_policy_set_passes_and_each_mistake_is_named() {
        let good = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: shop}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress], egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}]}]}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: dns, namespace: kube-system}\nspec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {}}], ports: [{protocol: UDP, port: 53}]}], egress: [{to: [{ipBlock: {cidr: 10.0.0.0/16}}], ports: [{protocol: UDP, port: 53}]}]}\n---\n";
        let f = findings(&world(&format!("{APP}{good}")));
        for finding in &f {
            assert!(finding.offenders.is_empty(), "{}: {:?}", finding.id, finding.offenders);
        }
        let mistakes = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: typo, namespace: shop}\nspec: {podSelector: {matchLabels: {app: wbe}}}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: shop}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  ingress: [{from: [{podSelector: {}}]}, {from: [{podSelector: {matchLabels: {app: db}}}], ports: [{port: http}]}, {from: [{podSelector: {matchLabels: {app: nope}}}]}]\n  egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0}}], ports: [{port: 443}]}]\n";
        let f = findings(&world(&format!("{APP}{good}---\n{mistakes}")));
        assert_eq!(
            by_id(&f, "rampart/netpol-selects-nothing").offenders,
            ["NetworkPolicy shop/typo (m.yaml:27): its podSelector matches no workload"]
        );
        let shadowed = &by_id(&f, "rampart/netpol-shadowed-rule").offenders;
        assert_eq!(shadowed.len(), 2, "{shadowed:?}");
        assert!(
            shadowed[0]
                .starts_with("shop/web ingress rule 1 (m.yaml:32): shadowed by shop/web ingress rule 0"),
            "{shadowed:?}"
        );
        assert!(shadowed[1].contains("ingress rule 2") && shadowed[1].contains("allows no connection"));
        assert_eq!(
            by_id(&f, "rampart/netpol-egress-anywhere").offenders,
            ["shop/web egress rule 0 (m.yaml:32): to 0.0.0.0/0 on TCP 443"]
        );
        assert_eq!(
            by_id(&f, "rampart/netpol-metadata-endpoint").offenders,
            [
                "shop/web → instance metadata 169.254.169.254: TCP 443 (allowed by shop/web rule 0 (m.yaml:32))"
            ]
        );
    }
}
