//! Output formats shared by the commands.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

/// How to print a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// A table for people.
    #[default]
    Table,
    /// JSON for programs.
    Json,
}

/// A table with the house style; an empty header means a key/value table without one.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    if header.iter().any(|h| !h.is_empty()) {
        t.set_header(header);
    }
    t
}

/// `policy@file:line:col` for each reason, one per line.
pub fn reasons(diagnostic: &rampart_types::Diagnostic) -> String {
    let mut lines: Vec<String> =
        diagnostic.reasons.iter().map(|r| format!("{} ({})", r.policy, r.position)).collect();
    lines.extend(
        diagnostic.errors.iter().map(|e| format!("error in {} ({}): {}", e.policy, e.position, e.message)),
    );
    lines.join("\n")
}

/// A SARIF 2.1.0 log with one run of `rampart` (for code-scanning dashboards).
pub fn sarif_log(rules: Vec<serde_json::Value>, results: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": "rampart",
                "informationUri": "https://github.com/rampart-k8s/rampart",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}
