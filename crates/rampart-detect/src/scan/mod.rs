//! Posture scan of a cluster snapshot: the CIS Amazon EKS Benchmark 1.8.0 checks that need no
//! node access (sections 2, 4 and 5, from API objects and `describe-cluster`), plus Rampart's:
//! RBAC risk, the Pod Security level of every workload against its namespace, aws-auth
//! hygiene, and control-plane logging. Each check passes, fails, warns (manual checks with
//! evidence) or is skipped (what it needs is not in the snapshot); the score is Polaris's
//! formula over them.

pub mod snapshot;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::finding::Severity;
use rampart_types::source_lines::Place;
use snapshot::{Snapshot, label, meta};

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Skip,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// `CIS-EKS 4.1.1` or `rampart/rbac-risk`.
    pub id: String,
    pub title: String,
    pub status: Status,
    /// How bad a failure is.
    pub severity: Severity,
    /// The objects that fail (or the evidence for a warning).
    pub offenders: Vec<String>,
    /// Where each offender's object starts (`file:line`), one per offender; empty when no
    /// offender names an object read from a file (a snapshot listed from the cluster).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub places: Vec<Option<Place>>,
    pub remediation: String,
}

/// The scan's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub results: Vec<CheckResult>,
    /// `pass*2 / (pass*2 + warn + fail*2) * 100` (Polaris); 100 when nothing was checked.
    pub score: u32,
    pub passed: usize,
    pub failed: usize,
    pub warned: usize,
    pub skipped: usize,
}

/// Scan settings.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Approved registries for CIS 5.1.4 (`docker.io`, `123456789012.dkr.ecr.eu-west-1.amazonaws.com`);
    /// empty skips the check.
    pub allowed_registries: Vec<String>,
}

const WORKLOAD_KINDS: [&str; 7] =
    ["Pod", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob"];
const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];
/// Built-in roles that legitimately hold broad rights (excluded from the RBAC minimisation checks).
const BUILTIN_ROLES: [&str; 4] = ["cluster-admin", "admin", "edit", "view"];

/// `(label, namespace, pod spec, metadata of the template)` of a top-level workload.
type Workload<'s> = (String, &'s str, &'s Value, Option<&'s Value>);

struct Ctx<'s> {
    s: &'s Snapshot,
    options: &'s ScanOptions,
    /// Every top-level workload, collected once for the checks that walk them.
    workloads: Vec<Workload<'s>>,
    out: Vec<CheckResult>,
}

fn result(
    id: &str,
    title: &str,
    severity: Severity,
    offenders: Vec<String>,
    fail: Status,
    remediation: &str,
) -> CheckResult {
    CheckResult {
        id: id.into(),
        title: title.into(),
        status: if offenders.is_empty() { Status::Pass } else { fail },
        severity,
        offenders,
        places: Vec::new(),
        remediation: remediation.into(),
    }
}

fn skipped(id: &str, title: &str, why: &str) -> CheckResult {
    CheckResult {
        id: id.into(),
        title: title.into(),
        status: Status::Skip,
        severity: Severity::Info,
        offenders: vec![],
        places: Vec::new(),
        remediation: why.into(),
    }
}

fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
}

fn has(list: &[&str], v: &str) -> bool {
    list.iter().any(|x| *x == "*" || *x == v)
}

/// A predicate over one RBAC rule's verbs, resources and API groups.
type RulePredicate = Box<dyn Fn(&[&str], &[&str], &[&str]) -> bool>;

/// A role's rules, and who is bound to it.
struct RoleInfo<'s> {
    obj: &'s Value,
    name: &'s str,
    rules: Vec<&'s Value>,
}

