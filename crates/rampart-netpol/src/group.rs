//! Grouping a matrix so a large cluster stays readable: endpoints that no policy can tell
//! apart — swapping the two leaves every connection as it was — form one group (the replicas
//! of a Deployment, the pods behind one set of selectors). Groups never span namespaces, and
//! externals stay alone.
//!
//! Swap-equivalence is an equivalence relation (the swaps that keep a matrix form a group of
//! permutations), so comparing each endpoint with one member of each group is exact.

use crate::analysis::{Matrix, SetId};

/// Endpoints that behave the same, and how to name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Indices into [`Matrix::names`].
    pub members: Vec<usize>,
    /// `ns/name`, `ns/{a, b}`, `ns/*` when it is the whole namespace, or an external's name.
    pub label: String,
}

/// Whether swapping `i` and `j` leaves the matrix unchanged.
fn swappable(matrix: &Matrix, i: usize, j: usize) -> bool {
    let n = matrix.names().len();
    if matrix.cell(i, j) != matrix.cell(j, i) {
        return false;
    }
    (0..n)
        .filter(|&k| k != i && k != j)
        .all(|k| matrix.cell(i, k) == matrix.cell(j, k) && matrix.cell(k, i) == matrix.cell(k, j))
}

fn namespace(name: &str) -> Option<&str> {
    name.split_once('/').map(|(ns, _)| ns)
}

/// The groups of a matrix, in the order of their first member.
pub fn groups(matrix: &Matrix) -> Vec<Group> {
    let names = matrix.names();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in 0..names.len() {
        let home = groups.iter_mut().find(|g| {
            i < matrix.workloads()
                && g[0] < matrix.workloads()
                && namespace(&names[g[0]]) == namespace(&names[i])
                && swappable(matrix, g[0], i)
        });
        match home {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
        .into_iter()
        .map(|members| {
            let label = label(matrix, &members);
            Group { members, label }
        })
        .collect()
}

fn label(matrix: &Matrix, members: &[usize]) -> String {
    let names = matrix.names();
    let first = &names[members[0]];
    let Some(ns) = namespace(first).filter(|_| members.len() > 1) else { return first.clone() };
    let in_namespace = (0..matrix.workloads()).filter(|&i| namespace(&names[i]) == Some(ns)).count();
    if in_namespace == members.len() {
        return format!("{ns}/*");
    }
    let short: Vec<&str> = members.iter().map(|&i| names[i].split_once('/').map_or("", |(_, n)| n)).collect();
    format!("{ns}/{{{}}}", short.join(", "))
}

/// What passes between two groups (the same for every pair of their members; inside one
/// group, between two different members).
pub fn between(matrix: &Matrix, from: &Group, to: &Group) -> Option<SetId> {
    let s = from.members[0];
    let d = if std::ptr::eq(from, to) || from.members == to.members {
        *to.members.get(1)?
    } else {
        to.members[0]
    };
    Some(matrix.cell(s, d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Analysis;
    use crate::world::World;

    fn world(text: &str) -> World {
        let mut world = World::default();
        world.add_manifests("m.yaml", text).unwrap();
        world.externals = vec![("metadata".into(), "169.254.169.254/32".parse().unwrap())];
        world
    }

    const PODS: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: a, labels: {app: web}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: web-2, namespace: a, labels: {app: web}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: a, labels: {app: db}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: b, labels: {app: web}}\n---\n";

    #[test]
    fn replicas_group_namespaces_and_externals_do_not() {
        let w = world(&format!(
            "{PODS}apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: a}}\nspec: {{podSelector: {{matchLabels: {{app: db}}}}, ingress: [{{from: [{{podSelector: {{matchLabels: {{app: web}}}}}}]}}]}}\n"
        ));
        let matrix = Analysis::new(&w).matrix();
        let labels: Vec<String> = groups(&matrix).into_iter().map(|g| g.label).collect();
        assert_eq!(labels, ["a/{web-1, web-2}", "a/db", "b/web", "metadata"]);
    }

    #[test]
    fn without_policies_a_namespace_is_one_group() {
        let matrix = Analysis::new(&world(PODS)).matrix();
        let g = groups(&matrix);
        assert_eq!(g[0].label, "a/*");
        assert_eq!(g[0].members.len(), 3);
        assert!(matrix.set(between(&matrix, &g[0], &g[0]).unwrap()).is_all(), "inside the group");
    }
}
