//! SARIF 2.1.0 reports for code-scanning dashboards, built from serde-sarif's types.
//!
//! Every command that reports findings (`audit`, `check-manifests`, `scan`) goes through
//! here, so the tool description, levels and locations are written one way.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Serialize;
use serde_sarif::sarif::{
    ArtifactLocation, Location, LogicalLocation, Message, MultiformatMessageString, PhysicalLocation,
    PropertyBag, Region, ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif, Tool,
    ToolComponent,
};

pub use serde_sarif::sarif::ResultLevel as Level;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const VERSION: &str = "2.1.0";

fn tool(rules: Vec<ReportingDescriptor>) -> Tool {
    let driver = ToolComponent::builder()
        .name("rampart")
        .information_uri("https://github.com/rampart-k8s/rampart")
        .version(env!("CARGO_PKG_VERSION"))
        .rules(rules)
        .build();
    Tool::builder().driver(driver).build()
}

/// A rule (one kind of finding): its id, a one-line description and, when known, the fix.
pub fn rule(
    id: &str,
    description: &str,
    help: Option<&str>,
    properties: Option<PropertyBag>,
) -> ReportingDescriptor {
    let text = |t: &str| MultiformatMessageString::builder().text(t).build();
    let mut rule = ReportingDescriptor::builder().id(id).short_description(text(description)).build();
    rule.help = help.map(text);
    rule.properties = properties;
    rule
}

/// Free-form properties, with optional tags.
pub fn properties(tags: Vec<String>, values: BTreeMap<String, serde_json::Value>) -> PropertyBag {
    let mut bag = PropertyBag::builder().additional_properties(values).build();
    bag.tags = (!tags.is_empty()).then_some(tags);
    bag
}

/// What a path segment must percent-encode: controls, space, `"#%<>?`{}` and the separator
/// (RFC 3986 `pchar` keeps the rest).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'\\');

/// A SARIF artifact URI: a relative reference for relative paths (`../k8s/a%20b.yaml`), a
/// `file://` URL for absolute ones, each path segment percent-encoded. `..` is kept where the
/// user wrote it; a URL library would resolve it against the root and name another file.
pub fn artifact_uri(file: &str) -> String {
    use std::path::Component;
    let path = std::path::Path::new(file);
    let segments: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(utf8_percent_encode(&s.to_string_lossy(), SEGMENT).to_string()),
            Component::ParentDir => Some("..".to_owned()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    let joined = segments.join("/");
    if path.is_absolute() { format!("file:///{joined}") } else { joined }
}

/// Where a finding is: a file (its URI already a relative reference or a `file://` URL) and
/// optionally the line.
pub fn file_location(uri: &str, line: Option<usize>) -> Location {
    let artifact = ArtifactLocation::builder().uri(uri).build();
    let mut physical = PhysicalLocation::builder().artifact_location(artifact).build();
    physical.region =
        line.map(|l| Region::builder().start_line(i64::try_from(l).unwrap_or(i64::MAX)).build());
    Location::builder().physical_location(physical).build()
}

/// Name a logical place (an object, a role) beside a location.
pub fn with_logical_name(mut location: Location, name: &str) -> Location {
    location.logical_locations = Some(vec![LogicalLocation::builder().name(name).build()]);
    location
}

/// One finding.
pub fn result(
    rule_id: &str,
    level: ResultLevel,
    text: &str,
    location: Location,
    properties: Option<PropertyBag>,
) -> SarifResult {
    let mut result = SarifResult::builder()
        .rule_id(rule_id)
        .message(Message::builder().text(text).build())
        .locations(vec![location])
        .build();
    result.level = Some(level);
    result.properties = properties;
    result
}

/// A log with one run of `rampart`.
pub fn log(
    rules: Vec<ReportingDescriptor>,
    results: Vec<SarifResult>,
    run_properties: Option<PropertyBag>,
) -> Sarif {
    let mut run = Run::builder().tool(tool(rules)).results(results).build();
    run.properties = run_properties;
    Sarif::builder().schema(SCHEMA).version(serde_json::Value::from(VERSION)).runs(vec![run]).build()
}

/// A log whose results are written as they are serialized (a busy audit log can have hundreds
/// of thousands): the run's envelope from serde-sarif's types, `results` any serializable
/// sequence of [`SarifResult`]s.
#[derive(Serialize)]
pub struct StreamedLog<R> {
    version: &'static str,
    #[serde(rename = "$schema")]
    schema: &'static str,
    runs: [StreamedRun<R>; 1],
}

#[derive(Serialize)]
struct StreamedRun<R> {
    tool: Tool,
    results: R,
}

impl<R: Serialize> StreamedLog<R> {
    pub fn new(rules: Vec<ReportingDescriptor>, results: R) -> Self {
        StreamedLog { version: VERSION, schema: SCHEMA, runs: [StreamedRun { tool: tool(rules), results }] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_uris_encode_segments_and_keep_parent_references() {
        assert_eq!(artifact_uri("k8s/a b.yaml"), "k8s/a%20b.yaml");
        assert_eq!(artifact_uri("../k8s/x#1.yaml"), "../k8s/x%231.yaml");
        assert_eq!(artifact_uri("./a.yaml"), "a.yaml");
        assert_eq!(artifact_uri("/srv/../k8s/100%.yaml"), "file:///srv/../k8s/100%25.yaml");
        assert_eq!(artifact_uri("/d/é.yaml"), "file:///d/%C3%A9.yaml");
    }

    #[test]
    fn a_log_has_the_sarif_shape_code_scanning_reads() {
        let r = rule("R1", "a rule", Some("fix it"), None);
        let found = result("R1", Level::Error, "bad", file_location("a%20b.yaml", Some(3)), None);
        let log = serde_json::to_value(log(vec![r.clone()], vec![found.clone()], None)).unwrap();
        assert_eq!(log["version"], "2.1.0");
        assert_eq!(log["$schema"], SCHEMA);
        let run = &log["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "rampart");
        assert_eq!(run["tool"]["driver"]["rules"][0]["help"]["text"], "fix it");
        assert_eq!(run["results"][0]["level"], "error");
        assert_eq!(run["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"], 3);
        assert_eq!(
            run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "a%20b.yaml"
        );
        // The streamed form is the same document.
        let streamed = serde_json::to_value(StreamedLog::new(vec![r], vec![found])).unwrap();
        assert_eq!(streamed, log);
        // And it reads back as SARIF.
        let _: Sarif = serde_json::from_value(log).unwrap();
    }
}