impl<'s> Ctx<'s> {
    fn roles(&self) -> Vec<RoleInfo<'s>> {
        self.s
            .of_kind("Role")
            .chain(self.s.of_kind("ClusterRole"))
            .map(|o| RoleInfo {
                obj: o,
                name: meta(o, "name"),
                rules: o
                    .get("rules")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().collect())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// `subject (via binding)` for every subject bound to this role.
    fn bound(&self, role: &RoleInfo<'_>) -> Vec<String> {
        let kind = role.obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let ns = meta(role.obj, "namespace");
        self.s
            .of_kind("RoleBinding")
            .chain(self.s.of_kind("ClusterRoleBinding"))
            .filter(|b| {
                b.pointer("/roleRef/name").and_then(Value::as_str) == Some(role.name)
                    && b.pointer("/roleRef/kind").and_then(Value::as_str) == Some(kind)
                    && (kind == "ClusterRole" || meta(b, "namespace") == ns)
            })
            .flat_map(|b| {
                b.get("subjects").and_then(Value::as_array).into_iter().flatten().map(move |s| {
                    let f = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or_default();
                    format!("{} {} via {}", f("kind"), f("name"), label(b))
                })
            })
            .collect()
    }

    /// Roles (not system:, not the built-in broad roles) with a rule matching `pred`, with
    /// their bound subjects.
    fn roles_where(&self, pred: impl Fn(&[&str], &[&str], &[&str]) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        for role in self.roles() {
            if role.name.starts_with("system:")
                || role.name.starts_with("eks:")
                || BUILTIN_ROLES.contains(&role.name)
            {
                continue;
            }
            let hit = role
                .rules
                .iter()
                .any(|r| pred(&strs(r.get("verbs")), &strs(r.get("resources")), &strs(r.get("apiGroups"))));
            if hit {
                let bound = self.bound(&role);
                let who = if bound.is_empty() { "not bound".to_owned() } else { bound.join("; ") };
                out.push(format!("{} ({who})", label(role.obj)));
            }
        }
        out
    }

    fn workloads(&self) -> &[Workload<'s>] {
        &self.workloads
    }

    fn cluster(&self) -> Option<&'s Value> {
        self.s.cluster.as_ref()
    }
}

/// Every top-level workload: pods owned by a controller are left to the controller.
fn collect_workloads(s: &Snapshot) -> Vec<Workload<'_>> {
    let mut out = Vec::new();
    for kind in WORKLOAD_KINDS {
        for o in s.of_kind(kind) {
            let owned = o
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|r| !r.is_empty());
            if owned && matches!(kind, "Pod" | "ReplicaSet" | "Job") {
                continue;
            }
            let Some(template) = rampart_types::workload::pod_template(o) else { continue };
            let Some(spec) = template.get("spec") else { continue };
            out.push((label(o), meta(o, "namespace"), spec, template.get("metadata")));
        }
    }
    out
}

/// Every container of a pod spec (regular, init, ephemeral).
fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["containers", "initContainers", "ephemeralContainers"]
        .into_iter()
        .filter_map(|k| spec.get(k).and_then(Value::as_array))
        .flatten()
}

/// Run every check.
pub fn scan(snapshot: &Snapshot, options: &ScanOptions) -> Report {
    let mut c = Ctx { s: snapshot, options, workloads: collect_workloads(snapshot), out: Vec::new() };
    cluster_checks(&mut c);
    rbac_checks(&mut c);
    pod_checks(&mut c);
    network_and_secret_checks(&mut c);
    network_policy_checks(&mut c);
    rampart_checks(&mut c);
    for result in &mut c.out {
        let places: Vec<Option<Place>> =
            result.offenders.iter().map(|o| snapshot.place_named(o).cloned()).collect();
        if places.iter().any(Option::is_some) {
            result.places = places;
        }
    }
    let count = |st: Status| c.out.iter().filter(|r| r.status == st).count();
    let (passed, failed, warned, skipped) =
        (count(Status::Pass), count(Status::Fail), count(Status::Warn), count(Status::Skip));
    let denominator = passed * 2 + warned + failed * 2;
    let score = (passed * 2 * 100).checked_div(denominator).map_or(100, |s| s as u32);
    Report { results: c.out, score, passed, failed, warned, skipped }
}

