//! `rampart`: Kubernetes security in layers — access control and admission with Cedar, IAM authentication, workload identity, detection.
//!
//! This binary is the CLI edge: it parses flags, wires the library crates together and turns
//! their typed errors into messages (via `anyhow`) that say what to do next.

mod cmd;
mod embedded;
mod output;
mod resource_arg;
mod sarif;
mod selector;

use std::process::ExitCode;

/// mimalloc instead of the system allocator: audit analysis and the servers allocate many small,
/// short-lived objects per event or request (parsed documents, findings, responses), where it
/// is markedly faster than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Rampart secures a Kubernetes cluster in layers, the way Amazon EKS does, on any cluster: who
/// may call the API (IAM authentication, Cedar policies layered over RBAC), what pods may reach
/// in AWS (IRSA and Pod Identity, with its own agent and broker off EKS), what may run inside
/// (Pod Security, signed images and admission policies in the same Cedar language), who can
/// reach whom (NetworkPolicy analysis), secrets encrypted at rest (a KMS plugin), and what
/// happened (audit-log findings from files, CloudWatch or Kinesis, policy replay, posture
/// scans).
///
/// Start with `rampart demo`: it needs no cluster and no cloud account.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, propagate_version = true, max_term_width = 80)]
#[command(after_long_help = "EXAMPLES:
    Replay the label-enforcement demo against an in-process HTTPS server:
        rampart demo

    Ask whether a user may list secrets, offline:
        rampart check --policies ./policies --user alice --group dev \\
            --verb list --resource secrets -n default

    Check workload manifests against Pod Security restricted (exit 1 on violations):
        rampart check-manifests k8s/ -o sarif > rampart.sarif

    Check policies before shipping them:
        rampart validate --policies ./policies

    Serve the webhooks (HTTPS, self-signed certificate on first start):
        rampart serve --policies /etc/rampart/policies \\
            --cert-dir /var/run/rampart/certs

    Print what to give the kube-apiserver:
        rampart kube-config --target kind --cert-dir /var/run/rampart/certs

    Findings from an EKS cluster's audit logs, as SARIF:
        aws logs filter-log-events --log-group-name /aws/eks/prod/cluster \\
            | rampart audit - -o sarif

    Posture of a cluster (CIS EKS checks without node access, RBAC risk, Pod Security):
        rampart scan --from-cluster

    Pod Identity on a self-managed cluster (node agent, talking to a Rampart broker):
        rampart agent --cluster-name c1 \\
            --broker https://rampart-broker.rampart-system.svc:10289

ENVIRONMENT:
    RUST_LOG    log filter, e.g. `info` (default) or `rampart=debug`")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: `text` for people, `json` (one object per line) for collectors.
    #[arg(long, global = true, value_enum, default_value = "text", value_name = "FORMAT")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// `rampart schema` options.
#[derive(Debug, clap::Args)]
struct SchemaArgs {
    /// Print the unified schema instead: one action per verb, one resource type per API
    /// group and resource, with the new and stored objects (unified policies, in progress).
    #[arg(long)]
    unified: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the authorization and admission webhooks over HTTPS.
    Serve(Box<cmd::serve::Args>),
    /// Would a user be allowed? Cedar policies layered over RBAC manifests, like the apiserver.
    CanI(cmd::can_i::Args),
    /// Which subjects may do something (RBAC grants, and Cedar forbids that remove them).
    WhoCan(cmd::rbac_query::WhoCanArgs),
    /// Subjects and the roles bound to them, with risk flags (rbac-lookup style).
    Lookup(cmd::rbac_query::LookupArgs),
    /// Decide one request offline and explain the decision.
    Check(Box<cmd::check::Args>),
    /// Check manifests against Pod Security and the best-practice rules (CI use).
    CheckManifests(cmd::check_manifests::Args),
    /// Parse policies and validate them against the Kubernetes schema.
    Validate(cmd::validate::Args),
    /// Replay the talk's live demo against an in-process server over real HTTPS.
    Demo(cmd::demo::Args),
    /// Convert other policy formats to Cedar.
    #[command(subcommand)]
    Convert(cmd::convert::Command),
    /// Policy tests for CI: requests with the decision (and deciding policy) expected, run
    /// through every tier as `serve` would; table or JUnit XML.
    Test(cmd::test::Args),
    /// Print an ExecCredential with an IAM token for kubectl (like `aws eks get-token`).
    Token(cmd::token::Args),
    /// Move to EKS access entries: the aws-auth ConfigMap as entries and access policies,
    /// checked against the principals of audit logs (`rampart migrate aws-auth`).
    #[command(subcommand)]
    Migrate(cmd::migrate::Command),
    /// Pod Identity node agent: AWS credentials for pods at http://169.254.170.23/v1/credentials.
    Agent(Box<cmd::agent::Args>),
    /// Pod Identity broker for self-managed clusters: pod token → STS AssumeRole with session tags.
    Broker(Box<cmd::broker::Args>),
    /// KMS v2 plugin for kube-apiserver: secrets encrypted at rest under AWS KMS (or a local
    /// key file), one remote call per local key.
    KmsPlugin(Box<cmd::kms::PluginArgs>),
    /// What NetworkPolicies allow: one connection and why (`reach`), all of them (`matrix`),
    /// or what a change adds and removes (`diff`).
    #[command(subcommand)]
    Netpol(cmd::netpol::Command),
    /// Talk to a running KMS plugin (`rampart kms status`).
    #[command(subcommand)]
    Kms(cmd::kms::KmsCommand),
    /// Find attacks and misconfigurations in Kubernetes audit logs (GuardDuty EKS finding
    /// types, Falco's k8saudit rules, 401/403 spikes, aws-auth/webhook/RBAC changes).
    Audit(cmd::audit::Args),
    /// Replay audited requests through a candidate policy set: what would be denied or allowed
    /// differently, grouped by user and policy (safe rollout).
    Replay(cmd::replay::Args),
    /// Posture scan of a cluster snapshot: CIS EKS checks, RBAC risk, Pod Security levels,
    /// aws-auth hygiene, endpoint, logging, encryption; score and SARIF.
    Scan(cmd::scan::Args),
    /// Print the embedded Cedar schema for Kubernetes types.
    Schema(SchemaArgs),
    /// Print the kube-apiserver configuration that wires Rampart into a cluster.
    KubeConfig(cmd::kube_config::Args),
    /// Make the in-cluster webhook's serving certificate (a Secret and its CA bundle) for an
    /// install without cert-manager.
    Certificate(cmd::certificate::Args),
}

