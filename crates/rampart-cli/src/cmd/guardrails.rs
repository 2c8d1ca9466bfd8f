//! Loading the guardrails config and namespace labels given on the command line.

use std::path::Path;

use anyhow::Context;
use rampart_guardrails::admission::{Guardrails, GuardrailsConfig};

/// `None` when neither file is given (guardrails off); otherwise the configured guardrails,
/// with defaults for whatever is missing.
pub fn load(config: Option<&Path>, namespaces: Option<&Path>) -> anyhow::Result<Option<Guardrails>> {
    if config.is_none() && namespaces.is_none() {
        return Ok(None);
    }
    build(config, namespaces).map(Some)
}

/// Always builds guardrails (defaults: privileged, rules off, unless configured).
pub fn build(config: Option<&Path>, namespaces: Option<&Path>) -> anyhow::Result<Guardrails> {
    let config: GuardrailsConfig = match config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            Guardrails::config_from_yaml(&text).with_context(|| format!("{}", p.display()))?
        }
        None => GuardrailsConfig::default(),
    };
    let labels = match namespaces {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            Guardrails::namespaces_from_yaml(&text).with_context(|| format!("{}", p.display()))?
        }
        None => Default::default(),
    };
    Ok(Guardrails::new(config, labels)?)
}
