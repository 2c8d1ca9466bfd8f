//! `rampart migrate aws-auth`: the aws-auth ConfigMap as EKS access entries — the file
//! `serve --access-entries` reads, or the AWS CLI commands that create them — what cannot be
//! expressed and why, and with `--check` who in the audit logs would gain or lose what.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rampart_identity::mapping::AwsAuth;
use rampart_identity::migrate::{Verdict, check, migrate};
use rampart_identity::sts::Identity;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The aws-auth ConfigMap as access entries: node roles as EC2/Fargate entries,
    /// system:masters as AmazonEKSClusterAdminPolicy, Identity Center rows by permission
    /// set; what has no access-entry form is listed with the reason. Exit 0 when everything
    /// migrates (and, with --check, nobody loses anything), 1 otherwise, 2 on bad input.
    #[command(after_long_help = "EXAMPLES:
    rampart migrate aws-auth aws-auth.yaml -o yaml > access-entries.yaml
    rampart migrate aws-auth --from-cluster -o commands --cluster-name prod
    # before switching the cluster to authenticationMode API:
    rampart migrate aws-auth --from-cluster --check audit-*.log")]
    AwsAuth(AwsAuthArgs),
}

#[derive(Debug, clap::Args)]
pub struct AwsAuthArgs {
    /// The ConfigMap (`kubectl get cm aws-auth -n kube-system -o yaml`).
    #[arg(value_name = "FILE", required_unless_present = "from_cluster", conflicts_with = "from_cluster")]
    pub file: Option<PathBuf>,
    /// Read kube-system/aws-auth from the cluster.
    #[arg(long)]
    pub from_cluster: bool,
    /// Kubeconfig for --from-cluster (default: KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The EKS cluster name the commands name.
    #[arg(long, default_value = "CLUSTER", value_name = "NAME")]
    pub cluster_name: String,
    /// Output: a summary table, the access-entries file (yaml), the AWS CLI commands, or JSON.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: MigrateFormat,
    /// Audit logs (`-` for stdin; the formats `rampart audit` reads): map every IAM principal
    /// they saw through aws-auth and through the new entries, and report who would gain or
    /// lose groups or access.
    #[arg(long, value_name = "AUDIT_FILE", num_args = 1..)]
    pub check: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MigrateFormat {
    Table,
    Yaml,
    Commands,
    Json,
}

fn configmap(args: &AwsAuthArgs) -> anyhow::Result<String> {
    if let Some(path) = &args.file {
        return std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let text = runtime.block_on(async {
        let client = super::cluster::client(args.kubeconfig.as_deref()).await?;
        anyhow::Ok(super::cluster::aws_auth_configmap(&client).await?)
    })?;
    text.ok_or_else(|| {
        anyhow::anyhow!("the cluster has no kube-system/aws-auth ConfigMap: nothing to migrate")
    })
}

/// Every distinct IAM session the audit logs saw, from `user.extra` as the authenticator
/// writes it (`arn`, `canonicalArn`, `sessionName`, `accessKeyId`, `principalId`).
fn audited_identities(paths: &[PathBuf]) -> anyhow::Result<Vec<Identity>> {
    let mut seen: BTreeMap<String, Identity> = BTreeMap::new();
    for path in paths {
        let shown = path.display().to_string();
        let reader: Box<dyn Read> = if shown == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(path).with_context(|| format!("cannot open {shown}"))?)
        };
        rampart_detect::input::for_each_event(reader, |text, _| {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(text) else { return false };
            let extra = &event["user"]["extra"];
            let first = |key: &str| extra[key][0].as_str().map(str::to_string);
            if let (Some(arn), Some(canonical_arn)) = (first("arn"), first("canonicalArn")) {
                seen.entry(arn.clone()).or_insert_with(|| Identity {
                    // The authenticator's extra has no account; the ARN does.
                    account_id: canonical_arn.split(':').nth(4).unwrap_or_default().to_string(),
                    session_name: first("sessionName").unwrap_or_default(),
                    access_key_id: first("accessKeyId").unwrap_or_default(),
                    user_id: first("principalId").unwrap_or_default(),
                    sts_endpoint: String::new(),
                    arn,
                    canonical_arn,
                });
            }
            event.get("kind").is_some()
        })
        .with_context(|| format!("{shown}: cannot read audit events"))?;
    }
    anyhow::ensure!(
        !seen.is_empty(),
        "the audit logs name no IAM principal (no user.extra.arn/canonicalArn): nothing was checked; give the logs of a cluster authenticating with IAM"
    );
    Ok(seen.into_values().collect())
}

