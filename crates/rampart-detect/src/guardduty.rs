//! The GuardDuty EKS audit-log finding types that audit logs alone can reveal (spec §2):
//! the five `SuccessfulAnonymousAccess` variants, `ExecInKubeSystemPod`,
//! `AdminAccessToDefaultServiceAccount`, `AnonymousAccessGranted`, `ExposedDashboard`,
//! `KubeflowDashboardExposed` and the retired `ContainerWithSensitiveMount`; plus the five
//! `MaliciousIPCaller.Custom` variants when the user supplies a threat list (GuardDuty's own
//! threat intelligence and Tor lists are not available offline).

use std::net::IpAddr;

use crate::json::{Json, JsonContainerTrait, JsonExt, JsonValueTrait};

use crate::event::AuditEvent;
use crate::finding::{Family, Finding, Severity, Tactic};

/// Host paths whose mount gives a container the node (GuardDuty's and Falco's lists).
pub const SENSITIVE_HOST_PATHS: [&str; 14] = [
    "/",
    "/etc",
    "/proc",
    "/root",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/var/lib/kubelet",
    "/var/lib/kubelet/pki",
    "/etc/kubernetes",
    "/etc/kubernetes/manifests",
    "/home/admin",
    "/var/run",
    "/run",
];

const HEALTH: [&str; 4] = ["/healthz", "/livez", "/readyz", "/version"];

/// The tactic an API call serves (spec §2.1 proposal), or `None` for calls of no interest.
pub fn tactic_of(e: &AuditEvent<'_>) -> Option<Tactic> {
    let verb = e.verb()?;
    let resource = e.resource();
    let sub = e.subresource();
    let read = matches!(verb, "get" | "list" | "watch");
    let write = matches!(verb, "create" | "update" | "patch");
    Some(match (resource, sub) {
        (Some("secrets"), _) if read => Tactic::CredentialAccess,
        (Some("serviceaccounts"), Some("token")) => Tactic::CredentialAccess,
        (Some("certificatesigningrequests"), _) if write => Tactic::CredentialAccess,
        (Some("configmaps"), _) if read && e.name() == Some("aws-auth") => Tactic::CredentialAccess,
        (Some("pods"), Some("exec" | "attach")) => Tactic::Execution,
        (Some("events"), _) if matches!(verb, "delete" | "deletecollection") => Tactic::DefenseEvasion,
        (Some("validatingwebhookconfigurations"), _) if matches!(verb, "delete" | "patch" | "update") => {
            Tactic::DefenseEvasion
        }
        (
            Some(
                "deployments"
                | "namespaces"
                | "pods"
                | "persistentvolumeclaims"
                | "statefulsets"
                | "daemonsets",
            ),
            None,
        ) if matches!(verb, "delete" | "deletecollection") => Tactic::Impact,
        (
            Some(
                "daemonsets"
                | "deployments"
                | "statefulsets"
                | "cronjobs"
                | "jobs"
                | "pods"
                | "serviceaccounts"
                | "rolebindings"
                | "clusterrolebindings"
                | "mutatingwebhookconfigurations",
            ),
            None,
        ) if write => Tactic::Persistence,
        (Some("roles" | "clusterroles"), _) if write => Tactic::PrivilegeEscalation,
        (Some("selfsubjectaccessreviews" | "selfsubjectrulesreviews"), _) => Tactic::Discovery,
        (Some(_), _) if read => Tactic::Discovery,
        (None, _) if read || verb == "get" => {
            let uri = e.uri().unwrap_or_default();
            let path = uri.split('?').next().unwrap_or_default();
            if HEALTH.contains(&path) {
                return None;
            }
            Tactic::Discovery
        }
        _ => return None,
    })
}

fn anonymous(e: &AuditEvent<'_>) -> bool {
    e.username() == Some("system:anonymous") || e.user.groups.contains(&"system:unauthenticated")
}

fn allowed(e: &AuditEvent<'_>) -> bool {
    e.decision() == Some("allow") || e.succeeded()
}

/// An IP network from a threat list line (`203.0.113.0/24`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(ipnet::IpNet);

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let text = text.trim();
        let net = text
            .parse::<ipnet::IpNet>()
            .ok()
            .or_else(|| text.parse::<IpAddr>().ok().map(ipnet::IpNet::from))?;
        Some(Cidr(net))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

/// The deterministic GuardDuty detectors.
#[derive(Debug, Default)]
pub struct GuardDuty {
    /// A customer threat list (`MaliciousIPCaller.Custom`).
    pub threat_list: Vec<Cidr>,
}

