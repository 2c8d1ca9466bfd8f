//! NCA's per-pair report (`--output_format txt_no_fw_rules`) read back as a connection
//! matrix, for the differential test and the benchmark.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use rampart_netpol::ports::PortSet;
use rampart_netpol::world::World;

pub type Matrix = BTreeMap<(String, String), PortSet>;

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
