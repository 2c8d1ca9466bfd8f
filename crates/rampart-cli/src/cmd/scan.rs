//! `rampart scan`: posture of a cluster snapshot (CIS EKS checks without node access, RBAC
//! risk, Pod Security levels, aws-auth hygiene, endpoint, logging and secrets encryption).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rampart_detect::scan::snapshot::Snapshot;
use rampart_detect::scan::{Report, ScanOptions, Status, scan};
use serde_json::json;

use super::audit::ReportFormat;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "SNAPSHOT:
    A directory (or file) of `kubectl get … -o yaml` output, e.g.
        kubectl get ns,pods,deploy,ds,sts,rs,jobs,cronjobs,sa,svc,ing,netpol \\
            -A -o yaml > snap/objects.yaml
        kubectl get roles,rolebindings,clusterroles,clusterrolebindings -A \\
            -o yaml > snap/rbac.yaml
        kubectl get cm aws-auth -n kube-system -o yaml > snap/aws-auth.yaml
        aws eks describe-cluster --name prod > snap/cluster.json
    or the live cluster with --from-cluster (kubeconfig as kubectl finds it).

EXAMPLES:
    rampart scan snap/
    rampart scan --from-cluster --cluster-description cluster.json \\
        -o sarif > posture.sarif

EXIT STATUS:
    0 no check failed, 1 some check failed, 2 the snapshot could not be read.")]
pub struct Args {
    /// Snapshot directory or file.
    #[arg(value_name = "SNAPSHOT", required_unless_present = "from_cluster")]
    pub snapshot: Option<PathBuf>,
    /// Read the objects from the live cluster instead.
    #[arg(long)]
    pub from_cluster: bool,
    /// Kubeconfig for --from-cluster (default: KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// `aws eks describe-cluster` output to add (endpoint, logging, encryption, auth mode).
    #[arg(long, value_name = "FILE")]
    pub cluster_description: Option<PathBuf>,
    /// Approved image registries for CIS 5.1.4 (repeatable).
    #[arg(long = "allowed-registry", value_name = "HOST")]
    pub allowed_registries: Vec<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: ReportFormat,
    /// Also list passed and skipped checks in the table.
    #[arg(long)]
    pub all: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut snapshot = match (&args.snapshot, args.from_cluster) {
        (Some(path), _) => Snapshot::load(path)?,
        (None, _) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let client = super::cluster::client(args.kubeconfig.as_deref()).await?;
                anyhow::Ok(super::cluster::snapshot(&client).await?)
            })?
        }
    };
    if let Some(path) = &args.cluster_description {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        snapshot.add_text(&path.display().to_string(), &text)?;
    }
    if snapshot.objects.is_empty() {
        // A scan that read nothing must not print a passing score.
        anyhow::bail!(
            "the snapshot holds no objects, so nothing was checked: give rampart scan the output of \
             `kubectl get … -A -o yaml`, or a kubeconfig whose user may list the cluster's objects"
        );
    }
    let report = scan(&snapshot, &ScanOptions { allowed_registries: args.allowed_registries.clone() });
    let source = args.snapshot.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "cluster".into());
    match args.output {
        ReportFormat::Json => crate::outln!("{}", serde_json::to_string_pretty(&report)?),
        ReportFormat::Sarif => crate::outln!("{}", serde_json::to_string_pretty(&sarif(&report, &source))?),
        ReportFormat::Table => print_table(&report, args.all),
    }
    eprintln!(
        "score {}/100: {} passed, {} failed, {} warnings, {} skipped ({} objects{})",
        report.score,
        report.passed,
        report.failed,
        report.warned,
        report.skipped,
        snapshot.objects.len(),
        if snapshot.cluster.is_some() { " and the cluster description" } else { ", no cluster description" }
    );
    Ok(if report.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print_table(report: &Report, all: bool) {
    let mut t = crate::output::table(&["status", "check", "severity", "offenders / what to do"]);
    for r in report.results.iter().filter(|r| all || matches!(r.status, Status::Fail | Status::Warn)) {
        let status = match r.status {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Skip => "SKIP",
        };
        let mut shown: Vec<String> = r
            .offenders
            .iter()
            .enumerate()
            .take(8)
            .map(|(i, o)| match r.places.get(i).and_then(Option::as_ref) {
                Some(place) => format!("{o} ({place})"),
                None => o.clone(),
            })
            .collect();
        if r.offenders.len() > 8 {
            shown.push(format!("… and {} more (-o json for all)", r.offenders.len() - 8));
        }
        shown.push(format!("→ {}", r.remediation));
        t.add_row(vec![
            status.to_owned(),
            format!("{}\n{}", r.id, r.title),
            r.severity.as_str().to_owned(),
            shown.join("\n"),
        ]);
    }
    crate::outln!("{t}");
}

fn sarif(report: &Report, source: &str) -> serde_sarif::sarif::Sarif {
    use crate::sarif::{self, Level};
    use rampart_detect::finding::Severity;
    let rules =
        report.results.iter().map(|r| sarif::rule(&r.id, &r.title, Some(&r.remediation), None)).collect();
    let failing = report.results.iter().filter(|r| matches!(r.status, Status::Fail | Status::Warn));
    let results = failing
        .flat_map(|r| {
            let level = match (r.status, r.severity) {
                (Status::Warn, _) | (_, Severity::Medium) => Level::Warning,
                (_, Severity::Critical | Severity::High) => Level::Error,
                _ => Level::Note,
            };
            r.offenders.iter().enumerate().map(move |(i, o)| {
                // The offender's own file and line when it was read from one; else the snapshot.
                let physical = match r.places.get(i).and_then(Option::as_ref) {
                    Some(place) => sarif::file_location(&sarif::artifact_uri(&place.file), Some(place.line)),
                    None => sarif::file_location(&sarif::artifact_uri(source), None),
                };
                let location = sarif::with_logical_name(physical, o);
                sarif::result(&r.id, level, &format!("{}: {o}", r.title), location, None)
            })
        })
        .collect();
    let score = BTreeMap::from([("score".to_owned(), json!(report.score))]);
    sarif::log(rules, results, Some(sarif::properties(vec![], score)))
}