fn cluster_checks(c: &mut Ctx<'_>) {
    let needs =
        "needs the cluster description (aws eks describe-cluster --name NAME > cluster.json in the snapshot)";
    let Some(cluster) = c.cluster() else {
        for (id, title) in [
            ("CIS-EKS 2.1.1", "Audit logs enabled"),
            ("CIS-EKS 4.1.7", "Cluster Access Manager API (access entries) in use"),
            ("CIS-EKS 5.3.1", "Secrets encrypted with a KMS key"),
            ("CIS-EKS 5.4.1", "Control-plane endpoint access restricted"),
            ("CIS-EKS 5.4.2", "Private endpoint enabled, public access disabled"),
            ("CIS-EKS 5.4.3", "Public endpoint not open to 0.0.0.0/0"),
            ("rampart/control-plane-logging", "All control-plane log types enabled"),
        ] {
            c.out.push(skipped(id, title, needs));
        }
        return;
    };
    let enabled_types: BTreeSet<&str> = cluster
        .pointer("/logging/clusterLogging")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|l| l.get("enabled").and_then(Value::as_bool) == Some(true))
        .flat_map(|l| strs(l.get("types")))
        .collect();
    let off = |t: &str| if enabled_types.contains(t) { vec![] } else { vec![format!("{t} logging is off")] };
    c.out.push(result("CIS-EKS 2.1.1", "Audit logs enabled", Severity::High, off("audit"), Status::Fail,
        "aws eks update-cluster-config --name NAME --logging '{\"clusterLogging\":[{\"types\":[\"audit\"],\"enabled\":true}]}'; then analyse them with `rampart audit`."));
    let missing: Vec<String> = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
        .iter()
        .flat_map(|t| off(t))
        .collect();
    c.out.push(result("rampart/control-plane-logging", "All control-plane log types enabled", Severity::Medium, missing, Status::Fail,
        "Enable api, audit, authenticator, controllerManager and scheduler logging (aws eks update-cluster-config --logging …)."));
    let mode =
        cluster.pointer("/accessConfig/authenticationMode").and_then(Value::as_str).unwrap_or("CONFIG_MAP");
    let mode_off = if mode == "CONFIG_MAP" { vec![format!("authenticationMode is {mode}")] } else { vec![] };
    c.out.push(result("CIS-EKS 4.1.7", "Cluster Access Manager API (access entries) in use", Severity::Medium, mode_off, Status::Fail,
        "aws eks update-cluster-config --name NAME --access-config authenticationMode=API_AND_CONFIG_MAP, then move aws-auth entries to access entries."));
    let kms = cluster.get("encryptionConfig").and_then(Value::as_array).into_iter().flatten().any(|e| {
        strs(e.get("resources")).contains(&"secrets")
            && e.pointer("/provider/keyArn").and_then(Value::as_str).is_some_and(|k| !k.is_empty())
    });
    c.out.push(result("CIS-EKS 5.3.1", "Secrets encrypted with a KMS key", Severity::High,
        if kms { vec![] } else { vec!["no encryptionConfig for secrets with a KMS key".into()] }, Status::Fail,
        "aws eks associate-encryption-config --cluster-name NAME --encryption-config '[{\"resources\":[\"secrets\"],\"provider\":{\"keyArn\":\"KEY_ARN\"}}]'"));
    let vpc = cluster.get("resourcesVpcConfig");
    let flag = |k: &str| vpc.and_then(|v| v.get(k)).and_then(Value::as_bool).unwrap_or(false);
    let (private, public) = (flag("endpointPrivateAccess"), flag("endpointPublicAccess"));
    let open_world = strs(vpc.and_then(|v| v.get("publicAccessCidrs"))).contains(&"0.0.0.0/0");
    let mut restricted = Vec::new();
    if !private {
        restricted.push("endpointPrivateAccess is false".to_owned());
    }
    if public && open_world {
        restricted.push("the public endpoint accepts 0.0.0.0/0".to_owned());
    }
    c.out.push(result("CIS-EKS 5.4.1", "Control-plane endpoint access restricted", Severity::Medium, restricted, Status::Fail,
        "Enable private endpoint access and limit publicAccessCidrs to your networks (aws eks update-cluster-config --resources-vpc-config …)."));
    let mut private_only = Vec::new();
    if !private {
        private_only.push("endpointPrivateAccess is false".to_owned());
    }
    if public {
        private_only.push("endpointPublicAccess is true".to_owned());
    }
    c.out.push(result("CIS-EKS 5.4.2", "Private endpoint enabled, public access disabled", Severity::Medium, private_only, Status::Fail,
        "aws eks update-cluster-config --resources-vpc-config endpointPrivateAccess=true,endpointPublicAccess=false"));
    c.out.push(result(
        "CIS-EKS 5.4.3",
        "Public endpoint not open to 0.0.0.0/0",
        Severity::High,
        if public && open_world {
            vec!["endpointPublicAccess with publicAccessCidrs 0.0.0.0/0".into()]
        } else {
            vec![]
        },
        Status::Fail,
        "Restrict publicAccessCidrs, or disable the public endpoint.",
    ));
}

