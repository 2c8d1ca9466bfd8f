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
use rampart_types::sar::SubjectAccessReviewSpec;

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
    /// With --check: the cluster's RBAC (manifests), so each audited request is decided again
    /// for the old and the new user (the new one with the entries' access policies), and the
    /// requests someone could make before and could not after are listed.
    #[arg(long, value_name = "PATH", requires = "check")]
    pub rbac: Vec<PathBuf>,
    /// With --rbac: add kube-apiserver's default roles and bindings (cluster-admin for
    /// system:masters, the node and discovery roles…).
    #[arg(long, requires = "check")]
    pub bootstrap_roles: bool,
    /// The Kubernetes release whose default roles --bootstrap-roles adds (1.36, 1.35, 1.34).
    #[arg(long, default_value = rampart_rbac::bootstrap::DEFAULT_VERSION, value_name = "VERSION")]
    pub kubernetes_version: String,
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

/// At most this many distinct requests are kept per principal for deciding again.
const REQUESTS_PER_PRINCIPAL: usize = 1_000;

/// What the audit logs saw: every distinct IAM session, from `user.extra` as the
/// authenticator writes it (`arn`, `canonicalArn`, `sessionName`, `accessKeyId`,
/// `principalId`), and the distinct requests each made (as the SubjectAccessReviews the
/// apiserver built).
type Audited = (Vec<Identity>, BTreeMap<String, Vec<SubjectAccessReviewSpec>>);

fn audited_identities(paths: &[PathBuf]) -> anyhow::Result<Audited> {
    let mut seen: BTreeMap<String, Identity> = BTreeMap::new();
    let mut requests: BTreeMap<String, (std::collections::BTreeSet<String>, Vec<SubjectAccessReviewSpec>)> =
        BTreeMap::new();
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
                let spec = rampart_detect::event::Document::parse(text)
                    .ok()
                    .and_then(|doc| doc.event().ok().and_then(|e| rampart_detect::replay::review_of(&e)));
                if let Some(spec) = spec {
                    let (keys, specs) = requests.entry(arn.clone()).or_default();
                    let key =
                        serde_json::to_string(&(&spec.resource_attributes, &spec.non_resource_attributes))
                            .unwrap_or_default();
                    if specs.len() < REQUESTS_PER_PRINCIPAL && keys.insert(key) {
                        specs.push(spec);
                    }
                }
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
    Ok((seen.into_values().collect(), requests.into_iter().map(|(arn, (_, specs))| (arn, specs)).collect()))
}

/// `list pods default` or `get /healthz`.
fn describe(spec: &SubjectAccessReviewSpec) -> String {
    if let Some(ra) = &spec.resource_attributes {
        let resource = match (&ra.resource, &ra.subresource) {
            (Some(r), Some(s)) => format!("{r}/{s}"),
            (r, _) => r.clone().unwrap_or_default(),
        };
        let place =
            [ra.namespace.as_deref(), ra.name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join("/");
        return format!("{} {resource} {place}", ra.verb.as_deref().unwrap_or_default())
            .trim_end()
            .to_string();
    }
    let nra = spec.non_resource_attributes.clone().unwrap_or_default();
    format!("{} {}", nra.verb.unwrap_or_default(), nra.path.unwrap_or_default())
}

/// Decide every audited request of each principal again, as the old user with RBAC alone and
/// as the new user with RBAC and the entries' access policies; note what is lost or gained.
fn compare_permissions(
    args: &AwsAuthArgs,
    migration: &rampart_identity::migrate::Migration,
    verdicts: &mut [Verdict],
    requests: &BTreeMap<String, Vec<SubjectAccessReviewSpec>>,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let entries = dir.path().join("access-entries.yaml");
    std::fs::write(&entries, migration.to_yaml())?;
    let engine = |access_entries: Option<PathBuf>| -> anyhow::Result<rampart_policy::Engine> {
        let policies = super::PolicyArgs {
            tiers: vec![],
            rbac: args.rbac.clone(),
            rbac_first: false,
            access_entries,
            bootstrap_roles: args.bootstrap_roles,
            kubernetes_version: args.kubernetes_version.clone(),
            validation: super::ValidationArg::Off,
            schema: None,
        };
        Ok(policies.sources(Default::default())?.load()?.engine)
    };
    let (before, after) = (engine(None)?, engine(Some(entries))?);
    let as_user = |spec: &SubjectAccessReviewSpec, user: &rampart_identity::mapping::KubeUser| {
        let mut spec = spec.clone();
        spec.user = Some(user.username.clone());
        let mut groups = user.groups.clone();
        groups.push("system:authenticated".into());
        spec.groups = Some(groups);
        spec
    };
    for verdict in verdicts.iter_mut() {
        let Some(old) = &verdict.before_user else { continue };
        let (mut lost, mut gained) = (Vec::new(), Vec::new());
        for spec in requests.get(&verdict.principal).into_iter().flatten() {
            let was = before.authorize(&as_user(spec, old)).decision == rampart_types::Decision::Allow;
            let will = verdict.after_user.as_ref().is_some_and(|new| {
                after.authorize(&as_user(spec, new)).decision == rampart_types::Decision::Allow
            });
            match (was, will) {
                (true, false) => lost.push(describe(spec)),
                (false, true) => gained.push(describe(spec)),
                _ => {}
            }
        }
        if !lost.is_empty() {
            verdict.loses = true;
            verdict.notes.push(format!("could no longer: {}", lost.join("; ")));
        }
        if !gained.is_empty() {
            verdict.notes.push(format!("could newly: {}", gained.join("; ")));
        }
    }
    Ok(())
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
        let (identities, requests) = audited_identities(&args.check)?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let mut verdicts = runtime.block_on(check(&aws_auth, &migration, &identities))?;
        if !args.rbac.is_empty() || args.bootstrap_roles {
            compare_permissions(&args, &migration, &mut verdicts, &requests)?;
        }
        verdicts
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
