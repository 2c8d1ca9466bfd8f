//! The algebra of NetworkPolicies, on random clusters (tests/support): adding an allow rule
//! never removes a connection; a default-deny removes exactly the connections into its
//! namespace's pods that no policy isolated before, and nothing else; the single query and the
//! matrix agree, with and without random admin tiers; an AdminNetworkPolicy that passes
//! everything first leaves exactly what the other tiers give; port-set difference splits a set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rampart_netpol::analysis::Analysis;
use rampart_netpol::ports::PortSet;
use rampart_netpol::reach::{Endpoint, reach};
use rampart_netpol::world::World;

mod support;

use support::{Namespace, Policy};

fn world(namespaces: &[Namespace], policies: &str) -> World {
    let mut world = World::default();
    world.add_manifests("w.yaml", &support::render_workloads("", namespaces)).unwrap();
    world.add_manifests("p.yaml", policies).unwrap();
    world.externals = vec![("ten".into(), "10.1.0.0/16".parse().unwrap())];
    world
}

fn typed(policies: &[Policy], target: usize) -> Vec<Policy> {
    let mut out = policies.to_vec();
    out[target].types = Some(vec!["Ingress", "Egress"]);
    out
}

fn matrix(world: &World) -> Vec<PortSet> {
    let matrix = Analysis::new(world).matrix();
    let n = matrix.names().len();
    (0..n * n).map(|i| matrix.get(i / n, i % n).clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn an_added_allow_rule_never_removes_a_connection(
        (namespaces, policies) in support::cluster().prop_filter("a policy to grow", |(_, p)| !p.is_empty()),
        extra in support::rule(),
        which in any::<prop::sample::Index>(),
        to_ingress in any::<bool>(),
    ) {
        // Keep the policy's types as they were (both): adding an egress rule to an untyped
        // policy would otherwise make it an egress policy, which isolates and is not "adding
        // an allow rule".
        let target = which.index(policies.len());
        let before = typed(&policies, target);
        let mut grown = before.clone();
        let rules = if to_ingress { &mut grown[target].ingress } else { &mut grown[target].egress };
        rules.get_or_insert_with(Vec::new).push(extra);
        let before = matrix(&world(&namespaces, &support::render_policies("", &before)));
        let after = matrix(&world(&namespaces, &support::render_policies("", &grown)));
        for (b, a) in before.iter().zip(&after) {
            prop_assert_eq!(b.intersect(a), b.clone(), "a connection shrank");
        }
    }

    #[test]
    fn one_query_and_the_whole_matrix_agree(
        (namespaces, policies) in support::cluster(),
        admin in prop::option::of(support::admin_policies()),
    ) {
        // Two code paths over one index: `reach` walks the rules of one pair, the matrix
        // builds rows of interned sets; with and without the admin tiers.
        let world = world(&namespaces, &format!("{}{}", support::render_policies("", &policies), admin.unwrap_or_default()));
        let analysis = Analysis::new(&world);
        let matrix = analysis.matrix();
        let n = world.workloads.len();
        let end = |i: usize| if i < n { Endpoint::Workload(i) } else { Endpoint::External(i - n) };
        for s in 0..matrix.names().len() {
            for d in 0..matrix.names().len() {
                if s != d && (s < n || d < n) {
                    prop_assert_eq!(&analysis.reach(end(s), end(d)).ports, matrix.get(s, d), "{} → {}", s, d);
                }
            }
        }
    }

    #[test]
    fn an_admin_policy_that_passes_everything_first_leaves_the_other_tiers_to_decide(
        (namespaces, policies) in support::cluster(),
        admin in support::admin_policies(),
    ) {
        // Passing every port at the highest precedence skips every other admin rule, so the
        // result is what the NetworkPolicies and the baseline alone give.
        let text = support::render_policies("", &policies);
        let baseline_only: String = admin.split("---\n").filter(|d| d.contains("BaselineAdminNetworkPolicy")).map(|d| format!("{d}---\n")).collect();
        let pass = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a-pass}\nspec:\n  priority: 0\n  subject: {namespaces: {}}\n  ingress: [{action: Pass, from: [{namespaces: {}}]}]\n  egress: [{action: Pass, to: [{namespaces: {}}, {networks: [0.0.0.0/0, '::/0']}]}]\n---\n";
        let with_pass = matrix(&world(&namespaces, &format!("{text}{pass}{admin}")));
        let without = matrix(&world(&namespaces, &format!("{text}{baseline_only}")));
        prop_assert_eq!(with_pass, without);
    }

    #[test]
    fn minus_splits_a_set_into_what_another_holds_and_what_it_does_not(
        a in support::port_set(), b in support::port_set(),
    ) {
        let (out, both) = (a.minus(&b), a.intersect(&b));
        prop_assert!(out.intersect(&b).is_empty());
        prop_assert_eq!(out.union(&both), a);
    }

    #[test]
    fn a_default_deny_removes_exactly_the_unprotected_connections_into_its_namespace(
        (namespaces, policies) in support::cluster(),
        which in any::<prop::sample::Index>(),
    ) {
        let ns = support::namespace_name("", which.index(namespaces.len()));
        let text = support::render_policies("", &policies);
        let before = world(&namespaces, &text);
        let deny = format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: deny, namespace: {ns}}}\nspec: {{podSelector: {{}}, policyTypes: [Ingress]}}\n");
        let after = world(&namespaces, &format!("{text}{deny}"));
        let n = before.workloads.len() + before.externals.len();
        let (old, new) = (matrix(&before), matrix(&after));
        let mut closed = 0;
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
                    closed += usize::from(!o.is_empty());
                } else {
                    prop_assert_eq!(o, w, "nothing else changes");
                }
            }
        }
        // An unprotected pod took traffic from outside before the deny: something closed.
        let unprotected = (0..before.workloads.len()).any(|d| {
            before.workloads[d].namespace == ns
                && reach(&before, Endpoint::External(0), Endpoint::Workload(d)).ingress.as_ref().is_some_and(|s| s.isolating.is_empty())
        });
        prop_assert!(!unprotected || closed > 0, "the deny closed nothing");
    }
}
