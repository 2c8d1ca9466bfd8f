//! The algebra of NetworkPolicies, on random policy sets over fixed workloads: adding an allow
//! rule never removes a connection; a default-deny removes exactly the connections into its
//! namespace's pods that no policy isolated before, and nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rampart_netpol::ports::PortSet;
use rampart_netpol::reach::{Endpoint, reach};
use rampart_netpol::world::World;

const NAMESPACES: [&str; 3] = ["a", "b", "c"];
const APPS: [&str; 3] = ["web", "db", "cache"];

fn workloads() -> String {
    let mut out = String::new();
    for (i, ns) in NAMESPACES.iter().enumerate() {
        out += &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{tier: t{}}}}}\n---\n",
            i % 2
        );
        for app in APPS {
            out += &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {app}, namespace: {ns}, labels: {{app: {app}}}}}\nspec: {{containers: [{{name: c, ports: [{{name: http, containerPort: 8080}}]}}]}}\n---\n"
            );
        }
    }
    out
}

fn selector() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{}".to_string()),
        prop::sample::select(APPS.to_vec()).prop_map(|a| format!("{{matchLabels: {{app: {a}}}}}")),
        prop::sample::select(APPS.to_vec())
            .prop_map(|a| format!("{{matchExpressions: [{{key: app, operator: NotIn, values: [{a}]}}]}}")),
    ]
}

fn peer() -> impl Strategy<Value = String> {
    prop_oneof![
        selector().prop_map(|s| format!("{{podSelector: {s}}}")),
        (0..2u8).prop_map(|t| format!("{{namespaceSelector: {{matchLabels: {{tier: t{t}}}}}}}")),
        (selector(), 0..2u8).prop_map(|(s, t)| format!(
            "{{podSelector: {s}, namespaceSelector: {{matchLabels: {{tier: t{t}}}}}}}"
        )),
        Just("{ipBlock: {cidr: 10.0.0.0/8}}".to_string()),
    ]
}

fn rule() -> impl Strategy<Value = String> {
    let peers = prop::option::of(prop::collection::vec(peer(), 0..3));
    let ports = prop::option::of(prop::collection::vec(
        prop_oneof![
            Just("{port: 8080}"),
            Just("{port: http}"),
            Just("{port: 80, endPort: 90}"),
            Just("{protocol: UDP}")
        ],
        0..3,
    ));
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

fn policy() -> impl Strategy<Value = (String, String, Vec<String>, Vec<String>, bool)> {
    (
        prop::sample::select(NAMESPACES.to_vec()).prop_map(str::to_string),
        selector(),
        prop::collection::vec(rule(), 0..3),
        prop::collection::vec(rule(), 0..3),
        any::<bool>(),
    )
}

fn render(
    i: usize,
    (ns, selector, ingress, egress, typed): &(String, String, Vec<String>, Vec<String>, bool),
) -> String {
    let ingress: Vec<String> = ingress.iter().map(|r| r.replace("PEERS", "from")).collect();
    let egress: Vec<String> = egress.iter().map(|r| r.replace("PEERS", "to")).collect();
    let types = if *typed { "\n  policyTypes: [Ingress, Egress]" } else { "" };
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p{i}, namespace: {ns}}}\nspec:\n  podSelector: {selector}\n  ingress: [{}]\n  egress: [{}]{types}\n---\n",
        ingress.join(", "),
        egress.join(", ")
    )
}

fn world(policies: &str) -> World {
    let mut world = World::default();
    world.add_manifests("w.yaml", &workloads()).unwrap();
    world.add_manifests("p.yaml", policies).unwrap();
    world.externals = vec![("ten".into(), "10.1.0.0/16".parse().unwrap())];
    world
}

fn matrix(world: &World) -> Vec<PortSet> {
    let ends: Vec<Endpoint> = (0..world.workloads.len())
        .map(Endpoint::Workload)
        .chain((0..world.externals.len()).map(Endpoint::External))
        .collect();
    let mut out = Vec::new();
    for &s in &ends {
        for &d in &ends {
            out.push(reach(world, s, d).ports);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn an_added_allow_rule_never_removes_a_connection(
        policies in prop::collection::vec(policy(), 1..5),
        extra in rule(),
        which in any::<prop::sample::Index>(),
        to_ingress in any::<bool>(),
    ) {
        let mut grown = policies.clone();
        let target = which.index(grown.len());
        if to_ingress { grown[target].2.push(extra) } else { grown[target].3.push(extra) }
        // Keep the policy's types as they were: adding an egress rule to an untyped policy
        // would otherwise make it an egress policy (that isolates, which is not "adding an
        // allow rule").
        grown[target].4 = true;
        let mut typed = policies.clone();
        typed[target].4 = true;
        let typed_text: String = typed.iter().enumerate().map(|(i, p)| render(i, p)).collect();
        let grown_text: String = grown.iter().enumerate().map(|(i, p)| render(i, p)).collect();
        let (before, after) = (matrix(&world(&typed_text)), matrix(&world(&grown_text)));
        for (b, a) in before.iter().zip(&after) {
            prop_assert_eq!(b.intersect(a), b.clone(), "a connection shrank");
        }
    }

    #[test]
    fn a_default_deny_removes_exactly_the_unprotected_connections_into_its_namespace(
        policies in prop::collection::vec(policy(), 0..5),
        ns in prop::sample::select(NAMESPACES.to_vec()),
    ) {
        let text: String = policies.iter().enumerate().map(|(i, p)| render(i, p)).collect();
        let before = world(&text);
        let deny = format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: deny, namespace: {ns}}}\nspec: {{podSelector: {{}}, policyTypes: [Ingress]}}\n");
        let after = world(&format!("{text}{deny}"));
        let n = before.workloads.len() + before.externals.len();
        let (old, new) = (matrix(&before), matrix(&after));
        for d in 0..n {
            let dst_in_ns = d < before.workloads.len() && before.workloads[d].namespace == ns;
            let was_isolated = dst_in_ns && {
                let probe = reach(&before, Endpoint::External(0), Endpoint::Workload(d));
                probe.ingress.as_ref().is_some_and(|side| !side.isolating.is_empty())
            };
            for s in 0..n {
                let (o, w) = (&old[s * n + d], &new[s * n + d]);
                if dst_in_ns && !was_isolated {
                    prop_assert!(w.is_empty(), "an unprotected pod is closed");
                } else {
                    prop_assert_eq!(o, w, "nothing else changes");
                }
            }
        }
    }
}
