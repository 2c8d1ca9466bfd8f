//! `rampart`: Kubernetes security in layers — access control and admission with Cedar, IAM authentication, workload identity, detection.
//!
//! This binary is the CLI edge: it parses flags, wires the library crates together and turns
//! their typed errors into messages (via `anyhow`) that say what to do next.

mod cmd;
mod embedded;
mod output;
mod resource_arg;
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
/// (Pod Security and admission policies in the same Cedar language), and what happened (audit-log
/// findings, policy replay, posture scans).
///
/// Start with `rampart demo`: it needs no cluster and no cloud account.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, propagate_version = true, max_term_width = 100)]
#[command(after_long_help = "EXAMPLES:
    Replay the label-enforcement demo against an in-process HTTPS server:
        rampart demo

    Ask whether a user may list secrets, offline:
        rampart check --policies ./policies --user alice --group dev --verb list --resource secrets -n default

    Check workload manifests against Pod Security restricted (exit 1 on violations):
        rampart check-manifests k8s/ -o sarif > rampart.sarif

    Check policies before shipping them:
        rampart validate --policies ./policies

    Serve the webhooks (HTTPS, self-signed certificate on first start):
        rampart serve --policies /etc/rampart/policies --cert-dir /var/run/rampart/certs

    Print what to give the kube-apiserver:
        rampart kube-config --target kind --cert-dir /var/run/rampart/certs

    Findings from an EKS cluster's audit logs, as SARIF:
        aws logs filter-log-events --log-group-name /aws/eks/prod/cluster | rampart audit - -o sarif

    Posture of a cluster (CIS EKS checks without node access, RBAC risk, Pod Security):
        rampart scan --from-cluster

    Pod Identity on a self-managed cluster (node agent, talking to a Rampart broker):
        rampart agent --cluster-name c1 --broker https://rampart-broker.rampart-system.svc:10289

ENVIRONMENT:
    RUST_LOG    log filter, e.g. `info` (default) or `rampart=debug`")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    Check(cmd::check::Args),
    /// Check manifests against Pod Security and the best-practice rules (CI use).
    CheckManifests(cmd::check_manifests::Args),
    /// Parse policies and validate them against the Kubernetes schema.
    Validate(cmd::validate::Args),
    /// Replay the talk's live demo against an in-process server over real HTTPS.
    Demo(cmd::demo::Args),
    /// Convert other policy formats to Cedar.
    #[command(subcommand)]
    Convert(cmd::convert::Command),
    /// Print an ExecCredential with an IAM token for kubectl (like `aws eks get-token`).
    Token(cmd::token::Args),
    /// Pod Identity node agent: AWS credentials for pods at http://169.254.170.23/v1/credentials.
    Agent(Box<cmd::agent::Args>),
    /// Pod Identity broker for self-managed clusters: pod token → STS AssumeRole with session tags.
    Broker(Box<cmd::broker::Args>),
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
    Schema,
    /// Print the kube-apiserver configuration that wires Rampart into a cluster.
    KubeConfig(cmd::kube_config::Args),
    /// Make the in-cluster webhook's serving certificate (a Secret and its CA bundle) for an
    /// install without cert-manager.
    Certificate(cmd::certificate::Args),
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal: log files and `kubectl logs` get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = !matches!(cli.command, Command::Serve(_) | Command::Agent(_) | Command::Broker(_));
    init_logging(if quiet { "warn" } else { "info" });
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(*args),
        Command::Check(args) => cmd::check::run(args),
        Command::CanI(args) => cmd::can_i::run(args),
        Command::WhoCan(args) => cmd::rbac_query::who_can(args),
        Command::Lookup(args) => cmd::rbac_query::lookup(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::CheckManifests(args) => cmd::check_manifests::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Convert(c) => cmd::convert::run(c),
        Command::Token(args) => cmd::token::run(args),
        Command::Agent(args) => cmd::agent::run(*args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Scan(args) => cmd::scan::run(args),
        Command::Broker(args) => cmd::broker::run(*args),
        Command::Schema => {
            print!("{}", rampart_policy::schema::K8S_SCHEMA);
            Ok(ExitCode::SUCCESS)
        }
        Command::KubeConfig(args) => cmd::kube_config::run(args),
        Command::Certificate(args) => cmd::certificate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
