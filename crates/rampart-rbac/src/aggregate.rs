//! ClusterRole aggregation, as the `clusterrole-aggregation` controller computes it: for each
//! selector in order, the matching ClusterRoles sorted by name (the role itself skipped), their
//! rules appended unless an equal rule is already there. The result *replaces* the role's own
//! rules.

use crate::model::{PolicyRule, Role};

/// Apply aggregation to every ClusterRole with an `aggregationRule`, in place, until nothing
/// changes: the controller re-queues every aggregated role whenever any ClusterRole changes,
/// so nested aggregation (view → edit → admin) converges to the same fixed point.
pub fn aggregate(cluster_roles: &mut [Role]) {
    // Each pass can only propagate rules one level further; more passes than roles is a cycle.
    for _ in 0..=cluster_roles.len() {
        if !aggregate_once(cluster_roles) {
            return;
        }
    }
}

/// One controller pass over a snapshot; true when some role changed.
fn aggregate_once(cluster_roles: &mut [Role]) -> bool {
    let snapshot: Vec<Role> = cluster_roles.to_vec();
    let mut sorted: Vec<&Role> = snapshot.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut changed = false;
    for role in cluster_roles.iter_mut() {
        let Some(rule) = role.aggregation_rule.as_ref() else { continue };
        let mut rules: Vec<PolicyRule> = Vec::new();
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