fn rbac_checks(c: &mut Ctx<'_>) {
    let mut admins = Vec::new();
    for b in c.s.of_kind("ClusterRoleBinding") {
        if b.pointer("/roleRef/name").and_then(Value::as_str) != Some("cluster-admin") {
            continue;
        }
        for s in b.get("subjects").and_then(Value::as_array).into_iter().flatten() {
            let f = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or_default();
            if !(f("kind") == "Group" && matches!(f("name"), "system:masters" | "system:nodes")) {
                admins.push(format!("{} {} via {}", f("kind"), f("name"), label(b)));
            }
        }
    }
    c.out.push(result(
        "CIS-EKS 4.1.1",
        "cluster-admin only where required",
        Severity::High,
        admins,
        Status::Fail,
        "Bind narrower roles; keep cluster-admin for break-glass (`rampart lookup` lists who holds what).",
    ));
    let reads_secrets = |v: &[&str], r: &[&str], g: &[&str]| {
        has(g, "") && has(r, "secrets") && ["get", "list", "watch"].iter().any(|x| has(v, x))
    };
    c.out.push(result("CIS-EKS 4.1.2", "Minimize access to secrets", Severity::Medium, c.roles_where(reads_secrets), Status::Fail,
        "Limit secret reads to the secrets a workload needs (resourceNames), or use an external secret store."));
    let wildcard =
        |v: &[&str], r: &[&str], g: &[&str]| v.contains(&"*") || r.contains(&"*") || g.contains(&"*");
    c.out.push(result(
        "CIS-EKS 4.1.3",
        "Minimize wildcard use in Roles and ClusterRoles",
        Severity::Medium,
        c.roles_where(wildcard),
        Status::Fail,
        "List the verbs, resources and API groups needed instead of `*`.",
    ));
    let creates_pods = |v: &[&str], r: &[&str], g: &[&str]| has(g, "") && has(r, "pods") && has(v, "create");
    c.out.push(result("CIS-EKS 4.1.4", "Minimize access to create pods", Severity::Medium, c.roles_where(creates_pods), Status::Fail,
        "Creating pods is creating arbitrary workloads (and reading any secret they can mount): grant it to deployers only."));
    let mut defaults = Vec::new();
    for sa in c.s.of_kind("ServiceAccount").filter(|sa| meta(sa, "name") == "default") {
        if sa.get("automountServiceAccountToken").and_then(Value::as_bool) != Some(false) {
            defaults.push(format!("{} does not set automountServiceAccountToken: false", label(sa)));
        }
    }
    for (name, ns, spec, _) in c.workloads() {
        let sa = spec
            .get("serviceAccountName")
            .or_else(|| spec.get("serviceAccount"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        if sa == "default" && !SYSTEM_NAMESPACES.contains(ns) {
            defaults.push(format!("{name} runs as the default service account"));
        }
    }
    c.out.push(result("CIS-EKS 4.1.5", "Default service accounts not actively used", Severity::Low, defaults, Status::Fail,
        "Give workloads their own service accounts and set automountServiceAccountToken: false on each namespace's default."));
    let automount: BTreeMap<(String, String), bool> =
        c.s.of_kind("ServiceAccount")
            .filter_map(|sa| {
                Some((
                    (meta(sa, "namespace").to_owned(), meta(sa, "name").to_owned()),
                    sa.get("automountServiceAccountToken")?.as_bool()?,
                ))
            })
            .collect();
    let mut mounted = Vec::new();
    for (name, ns, spec, _) in c.workloads() {
        if SYSTEM_NAMESPACES.contains(ns) {
            continue;
        }
        let sa = spec.get("serviceAccountName").and_then(Value::as_str).unwrap_or("default");
        let off = match spec.get("automountServiceAccountToken").and_then(Value::as_bool) {
            Some(v) => !v,
            None => automount.get(&(ns.to_string(), sa.to_owned())) == Some(&false),
        };
        if !off {
            mounted.push(name.clone());
        }
    }
    c.out.push(result("CIS-EKS 4.1.6", "Service account tokens mounted only where necessary", Severity::Low, mounted, Status::Fail,
        "Set automountServiceAccountToken: false on pods (or their service accounts) that do not call the API."));
    let manual: [(&str, &str, RulePredicate, &str); 5] = [
        (
            "CIS-EKS 4.1.8",
            "Limit use of the Bind, Impersonate and Escalate permissions",
            Box::new(|v: &[&str], _: &[&str], _: &[&str]| {
                v.iter().any(|x| matches!(*x, "*" | "bind" | "impersonate" | "escalate"))
            }),
            "These verbs bypass RBAC's escalation checks: grant them to break-glass roles only.",
        ),
        (
            "CIS-EKS 4.1.9",
            "Minimize access to create persistent volumes",
            Box::new(|v: &[&str], r: &[&str], _: &[&str]| has(r, "persistentvolumes") && has(v, "create")),
            "A hostPath persistent volume mounts the node: let only storage admins create PVs.",
        ),
        (
            "CIS-EKS 4.1.10",
            "Minimize access to the proxy sub-resource of nodes",
            Box::new(|_: &[&str], r: &[&str], _: &[&str]| has(r, "nodes/proxy")),
            "nodes/proxy reaches the kubelet API (exec in any pod): keep it for monitoring that needs it.",
        ),
        (
            "CIS-EKS 4.1.11",
            "Minimize access to webhook configuration objects",
            Box::new(|v: &[&str], r: &[&str], _: &[&str]| {
                (has(r, "validatingwebhookconfigurations") || has(r, "mutatingwebhookconfigurations"))
                    && ["create", "update", "patch", "delete"].iter().any(|x| has(v, x))
            }),
            "Whoever edits admission webhooks can switch policy off or intercept every object.",
        ),
        (
            "CIS-EKS 4.1.12",
            "Minimize access to service account token creation",
            Box::new(|v: &[&str], r: &[&str], _: &[&str]| {
                has(r, "serviceaccounts/token") && has(v, "create")
            }),
            "Minting tokens is acting as the service account: restrict create on serviceaccounts/token.",
        ),
    ];
    for (id, title, pred, remediation) in manual {
        let offenders = c.roles_where(|v, r, g| pred(v, r, g));
        c.out.push(result(id, title, Severity::Medium, offenders, Status::Warn, remediation));
    }
}

fn pod_checks(c: &mut Ctx<'_>) {
    let mut checks: Vec<(&str, &str, Severity, Vec<String>, &str)> = vec![
        (
            "CIS-EKS 4.2.1",
            "Minimize the admission of privileged containers",
            Severity::High,
            vec![],
            "Drop privileged: true; enforce Pod Security baseline on the namespace.",
        ),
        (
            "CIS-EKS 4.2.2",
            "Minimize containers sharing the host process ID namespace",
            Severity::High,
            vec![],
            "Remove hostPID: true.",
        ),
        (
            "CIS-EKS 4.2.3",
            "Minimize containers sharing the host IPC namespace",
            Severity::High,
            vec![],
            "Remove hostIPC: true.",
        ),
        (
            "CIS-EKS 4.2.4",
            "Minimize containers sharing the host network namespace",
            Severity::Medium,
            vec![],
            "Remove hostNetwork: true outside node agents.",
        ),
        (
            "CIS-EKS 4.2.5",
            "Minimize containers with allowPrivilegeEscalation",
            Severity::Medium,
            vec![],
            "Set allowPrivilegeEscalation: false (Pod Security restricted requires it).",
        ),
        (
            "CIS-EKS 4.4.1",
            "Prefer secrets as files over environment variables",
            Severity::Low,
            vec![],
            "Mount secrets as files: environment variables leak into logs, crash dumps and child processes.",
        ),
    ];
    for (name, ns, spec, _) in c.workloads() {
        // Node agents in system namespaces need host access; CIS scans exclude them in practice.
        let system = SYSTEM_NAMESPACES.contains(ns);
        let host = |k: &str| spec.get(k).and_then(Value::as_bool) == Some(true);
        let any_ctr =
            |p: &str| containers(spec).any(|ct| ct.pointer(p).and_then(Value::as_bool) == Some(true));
        if !system {
            if any_ctr("/securityContext/privileged") {
                checks[0].3.push(name.clone());
            }
            if host("hostPID") {
                checks[1].3.push(name.clone());
            }
            if host("hostIPC") {
                checks[2].3.push(name.clone());
            }
            if host("hostNetwork") {
                checks[3].3.push(name.clone());
            }
            if any_ctr("/securityContext/allowPrivilegeEscalation") {
                checks[4].3.push(name.clone());
            }
        }
        let env_secret = containers(spec).any(|ct| {
            ct.get("env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|e| e.pointer("/valueFrom/secretKeyRef").is_some())
                || ct
                    .get("envFrom")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|e| e.get("secretRef").is_some())
        });
        if env_secret {
            checks[5].3.push(name.clone());
        }
    }
    for (id, title, severity, offenders, remediation) in checks {
        c.out.push(result(id, title, severity, offenders, Status::Fail, remediation));
    }
    if c.options.allowed_registries.is_empty() {
        c.out.push(skipped(
            "CIS-EKS 5.1.4",
            "Only approved container registries",
            "give --allowed-registries to check images against them",
        ));
    } else {
        let mut offenders = Vec::new();
        for (name, _, spec, _) in c.workloads() {
            for ct in containers(spec) {
                let image = ct.get("image").and_then(Value::as_str).unwrap_or_default();
                let registry = rampart_types::workload::ImageRef::parse(image).registry;
                if !c.options.allowed_registries.iter().any(|r| r == registry) {
                    offenders.push(format!("{name}: {image}"));
                }
            }
        }
        c.out.push(result("CIS-EKS 5.1.4", "Only approved container registries", Severity::Medium, offenders, Status::Fail,
            "Pull only from approved registries, and enforce it at admission (rampart guardrails registry rules)."));
    }
}

fn network_and_secret_checks(c: &mut Ctx<'_>) {
    let cnis = ["calico", "cilium", "antrea", "weave"];
    let pods_images: Vec<String> = c
        .workloads()
        .iter()
        .flat_map(|(_, _, spec, _)| {
            containers(spec).filter_map(|ct| ct.get("image").and_then(Value::as_str)).map(str::to_owned)
        })
        .collect();
    let policy_cni = pods_images.iter().any(|i| cnis.iter().any(|c| i.contains(c)))
        || c.s.of_kind("DaemonSet").filter(|d| meta(d, "name") == "aws-node").any(|d| {
            d.to_string().contains("\"ENABLE_NETWORK_POLICY\",\"value\":\"true\"")
                || d.to_string().contains("enable-network-policy=true")
        });
    c.out.push(result(
        "CIS-EKS 4.3.1",
        "The CNI in use supports network policies",
        Severity::Medium,
        if policy_cni {
            vec![]
        } else {
            vec!["no Calico/Cilium/Antrea pods and the VPC CNI network-policy agent is not enabled".into()]
        },
        Status::Warn,
        "Enable the VPC CNI's network policy support (enableNetworkPolicy) or install a policy engine.",
    ));
    let with_policy: BTreeSet<&str> = c.s.of_kind("NetworkPolicy").map(|p| meta(p, "namespace")).collect();
    let bare: Vec<String> =
        c.s.of_kind("Namespace")
            .map(|n| meta(n, "name"))
            .filter(|n| !SYSTEM_NAMESPACES.contains(n) && !with_policy.contains(n))
            .map(|n| format!("Namespace {n}"))
            .collect();
    if c.s.of_kind("Namespace").next().is_none() {
        c.out.push(skipped(
            "CIS-EKS 4.3.2",
            "All namespaces have network policies",
            "needs Namespace objects (kubectl get ns -o yaml)",
        ));
    } else {
        c.out.push(result(
            "CIS-EKS 4.3.2",
            "All namespaces have network policies",
            Severity::Medium,
            bare,
            Status::Fail,
            "Add a default-deny NetworkPolicy to every namespace, then allow what is needed.",
        ));
    }
    let in_default: Vec<String> = c
        .s
        .objects
        .iter()
        .filter(|o| meta(o, "namespace") == "default")
        .filter(|o| {
            let (kind, name) = (o.get("kind").and_then(Value::as_str).unwrap_or_default(), meta(o, "name"));
            !matches!(
                (kind, name),
                ("Service" | "Endpoints" | "EndpointSlice", "kubernetes")
                    | ("ServiceAccount", "default")
                    | ("ConfigMap", "kube-root-ca.crt")
            ) && kind != "Event"
                && !(kind == "EndpointSlice" && name.starts_with("kubernetes"))
        })
        .map(label)
        .collect();
    c.out.push(result(
        "CIS-EKS 4.5.2",
        "The default namespace is not used",
        Severity::Low,
        in_default,
        Status::Fail,
        "Create namespaces per team or application; the default namespace escapes namespace-scoped policy.",
    ));
    let mut no_tls = Vec::new();
    for svc in c.s.of_kind("Service") {
        let lb = svc.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer");
        let https = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|p| p.get("port").and_then(Value::as_i64) == Some(443));
        let cert = svc
            .pointer("/metadata/annotations/service.beta.kubernetes.io~1aws-load-balancer-ssl-cert")
            .is_some();
        if lb && https && !cert {
            no_tls.push(label(svc));
        }
    }
    c.out.push(result(
        "CIS-EKS 5.4.5",
        "TLS on HTTPS load balancers",
        Severity::Medium,
        no_tls,
        Status::Fail,
        "Annotate with service.beta.kubernetes.io/aws-load-balancer-ssl-cert (an ACM certificate).",
    ));
}

/// The network layer's findings (rampart-netpol): what the NetworkPolicies allow, judged on
/// the snapshot's namespaces and workloads.
fn network_policy_checks(c: &mut Ctx<'_>) {
    use rampart_netpol::findings::{Gravity, findings, probes};
    let mut world = rampart_netpol::world::World::default();
    let read = world.add_objects("snapshot", c.s.objects.iter());
    if let Err(e) = read {
        c.out.push(skipped(
            "rampart/netpol",
            "NetworkPolicies can be analysed",
            &format!("a NetworkPolicy could not be read: {e}"),
        ));
        return;
    }
    if world.workloads.is_empty() {
        c.out.push(skipped(
            "rampart/netpol",
            "What the NetworkPolicies allow",
            "needs workloads and namespaces (kubectl get ns,pods,deploy,ds,sts,netpol -A -o yaml)",
        ));
        return;
    }
    world.externals = probes();
    for f in findings(&world) {
        let severity = match f.gravity {
            Gravity::High => Severity::High,
            Gravity::Medium => Severity::Medium,
            Gravity::Low => Severity::Low,
        };
        let status = if f.fails { Status::Fail } else { Status::Warn };
        c.out.push(result(f.id, f.title, severity, f.offenders, status, f.remediation));
    }
}

fn rampart_checks(c: &mut Ctx<'_>) {
    // RBAC risk through the RBAC engine (aggregated roles expanded).
    let mut world = rampart_rbac::manifest::World::default();
    let rbac_objects: Vec<&Value> =
        c.s.objects
            .iter()
            .filter(|o| {
                matches!(
                    o.get("kind").and_then(Value::as_str),
                    Some("Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding")
                )
            })
            .collect();
    let mut risks = Vec::new();
    let text = serde_json::json!({"kind": "List", "items": rbac_objects}).to_string();
    if world.add_yaml(&text, "snapshot").is_ok() {
        for r in world.authorizer().risks(None) {
            // The bootstrap bindings (system:masters, system:*) are how Kubernetes works.
            if r.via.contains("ClusterRoleBinding/system:")
                || r.via.contains("ClusterRoleBinding/cluster-admin")
                || r.subject.starts_with("Group system:masters")
            {
                continue;
            }
            risks.push(format!("{}: {} ({})", r.subject, r.flag, r.via));
        }
    }
    risks.sort();
    risks.dedup();
    c.out.push(result("rampart/rbac-risk", "No risky RBAC grants (wildcards, escalate/bind/impersonate, cluster-wide secret reads, anonymous bindings)", Severity::High, risks, Status::Fail,
        "Review each grant with `rampart who-can`/`rampart lookup`; replace wildcards and escalation verbs with specific rights."));
    c.out.push(pss_check(c));
    c.out.push(aws_auth_check(c));
    c.out.push(access_entries_check(c));
}

/// The level a pod spec satisfies, and whether it meets its namespace's enforce label.
fn pss_check(c: &Ctx<'_>) -> CheckResult {
    use rampart_guardrails::pss::{self, Level, LevelVersion, Version};
    let enforce: BTreeMap<&str, &str> =
        c.s.of_kind("Namespace")
            .filter_map(|n| {
                Some((
                    meta(n, "name"),
                    n.pointer("/metadata/labels/pod-security.kubernetes.io~1enforce")?.as_str()?,
                ))
            })
            .collect();
    let mut offenders = Vec::new();
    for (name, ns, spec, template_meta) in c.workloads() {
        let Ok(pod_spec) = serde_json::from_value::<k8s_openapi::api::core::v1::PodSpec>((*spec).clone())
        else {
            continue;
        };
        let annotations: Option<BTreeMap<String, String>> = template_meta
            .and_then(|m| m.get("annotations"))
            .and_then(|a| serde_json::from_value(a.clone()).ok());
        let view = pss::pod::PodView::new(annotations.as_ref(), &pod_spec);
        let meets = |level| pss::evaluate(&view, LevelVersion { level, version: Version::Latest }).is_empty();
        let level = if meets(Level::Restricted) {
            Level::Restricted
        } else if meets(Level::Baseline) {
            Level::Baseline
        } else {
            Level::Privileged
        };
        let required = enforce.get(ns).and_then(|l| l.parse::<Level>().ok());
        match required {
            Some(req) if level < req => offenders.push(format!(
                "{name} is {} but namespace {ns} enforces {}",
                level.as_str(),
                req.as_str()
            )),
            None if level == Level::Privileged && !SYSTEM_NAMESPACES.contains(ns) => offenders
                .push(format!("{name} needs privileged and namespace {ns} has no Pod Security label")),
            _ => {}
        }
    }
    result(
        "rampart/pod-security-levels",
        "Workloads meet their namespace's Pod Security level",
        Severity::High,
        offenders,
        Status::Fail,
        "Fix the workload (`rampart check-manifests` shows each violation) or label the namespace deliberately.",
    )
}

fn aws_auth_check(c: &Ctx<'_>) -> CheckResult {
    let title = "aws-auth maps no unexpected administrators";
    let Some(cm) =
        c.s.of_kind("ConfigMap")
            .find(|cm| meta(cm, "name") == "aws-auth" && meta(cm, "namespace") == "kube-system")
    else {
        return skipped("rampart/aws-auth", title, "no kube-system/aws-auth ConfigMap in the snapshot");
    };
    let text = |key: &str| cm.pointer(&format!("/data/{key}")).and_then(Value::as_str);
    let (mappings, broken) = crate::aws_auth::mappings(text("mapRoles"), text("mapUsers"));
    let mut offenders: Vec<String> =
        broken.iter().map(|key| format!("data.{key} is not a YAML list")).collect();
    for m in &mappings {
        let arn = &m.arn;
        if m.grants_masters() {
            offenders.push(format!("{arn} is mapped to system:masters"));
        }
        if m.user {
            offenders.push(format!("{arn} is an IAM user (long-lived keys); map roles instead"));
        }
        if crate::aws_auth::whole_account_or_wildcard(arn) {
            offenders.push(format!("{arn} maps a whole account or a wildcard"));
        }
    }
    if cm
        .pointer("/data/mapAccounts")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.trim().is_empty() && t.trim() != "[]")
    {
        offenders.push("mapAccounts maps every principal of whole accounts".into());
    }
    result(
        "rampart/aws-auth",
        title,
        Severity::High,
        offenders,
        Status::Fail,
        "Map roles to specific groups bound to narrow roles; use EKS access entries for administrators so changes go through IAM.",
    )
}