fn verdict_json(v: &Verdict) -> serde_json::Value {
    serde_json::json!({
        "principal": v.principal, "before": v.before, "after": v.after,
        "gained": v.gained, "lost": v.lost, "loses": v.loses, "notes": v.notes,
    })
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::AwsAuth(args) = command;
    let (aws_auth, warnings) = AwsAuth::from_configmap(&configmap(&args)?)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let migration = migrate(&aws_auth);
    let verdicts = if args.check.is_empty() {
        vec![]
    } else {
        let identities = audited_identities(&args.check)?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(check(&aws_auth, &migration, &identities))?
    };
    match args.output {
        MigrateFormat::Yaml => crate::out!("{}", migration.to_yaml()),
        MigrateFormat::Commands => crate::out!("{}", migration.to_commands(&args.cluster_name)),
        MigrateFormat::Json => {
            let entries: Vec<serde_json::Value> = migration
                .entries
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "source": e.source,
                        "principalArn": (!e.principal_arn.is_empty()).then_some(&e.principal_arn),
                        "ssoRoles": e.sso.as_ref().map(|s| s.role_pattern()),
                        "type": e.entry_type, "username": e.username, "kubernetesGroups": e.groups,
                        "accessPolicies": e.policies, "notes": e.notes,
                    })
                })
                .collect();
            let unexpressible: Vec<serde_json::Value> = migration
                .unexpressible
                .iter()
                .map(|(row, why)| serde_json::json!({"source": row, "reason": why}))
                .collect();
            let checked: Vec<serde_json::Value> = verdicts.iter().map(verdict_json).collect();
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"entries": entries, "unexpressible": unexpressible, "check": checked})
                )?
            );
        }
        MigrateFormat::Table => {
            let mut t = crate::output::table(&["aws-auth", "access entry", "username", "groups", "policies"]);
            for e in &migration.entries {
                let principal = match &e.sso {
                    Some(s) => s.role_pattern(),
                    None => e.principal_arn.clone(),
                };
                t.add_row(vec![
                    e.source.clone(),
                    format!("{} {principal}", e.entry_type),
                    e.username.clone().unwrap_or_else(|| "(EKS default)".into()),
                    e.groups.join(", "),
                    e.policies
                        .iter()
                        .map(|p| p.rsplit('/').next().unwrap_or(p))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]);
            }
            crate::outln!("{t}");
            for e in &migration.entries {
                for note in &e.notes {
                    crate::outln!("note: {}: {note}", e.source);
                }
            }
            for (row, why) in &migration.unexpressible {
                crate::outln!("not migrated: {row}: {why}");
            }
        }
    }
    if !verdicts.is_empty() && args.output != MigrateFormat::Json {
        // The check goes to stderr when stdout carries a file or commands.
        let mut t = crate::output::table(&["principal", "aws-auth", "access entries", "lost", "gained"]);
        for v in &verdicts {
            t.add_row(vec![
                v.principal.clone(),
                v.before.clone(),
                v.after.clone(),
                v.lost.join(", "),
                v.gained.join(", "),
            ]);
        }
        let losing = verdicts.iter().filter(|v| v.loses).count();
        let summary = format!(
            "{t}\n{} principals checked, {losing} would lose a group, a name or access{}",
            verdicts.len(),
            verdicts
                .iter()
                .flat_map(|v| v.notes.iter().map(move |n| format!("\nnote: {}: {n}", v.principal)))
                .collect::<String>()
        );
        if args.output == MigrateFormat::Table {
            crate::outln!("{summary}");
        } else {
            eprintln!("{summary}");
        }
    }
    let complete = migration.unexpressible.is_empty() && verdicts.iter().all(|v| !v.loses);
    Ok(if complete { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
