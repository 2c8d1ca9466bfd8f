//! `rampart audit`: Kubernetes audit logs → findings (GuardDuty EKS audit-log types, Falco's
//! k8saudit rules, 401/403 spikes, sensitive changes), as a table, JSON or SARIF.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use rampart_detect::analyzer::{Analyzer, AnalyzerConfig, Stats};
use rampart_detect::baseline::Baseline;
use rampart_detect::falco::{DEFAULT_RULES, RuleSet};
use rampart_detect::finding::{EventRef, Finding, Severity};
use rampart_detect::group::{Grouped, group};
use rampart_detect::guardduty::{Cidr, GuardDuty};
use rampart_detect::window::WindowConfig;

use crate::sarif::{self, Level, StreamedLog};
use serde::Serialize;
use serde_json::json;

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ReportFormat {
    /// A table for people.
    #[default]
    Table,
    /// JSON for programs.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

#[derive(Debug, clap::Args)]
#[command(after_long_help = "INPUT:
    One audit event per line (log files, CloudWatch exports), JSON arrays, EventList objects
    (webhook backend), CloudWatch Logs envelopes (subscription `logEvents`, `aws logs
    filter-log-events` output), each optionally gzipped. `-` or no file reads stdin.

EXAMPLES:
    Findings from an EKS cluster's audit log group, from where the last run stopped:
        rampart audit --cloudwatch /aws/eks/prod/cluster --checkpoint cw.json
    Kept up with, sent to Security Hub as they come:
        rampart audit --cloudwatch /aws/eks/prod/cluster --checkpoint cw.json \\
            --follow --to-securityhub --cluster-name prod
    From a CloudWatch subscription's Kinesis stream:
        rampart audit --kinesis prod-audit --checkpoint k.json

    Everything, including Falco's informational activity records, as JSON:
        rampart audit --min-severity info -o json audit.log.gz

    Behavioural findings (GuardDuty AnomalousBehavior.*), learning across runs:
        rampart audit --state baseline.json /var/log/kubernetes/audit/*.log

EXIT STATUS:
    0 no finding at or above --fail-on, 1 some, 2 the input could not be read.")]
pub struct Args {
    /// Audit log files (`-` for stdin).
    #[arg(value_name = "FILE", conflicts_with_all = ["cloudwatch", "kinesis"])]
    pub files: Vec<PathBuf>,
    /// Read the `kube-apiserver-audit-*` streams of this CloudWatch Logs group
    /// (`/aws/eks/CLUSTER/cluster` on EKS) with FilterLogEvents.
    #[arg(long, value_name = "LOG_GROUP", conflicts_with = "kinesis")]
    pub cloudwatch: Option<String>,
    /// Read a CloudWatch Logs subscription's Kinesis stream (gzip'd envelopes).
    #[arg(long, value_name = "STREAM")]
    pub kinesis: Option<String>,
    /// Where --cloudwatch starts without a checkpoint: this long ago (`1h`, `30m`, `2d`).
    #[arg(long, default_value = "1h", value_parser = super::parse_duration, value_name = "DURATION")]
    pub since: std::time::Duration,
    /// Keep reading --cloudwatch or --kinesis, reporting findings as they come (until
    /// interrupted; memory stays bounded).
    #[arg(long)]
    pub follow: bool,
    /// Checkpoint file for --cloudwatch/--kinesis: a restart neither loses nor repeats an
    /// event.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Seconds between polls with --follow.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub poll: u64,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: ReportFormat,
    /// Report findings at or above this severity (critical, high, medium, low, info).
    #[arg(long, default_value = "low", value_parser = parse_severity)]
    pub min_severity: Severity,
    /// Exit 1 when a finding at or above this severity is reported.
    #[arg(long, default_value = "high", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Falco rule files applied over the default k8saudit rules (lists, macros, rules,
    /// overrides, exceptions; repeatable, in order).
    #[arg(long = "falco-rules", value_name = "FILE")]
    pub falco_rules: Vec<PathBuf>,
    /// Do not run Falco's rules.
    #[arg(long)]
    pub no_falco: bool,
    /// Run Falco's rules exactly as shipped. By default "Disallowed K8s User" is off (it flags
    /// every user missing from a hand-kept list; pass your list with --falco-rules instead).
    #[arg(long)]
    pub strict_falco: bool,
    /// Also report what the apiserver does as `system:apiserver` (creating and reconciling its
    /// default roles at every start); hidden by default, it is never a user's action.
    #[arg(long)]
    pub include_apiserver: bool,
    /// Your threat list: IPs or CIDRs, one per line (`#` comments), for the
    /// `*:Kubernetes/MaliciousIPCaller.Custom` findings.
    #[arg(long, value_name = "FILE")]
    pub threat_list: Option<PathBuf>,
    /// Baseline state file for the behavioural findings: read if present, updated after the run.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Events a baseline must have seen before behavioural findings are raised.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub learning_events: u64,
    /// Sliding window for the rate findings (e.g. 5m).
    #[arg(long, default_value = "5m", value_parser = super::parse_duration, value_name = "DURATION")]
    pub window: std::time::Duration,
    /// 401/403 responses per user and source IP within the window that raise a spike finding.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub forbidden_threshold: usize,
    /// List every occurrence. By default the same finding by the same user on the same object
    /// is one line with a count and the last time seen.
    #[arg(long)]
    pub no_group: bool,
    /// Also send the findings to AWS Security Hub (ASFF, BatchImportFindings), with ids
    /// stable per finding, user, object and cluster so a rerun updates instead of
    /// duplicating. Credentials and region as the AWS CLI finds them.
    #[arg(long, requires = "cluster_name")]
    pub to_securityhub: bool,
    /// The cluster the findings are about (the Security Hub resource).
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// Region of the AWS calls (CloudWatch, Kinesis, Security Hub; default: AWS_REGION,
    /// AWS_DEFAULT_REGION, the profile's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The account the findings belong to (default: the caller's, from STS).
    #[arg(long, value_name = "ID")]
    pub aws_account_id: Option<String>,
}

/// Send the grouped findings to Security Hub; a refused record is an error naming it.
fn to_securityhub(args: &Args, grouped: &[Grouped<Located>]) -> anyhow::Result<()> {
    use rampart_eks::securityhub::{Target, account, client, export, record};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = client(args.region.as_deref()).await;
        let region = client.config().region().map(|r| r.to_string()).ok_or_else(|| {
            anyhow::anyhow!("--to-securityhub needs a region: pass --region or set AWS_REGION")
        })?;
        let account = match &args.aws_account_id {
            Some(a) => a.clone(),
            None => account(Some(&region)).await?,
        };
        let partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        let target = Target {
            account,
            region,
            partition: partition.into(),
            cluster: args.cluster_name.clone().unwrap_or_default(),
        };
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let records: Vec<_> =
            grouped.iter().map(|g| record(&target, &g.first.finding, g.count, &g.last_seen, &now)).collect();
        let sent = export(&client, records).await?;
        eprintln!(
            "Security Hub ({}): {} findings imported in {} batches",
            target.product_arn(),
            sent.imported,
            sent.batches
        );
        if !sent.failed.is_empty() {
            let failed: Vec<String> = sent.failed.iter().map(|(id, why)| format!("{id}: {why}")).collect();
            anyhow::bail!("Security Hub refused {} findings:\n{}", failed.len(), failed.join("\n"));
        }
        anyhow::Ok(())
    })
}

/// Findings the apiserver's own requests raise are left out unless asked for.
fn keep(finding: &Finding, include_apiserver: bool) -> bool {
    let by_apiserver =
        !finding.events.is_empty() && finding.events.iter().all(|e| e.user() == "system:apiserver");
    include_apiserver || !by_apiserver
}

/// Read --cloudwatch or --kinesis: everything there is now into `located`, or with --follow
/// forever, printing (and sending) each poll's findings and keeping none.
fn read_aws_source(
    args: &Args,
    analyzer: &mut Analyzer,
    located: &mut Vec<Located>,
    include_apiserver: bool,
) -> anyhow::Result<()> {
    use rampart_eks::sources::{CloudWatchAudit, KinesisAudit};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (shown, mut cloudwatch, mut kinesis) = runtime.block_on(async {
        let region = args.region.as_deref();
        let checkpoint = args.checkpoint.as_deref();
        anyhow::Ok(match (&args.cloudwatch, &args.kinesis) {
            (Some(group), _) => {
                let since = std::time::SystemTime::now()
                    .checked_sub(args.since)
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
                (
                    format!("cloudwatch:{group}"),
                    Some(CloudWatchAudit::new(region, group, since, checkpoint).await?),
                    None,
                )
            }
            (None, Some(stream)) => (
                format!("kinesis:{stream}"),
                None,
                Some(KinesisAudit::new(region, stream, checkpoint).await?),
            ),
            (None, None) => unreachable!("checked by the caller"),
        })
    })?;
    let shared: Arc<str> = Arc::from(shown.as_str());
    loop {
        let mut findings = Vec::new();
        let mut each = |text: &str| {
            // A message that is not an audit event is counted as skipped by the analyzer's stats.
            let _ = analyzer.observe_text(text, &mut findings);
        };
        let read = runtime.block_on(async {
            match (&mut cloudwatch, &mut kinesis) {
                (Some(c), _) => c.drain(&mut each).await,
                (None, Some(k)) => k.drain(&mut each).await,
                (None, None) => Ok(0),
            }
        })?;
        let fresh: Vec<Located> = findings
            .into_iter()
            .filter(|f| keep(f, include_apiserver))
            .map(|finding| Located { finding, file: Arc::clone(&shared), line: None })
            .collect();
        if !args.follow {
            located.extend(fresh);
            return Ok(());
        }
        let grouped = if args.no_group {
            fresh
                .into_iter()
                .map(|l| Grouped { last_seen: first_time(&l.finding), first: l, count: 1 })
                .collect()
        } else {
            group(fresh, |l| &l.finding)
        };
        if !grouped.is_empty() {
            print_table(&grouped);
            if args.to_securityhub {
                to_securityhub(args, &grouped)?;
            }
        }
        eprintln!("{read} events from {shown}; {} findings", grouped.len());
        std::thread::sleep(std::time::Duration::from_secs(args.poll.max(1)));
    }
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s).ok_or_else(|| format!("{s:?}: expected critical, high, medium, low or info"))
}

/// Rampart's default overrides of Falco's rules (see the file for why each).
const QUIET_RULES: &str = include_str!("../falco-quiet.yaml");

fn load_rules(args: &Args) -> anyhow::Result<Option<RuleSet>> {
    if args.no_falco {
        return Ok(None);
    }
    let mut texts = vec![("k8s_audit_rules.yaml (default)".to_owned(), DEFAULT_RULES.to_owned())];
    if !args.strict_falco {
        texts.push(("rampart's quiet defaults".to_owned(), QUIET_RULES.to_owned()));
    }
    for path in &args.falco_rules {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        texts.push((path.display().to_string(), text));
    }
    let refs: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    Ok(Some(RuleSet::load(&refs)?))
}

fn load_threats(path: &std::path::Path) -> anyhow::Result<Vec<Cidr>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        out.push(
            Cidr::parse(line)
                .with_context(|| format!("{}:{}: {line:?} is not an IP or CIDR", path.display(), n + 1))?,
        );
    }
    Ok(out)
}

/// A finding with where it was read.
struct Located {
    finding: Finding,
    /// Shared by every finding of the file.
    file: Arc<str>,
    line: Option<usize>,
}

/// The JSON report, written straight to the output (a busy log can yield hundreds of thousands
/// of findings: no intermediate document is built).
#[derive(Serialize)]
struct Report<'a> {
    stats: &'a Stats,
    findings: Vec<Grouped<&'a Finding>>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let baseline = match &args.state {
        Some(p) if p.exists() => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            Some(serde_json::from_str::<Baseline>(&text).with_context(|| {
                format!("{}: not a rampart baseline (delete it to start over)", p.display())
            })?)
        }
        Some(_) => Some(Baseline { version: 1, ..Baseline::default() }),
        None => None,
    };
    let guardduty = GuardDuty {
        threat_list: args.threat_list.as_deref().map(load_threats).transpose()?.unwrap_or_default(),
    };
    let windows = WindowConfig {
        window_seconds: i64::try_from(args.window.as_secs()).unwrap_or(300).max(1),
        forbidden_threshold: args.forbidden_threshold.max(1),
        ..WindowConfig::default()
    };
    let config = AnalyzerConfig {
        falco: load_rules(&args)?,
        guardduty,
        baseline: baseline.map(|b| (b, args.learning_events)),
        windows,
        min_severity: args.min_severity,
    };
    let mut analyzer = Analyzer::new(config);
    let include_apiserver = args.include_apiserver;
    let files: Vec<PathBuf> =
        if args.files.is_empty() { vec![PathBuf::from("-")] } else { args.files.clone() };
    let total: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let progress = (std::io::stderr().is_terminal() && total > 32 << 20).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {bar:30} {eta} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut located = Vec::new();
    if args.cloudwatch.is_some() || args.kinesis.is_some() {
        read_aws_source(&args, &mut analyzer, &mut located, include_apiserver)?;
    }
    let files = if args.cloudwatch.is_some() || args.kinesis.is_some() { vec![] } else { files };
    for file in &files {
        let shown = file.display().to_string();
        let shared: Arc<str> = Arc::from(shown.as_str());
        let reader: Box<dyn Read> = if shown == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            let f = std::fs::File::open(file).with_context(|| format!("cannot open {shown}"))?;
            match &progress {
                Some(bar) => Box::new(bar.wrap_read(f)),
                None => Box::new(f),
            }
        };
        analyzer
            .observe_reader(reader, |findings, line| {
                for finding in findings.drain(..) {
                    if keep(&finding, include_apiserver) {
                        located.push(Located { finding, file: Arc::clone(&shared), line });
                    }
                }
            })
            .with_context(|| format!("{shown}: cannot read audit events"))?;
        if let Some(bar) = &progress {
            bar.set_message(format!("{} findings", located.len()));
        }
    }
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let stats = analyzer.stats;
    if let (Some(path), Some(baseline)) = (&args.state, analyzer.into_baseline()) {
        let text = serde_json::to_string(&baseline)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if stats.events == 0 {
        // A check that read nothing must not look like a clean bill of health.
        eprintln!("{}", summary(&stats, &[]));
        anyhow::bail!(
            "read no audit events, so nothing was checked: give rampart audit a Kubernetes audit log \
             (JSON lines, CloudWatch Logs exports or filter-log-events output)"
        );
    }
    located.sort_by(|a, b| {
        a.finding.severity.cmp(&b.finding.severity).then(
            a.finding.events.first().map(EventRef::time).cmp(&b.finding.events.first().map(EventRef::time)),
        )
    });
    let grouped: Vec<Grouped<Located>> = if args.no_group {
        located
            .into_iter()
            .map(|l| Grouped { last_seen: first_time(&l.finding), first: l, count: 1 })
            .collect()
    } else {
        group(located, |l| &l.finding)
    };
    match args.output {
        ReportFormat::Json => {
            let findings = grouped
                .iter()
                .map(|g| Grouped { first: &g.first.finding, count: g.count, last_seen: g.last_seen.clone() })
                .collect();
            let report = Report { stats: &stats, findings };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
            out.flush()?;
        }
        ReportFormat::Sarif => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            serde_json::to_writer_pretty(&mut out, &sarif(&grouped))?;
            writeln!(out)?;
            out.flush()?;
        }
        ReportFormat::Table => print_table(&grouped),
    }
    eprintln!("{}", summary(&stats, &grouped));
    if args.to_securityhub {
        to_securityhub(&args, &grouped)?;
    }
    let fail = grouped.iter().any(|g| g.first.finding.severity <= args.fail_on);
    Ok(if fail { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn first_time(f: &Finding) -> String {
    f.events.first().map(|e| e.time().to_owned()).unwrap_or_default()
}

fn summary(stats: &Stats, grouped: &[Grouped<Located>]) -> String {
    let mut by = std::collections::BTreeMap::new();
    for g in grouped {
        *by.entry(g.first.finding.severity).or_insert(0u64) += g.count;
    }
    let counts: Vec<String> = by.iter().map(|(s, n)| format!("{n} {}", s.as_str())).collect();
    let total: u64 = grouped.iter().map(|g| g.count).sum();
    let distinct = if total > grouped.len() as u64 {
        format!(" in {} groups of repeats", grouped.len())
    } else {
        String::new()
    };
    format!(
        "{} events ({} duplicates dropped, {} lines were not audit events): {total} findings{distinct}{}",
        stats.events,
        stats.duplicates,
        stats.skipped,
        if counts.is_empty() { String::new() } else { format!(" ({})", counts.join(", ")) }
    )
}

fn print_table(grouped: &[Grouped<Located>]) {
    if grouped.is_empty() {
        crate::outln!("No findings.");
        return;
    }
    let mut t = crate::output::table(&["severity", "finding", "tactic", "time", "count", "what happened"]);
    for g in grouped {
        let f = &g.first.finding;
        let first = first_time(f);
        let time =
            if g.count > 1 && g.last_seen != first { format!("{first}\n… {}", g.last_seen) } else { first };
        t.add_row(vec![
            f.severity.as_str().to_owned(),
            f.id.to_string(),
            f.tactic.name().to_owned(),
            time,
            g.count.to_string(),
            format!("{}\n→ {}", f.message, f.remediation),
        ]);
    }
    crate::outln!("{t}");
}

fn sarif(grouped: &[Grouped<Located>]) -> StreamedLog<SarifResults<'_>> {
    let mut rules: Vec<&Finding> = grouped.iter().map(|g| &g.first.finding).collect();
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    rules.dedup_by(|a, b| a.id == b.id);
    let rules = rules
        .iter()
        .map(|f| {
            let tags = vec![f.tactic.name().to_owned(), f.tactic.id().to_owned()];
            let family = BTreeMap::from([("family".to_owned(), json!(f.family))]);
            sarif::rule(&f.id, &f.title, Some(&f.remediation), Some(sarif::properties(tags, family)))
        })
        .collect();
    StreamedLog::new(rules, SarifResults(grouped))
}

/// The results of a SARIF log, each built as it is written (a busy log can have hundreds of
/// thousands).
struct SarifResults<'a>(&'a [Grouped<Located>]);

impl Serialize for SarifResults<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let level = |s: Severity| match s {
            Severity::Critical | Severity::High => Level::Error,
            Severity::Medium => Level::Warning,
            Severity::Low | Severity::Info => Level::Note,
        };
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for g in self.0 {
            let l = &g.first;
            let details = BTreeMap::from([
                ("severity".to_owned(), json!(l.finding.severity)),
                ("count".to_owned(), json!(g.count)),
                ("lastSeen".to_owned(), json!(g.last_seen)),
                (
                    "auditIDs".to_owned(),
                    json!(l.finding.events.iter().map(|e| e.audit_id()).collect::<Vec<_>>()),
                ),
            ]);
            seq.serialize_element(&sarif::result(
                &l.finding.id,
                level(l.finding.severity),
                &l.finding.message,
                sarif::file_location(&sarif::artifact_uri(&l.file), l.line),
                Some(sarif::properties(vec![], details)),
            ))?;
        }
        seq.end()
    }
}
