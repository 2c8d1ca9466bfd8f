//! Random clusters for the property and differential tests: namespaces with labels, pods with
//! labels and named container ports (the same name on different numbers, and protocols), and
//! NetworkPolicies drawn from every construct of the v1 API — selectors with matchLabels and
//! each matchExpressions operator, peers by pod, namespace, both and ipBlock with except,
//! ports by number, name, range and protocol, policyTypes given or defaulted, rule lists
//! absent, empty or not.
#![allow(dead_code)]

pub mod nca_report;

use proptest::prelude::*;

/// Addresses outside the cluster that every generated world names (all /32, so that a block
/// either holds one wholly or not at all).
pub const EXTERNALS: [(&str, &str); 5] = [
    ("metadata", "169.254.169.254/32"),
    ("vpc", "10.1.2.3/32"),
    ("peering", "10.200.0.1/32"),
    ("public", "8.8.8.8/32"),
    ("docker", "172.17.1.5/32"),
];

const APPS: [&str; 4] = ["web", "db", "cache", "api"];
const PORTS: [&str; 6] = [
    "{name: http, containerPort: 8080}",
    "{name: http, containerPort: 80}",
    "{name: pg, containerPort: 5432}",
    "{name: dns, containerPort: 53, protocol: UDP}",
    "{name: metrics, containerPort: 9090}",
    "{name: assoc, containerPort: 7777, protocol: SCTP}",
];

/// A pod: its app, optional role, and indices into [`PORTS`].
#[derive(Debug, Clone)]
pub struct Pod {
    pub app: &'static str,
    pub role: Option<&'static str>,
    pub ports: Vec<usize>,
}

/// A namespace: tier label, optional env label, its pods.
#[derive(Debug, Clone)]
pub struct Namespace {
    pub tier: u8,
    pub env: Option<&'static str>,
    pub pods: Vec<Pod>,
}

/// A NetworkPolicy before rendering; rules are YAML flow mappings with `PEERS` standing for
/// `from` or `to`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub namespace: usize,
    pub selector: String,
    pub types: Option<Vec<&'static str>>,
    pub ingress: Option<Vec<String>>,
    pub egress: Option<Vec<String>>,
}

/// Namespace `i` of a cluster; `prefix` keeps clusters apart when one NCA run reads many (it
/// keeps pods by name across the configurations of a scheme, so a named port of one cluster's
/// `ns0/p0` would otherwise leak into the next's).
pub fn namespace_name(prefix: &str, i: usize) -> String {
    format!("{prefix}ns{i}")
}

fn pod() -> impl Strategy<Value = Pod> {
    (
        prop::sample::select(APPS.to_vec()),
        prop::option::of(prop::sample::select(vec!["front", "back"])),
        prop::sample::subsequence((0..PORTS.len()).collect::<Vec<_>>(), 0..3),
    )
        .prop_map(|(app, role, ports)| {
            // Two ports named http on one pod would be invalid; keep the first.
            let ports = if ports.contains(&0) && ports.contains(&1) {
                ports.into_iter().filter(|p| *p != 1).collect()
            } else {
                ports
            };
            Pod { app, role, ports }
        })
}

pub fn namespaces() -> impl Strategy<Value = Vec<Namespace>> {
    prop::collection::vec(
        (
            0..2u8,
            prop::option::of(prop::sample::select(vec!["prod", "dev"])),
            prop::collection::vec(pod(), 1..4),
        )
            .prop_map(|(tier, env, pods)| Namespace { tier, env, pods }),
        2..4,
    )
}

