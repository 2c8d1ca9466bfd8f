//! Pictures of a grouped matrix: Graphviz DOT (namespaces as clusters, one edge per allowed
//! group pair) and a self-contained SVG adjacency picture (sources down, destinations across,
//! a cell per group pair with its ports in the tooltip) that needs no layout engine and stays
//! legible at hundreds of groups.

use std::fmt::Write as _;

use crate::analysis::{Matrix, NONE};
use crate::group::{Group, between};

/// Graphviz DOT: `dot -Tsvg` draws it.
pub fn dot(matrix: &Matrix, groups: &[Group]) -> String {
    let mut out =
        String::from("digraph connectivity {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n");
    let mut namespaces: Vec<&str> =
        groups.iter().filter_map(|g| g.label.split_once('/').map(|(ns, _)| ns)).collect();
    namespaces.dedup();
    for (n, ns) in namespaces.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{n} {{\n    label={ns:?};");
        for (i, g) in groups.iter().enumerate() {
            if g.label.split_once('/').map(|(n, _)| n) == Some(*ns) {
                let _ = writeln!(out, "    g{i} [label={:?}];", g.label);
            }
        }
        out += "  }\n";
    }
    for (i, g) in groups.iter().enumerate() {
        if !g.label.contains('/') {
            let _ = writeln!(out, "  g{i} [label={:?}, shape=ellipse];", g.label);
        }
    }
    for (i, from) in groups.iter().enumerate() {
        for (j, to) in groups.iter().enumerate() {
            let Some(id) = between(matrix, from, to) else { continue };
            if id == NONE {
                continue;
            }
            let ports = matrix.set(id);
            let style = if ports.is_all() { ", style=bold" } else { "" };
            let _ = writeln!(out, "  g{i} -> g{j} [label={:?}{style}];", ports.to_string());
        }
    }
    out += "}\n";
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const CELL: usize = 14;
const CHAR: usize = 7;

/// An SVG adjacency picture: dark cells allow every port, light ones some, pale ones none;
/// hatched cells are a single endpoint with itself.
pub fn svg(matrix: &Matrix, groups: &[Group]) -> String {
    let longest = groups.iter().map(|g| g.label.chars().count()).max().unwrap_or(0);
    let (left, top) = (longest * CHAR + 12, longest * CHAR * 7 / 10 + 16);
    // Column labels lean right at 45°: the last one reaches about 0.7 of its length past its
    // column. The legend takes three lines under the grid.
    let (width, height) = (
        (left + groups.len() * CELL + longest * CHAR * 7 / 10 + 16).max(left + 240),
        top + groups.len() * CELL + 80,
    );
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n\
         <defs><pattern id=\"self\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\"><path d=\"M0,4 l4,-4\" stroke=\"#bbb\"/></pattern></defs>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (i, g) in groups.iter().enumerate() {
        let y = top + i * CELL + CELL - 3;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{y}\" text-anchor=\"end\">{}</text>",
            left - 6,
            escape(&g.label)
        );
        let x = left + i * CELL + CELL - 3;
        let _ = writeln!(
            out,
            "<text transform=\"translate({x},{}) rotate(-45)\">{}</text>",
            top - 6,
            escape(&g.label)
        );
    }
    for (i, from) in groups.iter().enumerate() {
        for (j, to) in groups.iter().enumerate() {
            let (x, y) = (left + j * CELL, top + i * CELL);
            let (fill, title) = match between(matrix, from, to) {
                None => ("url(#self)".to_string(), format!("{} (itself)", from.label)),
                Some(id) => {
                    let ports = matrix.set(id);
                    let fill = if id == NONE {
                        "#f3f3f3"
                    } else if ports.is_all() {
                        "#2e7d32"
                    } else {
                        "#9ccc65"
                    };
                    (fill.to_string(), format!("{} → {}: {ports}", from.label, to.label))
                }
            };
            let _ = writeln!(
                out,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{fill}\" stroke=\"white\"><title>{}</title></rect>",
                CELL,
                CELL,
                escape(&title)
            );
        }
    }
    let below = top + groups.len() * CELL + 20;
    let legend =
        [("#2e7d32", "all ports"), ("#9ccc65", "some ports (hover for which)"), ("#f3f3f3", "nothing")];
    for (n, (fill, text)) in legend.iter().enumerate() {
        let y = below + n * (CELL + 4);
        let _ = writeln!(
            out,
            "<rect x=\"{left}\" y=\"{y}\" width=\"{CELL}\" height=\"{CELL}\" fill=\"{fill}\" stroke=\"#999\"/><text x=\"{}\" y=\"{}\">{text}</text>",
            left + CELL + 6,
            y + CELL - 3
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" fill=\"#555\" text-anchor=\"end\">rows: from · columns: to</text>",
        left - 6,
        below + CELL - 3
    );
    out += "</svg>\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Analysis;
    use crate::group::groups;
    use crate::world::World;

    #[test]
    fn pictures_name_every_group_and_escape_labels() {
        let mut world = World::default();
        world
            .add_manifests(
                "m.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: a, labels: {app: web}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: a, labels: {app: db}}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\nspec: {podSelector: {matchLabels: {app: db}}, ingress: [{ports: [{port: 5432}]}]}\n",
            )
            .unwrap();
        world.externals = vec![("<odd & name>".into(), "8.8.8.8/32".parse().unwrap())];
        let matrix = Analysis::new(&world).matrix();
        let groups = groups(&matrix);
        let svg = svg(&matrix, &groups);
        assert!(svg.contains("a/web → a/db: TCP 5432"), "{svg}");
        assert!(svg.contains("&lt;odd &amp; name&gt;") && !svg.contains("<odd"));
        let dot = dot(&matrix, &groups);
        assert!(dot.contains("label=\"TCP 5432\"") && dot.contains("subgraph cluster_0"), "{dot}");
    }
}
