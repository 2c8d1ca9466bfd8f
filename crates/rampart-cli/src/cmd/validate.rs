//! `rampart validate`: parse every policy and check it against the schema.

use std::process::ExitCode;

use rampart_policy::store::{PolicySources, Validation};

use super::PolicyArgs;
use crate::output::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub policies: PolicyArgs,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
}

#[derive(serde::Serialize)]
struct Report {
    ok: bool,
    policies: usize,
    tiers: Vec<(String, usize)>,
    errors: Vec<String>,
    warnings: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.policies.ensure_any()?;
    let mut sources: PolicySources = args.policies.sources(Default::default())?;
    // Validation is the point of this command: at least warn, even if --validation off.
    if sources.validation == Validation::Off {
        sources.validation = Validation::Warn;
    }
    let report = match sources.load() {
        Ok(r) => Report {
            ok: r.warnings.is_empty() || args.policies.validation != super::ValidationArg::Enforce,
            policies: r.engine.policy_count(),
            tiers: r.engine.tiers().iter().map(|t| (t.name.clone(), t.policies.len())).collect(),
            errors: vec![],
            warnings: r.warnings,
        },
        Err(failure) => Report {
            ok: false,
            policies: 0,
            tiers: vec![],
            errors: failure.errors.iter().map(ToString::to_string).collect(),
            warnings: vec![],
        },
    };
    match args.output {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => {
            if !report.tiers.is_empty() {
                let mut t = output::table(&["tier", "policies"]);
                for (name, n) in &report.tiers {
                    t.add_row(vec![name.clone(), n.to_string()]);
                }
                crate::outln!("{t}");
            }
            for e in &report.errors {
                crate::outln!("error: {e}");
            }
            for w in &report.warnings {
                crate::outln!("warning: {w}");
            }
            if report.ok {
                crate::outln!(
                    "ok: {} policies parse{}",
                    report.policies,
                    if report.warnings.is_empty() {
                        " and validate against the schema"
                    } else {
                        "; see the schema warnings above"
                    }
                );
            }
        }
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