pub fn pod_selector() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{}".to_string()),
        prop::sample::select(APPS.to_vec()).prop_map(|a| format!("{{matchLabels: {{app: {a}}}}}")),
        (prop::sample::select(vec!["In", "NotIn"]), prop::sample::subsequence(APPS.to_vec(), 1..3)).prop_map(
            |(op, v)| format!(
                "{{matchExpressions: [{{key: app, operator: {op}, values: [{}]}}]}}",
                v.join(", ")
            )
        ),
        prop::sample::select(vec!["Exists", "DoesNotExist"])
            .prop_map(|op| format!("{{matchExpressions: [{{key: role, operator: {op}}}]}}")),
        (prop::sample::select(APPS.to_vec()), prop::sample::select(vec!["front", "back"]))
            .prop_map(|(a, r)| format!("{{matchLabels: {{app: {a}, role: {r}}}}}")),
    ]
}

fn namespace_selector() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{}".to_string()),
        (0..2u8).prop_map(|t| format!("{{matchLabels: {{tier: t{t}}}}}")),
        prop::sample::select(vec!["prod", "dev"])
            .prop_map(|e| format!("{{matchExpressions: [{{key: env, operator: NotIn, values: [{e}]}}]}}")),
        Just("{matchExpressions: [{key: env, operator: Exists}]}".to_string()),
        (0..3usize).prop_map(|n| format!("{{matchLabels: {{kubernetes.io/metadata.name: ns{n}}}}}")),
    ]
}

fn ip_block() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "{cidr: 0.0.0.0/0, except: [169.254.169.254/32]}",
        "{cidr: 0.0.0.0/0}",
        "{cidr: 10.0.0.0/8}",
        "{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}",
        "{cidr: 8.8.8.8/32}",
        "{cidr: 169.254.0.0/16}",
        "{cidr: 172.17.0.0/16, except: [172.17.1.0/24]}",
    ])
    .prop_map(|b| format!("{{ipBlock: {b}}}"))
}

fn peer() -> impl Strategy<Value = String> {
    prop_oneof![
        pod_selector().prop_map(|s| format!("{{podSelector: {s}}}")),
        namespace_selector().prop_map(|s| format!("{{namespaceSelector: {s}}}")),
        (pod_selector(), namespace_selector())
            .prop_map(|(p, n)| format!("{{podSelector: {p}, namespaceSelector: {n}}}")),
        ip_block(),
    ]
}

fn port() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "{port: 8080}",
        "{port: 80}",
        "{port: http}",
        "{port: pg}",
        "{port: 80, endPort: 8080}",
        "{port: 5000, endPort: 6000}",
        "{protocol: UDP, port: 53}",
        "{protocol: UDP, port: dns}",
        "{protocol: UDP}",
        "{protocol: SCTP}",
        "{protocol: SCTP, port: assoc}",
        "{port: metrics}",
    ])
}

/// One rule, `PEERS` standing for `from` or `to`.
pub fn rule() -> impl Strategy<Value = String> {
    let peers = prop::option::of(prop::collection::vec(peer(), 0..3));
    let ports = prop::option::of(prop::collection::vec(port(), 0..3));
    (peers, ports).prop_map(|(peers, ports)| {
        let mut fields = Vec::new();
        if let Some(p) = peers {
            fields.push(format!("PEERS: [{}]", p.join(", ")));
        }
        if let Some(p) = ports {
            fields.push(format!("ports: [{}]", p.join(", ")));
        }
        format!("{{{}}}", fields.join(", "))
    })
}

fn types() -> impl Strategy<Value = Option<Vec<&'static str>>> {
    prop::option::of(prop::sample::select(vec![vec!["Ingress"], vec!["Egress"], vec!["Ingress", "Egress"]]))
}

