//! `rampart replay`: decide every audited request again with a candidate policy set and report
//! what would change, before the policies are enforced.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rampart_detect::event::Document;
use rampart_detect::replay::{Change, Replay};
use serde_json::json;

use super::PolicyArgs;
use crate::output::Format;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    What would the new policies change for last week's traffic? (Cedar over RBAC, like the apiserver)
        rampart replay -p ./new-policies --rbac rbac.yaml --bootstrap-roles audit-*.log.gz

    Only the Cedar tiers (requests they have no opinion on count as unchanged):
        rampart replay -p ./new-policies audit.log -o json

EXIT STATUS:
    0 nothing would change, 1 some decisions would change, 2 the input could not be read.")]
pub struct Args {
    #[command(flatten)]
    pub policies: PolicyArgs,
    /// Audit log files (`-` for stdin); same formats as `rampart audit`.
    #[arg(value_name = "AUDIT_FILE", required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.policies.ensure_any()?;
    let engine = args.policies.sources(Default::default())?.load()?.engine;
    let mut replay = Replay::new(&engine);
    for file in &args.files {
        let shown = file.display().to_string();
        let reader: Box<dyn Read> = if shown == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::fs::File::open(file).with_context(|| format!("cannot open {shown}"))?)
        };
        rampart_detect::input::for_each_event(reader, |text, _| {
            let Ok(doc) = Document::parse(text) else { return false };
            let Ok(event) = doc.event() else { return false };
            replay.observe(&event);
            true
        })
        .with_context(|| format!("{shown}: cannot read audit events"))?;
    }
    let groups = replay.groups();
    match args.output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"stats": replay.stats, "changes": groups, "auditModeWouldDeny": replay.would_deny})
            )?
        ),
        Format::Table => {
            if groups.is_empty() {
                println!("No decision would change.");
            } else {
                let mut t = crate::output::table(&["change", "user", "requests", "count", "decided by"]);
                for g in &groups {
                    let change = match g.change {
                        Change::AllowedToDenied => "allowed → denied",
                        Change::DeniedToAllowed => "denied → allowed",
                    };
                    t.add_row(vec![
                        change.to_owned(),
                        g.user.clone(),
                        g.requests.join("\n"),
                        g.count.to_string(),
                        g.decided_by.clone(),
                    ]);
                }
                println!("{t}");
            }
            for (policy, n) in &replay.would_deny {
                println!("audit-mode policy {policy} would have denied {n} request(s)");
            }
        }
    }
    let s = replay.stats;
    eprintln!(
        "{} requests replayed: {} unchanged ({} with no opinion from the new policies), {} would change; {} events had no authorization outcome",
        s.requests, s.unchanged, s.no_opinion, s.changed, s.skipped
    );
    Ok(if s.changed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
