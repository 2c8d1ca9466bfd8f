//! NetworkPolicy v1 semantics, case by case, as the API documentation states them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_netpol::ports::PortSet;
use rampart_netpol::reach::{endpoint, explain, reach};
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
kind: Pod
metadata: {name: web, namespace: a, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: a, labels: {app: db}}
spec: {containers: [{name: c, ports: [{name: pg, containerPort: 5432}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: b}
spec: {template: {metadata: {labels: {app: client}}, spec: {containers: [{name: c}]}}}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: b, labels: {app: other}}
spec: {containers: [{name: c}]}
";

fn world(policies: &str) -> World {
    let mut world = World::default();
    world.add_manifests("workloads.yaml", WORKLOADS).unwrap();
    world.add_manifests("policies.yaml", policies).unwrap();
    world.externals = vec![
        ("metadata".into(), "169.254.169.254/32".parse().unwrap()),
        ("dns".into(), "8.8.8.8/32".parse().unwrap()),
    ];
    world
}

fn ports(world: &World, src: &str, dst: &str) -> PortSet {
    let (s, d) = (endpoint(world, src).unwrap(), endpoint(world, dst).unwrap());
    reach(world, s, d).ports
}

const TCP: fn(u16) -> PortSet = |p| PortSet::range("TCP", p, p);

#[test]
fn without_policies_everything_reaches_everything() {
    let w = world("");
    assert!(ports(&w, "b/client", "a/db").is_all());
    assert!(ports(&w, "a/web", "metadata").is_all());
}

#[test]
fn isolation_selectors_named_ports_and_both_ends() {
    let w = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: a}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-b, namespace: a}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: b}}}], ports: [{port: http}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-web, namespace: a}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 5432}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: no-metadata, namespace: b}
spec:
  podSelector: {}
  egress:
    - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}}]
    - to: [{namespaceSelector: {}}]
",
    );
    assert_eq!(ports(&w, "b/client", "a/web"), TCP(8080), "the named port, resolved on the destination");
    assert!(ports(&w, "b/client", "a/db").is_empty(), "db takes only web");
    assert_eq!(ports(&w, "a/web", "a/db"), TCP(5432));
    assert!(ports(&w, "a/db", "a/web").is_empty(), "web takes only namespace b");
    // Egress defaulted from the rules' presence (no policyTypes).
    assert!(ports(&w, "b/client", "metadata").is_empty(), "the except holds");
    assert!(ports(&w, "b/client", "dns").is_all());
    assert!(ports(&w, "a/web", "metadata").is_all(), "namespace a has no egress policy");
    // From outside: only the ingress side counts.
    assert!(ports(&w, "dns", "a/web").is_empty(), "web takes only namespace b's pods");
    assert!(
        ports(&w, "dns", "b/client").is_empty(),
        "without policyTypes a policy is an Ingress policy too: no-metadata isolates b's ingress, with no rule"
    );
    let (s, d) = (endpoint(&w, "b/client").unwrap(), endpoint(&w, "a/web").unwrap());
    let why = explain(&w, s, d, &reach(&w, s, d)).join("\n");
    assert!(
        why.contains(
            "ingress of a/web: isolated by a/default-deny (policies.yaml:2), a/web-from-b (policies.yaml:7)"
        ),
        "{why}"
    );
    assert!(why.contains("allowed by a/web-from-b rule 0 (policies.yaml:7): TCP 8080"), "{why}");
    assert!(why.contains("egress of b/client: isolated by b/no-metadata"), "{why}");
}

#[test]
fn a_peer_with_both_selectors_is_their_intersection_two_peers_their_union() {
    let intersection = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: a}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: b}}, podSelector: {matchLabels: {app: client}}}]}]
",
    );
    assert!(ports(&intersection, "b/client", "a/web").is_all());
    assert!(ports(&intersection, "b/other", "a/web").is_empty());
    assert!(ports(&intersection, "a/db", "a/web").is_empty());
    let union = world(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: a}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: b}}}, {podSelector: {matchLabels: {app: client}}}]}]
