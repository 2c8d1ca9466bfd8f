//! AdminNetworkPolicy and BaselineAdminNetworkPolicy semantics, case by case, as the
//! network-policy-api v1alpha1 types document them (sigs.k8s.io/network-policy-api
//! apis/v1alpha1): priorities, rule order, Allow/Deny/Pass, the baseline only for pods no
//! NetworkPolicy isolates, `networks` peers (a /0 holds every pod), ports per rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_netpol::analysis::Analysis;
use rampart_netpol::ports::PortSet;
use rampart_netpol::reach::{endpoint, explain};
use rampart_netpol::world::World;

const WORKLOADS: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: a, labels: {team: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: b, labels: {team: b}}
---
apiVersion: v1
kind: Namespace
metadata: {name: monitoring, labels: {team: ops}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: a, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9090}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: b, labels: {app: client}}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: prometheus, namespace: monitoring, labels: {app: prometheus}}
spec: {containers: [{name: c}]}
";

fn world(policies: &str) -> World {
    let mut world = World::default();
    world.add_manifests("workloads.yaml", WORKLOADS).unwrap();
    world.add_manifests("policies.yaml", policies).unwrap();
    world.externals = vec![("metadata".into(), "169.254.169.254/32".parse().unwrap())];
    world
}

fn ports(world: &World, src: &str, dst: &str) -> PortSet {
    let (s, d) = (endpoint(world, src).unwrap(), endpoint(world, dst).unwrap());
    let analysis = Analysis::new(world);
    let one = analysis.reach(s, d).ports;
    // The matrix's interned path must agree with the single query.
    let matrix = analysis.matrix();
    let index = |name: &str| matrix.names().iter().position(|n| n == name).unwrap();
    assert_eq!(matrix.get(index(src), index(dst)), &one, "{src} → {dst}: matrix and reach");
    one
}

fn why(world: &World, src: &str, dst: &str) -> String {
    let (s, d) = (endpoint(world, src).unwrap(), endpoint(world, dst).unwrap());
    explain(world, s, d, &Analysis::new(world).reach(s, d)).join("\n")
}

const TCP: fn(u16) -> PortSet = |p| PortSet::range("TCP", p, p);

fn anp(name: &str, priority: u32, body: &str) -> String {
    format!(
        "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n  priority: {priority}\n{body}---\n"
    )
}

const NP_ALLOW_B: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: from-b, namespace: a}\nspec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {team: b}}}]}]}\n---\n";

#[test]
fn an_admin_deny_overrides_what_a_network_policy_allows() {
    let deny = anp(
        "no-b",
        10,
        "  subject: {namespaces: {matchLabels: {team: a}}}\n  ingress: [{name: no-b, action: Deny, from: [{namespaces: {matchLabels: {team: b}}}]}]\n",
    );
    let w = world(&format!("{NP_ALLOW_B}{deny}"));
    assert!(ports(&w, "b/client", "a/web").is_empty());
    let text = why(&w, "b/client", "a/web");
    assert!(
        text.contains(
            "AdminNetworkPolicy no-b (priority 10, policies.yaml:6) ingress rule 0 \"no-b\" denies all ports"
        ),
        "{text}"
    );
    assert!(text.contains("AdminNetworkPolicies decided every port"), "{text}");
    assert!(
        ports(&w, "monitoring/prometheus", "a/web").is_empty(),
        "the NetworkPolicy still isolates for the rest"
    );
}

#[test]
fn an_admin_allow_opens_what_network_policies_isolate_on_its_ports_only() {
    let allow = anp(
        "scrape",
        5,
        "  subject: {namespaces: {}}\n  ingress: [{action: Allow, from: [{namespaces: {matchLabels: {team: ops}}}], ports: [{namedPort: metrics}]}]\n",
    );
    let deny_all = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: a}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n---\n";
    let w = world(&format!("{deny_all}{allow}"));
    assert_eq!(ports(&w, "monitoring/prometheus", "a/web"), TCP(9090));
    assert!(ports(&w, "b/client", "a/web").is_empty());
    let text = why(&w, "monitoring/prometheus", "a/web");
    assert!(text.contains("allows TCP 9090") && text.contains("isolated by a/deny"), "{text}");
}