/// Policies over `namespaces` namespaces.
pub fn policies(namespaces: usize, count: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Policy>> {
    prop::collection::vec(
        (
            0..namespaces,
            pod_selector(),
            types(),
            prop::option::of(prop::collection::vec(rule(), 0..3)),
            prop::option::of(prop::collection::vec(rule(), 0..3)),
        )
            .prop_map(|(namespace, selector, types, ingress, egress)| Policy {
                namespace,
                selector,
                types,
                ingress,
                egress,
            }),
        count,
    )
}

/// A whole random cluster: namespaces with pods, and up to five policies.
pub fn cluster() -> impl Strategy<Value = (Vec<Namespace>, Vec<Policy>)> {
    namespaces().prop_flat_map(|ns| {
        let n = ns.len();
        (Just(ns), policies(n, 0..6))
    })
}

/// The policies NCA accepts: it refuses rules of a direction that `policyTypes` leaves out
/// ("A NetworkPolicy with egress field but no "Egress" in its policyTypes"), which the API
/// accepts and ignores (see `rules_outside_policy_types_are_ignored` in semantics.rs); and it
/// reads `egress: []` without `policyTypes` as an egress policy, where the apiserver defaults
/// `policyTypes` to Ingress alone because the list is empty (`len(spec.Egress) != 0` in
/// SetDefaults_NetworkPolicy; the e2e test `netpol` checks the real apiserver does so); and
/// it evaluates `Exists`/`DoesNotExist` in a peer's podSelector over the policy's own
/// namespace only, even beside a namespaceSelector (K8sPolicyYamlParser.py calls
/// `get_peers_with_key(self.namespace, …)`), so those become the `In`/`NotIn` they equal over
/// this generator's `role` values.
pub fn as_nca_accepts(mut policy: Policy) -> Policy {
    let equal = |rule: &String| {
        rule.replace(
            "{key: role, operator: DoesNotExist}",
            "{key: role, operator: NotIn, values: [front, back]}",
        )
        .replace("{key: role, operator: Exists}", "{key: role, operator: In, values: [front, back]}")
    };
    for rules in [&mut policy.ingress, &mut policy.egress].into_iter().flatten() {
        *rules = rules.iter().map(equal).collect();
    }
    if policy.types.is_none() && policy.egress.as_ref().is_some_and(Vec::is_empty) {
        policy.egress = None;
    }
    if let Some(types) = &policy.types {
        if !types.contains(&"Ingress") {
            policy.ingress = None;
        }
        if !types.contains(&"Egress") {
            policy.egress = None;
        }
    }
    policy
}

pub fn render_workloads(prefix: &str, namespaces: &[Namespace]) -> String {
    let mut out = String::new();
    for (i, ns) in namespaces.iter().enumerate() {
        let name = namespace_name(prefix, i);
        let env = ns.env.map(|e| format!(", env: {e}")).unwrap_or_default();
        out += &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{tier: t{}{env}}}}}\n---\n",
            ns.tier
        );
        for (j, pod) in ns.pods.iter().enumerate() {
            let role = pod.role.map(|r| format!(", role: {r}")).unwrap_or_default();
            let ports: Vec<&str> = pod.ports.iter().map(|p| PORTS[*p]).collect();
            out += &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{j}, namespace: {name}, labels: {{app: {}{role}}}}}\nspec: {{containers: [{{name: c, image: nginx, ports: [{}]}}]}}\n---\n",
                pod.app,
                ports.join(", ")
            );
        }
    }
    out
}

pub fn render_policy(prefix: &str, i: usize, policy: &Policy) -> String {
    let mut spec = format!("  podSelector: {}\n", policy.selector);
    if let Some(types) = &policy.types {
        spec += &format!("  policyTypes: [{}]\n", types.join(", "));
    }
    if let Some(rules) = &policy.ingress {
        let rules: Vec<String> = rules.iter().map(|r| r.replace("PEERS", "from")).collect();
        spec += &format!(
            "  ingress: [{}]\n",
            rules.join(", ").replace("metadata.name: ns", &format!("metadata.name: {prefix}ns"))
        );
    }
    if let Some(rules) = &policy.egress {
        let rules: Vec<String> = rules.iter().map(|r| r.replace("PEERS", "to")).collect();
        spec += &format!(
            "  egress: [{}]\n",
            rules.join(", ").replace("metadata.name: ns", &format!("metadata.name: {prefix}ns"))
        );
    }
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p{i}, namespace: {}}}\nspec:\n{spec}---\n",
        namespace_name(prefix, policy.namespace)
    )
}

