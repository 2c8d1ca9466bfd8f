//! ClusterRole aggregation, as the `clusterrole-aggregation` controller computes it: for each
//! selector in order, the matching ClusterRoles sorted by name (the role itself skipped), their
//! rules appended unless an equal rule is already there.
//!
//! One deliberate difference: the controller *replaces* an aggregated role's rules, and here
//! they are *kept* and the aggregated ones added. Rampart reads roles as dumped — by `kubectl
//! get -o yaml`, often only part of a cluster — where the stored rules are what the controller
//! last computed; recomputing from a partial dump (admin without the roles labelled into it)
//! would silently drop grants the cluster really makes.

use crate::model::{PolicyRule, Role};

/// Apply aggregation to every ClusterRole with an `aggregationRule`, in place, until nothing
/// changes: the controller re-queues every aggregated role whenever any ClusterRole changes,
/// so nested aggregation (view → edit → admin) converges to the same fixed point.
pub fn aggregate(cluster_roles: &mut [Role]) {
    let shown: Vec<Vec<PolicyRule>> = cluster_roles.iter().map(|r| r.rules.clone()).collect();
    // Each pass can only propagate rules one level further; more passes than roles is a cycle.
    for _ in 0..=cluster_roles.len() {
        if !aggregate_once(cluster_roles, &shown) {
            return;
        }
    }
}

/// One controller pass over a snapshot (`shown`: each role's rules as read); true when some
/// role changed.
fn aggregate_once(cluster_roles: &mut [Role], shown: &[Vec<PolicyRule>]) -> bool {
    let snapshot: Vec<Role> = cluster_roles.to_vec();
    let mut sorted: Vec<&Role> = snapshot.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut changed = false;
    for (role, shown) in cluster_roles.iter_mut().zip(shown) {
        let Some(rule) = role.aggregation_rule.as_ref() else { continue };
        let mut rules: Vec<PolicyRule> = shown.clone();
        for selector in &rule.cluster_role_selectors {
            for other in sorted.iter().filter(|o| o.name != role.name && selector.matches(&o.labels)) {
                for r in &other.rules {
                    if !rules.contains(r) {
                        rules.push(r.clone());
                    }
                }
            }
        }
        if role.rules != rules {
            role.rules = rules;
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AggregationRule, LabelSelector};

    fn rule(resource: &str) -> PolicyRule {
        PolicyRule {
            verbs: vec!["get".into()],
            api_groups: vec![String::new()],
            resources: vec![resource.into()],
            ..Default::default()
        }
    }

    fn aggregating(name: &str, label: &str, rules: Vec<PolicyRule>) -> Role {
        Role {
            name: name.into(),
            rules,
            aggregation_rule: Some(AggregationRule {
                cluster_role_selectors: vec![LabelSelector {
                    match_labels: [(label.to_owned(), "true".to_owned())].into(),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_partial_dump_keeps_the_rules_the_cluster_shows() {
        // `kubectl get clusterrole admin -o yaml` alone: the aggregated rules, no sources.
        let mut roles = vec![aggregating("admin", "agg", vec![rule("pods"), rule("secrets")])];
        aggregate(&mut roles);
        assert_eq!(roles[0].rules, [rule("pods"), rule("secrets")]);
    }

    #[test]
    fn labelled_roles_add_to_the_shown_rules_nested_and_without_repeats() {
        let mut source = Role {
            name: "extra".into(),
            rules: vec![rule("pods"), rule("configmaps")],
            ..Default::default()
        };
        source.labels.insert("agg".into(), "true".into());
        let mut middle = aggregating("middle", "agg", vec![]);
        middle.labels.insert("top".into(), "true".into());
        let mut roles = vec![aggregating("top", "top", vec![rule("pods")]), middle, source];
        aggregate(&mut roles);
        assert_eq!(roles[1].rules, [rule("pods"), rule("configmaps")]);
        assert_eq!(roles[0].rules, [rule("pods"), rule("configmaps")], "view → edit → admin style nesting");
    }
}