#[test]
fn lower_priority_values_and_earlier_rules_win_per_port() {
    let allow = anp(
        "allow",
        5,
        "  subject: {namespaces: {}}\n  ingress: [{action: Allow, from: [{namespaces: {}}], ports: [{portRange: {start: 8000, end: 8100}}]}]\n",
    );
    let deny = anp(
        "deny",
        10,
        "  subject: {namespaces: {}}\n  ingress: [{action: Deny, from: [{namespaces: {}}], ports: [{portNumber: {port: 8080}}]}, {action: Allow, from: [{namespaces: {}}]}]\n",
    );
    // allow (5) decides 8000-8100 first; deny (10) then denies nothing more on 8080 and its
    // second rule allows every other port.
    let w = world(&format!("{allow}{deny}"));
    assert!(ports(&w, "b/client", "a/web").is_all());
    // With the priorities swapped, 8080 is denied and the rest allowed.
    let w = world(&format!("{}{}", allow.replace("priority: 5", "priority: 20"), deny));
    assert_eq!(ports(&w, "b/client", "a/web"), PortSet::all().minus(&TCP(8080)));
}

#[test]
fn pass_skips_the_remaining_admin_rules_for_the_network_policies_and_baseline() {
    let pass = anp(
        "pass-b",
        1,
        "  subject: {namespaces: {}}\n  ingress: [{action: Pass, from: [{namespaces: {matchLabels: {team: b}}}]}]\n",
    );
    let deny = anp(
        "deny-all",
        2,
        "  subject: {namespaces: {}}\n  ingress: [{action: Deny, from: [{namespaces: {}}]}]\n",
    );
    let w = world(&format!("{pass}{deny}"));
    assert!(ports(&w, "b/client", "a/web").is_all(), "passed, no policy isolates, no baseline: allowed");
    assert!(ports(&w, "monitoring/prometheus", "a/web").is_empty(), "not passed: denied");
    let baseline = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec: {subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {matchLabels: {team: b}}}]}]}\n---\n";
    let w = world(&format!("{pass}{deny}{baseline}"));
    assert!(ports(&w, "b/client", "a/web").is_empty(), "passed to the baseline, which denies");
    let w = world(&format!("{pass}{deny}{baseline}{NP_ALLOW_B}"));
    assert!(
        ports(&w, "b/client", "a/web").is_all(),
        "a NetworkPolicy isolates a: the baseline does not apply"
    );
    let text = why(&w, "b/client", "a/web");
    assert!(
        text.contains("passes to NetworkPolicies all ports") && text.contains("allowed by a/from-b rule 0"),
        "{text}"
    );
}

#[test]
fn the_baseline_denies_what_nothing_else_decided_and_allows_the_rest() {
    let baseline = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec:\n  subject: {namespaces: {}}\n  ingress: [{action: Allow, from: [{namespaces: {matchLabels: {team: ops}}}]}, {action: Deny, from: [{namespaces: {}}]}]\n";
    let w = world(baseline);
    assert!(ports(&w, "monitoring/prometheus", "a/web").is_all());
    assert!(ports(&w, "b/client", "a/web").is_empty());
    assert!(ports(&w, "metadata", "a/web").is_all(), "an address outside matches no namespaces peer");
}

#[test]
fn networks_peers_name_addresses_and_a_zero_prefix_holds_every_pod() {
    let imds = anp(
        "no-imds",
        1,
        "  subject: {namespaces: {}}\n  egress: [{action: Deny, to: [{networks: [169.254.169.254/32]}]}]\n",
    );
    let allow_all = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: out, namespace: a}\nspec: {podSelector: {}, policyTypes: [Egress], egress: [{}]}\n---\n";
    let w = world(&format!("{allow_all}{imds}"));
    assert!(ports(&w, "a/web", "metadata").is_empty(), "the NetworkPolicy's allow cannot undo it");
    assert!(ports(&w, "a/web", "b/client").is_all());
    let everything = anp(
        "deny-v4",
        2,
        "  subject: {namespaces: {matchLabels: {team: a}}}\n  egress: [{action: Deny, to: [{networks: [0.0.0.0/0]}]}]\n",
    );
    let w = world(&everything);
    assert!(ports(&w, "a/web", "b/client").is_empty(), "0.0.0.0/0 denies pod-to-pod too");
    assert!(ports(&w, "a/web", "metadata").is_empty());
    assert!(ports(&w, "b/client", "a/web").is_all(), "egress only, subject a only");
}

#[test]
fn nodes_and_domain_names_name_nothing_offline() {
    let w = world(&anp(
        "dns",
        1,
        "  subject: {namespaces: {}}\n  egress: [{action: Deny, to: [{nodes: {}}]}, {action: Allow, to: [{domainNames: [example.com]}]}]\n",
    ));
    assert!(ports(&w, "a/web", "metadata").is_all());
}