pub fn render_policies(prefix: &str, policies: &[Policy]) -> String {
    policies.iter().enumerate().map(|(i, p)| render_policy(prefix, i, p)).collect()
}

fn admin_pods() -> impl Strategy<Value = String> {
    prop_oneof![
        namespace_selector().prop_map(|n| format!("{{namespaces: {n}}}")),
        (namespace_selector(), pod_selector())
            .prop_map(|(n, p)| format!("{{pods: {{namespaceSelector: {n}, podSelector: {p}}}}}")),
    ]
}

fn admin_port() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "{portNumber: {port: 8080}}",
        "{portNumber: {protocol: UDP, port: 53}}",
        "{namedPort: http}",
        "{namedPort: dns}",
        "{portRange: {start: 80, end: 8080}}",
        "{portRange: {protocol: SCTP, start: 7000, end: 8000}}",
    ])
}

fn admin_rule(egress: bool, baseline: bool) -> impl Strategy<Value = String> {
    let actions = if baseline { vec!["Allow", "Deny"] } else { vec!["Allow", "Deny", "Pass"] };
    let peer = if egress {
        prop_oneof![
            3 => admin_pods(),
            1 => prop::sample::select(vec!["[169.254.169.254/32]", "[0.0.0.0/0]", "[10.0.0.0/8]", "[8.8.8.8/32, 172.17.0.0/16]"])
                .prop_map(|n| format!("{{networks: {n}}}")),
        ]
        .boxed()
    } else {
        admin_pods().boxed()
    };
    (
        prop::sample::select(actions),
        prop::collection::vec(peer, 1..3),
        prop::option::of(prop::collection::vec(admin_port(), 1..3)),
    )
        .prop_map(move |(action, peers, ports)| {
            let ports = ports.map(|p| format!(", ports: [{}]", p.join(", "))).unwrap_or_default();
            format!(
                "{{action: {action}, {}: [{}]{ports}}}",
                if egress { "to" } else { "from" },
                peers.join(", ")
            )
        })
}

/// Random AdminNetworkPolicies (priorities 1-5, so ties are tested too) and maybe the
/// BaselineAdminNetworkPolicy, as YAML.
pub fn admin_policies() -> impl Strategy<Value = String> {
    let anp = (
        1..6u32,
        admin_pods(),
        prop::collection::vec(admin_rule(false, false), 0..3),
        prop::collection::vec(admin_rule(true, false), 0..3),
    );
    let banp = prop::option::of((
        admin_pods(),
        prop::collection::vec(admin_rule(false, true), 0..3),
        prop::collection::vec(admin_rule(true, true), 0..3),
    ));
    (prop::collection::vec(anp, 0..3), banp).prop_map(|(anps, banp)| {
        let mut out = String::new();
        for (i, (priority, subject, ingress, egress)) in anps.into_iter().enumerate() {
            out += &format!(
                "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {{name: anp{i}}}\nspec:\n  priority: {priority}\n  subject: {subject}\n  ingress: [{}]\n  egress: [{}]\n---\n",
                ingress.join(", "),
                egress.join(", ")
            );
        }
        if let Some((subject, ingress, egress)) = banp {
            out += &format!(
                "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {{name: default}}\nspec:\n  subject: {subject}\n  ingress: [{}]\n  egress: [{}]\n---\n",
                ingress.join(", "),
                egress.join(", ")
            );
        }
        out
    })
}

/// A random port set: unions of a few ranges of random protocols.
pub fn port_set() -> impl Strategy<Value = rampart_netpol::ports::PortSet> {
    prop::collection::vec((prop::sample::select(vec!["TCP", "UDP", "SCTP"]), 1..70u16, 0..20u16), 0..5)
        .prop_map(|ranges| {
            ranges.into_iter().fold(rampart_netpol::ports::PortSet::none(), |acc, (p, lo, len)| {
                acc.union(&rampart_netpol::ports::PortSet::range(p, lo * 900, lo * 900 + len * 50))
            })
        })
}