/// A GuardDuty-typed finding: `<prefix>:Kubernetes/<kind>`, the prefix being the tactic
/// (`Discovery`, …) or `Policy` for the policy findings.
#[allow(clippy::too_many_arguments)] // one finding's fields, each distinct
fn gd(
    e: &AuditEvent<'_>,
    prefix: &str,
    kind: &str,
    tactic: Tactic,
    severity: Severity,
    message: String,
    remediation: &str,
) -> Finding {
    let id = format!("{prefix}:Kubernetes/{kind}");
    Finding::new(id.clone(), Family::GuardDuty, severity, tactic, id, message, remediation, e)
}

fn subjects(obj: &Json) -> impl Iterator<Item = (&str, &str, &str)> {
    obj.get("subjects").and_then(Json::as_array).into_iter().flatten().map(|s| {
        let f = |k: &str| s.get(k).and_then(Json::as_str).unwrap_or_default();
        (f("kind"), f("name"), f("namespace"))
    })
}

impl GuardDuty {
    /// Findings for one completed (or, for a pod session, started) event.
    pub fn observe(&self, e: &AuditEvent<'_>, out: &mut Vec<Finding>) {
        let stage = e.stage().unwrap_or("ResponseComplete");
        let exec = e.resource() == Some("pods") && matches!(e.subresource(), Some("exec" | "attach"));
        // Long-running calls are judged when they start (their ResponseComplete comes when the
        // session ends); everything else when complete. Events without a stage (partial
        // exports) count as complete.
        let judged = if exec {
            e.session_start || (stage == "ResponseComplete" && e.code() != Some(101))
        } else {
            stage == "ResponseComplete"
        };
        if !judged {
            return;
        }
        let user = e.username().unwrap_or("<unknown>");
        let ip = e.source_ip().unwrap_or("<unknown>");
        // Both tactic-based types need an anonymous caller or a threat list: only then is the
        // call classified.
        let anonymous_caller = anonymous(e);
        if (anonymous_caller || !self.threat_list.is_empty())
            && let Some(tactic) = tactic_of(e)
        {
            if anonymous_caller
                && allowed(e)
                && !matches!(
                    tactic,
                    Tactic::Execution
                        | Tactic::PrivilegeEscalation
                        | Tactic::Collection
                        | Tactic::InitialAccess
                        | Tactic::LateralMovement
                )
            {
                let severity = if tactic == Tactic::Discovery { Severity::Medium } else { Severity::High };
                out.push(gd(
                    e,
                    tactic.guardduty(),
                    "SuccessfulAnonymousAccess",
                    tactic,
                    severity,
                    format!("unauthenticated {} {} succeeded from {ip}", e.verb().unwrap_or_default(), e.uri().unwrap_or_default()),
                    "Remove bindings that grant system:anonymous or system:unauthenticated anything (kubectl get clusterrolebindings,rolebindings -A -o wide | grep -E 'system:(anonymous|unauthenticated)'), and disable anonymous auth where possible.",
                ));
            } else if !anonymous_caller
                && !self.threat_list.is_empty()
                && let Some(addr) = e.source_ip().and_then(|ip| ip.parse::<IpAddr>().ok())
                && self.threat_list.iter().any(|c| c.contains(addr))
                && matches!(
                    tactic,
                    Tactic::CredentialAccess
                        | Tactic::DefenseEvasion
                        | Tactic::Discovery
                        | Tactic::Impact
                        | Tactic::Persistence
                )
            {
                let severity = if matches!(tactic, Tactic::Discovery | Tactic::Persistence) {
                    Severity::Medium
                } else {
                    Severity::High
                };
                out.push(gd(
                    e,
                    tactic.guardduty(),
                    "MaliciousIPCaller.Custom",
                    tactic,
                    severity,
                    format!("{user} called {} {} from {ip}, which is on your threat list", e.verb().unwrap_or_default(), e.uri().unwrap_or_default()),
                    "Treat the principal's credentials as compromised: revoke them (aws-auth/access entry, IAM keys), review what it did, and block the address at the endpoint (publicAccessCidrs).",
                ));
            }
        }
        if exec && e.namespace() == Some("kube-system") && allowed(e) {
            let command = e.query_params("command").join(" ");
            out.push(gd(
                e,
                "Execution",
                "ExecInKubeSystemPod",
                Tactic::Execution,
                Severity::Medium,
                format!("{user} ran `{command}` in kube-system/{} from {ip}", e.name().unwrap_or_default()),
                "Confirm the exec was expected; if not, rotate the user's credentials and inspect the pod. Restrict pods/exec in kube-system to break-glass roles.",
            ));
        }
        if stage != "ResponseComplete" || !e.succeeded() {
            return;
        }
        let verb = e.verb().unwrap_or_default();
        let write = matches!(verb, "create" | "update" | "patch");
        match e.resource() {
            Some("rolebindings" | "clusterrolebindings") if write => {
                let Some(obj) = e.object() else { return };
                let role = obj.at("/roleRef/name").and_then(Json::as_str).unwrap_or_default();
                let binding =
                    e.name().or_else(|| obj.at("/metadata/name").and_then(Json::as_str)).unwrap_or_default();
                if matches!(role, "cluster-admin" | "admin")
                    && subjects(obj).any(|(kind, name, _)| kind == "ServiceAccount" && name == "default")
                {
                    out.push(gd(
                        e,
                        "Policy",
                        "AdminAccessToDefaultServiceAccount",
                        Tactic::PrivilegeEscalation,
                        Severity::High,
                        format!("{user} bound the default service account to {role} through {binding}"),
                        "Remove the default service account from the binding; give workloads dedicated service accounts with least privilege, and set automountServiceAccountToken: false on default.",
                    ));
                }
                if subjects(obj).any(|(kind, name, _)| {
                    (kind == "User" && name == "system:anonymous")
                        || (kind == "Group" && name == "system:unauthenticated")
                }) {
                    out.push(gd(
                        e,
                        "Policy",
                        "AnonymousAccessGranted",
                        Tactic::Persistence,
                        Severity::High,
                        format!("{user} granted {role} to unauthenticated users through {binding}"),
                        "Delete the binding (or remove the system:anonymous / system:unauthenticated subject) and review who created it.",
                    ));
                }
            }
            Some("services") if write => {
                let Some(obj) = e.object() else { return };
                let lb = obj.at("/spec/type").and_then(Json::as_str) == Some("LoadBalancer");
                let annotations = obj.at("/metadata/annotations");
                let internal = annotations.is_some_and(|a| {
                    a.get("service.beta.kubernetes.io/aws-load-balancer-scheme").and_then(Json::as_str)
                        == Some("internal")
                        || a.get("service.beta.kubernetes.io/aws-load-balancer-internal")
                            .and_then(Json::as_str)
                            == Some("true")
                });
                let restricted = obj
                    .at("/spec/loadBalancerSourceRanges")
                    .and_then(Json::as_array)
                    .is_some_and(|r| !r.is_empty() && r.iter().all(|c| c != "0.0.0.0/0" && c != "::/0"));
                if !lb || internal || restricted {
                    return;
                }
                let name = obj.at("/metadata/name").and_then(Json::as_str).or(e.name()).unwrap_or_default();
                let ns = e.namespace().unwrap_or_default();
                let selects = |app: &str| {
                    obj.at("/spec/selector")
                        .and_then(Json::as_object)
                        .is_some_and(|s| s.iter().any(|(_, v)| v == app))
                };
                let (kind, what) = if ns == "kubernetes-dashboard"
                    || name.contains("kubernetes-dashboard")
                    || selects("kubernetes-dashboard")
                {
                    ("ExposedDashboard", "the Kubernetes dashboard")
                } else if (ns == "kubeflow"
                    && (name.contains("centraldashboard") || selects("centraldashboard")))
                    || (ns == "istio-system" && name == "istio-ingressgateway")
                {
                    ("KubeflowDashboardExposed", "the Kubeflow dashboard")
                } else {
                    return;
                };
                out.push(gd(
                    e,
                    "Policy",
                    kind,
                    Tactic::InitialAccess,
                    Severity::Medium,
                    format!("{user} exposed {what} to the internet: Service {ns}/{name} is a public LoadBalancer"),
                    "Make the Service ClusterIP (reach the dashboard with kubectl port-forward), or an internal load balancer with loadBalancerSourceRanges.",
                ));
            }
            Some(
                "pods" | "deployments" | "daemonsets" | "statefulsets" | "replicasets" | "jobs" | "cronjobs",
            ) if write && e.subresource().is_none() => {
                let Some(obj) = e.object() else { return };
                let Some(spec) = crate::workload::pod_spec(obj) else { return };
                let mounts = crate::workload::PodView::of(spec).sensitive_writable_mounts();
                if !mounts.is_empty() {
                    out.push(gd(
                        e,
                        "Persistence",
                        "ContainerWithSensitiveMount",
                        Tactic::Persistence,
                        Severity::Medium,
                        format!(
                            "{user} deployed {} {}/{} with writable host mounts: {}",
                            e.resource().unwrap_or_default(),
                            e.namespace().unwrap_or_default(),
                            obj.at("/metadata/name").and_then(Json::as_str).or(e.name()).unwrap_or_default(),
                            mounts.join(", ")
                        ),
                        "Remove the hostPath volume or mount it readOnly; enforce Pod Security baseline (which forbids hostPath) on the namespace.",
                    ));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.77".parse().unwrap()));
        assert!(!c.contains("203.0.114.1".parse().unwrap()));
        assert!(Cidr::parse("198.51.100.7").unwrap().contains("198.51.100.7".parse().unwrap()));
        assert!(!Cidr::parse("198.51.100.7").unwrap().contains("198.51.100.8".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(!v6.contains("203.0.113.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("nonsense").is_none());
        assert!(Cidr::parse("10.0.0.0/33").is_none());
    }
}