",
    );
    assert!(ports(&union, "b/other", "a/web").is_all(), "any pod of namespace b");
    assert!(ports(&union, "a/db", "a/web").is_empty(), "a bare podSelector is the policy's own namespace");
}

#[test]
fn empty_lists_absent_lists_and_policy_types() {
    // `from: []` and a rule without `from` match every source; `ingress: []` allows nothing.
    for rule in ["[{from: []}]", "[{}]"] {
        let w = world(&format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: a}}\nspec: {{podSelector: {{}}, ingress: {rule}}}\n"
        ));
        assert!(ports(&w, "b/client", "a/web").is_all(), "{rule}");
        assert!(ports(&w, "dns", "a/web").is_all(), "{rule}: outside too");
    }
    let w = world(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\nspec: {podSelector: {}, ingress: []}\n",
    );
    assert!(ports(&w, "b/client", "a/web").is_empty());
    // Egress only: ingress stays open.
    let w = world(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\nspec: {podSelector: {}, policyTypes: [Egress]}\n",
    );
    assert!(ports(&w, "b/client", "a/web").is_all());
    assert!(ports(&w, "a/web", "b/client").is_empty());
    // Port ranges and protocols.
    let w = world(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\nspec: {podSelector: {}, ingress: [{ports: [{port: 8000, endPort: 8100}, {protocol: UDP, port: 53}]}]}\n",
    );
    assert_eq!(
        ports(&w, "b/client", "a/web"),
        PortSet::range("TCP", 8000, 8100).union(&PortSet::range("UDP", 53, 53))
    );
}

// The three places network-config-analyzer answers otherwise (tests/nca.rs pins what it says).

#[test]
fn rules_outside_policy_types_are_ignored() {
    // "policyTypes … List of rule types that the NetworkPolicy relates to": egress rules in a
    // policy typed Ingress alone neither isolate nor allow egress; the API accepts the object.
    let w = world(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\nspec: {podSelector: {}, policyTypes: [Ingress], ingress: [], egress: [{to: [{podSelector: {matchLabels: {app: db}}}]}]}\n",
    );
    assert!(ports(&w, "a/web", "b/client").is_all(), "egress stays open");
    assert!(ports(&w, "b/client", "a/web").is_empty(), "ingress is isolated");
}

#[test]
fn an_empty_egress_list_without_policy_types_is_an_ingress_policy() {
    // "If this field is not specified, it will default based on the existence of ingress or
    // egress rules": the apiserver's defaulting tests `len(spec.Egress) != 0`, so `egress: []`
    // is no egress rule and the policy is typed Ingress alone (the e2e netpol test reads the
    // defaulted object back from a real apiserver).
    let w = world(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\nspec: {podSelector: {}, egress: []}\n",
    );
    assert!(ports(&w, "a/web", "b/client").is_all(), "egress open");
    assert!(ports(&w, "a/web", "dns").is_all());
    assert!(ports(&w, "b/client", "a/web").is_empty(), "ingress isolated");
}

#[test]
fn exists_in_a_peer_with_a_namespace_selector_looks_in_the_selected_namespaces() {
    // "If namespaceSelector is also set, then the NetworkPolicyPeer as a whole selects the
    // Pods matching podSelector in the Namespaces selected by NamespaceSelector": the pod
    // selector's requirements, whichever their operator, apply to pods of those namespaces.
    for (operator, allowed) in [("Exists", true), ("DoesNotExist", false)] {
        let w = world(&format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: a}}\nspec: {{podSelector: {{}}, ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{team: b}}}}, podSelector: {{matchExpressions: [{{key: app, operator: {operator}}}]}}}}]}}]}}\n"
        ));
        assert_eq!(ports(&w, "b/client", "a/web").is_all(), allowed, "{operator}");
        assert!(ports(&w, "a/db", "a/web").is_empty(), "{operator}: not the policy's namespace");
    }
}
