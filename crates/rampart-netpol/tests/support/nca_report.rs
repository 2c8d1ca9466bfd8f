//! network-config-analyzer for the differential test and the benchmark: where it is, the one
//! command line both run, and its per-pair report (`--output_format txt_no_fw_rules`) read
//! back as a connection matrix.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_netpol::ports::PortSet;
use rampart_netpol::world::World;

pub type Matrix = BTreeMap<(String, String), PortSet>;

/// NCA's executable: in `RAMPART_NCA_BIN`, else `.venv-nca/bin` (scripts/test.sh installs it
/// there; it pins a PyYAML that moto's venv cannot share).
pub fn nca_bin() -> PathBuf {
    std::env::var("RAMPART_NCA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv-nca/bin")))
        .join("nca")
}

/// `nca`'s connectivity report for `workloads.yaml` (pods and namespaces) and `policies.yaml`
/// in `dir`, written to `dir/report` in the format [`matrix_of`] reads.
pub fn nca_command(nca: &Path, dir: &Path, report: &str) -> Command {
    let mut command = Command::new(nca);
    command
        .args([
            "--connectivity",
            "policies.yaml",
            "--pod_list",
            "workloads.yaml",
            "--ns_list",
            "workloads.yaml",
        ])
        .args(["--output_format", "txt_no_fw_rules", "--file_out", report])
        .current_dir(dir);
    command
}

/// One connection of NCA's `txt_no_fw_rules` output: `All connections`, or
/// `{protocols:TCP,UDP,dst_ports:80-90,443}` (no `dst_ports`: every port).
fn connection(text: &str) -> PortSet {
    if text == "All connections" {
        return PortSet::all();
    }
    let body = text.trim_start_matches('{').trim_end_matches('}');
    let (protocols, ports) = match body.split_once(",dst_ports:") {
        Some((p, ports)) => (p, Some(ports)),
        None => (body, None),
    };
    let mut set = PortSet::none();
    for protocol in protocols.trim_start_matches("protocols:").split(',').map(str::trim) {
        let Some(ports) = ports else {
            set = set.union(&PortSet::range(protocol, 1, u16::MAX));
            continue;
        };
        for range in ports.split(',').map(str::trim) {
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            set = set.union(&PortSet::range(protocol, lo.parse().unwrap(), hi.parse().unwrap()));
        }
    }
    set
}

/// The endpoints one side of a line names: `ns/name[Kind]`, or an address range `a-b` that
/// holds some of the named externals.
fn endpoints(world: &World, text: &str) -> Vec<String> {
    if let Some((id, _kind)) = text.split_once('[') {
        return vec![id.to_string()];
    }
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let (lo, hi): (std::net::IpAddr, std::net::IpAddr) = (lo.parse().unwrap(), hi.parse().unwrap());
    world
        .externals
        .iter()
        .filter(|(_, net)| lo <= net.network() && net.broadcast() <= hi)
        .map(|(n, _)| n.clone())
        .collect()
}

/// NCA's per-pair report (`--output_format txt_no_fw_rules`, lines `SRC => DST : CONNECTION`)
/// as the same matrix as ours; a pair it does not list has no connection.
pub fn matrix_of(world: &World, report: &str) -> Matrix {
    let mut matrix = Matrix::new();
    for line in report.lines().filter(|l| l.contains(" => ")) {
        let (src, rest) = line.split_once(" => ").unwrap();
        let (dst, conn) = rest.split_once(" : ").unwrap();
        let ports = connection(conn.trim());
        for s in endpoints(world, src.trim()) {
            for d in endpoints(world, dst.trim()) {
                let entry = matrix.entry((s.clone(), d)).or_default();
                *entry = entry.union(&ports);
            }
        }
    }
    matrix
}
