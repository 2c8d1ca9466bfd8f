//! `rampart replay`: decide every audited request again with a candidate policy set and report
//! what would change, before the policies are enforced.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use rampart_detect::event::Document;
use rampart_detect::replay::{Chain, Change, Replay};
use rampart_kube::policies;
use rampart_policy::engine::{AllowOnly, Engine, EngineOptions, RbacTier};
use rampart_policy::store::ObjectTier;
use rampart_types::wiring;
use serde_json::json;

use super::PolicyArgs;
use crate::output::Format;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    What would the new policies change for last week's traffic? (Cedar over RBAC, like the apiserver)
        rampart replay -p ./new-policies --rbac rbac.yaml \\
            --bootstrap-roles audit-*.log.gz

    The policies and RBAC a live cluster runs with (its Policy objects, tier `cluster:`):
        rampart replay -p ./org -p cluster: --rbac-from-cluster audit.log

    Only the Cedar tiers (requests they have no opinion on count as unchanged):
        rampart replay -p ./new-policies audit.log -o json

THE AUTHORIZER CHAIN:
    Requests are decided as the kube-apiserver wired by `rampart kube-config` decides them:
    system:masters is allowed by the apiserver itself and kubelets by the Node authorizer
    (both kept as logged); the control plane, kube-system controllers and Rampart's own
    user skip the webhook and meet RBAC alone; everyone else meets the policies, then RBAC.
    --engine-only sends every request to the policies.

EXIT STATUS:
    0 nothing would change, 1 some decisions would change, 2 the input could not be read.")]
pub struct Args {
    /// Policy tiers, RBAC and access entries to replay (`-p cluster:[SELECTOR]`: the
    /// cluster's Policy objects, listed once).
    #[command(flatten)]
    pub policies: PolicyArgs,
    /// Audit log files (`-` for stdin); same formats as `rampart audit`.
    #[arg(value_name = "AUDIT_FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Read Roles, ClusterRoles and bindings from the cluster as the RBAC tier.
    #[arg(long, conflicts_with = "rbac")]
    pub rbac_from_cluster: bool,
    /// Kubeconfig for `-p cluster:` and --rbac-from-cluster (default: KUBECONFIG,
    /// ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Rampart's own user, which the wiring sends past the webhook (as `kube-config
    /// --self-identity`).
    #[arg(long, default_value = wiring::DEFAULT_SELF_IDENTITY, value_name = "USER")]
    pub self_identity: String,
    /// Send every request to the policies, without modelling the apiserver's chain.
    #[arg(long)]
    pub engine_only: bool,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
}

/// The engine of the given policies, with the cluster's Policy objects and RBAC when asked.
fn engine(args: &Args) -> anyhow::Result<Engine> {
    let (paths, cluster_tiers) = args.policies.split_cluster_tiers();
    if cluster_tiers.is_empty() && !args.rbac_from_cluster {
        args.policies.ensure_any()?;
    }
    let options = EngineOptions { self_identity: args.self_identity.clone(), ..Default::default() };
    let mut sources = paths.sources(options)?;
    let mut world = None;
    if !cluster_tiers.is_empty() || args.rbac_from_cluster {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let client = super::cluster::client(args.kubeconfig.as_deref()).await?;
            let checker = sources.clone();
            let check: policies::Check = Arc::new(move |doc| {
                checker
                    .check_document(doc)
                    .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
            });
            for (position, selector) in &cluster_tiers {
                let selector = (!selector.is_empty()).then_some(selector.as_str());
                let (good, invalid) = policies::list(&client, selector, &check).await?;
                for (name, error) in invalid {
                    eprintln!("warning: Policy {name} is invalid and contributes no policies: {error}");
                }
                let tier = ObjectTier::new(selector.map_or("cluster".to_owned(), |s| format!("cluster:{s}")));
                tier.set(good);
                sources.object_tiers.push((*position, tier));
            }
            if args.rbac_from_cluster {
                world = Some(rampart_kube::sources::rbac_world(&client).await?);
            }
            anyhow::Ok(())
        })?;
    }
    let mut engine = sources.load()?.engine;
    if let Some(world) = world {
        let world = if args.policies.bootstrap_roles {
            world.with_bootstrap_version(&args.policies.kubernetes_version)?
        } else {
            world
        };
        let tier =
            RbacTier { name: "rbac (cluster)".into(), authorizer: AllowOnly::Rbac(world.authorizer()) };
        engine = engine.with_rbac_tier(tier, args.policies.rbac_first);
    }
    Ok(engine)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let engine = engine(&args)?;
    let chain = if args.engine_only {
        Chain::EngineOnly
    } else {
        Chain::Apiserver { self_identity: args.self_identity.clone() }
    };
    let mut replay = Replay::new(&engine, chain);
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
        Format::Json => crate::outln!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"stats": replay.stats, "changes": groups, "auditModeWouldDeny": replay.would_deny})
            )?
        ),
        Format::Table => {
            if groups.is_empty() {
                crate::outln!("No decision would change.");
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
                crate::outln!("{t}");
            }
            for (policy, n) in &replay.would_deny {
                crate::outln!("audit-mode policy {policy} would have denied {n} request(s)");
            }
        }
    }
    let s = replay.stats;
    eprintln!(
        "{} requests replayed: {} unchanged ({} with no opinion from the new policies, {} decided by \
         system:masters or the Node authorizer), {} would change; {} events had no authorization outcome",
        s.requests, s.unchanged, s.no_opinion, s.outside, s.changed, s.skipped
    );
    Ok(if s.changed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
