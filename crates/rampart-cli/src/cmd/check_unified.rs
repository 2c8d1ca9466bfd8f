//! `rampart check --unified`: one request through a file of unified policies, phase by phase.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use rampart_policy::entities::principal::UserInfoRef;
use rampart_unified::request::Attributes;
use rampart_unified::schema::resource_kind;
use rampart_unified::{Outcome, UnifiedTier};
use serde::Serialize;

use super::check::{Args, parse_extra, read_review};
use crate::output::{self, Format};

#[derive(Serialize)]
struct Phase {
    phase: &'static str,
    decision: &'static str,
    policies: Vec<String>,
    residuals: Vec<String>,
}

fn phase(name: &'static str, outcome: Outcome) -> Phase {
    let (decision, policies, residuals) = match outcome {
        Outcome::Allow { policies } => ("allow", policies, vec![]),
        Outcome::Deny { policies } => ("deny", policies, vec![]),
        Outcome::Conditional { residuals, .. } => ("conditional", vec![], residuals),
        Outcome::NoOpinion => ("no opinion", vec![], vec![]),
    };
    Phase { phase: name, decision, policies, residuals }
}

pub fn run(args: &Args, file: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let tier = UnifiedTier::load(&text, &file.display().to_string())?;
    let user = args.user.as_deref().context("--unified needs --user and --verb")?;
    let verb = args.verb.as_deref().context("--verb is required (create, update, get, …)")?;
    let resource =
        args.resource.as_deref().context("--resource is required (configmaps, deployments/scale, …)")?;
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let kind = resource_kind(&args.api_group, resource, subresource).with_context(|| {
        format!(
            "--resource {resource}{}{subresource} in group {:?} is not in the unified schema (rampart schema --unified lists them)",
            if subresource.is_empty() { "" } else { "/" },
            args.api_group
        )
    })?;
    let extra = parse_extra(&args.extra)?;
    let attributes = Attributes {
        user: UserInfoRef {
            username: user,
            uid: args.uid.as_deref().unwrap_or_default(),
            groups: &args.groups,
            extra: (!extra.is_empty()).then_some(&extra),
        },
        verb,
        kind,
        namespace: args.namespace.as_deref().unwrap_or_default(),
        name: args.name.as_deref().unwrap_or_default(),
    };
    let mut phases = vec![phase("authorization", tier.explain(&attributes)?)];
    if args.object.is_some() || args.old_object.is_some() {
        let object = args.object.as_ref().map(read_review).transpose()?;
        let old = args.old_object.as_ref().map(read_review).transpose()?;
        phases.push(phase("admission", tier.admit(&attributes, object.as_ref(), old.as_ref())?));
    }
    match args.output {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&phases)?),
        Format::Table => {
            let mut t = output::table(&["phase", "decision", "policies", "residual conditions"]);
            for p in &phases {
                t.add_row(vec![p.phase, p.decision, &p.policies.join("\n"), &p.residuals.join("\n")]);
            }
            crate::outln!("{t}");
        }
    }
    // As the apiserver would see it: allowed, or conditional (answered allowed until admission).
    let last = phases.last().map_or("no opinion", |p| p.decision);
    Ok(if matches!(last, "allow" | "conditional") { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