fn init_logging(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => logs.json().try_init(),
        // Colours only for a person at a terminal: log files and `kubectl logs` get plain text.
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init(),
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = !matches!(
        cli.command,
        Command::Serve(_) | Command::Agent(_) | Command::Broker(_) | Command::KmsPlugin(_)
    );
    init_logging(if quiet { "warn" } else { "info" }, cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(*args),
        Command::Check(args) => cmd::check::run(*args),
        Command::CanI(args) => cmd::can_i::run(args),
        Command::WhoCan(args) => cmd::rbac_query::who_can(args),
        Command::Lookup(args) => cmd::rbac_query::lookup(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::CheckManifests(args) => cmd::check_manifests::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Convert(c) => cmd::convert::run(c),
        Command::Token(args) => cmd::token::run(args),
        Command::Test(args) => cmd::test::run(args),
        Command::Migrate(command) => cmd::migrate::run(command),
        Command::Agent(args) => cmd::agent::run(*args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Scan(args) => cmd::scan::run(args),
        Command::Broker(args) => cmd::broker::run(*args),
        Command::KmsPlugin(args) => cmd::kms::plugin(*args),
        Command::Kms(command) => cmd::kms::run(command),
        Command::Netpol(command) => cmd::netpol::run(command),
        Command::Schema(args) => {
            if args.unified {
                crate::out!("{}", rampart_unified::schema::schema_text());
            } else {
                crate::out!("{}", rampart_policy::schema::K8S_SCHEMA);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::KubeConfig(args) => cmd::kube_config::run(args),
        Command::Certificate(args) => cmd::certificate::run(args),
    };
    match result {
        Ok(code) => code,
        // The reader went away (`| head`): end quietly, as Unix tools do.
        Err(e) if output::is_closed_pipe(&e) => ExitCode::from(output::CLOSED_PIPE),
        Err(e) => {
            eprintln!("error: {}", output::error_chain(&e));
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command, flag and positional explains itself in `--help`.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.get_help().is_none()
                    && arg.get_long_help().is_none()
                    && !["help", "version"].contains(&id)
                {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "rampart", &mut missing);
        assert!(missing.is_empty(), "arguments without help:\n{}", missing.join("\n"));
    }

    /// `--help` fits 80 columns: prose wraps, and no example is long enough to wrap mid-command.
    #[test]
    fn help_fits_80_columns() {
        fn walk(cmd: &mut clap::Command, path: &str, long: &mut Vec<String>) {
            let help = cmd.render_long_help().to_string();
            long.extend(help.lines().filter(|l| l.chars().count() > 80).map(|l| format!("{path}: {l}")));
            // Examples are written, not wrapped: clap would break a long one mid-command.
            let examples = cmd.get_after_long_help().map(|h| h.to_string()).unwrap_or_default();
            let command = |l: &&str| {
                ["rampart ", "kubectl ", "aws ", "helm ", "--", "| "]
                    .iter()
                    .any(|p| l.trim_start().starts_with(p))
            };
            long.extend(
                examples
                    .lines()
                    .filter(command)
                    .filter(|l| l.chars().count() > 80)
                    .map(|l| format!("{path} (example as written): {l}")),
            );
            for sub in cmd.get_subcommands_mut() {
                let name = format!("{path} {}", sub.get_name());
                walk(sub, &name, long);
            }
        }
        let mut long = Vec::new();
        let mut cli = super::Cli::command().term_width(80);
        cli.build();
        walk(&mut cli, "rampart", &mut long);
        assert!(long.is_empty(), "help lines over 80 columns:\n{}", long.join("\n"));
    }
}
