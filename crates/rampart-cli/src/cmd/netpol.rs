//! `rampart netpol`: what NetworkPolicies allow, from manifests or the live cluster — one
//! connection and why (`reach`), every connection (`matrix`), or what a change adds and
//! removes (`diff`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rampart_netpol::analysis::Analysis;
use rampart_netpol::group::{Group, between, groups};
use rampart_netpol::reach::{connections, endpoint, explain};
use rampart_netpol::render;
use rampart_netpol::world::World;

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["paths", "from_cluster"]))]
pub struct Source {
    /// Manifests (files or directories of .yaml/.yml/.json): namespaces, workloads and
    /// NetworkPolicies, e.g. `kubectl get ns,pods,deploy,netpol -A -o yaml`.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Read namespaces, workloads and NetworkPolicies from the live cluster instead (every
    /// list must succeed: a policy left unread would show its pods open).
    #[arg(long, conflicts_with = "paths")]
    pub from_cluster: bool,
    /// Kubeconfig for --from-cluster (default: KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE", requires = "from_cluster")]
    pub kubeconfig: Option<PathBuf>,
    /// A named address outside the cluster, NAME=CIDR (repeatable). Default:
    /// metadata=169.254.169.254/32 (the instance metadata endpoint) and internet=8.8.8.8/32.
    #[arg(long = "external", value_name = "NAME=CIDR")]
    pub externals: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Can SRC reach DST, on which ports, and why: the policies isolating each end and the
    /// rules (file:line) that allow it, or that none does. Exit 0 allowed, 1 not.
    #[command(override_usage = "rampart netpol reach SRC DST (-f PATH... | --from-cluster) [OPTIONS]")]
    #[command(after_long_help = "EXAMPLES:
    rampart netpol reach shop/web shop/db --port 5432/TCP -f k8s/
    # the instance metadata endpoint:
    rampart netpol reach shop/web metadata -f k8s/")]
    Reach {
        /// The source: NAMESPACE/NAME of a workload, or an --external name.
        src: String,
        /// The destination, named the same way.
        dst: String,
        /// One port, PORT[/PROTOCOL] (TCP by default); without it, every allowed port is listed.
        #[arg(long, value_name = "PORT[/PROTO]")]
        port: Option<String>,
        #[command(flatten)]
        source: Source,
    },
    /// Connections a change adds and removes: OLD and NEW manifests (e.g. the base branch's
    /// and the pull request's), for review in CI. Exit 0 when nothing changes, 1 otherwise.
    #[command(after_long_help = "EXAMPLES:
    rampart netpol diff --old base/k8s --new k8s")]
    Diff {
        /// The manifests before the change (files or directories; repeatable).
        #[arg(long, required = true, value_name = "PATH")]
        old: Vec<PathBuf>,
        /// The manifests after it.
        #[arg(long, required = true, value_name = "PATH")]
        new: Vec<PathBuf>,
        /// As for the other commands (NAME=CIDR, repeatable).
        #[arg(long = "external", value_name = "NAME=CIDR")]
        externals: Vec<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: DiffFormat,
    },
    /// Every connection between the workloads (and externals): a table, JSON, or a picture
    /// (Graphviz DOT, SVG). Workloads no policy tells apart (replicas, pods behind the same
    /// selectors) are shown as one group, `ns/{a, b}` or `ns/*` for a whole namespace, so a
    /// large cluster stays readable; JSON always lists every pair.
    #[command(after_long_help = "EXAMPLES:
    rampart netpol matrix -f k8s/
    rampart netpol matrix --from-cluster -o svg > network.svg
    rampart netpol matrix -f k8s/ -o dot | dot -Tpng > network.png")]
    Matrix {
        #[command(flatten)]
        source: Source,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: MatrixFormat,
        /// One row per pair of workloads, without grouping.
        #[arg(long)]
        no_group: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MatrixFormat {
    Table,
    Json,
    /// Graphviz DOT (render with `dot -Tsvg`).
    Dot,
    /// A self-contained SVG: sources down, destinations across, ports on hover.
    Svg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Table,
    Json,
}

fn load(source: &Source) -> anyhow::Result<World> {
    let mut world = World::default();
    if source.from_cluster {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let objects = runtime.block_on(async {
            let client = super::cluster::client(source.kubeconfig.as_deref()).await?;
            anyhow::Ok(rampart_kube::sources::network_objects(&client).await?)
        })?;
        world.add_objects("cluster", objects.iter())?;
        anyhow::ensure!(!world.workloads.is_empty(), "the cluster lists no workloads: nothing to analyse");
        return add_externals(world, &source.externals);
    }
    let mut files = Vec::new();
    for path in &source.paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    for file in &files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        world.add_manifests(&file.display().to_string(), &text)?;
    }
    anyhow::ensure!(
        !world.workloads.is_empty(),
        "no workloads in {}: nothing to analyse (give the namespaces, pods or controllers with the policies)",
        source.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    add_externals(world, &source.externals)
}

/// The named externals (`NAME=CIDR`), or the default two.
fn add_externals(mut world: World, externals: &[String]) -> anyhow::Result<World> {
    let externals = if externals.is_empty() {
        vec!["metadata=169.254.169.254/32".to_string(), "internet=8.8.8.8/32".to_string()]
    } else {
        externals.to_vec()
    };
    for e in externals {
        let (name, cidr) =
            e.split_once('=').ok_or_else(|| anyhow::anyhow!("--external {e}: write NAME=CIDR"))?;
        let net = cidr.parse().map_err(|err| anyhow::anyhow!("--external {e}: {err}"))?;
        world.externals.push((name.to_string(), net));
    }
    Ok(world)
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Diff { old, new, externals, output } => {
            let files =
                |paths| Source { paths, from_cluster: false, kubeconfig: None, externals: externals.clone() };
            let before = connections(&load(&files(old))?);
            let after = connections(&load(&files(new))?);
            let mut changes: Vec<(&'static str, String, String, String)> = Vec::new();
            for (key, ports) in &after {
                match before.get(key) {
                    None => changes.push(("added", key.0.clone(), key.1.clone(), ports.to_string())),
                    Some(old) if old != ports => {
                        changes.push(("changed", key.0.clone(), key.1.clone(), format!("{old} → {ports}")))
                    }
                    Some(_) => {}
                }
            }
            for (key, ports) in &before {
                if !after.contains_key(key) {
                    changes.push(("removed", key.0.clone(), key.1.clone(), ports.to_string()));
                }
            }
            match output {
                DiffFormat::Json => {
                    let json: Vec<serde_json::Value> = changes
                        .iter()
                        .map(|(c, s, d, p)| serde_json::json!({"change": c, "from": s, "to": d, "ports": p}))
                        .collect();
                    crate::outln!("{}", serde_json::to_string_pretty(&json)?);
                }
                DiffFormat::Table => {
                    if changes.is_empty() {
                        crate::outln!("no connection added, removed or changed");
                    } else {
                        let mut t = crate::output::table(&["change", "from", "to", "ports"]);
                        for (c, s, d, p) in &changes {
                            t.add_row(vec![c.to_string(), s.clone(), d.clone(), p.clone()]);
                        }
                        crate::outln!("{t}");
                    }
                }
            }
            Ok(if changes.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Reach { src, dst, port, source } => {
            let world = load(&source)?;
            let (s, d) = (endpoint(&world, &src)?, endpoint(&world, &dst)?);
            let answer = Analysis::new(&world).reach(s, d);
            let allowed = match &port {
                Some(p) => {
                    let (number, proto) = p.split_once('/').unwrap_or((p, "TCP"));
                    let number: u16 = number
                        .parse()
                        .map_err(|_| anyhow::anyhow!("--port {p}: write PORT[/TCP|UDP|SCTP]"))?;
                    let proto = proto.to_ascii_uppercase();
                    let allowed = answer.ports.contains(&proto, number);
                    crate::outln!(
                        "{src} → {dst} {number}/{proto}: {}",
                        if allowed { "allowed" } else { "denied" }
                    );
                    allowed
                }
                None => {
                    crate::outln!(
                        "{src} → {dst}: {}",
                        if answer.ports.is_empty() {
                            "denied".to_string()
                        } else {
                            format!("allowed on {}", answer.ports)
                        }
                    );
                    !answer.ports.is_empty()
                }
            };
            for line in explain(&world, s, d, &answer) {
                crate::outln!("  {line}");
            }
            Ok(if allowed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Matrix { source, output, no_group } => {
            let world = load(&source)?;
            let matrix = Analysis::new(&world).matrix();
            let groups: Vec<Group> = if no_group {
                (0..matrix.names().len())
                    .map(|i| Group { members: vec![i], label: matrix.names()[i].clone() })
                    .collect()
            } else {
                groups(&matrix)
            };
            match output {
                MatrixFormat::Json => {
                    let json: Vec<serde_json::Value> = matrix
                        .connections()
                        .map(|(s, d, p)| {
                            serde_json::json!({"from": matrix.names()[s], "to": matrix.names()[d], "ports": p.to_string()})
                        })
                        .collect();
                    crate::outln!("{}", serde_json::to_string_pretty(&json)?);
                }
                MatrixFormat::Dot => crate::out!("{}", render::dot(&matrix, &groups)),
                MatrixFormat::Svg => crate::out!("{}", render::svg(&matrix, &groups)),
                MatrixFormat::Table => {
                    let mut t = crate::output::table(&["from", "to", "allowed"]);
                    let mut rows = 0;
                    for from in &groups {
                        for to in &groups {
                            let Some(id) = between(&matrix, from, to) else { continue };
                            let ports = matrix.set(id);
                            if !ports.is_empty() {
                                t.add_row(vec![from.label.clone(), to.label.clone(), ports.to_string()]);
                                rows += 1;
                            }
                        }
                    }
                    crate::outln!("{t}");
                    let grouped = if groups.len() < matrix.names().len() {
                        format!(" in {} groups", groups.len())
                    } else {
                        String::new()
                    };
                    crate::outln!(
                        "{rows} rows, {} connections between {} endpoints{grouped}",
                        matrix.connections().count(),
                        matrix.names().len()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
