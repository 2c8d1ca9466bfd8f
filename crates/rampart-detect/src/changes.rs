//! Changes and calls that matter whoever makes them (EKS Best Practices detective queries and
//! the public rule sets of spec §8): aws-auth edits (with the ARNs added and any
//! `system:masters` grant), admission webhook changes, RBAC changes graded by what they grant,
//! exec commands that look like an attack, impersonation of privileged identities, token
//! requests, CSR approvals, kubelet proxying, deleted events and weakened Pod Security labels.

use std::collections::BTreeSet;

use crate::json::{Json, JsonContainerTrait, JsonExt, JsonValueTrait};

use crate::baseline::SHELL_IDIOMS;
use crate::event::AuditEvent;
use crate::finding::{Finding, Severity, Tactic};

/// `create` → `created`, `patch` → `patched`.
fn past(verb: &str) -> String {
    match verb {
        "create" | "update" | "delete" => format!("{verb}d"),
        "patch" => "patched".into(),
        other => format!("{other}ed"),
    }
}

/// `(arn, groups)` of an aws-auth ConfigMap body.
fn aws_auth_entries(obj: Option<&Json>) -> BTreeSet<(String, String)> {
    let data = obj.and_then(|o| o.get("data"));
    let text = |key: &str| data.and_then(|d| d.get(key)).and_then(Json::as_str);
    let (mappings, _) = crate::aws_auth::mappings(text("mapRoles"), text("mapUsers"));
    mappings.into_iter().map(|m| (m.arn, m.groups.join(","))).collect()
}

/// The identity kube-controller-manager's ClusterRole aggregation runs as
/// (`--use-service-account-credentials`, as clusters run it).
const AGGREGATION_CONTROLLER: &str = "system:serviceaccount:kube-system:clusterrole-aggregation-controller";

const SUSPICIOUS_EXEC: [&str; 8] = [
    "169.254.169.254",
    "/var/run/secrets",
    "/etc/kubernetes",
    "curl ",
    "wget ",
    "base64 -d",
    "/root/.aws",
    "kubectl ",
];

/// Rampart's point detections; remembers the last aws-auth it saw, to report what a change added.
#[derive(Debug)]
pub struct Changes {
    aws_auth: Option<BTreeSet<(String, String)>>,
    /// Findings below this severity would be dropped: the ones graded late (RBAC changes)
    /// are not built at all.
    min_severity: Severity,
}

impl Changes {
    pub fn new(min_severity: Severity) -> Self {
        Changes { aws_auth: None, min_severity }
    }

    pub fn observe(&mut self, e: &AuditEvent<'_>, out: &mut Vec<Finding>) {
        observe(e, out, &mut self.aws_auth, self.min_severity);
    }
}