fn access_entries_check(c: &Ctx<'_>) -> CheckResult {
    let title = "Access entries grant no unexpected administrators";
    let bootstrap = c
        .cluster()
        .and_then(|cl| cl.pointer("/accessConfig/bootstrapClusterCreatorAdminPermissions"))
        .and_then(Value::as_bool);
    if c.s.access_entries.is_empty() && bootstrap.is_none() {
        return skipped(
            "rampart/access-entries",
            title,
            "no access entries (aws eks describe-access-entry output or an accessEntries: file) in the snapshot",
        );
    }
    let mut offenders = Vec::new();
    if bootstrap == Some(true) {
        offenders.push(
            "the cluster creator keeps cluster-admin (bootstrapClusterCreatorAdminPermissions)".to_owned(),
        );
    }
    for e in &c.s.access_entries {
        let arn = e.get("principalArn").and_then(Value::as_str).unwrap_or_default();
        if strs(e.get("kubernetesGroups")).contains(&"system:masters") {
            offenders.push(format!("{arn} is mapped to system:masters"));
        }
        if crate::aws_auth::whole_account_or_wildcard(arn) {
            offenders.push(format!("{arn} names a whole account or a wildcard"));
        }
        for policy in e.get("accessPolicies").and_then(Value::as_array).into_iter().flatten() {
            let name = policy
                .get("policyArn")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default();
            let cluster_wide = policy.pointer("/accessScope/type").and_then(Value::as_str) == Some("cluster");
            if name == "AmazonEKSClusterAdminPolicy" && cluster_wide {
                let user = if arn.contains(":user/") { " (an IAM user: long-lived keys)" } else { "" };
                offenders.push(format!("{arn} holds AmazonEKSClusterAdminPolicy cluster-wide{user}"));
            }
        }
    }
    result(
        "rampart/access-entries",
        title,
        Severity::High,
        offenders,
        Status::Fail,
        "Keep cluster-admin access entries to break-glass roles, turn off bootstrapClusterCreatorAdminPermissions once an admin role exists, and scope other entries to namespaces.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_polaris_formula() {
        let mut s = Snapshot::default();
        s.add_text("ns.yaml", "kind: Namespace\nmetadata: {name: team, labels: {pod-security.kubernetes.io/enforce: restricted}}\n").unwrap();
        let r = scan(&s, &ScanOptions::default());
        let expected = if r.passed + r.failed + r.warned == 0 {
            100
        } else {
            (r.passed * 200 / (r.passed * 2 + r.warned + r.failed * 2)) as u32
        };
        assert_eq!(r.score, expected);
        assert!(r.results.iter().any(|x| x.id == "CIS-EKS 2.1.1" && x.status == Status::Skip));
    }
}
