//! `kubectl`-style selectors (`-l`, `--field-selector`): the parser lives in
//! [`rampart_types::selector`]; these wrappers give the CLI `anyhow` errors.

use rampart_types::sar::{FieldSelectorAttributes, LabelSelectorAttributes};

/// `-l` syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`.
pub fn parse_labels(s: &str) -> anyhow::Result<LabelSelectorAttributes> {
    Ok(rampart_types::selector::parse_labels(s)?)
}

/// `--field-selector` syntax: `a=b`, `a==b`, `a!=b`.
pub fn parse_fields(s: &str) -> anyhow::Result<FieldSelectorAttributes> {
    Ok(rampart_types::selector::parse_fields(s)?)
}