fn observe(
    e: &AuditEvent<'_>,
    out: &mut Vec<Finding>,
    last_aws_auth: &mut Option<BTreeSet<(String, String)>>,
    min_severity: Severity,
) {
    let stage = e.stage().unwrap_or("ResponseComplete");
    let user = e.username().unwrap_or("<unknown>");
    let verb = e.verb().unwrap_or_default();
    let resource = e.resource().unwrap_or_default();
    let name = e.name().unwrap_or_default();
    if e.subresource() == Some("exec") && e.session_start && e.decision() != Some("forbid") {
        let command = e.query_params("command").join(" ");
        let hits: Vec<&str> = SHELL_IDIOMS
            .iter()
            .chain(SUSPICIOUS_EXEC.iter())
            .copied()
            .filter(|p| command.contains(p))
            .collect();
        if !hits.is_empty() {
            out.push(Finding::rampart(e, "SuspiciousExecCommand", Severity::High, Tactic::Execution,
                format!("{user} {} `{command}` in {}/{name} ({})",
                    if e.code().is_some_and(|c| c >= 400) { "tried to run" } else { "ran" },
                    e.namespace().unwrap_or_default(), hits.join(", ")),
                "Commands that reach the instance metadata service, read service-account tokens or open shells to the network are attack tradecraft: isolate the pod and rotate the credentials it holds."));
        }
        return;
    }
    if stage != "ResponseComplete" {
        return;
    }
    if let Some(imp) = e.impersonated_user.as_ref() {
        let as_user = imp.username.unwrap_or_default();
        let privileged = as_user == "system:admin"
            || as_user.starts_with("system:serviceaccount:kube-system:")
            || (as_user.starts_with("system:") && !as_user.starts_with("system:serviceaccount:"))
            || imp.groups.contains(&"system:masters");
        if privileged && e.succeeded() {
            out.push(Finding::rampart(e, "PrivilegedImpersonation", Severity::High, Tactic::PrivilegeEscalation,
                format!("{user} acted as {as_user} ({verb} {})", e.uri().unwrap_or_default()),
                "Impersonating system identities bypasses your RBAC boundaries: restrict the impersonate verb to break-glass roles."));
        }
    }
    if !e.succeeded() {
        return;
    }
    let write = matches!(verb, "create" | "update" | "patch" | "delete");
    match resource {
        "configmaps"
            if name == "aws-auth"
                && e.namespace() == Some("kube-system")
                && write
                && user != "eks:kms-storage-migrator" =>
        {
            let after = aws_auth_entries(e.response_object().or(e.request_object()));
            let before = last_aws_auth.replace(after.clone()).unwrap_or_default();
            let added: Vec<String> = after
                .difference(&before)
                .filter(|(arn, _)| !arn.is_empty())
                .map(|(arn, groups)| format!("{arn} → [{groups}]"))
                .collect();
            let masters = after.difference(&before).any(|(_, g)| g.split(',').any(|g| g == "system:masters"));
            let severity = if masters { Severity::Critical } else { Severity::High };
            let detail =
                if added.is_empty() { String::new() } else { format!("; added: {}", added.join("; ")) };
            out.push(Finding::rampart(e, "AwsAuthModified", severity, Tactic::Persistence,
                format!("{user} {} kube-system/aws-auth{detail}{}", past(verb), if masters { " (a new system:masters mapping)" } else { "" }),
                "aws-auth decides who is cluster admin: confirm the change, remove unknown ARNs, and move to EKS access entries (authenticationMode API) so changes go through IAM and CloudTrail."));
        }
        "validatingwebhookconfigurations" | "mutatingwebhookconfigurations" if write => {
            let evasion = verb == "delete" || (resource.starts_with("validating") && verb != "create");
            let (severity, tactic) = if evasion {
                (Severity::High, Tactic::DefenseEvasion)
            } else {
                (Severity::Medium, Tactic::Persistence)
            };
            out.push(Finding::rampart(e, "AdmissionWebhookChanged", severity, tactic,
                format!("{user} {} {} {name}", past(verb), resource.trim_end_matches('s')),
                "Admission webhooks see or change every object: confirm the change, and check that policy webhooks (Rampart, Kyverno, Gatekeeper) still have their configuration."));
        }
        // kube-controller-manager's aggregation controller rewrites admin/edit/view (and any
        // aggregated ClusterRole) whenever a labelled ClusterRole appears or changes. The change
        // that matters is that ClusterRole's, reported for whoever made it; the rewrite follows
        // from it.
        "clusterroles" if user == AGGREGATION_CONTROLLER && matches!(verb, "update" | "patch") => {}
        "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings" if write => {
            let mut why = Vec::new();
            let mut severity = Severity::Info;
            if name.starts_with("system:") {
                why.push("a system: object".to_owned());
                severity = Severity::Medium;
            }
            if let Some(obj) = e.object().filter(|_| verb != "delete") {
                let role = obj.at("/roleRef/name").and_then(Json::as_str).unwrap_or_default();
                if matches!(role, "cluster-admin" | "admin") {
                    why.push(format!("grants {role}"));
                    severity = Severity::High;
                }
                for s in obj.get("subjects").and_then(Json::as_array).into_iter().flatten() {
                    let n = s.get("name").and_then(Json::as_str).unwrap_or_default();
                    if matches!(n, "system:anonymous" | "system:unauthenticated" | "system:authenticated")
                        || (n == "default" && s.get("kind").and_then(Json::as_str) == Some("ServiceAccount"))
                    {
                        why.push(format!("binds {n}"));
                        severity = Severity::High;
                    }
                }
                for rule in obj.get("rules").and_then(Json::as_array).into_iter().flatten() {
                    let list = |k: &str| rule.items(k).iter().filter_map(Json::as_str);
                    let risky: Vec<&str> = list("verbs")
                        .filter(|v| matches!(*v, "*" | "escalate" | "bind" | "impersonate"))
                        .chain(list("resources").filter(|r| {
                            matches!(
                                *r,
                                "*" | "secrets" | "pods/exec" | "nodes/proxy" | "serviceaccounts/token"
                            )
                        }))
                        .collect();
                    if !risky.is_empty() {
                        why.push(format!("allows {}", risky.join(",")));
                        severity = severity.min(Severity::Medium);
                    }
                }
            }
            if severity > min_severity {
                return;
            }
            let reason = if why.is_empty() { String::new() } else { format!(" ({})", why.join("; ")) };
            out.push(Finding::rampart(e, "RbacChanged", severity, Tactic::PrivilegeEscalation,
                format!("{user} {} {} {}{name}{reason}", past(verb), resource.trim_end_matches('s'), e.namespace().map(|n| format!("{n}/")).unwrap_or_default()),
                "Review RBAC changes against your change process; `rampart who-can` shows who holds a permission now."));
        }
        "serviceaccounts"
            if e.subresource() == Some("token") && verb == "create" && !user.starts_with("system:") =>
        {
            out.push(Finding::rampart(e, "TokenRequested", Severity::Medium, Tactic::CredentialAccess,
                format!("{user} minted a token for service account {}/{name}", e.namespace().unwrap_or_default()),
                "A person minting service-account tokens can act as that workload: confirm it, and restrict create on serviceaccounts/token."));
        }
        "certificatesigningrequests" if e.subresource() == Some("approval") && verb != "get" => {
            out.push(Finding::rampart(e, "CertificateApproved", Severity::Medium, Tactic::CredentialAccess,
                format!("{user} approved certificate signing request {name}"),
                "An approved CSR is a long-lived client credential: check its subject and groups (kubectl get csr NAME -o yaml)."));
        }
        "nodes" if e.subresource() == Some("proxy") => {
            out.push(Finding::rampart(e, "KubeletProxied", Severity::Medium, Tactic::LateralMovement,
                format!("{user} reached the kubelet of {name} through the API server ({verb} {})", e.uri().unwrap_or_default()),
                "nodes/proxy gives kubelet API access (exec in any pod of the node): grant it only to monitoring that needs it."));
        }
        "events" if matches!(verb, "delete" | "deletecollection") && !user.starts_with("system:") => {
            out.push(Finding::rampart(e, "EventsDeleted", Severity::Medium, Tactic::DefenseEvasion,
                format!("{user} deleted events in {}", e.namespace().unwrap_or("all namespaces")),
                "Deleting events hides activity: find out what happened around this time from the audit log itself."));
        }
        "namespaces" if matches!(verb, "update" | "patch") => {
            let labels = e.object().and_then(|o| o.at("/metadata/labels"));
            if labels.and_then(|l| l.get("pod-security.kubernetes.io/enforce")).and_then(Json::as_str)
                == Some("privileged")
            {
                out.push(Finding::rampart(e, "PodSecurityWeakened", Severity::Medium, Tactic::DefenseEvasion,
                    format!("{user} set namespace {name} to Pod Security privileged"),
                    "Privileged namespaces admit any pod: restore baseline or restricted unless the namespace holds node agents."));
            }
        }
        _ => {}
    }
}
