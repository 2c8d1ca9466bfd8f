//! Sets of ports per protocol (TCP, UDP, SCTP), as unions of ranges; what a rule's `ports`
//! allow towards one destination, named ports resolved against that destination's container
//! ports.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::networking::v1::NetworkPolicyPort;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::world::ContainerPort;

pub const PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];

/// Ports per protocol; each protocol's ranges sorted, disjoint and not adjacent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PortSet {
    ranges: BTreeMap<&'static str, Vec<(u16, u16)>>,
}

fn protocol(name: &str) -> Option<&'static str> {
    PROTOCOLS.iter().copied().find(|p| *p == name)
}

fn normalise(mut ranges: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    ranges.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

impl PortSet {
    /// Every port of every protocol.
    pub fn all() -> Self {
        PortSet { ranges: PROTOCOLS.iter().map(|p| (*p, vec![(1, u16::MAX)])).collect() }
    }

    pub fn none() -> Self {
        PortSet::default()
    }

    /// `lo..=hi` of one protocol.
    pub fn range(protocol_name: &str, lo: u16, hi: u16) -> Self {
        match protocol(protocol_name) {
            Some(p) if lo <= hi => PortSet { ranges: [(p, vec![(lo, hi)])].into() },
            _ => PortSet::none(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.values().all(Vec::is_empty)
    }

    pub fn is_all(&self) -> bool {
        *self == PortSet::all()
    }

    pub fn contains(&self, protocol_name: &str, port: u16) -> bool {
        self.ranges.get(protocol_name).is_some_and(|r| r.iter().any(|(lo, hi)| (*lo..=*hi).contains(&port)))
    }

    pub fn union(&self, other: &PortSet) -> PortSet {
        let mut ranges = self.ranges.clone();
        for (p, r) in &other.ranges {
            let merged = ranges.entry(p).or_default();
            merged.extend(r.iter().copied());
            *merged = normalise(std::mem::take(merged));
        }
        ranges.retain(|_, r| !r.is_empty());
        PortSet { ranges }
    }

    pub fn intersect(&self, other: &PortSet) -> PortSet {
        let mut ranges = BTreeMap::new();
        for (p, mine) in &self.ranges {
            let Some(theirs) = other.ranges.get(p) else { continue };
            let mut both = Vec::new();
            for (a_lo, a_hi) in mine {
                for (b_lo, b_hi) in theirs {
                    let (lo, hi) = ((*a_lo).max(*b_lo), (*a_hi).min(*b_hi));
                    if lo <= hi {
                        both.push((lo, hi));
                    }
                }
            }
            if !both.is_empty() {
                ranges.insert(*p, normalise(both));
            }
        }
        PortSet { ranges }
    }

    /// The ports of `self` that are not in `other`.
    pub fn minus(&self, other: &PortSet) -> PortSet {
        let mut ranges = BTreeMap::new();
        for (p, mine) in &self.ranges {
            let theirs = other.ranges.get(p).map(Vec::as_slice).unwrap_or_default();
            let mut left = Vec::new();
            for &(lo, hi) in mine {
                let mut from = u32::from(lo);
                for &(t_lo, t_hi) in theirs {
                    if u32::from(t_hi) < from || t_lo > hi {
                        continue;
                    }
                    if u32::from(t_lo) > from {
                        left.push((from as u16, t_lo - 1));
                    }
                    from = u32::from(t_hi) + 1;
                }
                if from <= u32::from(hi) {
                    left.push((from as u16, hi));
                }
            }
            if !left.is_empty() {
                ranges.insert(*p, left);
            }
        }
        PortSet { ranges }
    }

    /// What one `ports` entry of a rule allows towards a destination with `container_ports`
    /// (`None`: an address outside the cluster, where a named port names nothing).
    pub fn of_rule_port(rule: &NetworkPolicyPort, container_ports: Option<&[ContainerPort]>) -> PortSet {
        let proto = rule.protocol.as_deref().unwrap_or("TCP");
        match &rule.port {
            None => PortSet::range(proto, 1, u16::MAX),
            Some(IntOrString::Int(port)) => {
                let Ok(lo) = u16::try_from(*port) else { return PortSet::none() };
                let hi = rule.end_port.and_then(|e| u16::try_from(e).ok()).unwrap_or(lo);
                PortSet::range(proto, lo, hi)
            }
            Some(IntOrString::String(name)) => container_ports
                .into_iter()
                .flatten()
                .filter(|c| c.name.as_deref() == Some(name.as_str()) && c.protocol == proto)
                .fold(PortSet::none(), |set, c| set.union(&PortSet::range(proto, c.port, c.port))),
        }
    }

    /// What a rule's whole `ports` list allows: absent or empty, every port.
    pub fn of_rule(
        ports: Option<&[NetworkPolicyPort]>,
        container_ports: Option<&[ContainerPort]>,
    ) -> PortSet {
        match ports {
            None | Some([]) => PortSet::all(),
            Some(list) => list
                .iter()
                .fold(PortSet::none(), |set, p| set.union(&PortSet::of_rule_port(p, container_ports))),
        }
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return write!(f, "all ports");
        }
        if self.is_empty() {
            return write!(f, "no port");
        }
        let parts: Vec<String> = self
            .ranges
            .iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(p, r)| {
                let list: Vec<String> = r
                    .iter()
                    .map(|&(lo, hi)| match (lo, hi) {
                        (1, u16::MAX) => "all".to_string(),
                        _ if lo == hi => lo.to_string(),
                        _ => format!("{lo}-{hi}"),
                    })
                    .collect();
                format!("{p} {}", list.join(","))
            })
            .collect();
        write!(f, "{}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> NetworkPolicyPort {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn numbers_ranges_names_and_protocols() {
        let ports = [ContainerPort { name: Some("http".into()), port: 8080, protocol: "TCP" }];
        assert_eq!(PortSet::of_rule_port(&rule("{port: 80}"), Some(&ports)), PortSet::range("TCP", 80, 80));
        assert_eq!(
            PortSet::of_rule_port(&rule("{port: 8000, endPort: 8100}"), Some(&ports)),
            PortSet::range("TCP", 8000, 8100)
        );
        assert_eq!(
            PortSet::of_rule_port(&rule("{port: http}"), Some(&ports)),
            PortSet::range("TCP", 8080, 8080)
        );
        assert!(
            PortSet::of_rule_port(&rule("{port: http, protocol: UDP}"), Some(&ports)).is_empty(),
            "a named port has a protocol"
        );
        assert!(
            PortSet::of_rule_port(&rule("{port: http}"), None).is_empty(),
            "names nothing outside the cluster"
        );
        assert_eq!(PortSet::of_rule_port(&rule("{protocol: UDP}"), None), PortSet::range("UDP", 1, u16::MAX));
        assert!(PortSet::of_rule(None, None).is_all() && PortSet::of_rule(Some(&[]), None).is_all());
    }

    #[test]
    fn algebra() {
        let a = PortSet::range("TCP", 1, 100).union(&PortSet::range("TCP", 101, 200));
        assert_eq!(a, PortSet::range("TCP", 1, 200), "adjacent ranges merge");
        assert_eq!(a.intersect(&PortSet::range("TCP", 150, 300)), PortSet::range("TCP", 150, 200));
        assert!(a.intersect(&PortSet::range("UDP", 1, 200)).is_empty());
        assert_eq!(PortSet::all().intersect(&a), a);
        assert_eq!(a.union(&PortSet::range("UDP", 53, 53)).to_string(), "TCP 1-200; UDP 53");
        let holes = a.minus(&PortSet::range("TCP", 10, 20).union(&PortSet::range("TCP", 150, 400)));
        assert_eq!(holes, PortSet::range("TCP", 1, 9).union(&PortSet::range("TCP", 21, 149)));
        assert!(a.minus(&PortSet::all()).is_empty() && PortSet::all().minus(&PortSet::none()).is_all());
        assert_eq!(PortSet::all().minus(&PortSet::range("UDP", 1, 65535)).to_string(), "SCTP all; TCP all");
    }
}
