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

/// A SARIF 2.1.0 log with one run of `rampart` (for code-scanning dashboards). `results` is
/// anything that serializes as the results array, so a long report can be written as it is
/// serialized instead of being built as one document first.
#[derive(serde::Serialize)]
pub struct SarifLog<R> {
    version: &'static str,
    #[serde(rename = "$schema")]
    schema: &'static str,
    runs: [SarifRun<R>; 1],
}

#[derive(serde::Serialize)]
struct SarifRun<R> {
    tool: SarifTool,
    results: R,
}

#[derive(serde::Serialize)]
struct SarifTool {
    driver: SarifDriver,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifDriver {
    name: &'static str,
    information_uri: &'static str,
    version: &'static str,
    rules: Vec<serde_json::Value>,
}

impl<R: serde::Serialize> SarifLog<R> {
    pub fn new(rules: Vec<serde_json::Value>, results: R) -> Self {
        SarifLog {
            version: "2.1.0",
            schema: "https://json.schemastore.org/sarif-2.1.0.json",
            runs: [SarifRun {
                tool: SarifTool {
                    driver: SarifDriver {
                        name: "rampart",
                        information_uri: "https://github.com/rampart-k8s/rampart",
                        version: env!("CARGO_PKG_VERSION"),
                        rules,
                    },
                },
                results,
            }],
        }
    }
}

/// A SARIF log as a JSON document (for commands that add to it before printing).
pub fn sarif_log(rules: Vec<serde_json::Value>, results: Vec<serde_json::Value>) -> serde_json::Value {
    // Serializing values and static strings cannot fail.
    serde_json::to_value(SarifLog::new(rules, results)).unwrap_or_default()
}
