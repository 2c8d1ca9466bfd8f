//! The checks of the Pod Security Standards, one function each, with their version history.
//! Reasons are upstream's strings (fixtures and log parsers match on them).

use super::Level;
use super::pod::{ContainerView, PodView};

/// A failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub id: &'static str,
    pub reason: String,
    pub detail: Option<String>,
}

type Check = fn(&PodView<'_>, u32) -> Option<CheckResult>;

/// `(id, first minor version, check)`, baseline ids sorted byte-wise, as upstream orders them.
const BASELINE: &[(&str, u32, Check)] = &[
    ("appArmorProfile", 0, app_armor_profile),
    ("capabilities_baseline", 0, capabilities_baseline),
    ("hostNamespaces", 0, host_namespaces),
    ("hostPathVolumes", 0, host_path_volumes),
    ("hostPorts", 0, host_ports),
    ("hostProbesAndHostLifecycle", 34, host_probes_and_lifecycle),
    ("privileged", 0, privileged),
    ("procMount", 0, proc_mount),
    ("seLinuxOptions", 0, se_linux_options),
    ("seccompProfile_baseline", 0, seccomp_baseline),
    ("sysctls", 0, sysctls),
    ("windowsHostProcess", 0, windows_host_process),
];

/// `(id, first minor version, check, baseline ids it replaces)`.
const RESTRICTED: &[(&str, u32, Check, &[&str])] = &[
    ("allowPrivilegeEscalation", 8, allow_privilege_escalation, &[]),
    ("capabilities_restricted", 22, capabilities_restricted, &["capabilities_baseline"]),
    ("procMount_restricted", 35, proc_mount_restricted, &["procMount"]),
    ("restrictedVolumes", 0, restricted_volumes, &["hostPathVolumes"]),
    ("runAsNonRoot", 0, run_as_non_root, &[]),
    ("runAsUser", 23, run_as_user, &[]),
    ("seccompProfile_restricted", 19, seccomp_restricted, &["seccompProfile_baseline"]),
];

pub(super) fn run(pod: &PodView<'_>, level: Level, minor: u32) -> Vec<CheckResult> {
    if level == Level::Privileged {
        return vec![];
    }
    let restricted: Vec<_> = if level == Level::Restricted {
        RESTRICTED.iter().filter(|(_, since, _, _)| *since <= minor).collect()
    } else {
        vec![]
    };
    let overridden = |id: &str| restricted.iter().any(|(_, _, _, o)| o.contains(&id));
    let mut out = Vec::new();
    for (id, since, check) in BASELINE {
        if *since <= minor && !overridden(id) {
            out.extend(check(pod, minor).map(|r| CheckResult { id, ..r }));
        }
    }
    for (id, _, check, _) in restricted {
        out.extend(check(pod, minor).map(|r| CheckResult { id, ..r }));
    }
    out
}

fn fail(reason: impl Into<String>, detail: impl Into<String>) -> Option<CheckResult> {
    Some(CheckResult { id: "", reason: reason.into(), detail: Some(detail.into()) })
}

fn quoted(items: &[impl AsRef<str>]) -> String {
    items.iter().map(|s| format!("{:?}", s.as_ref())).collect::<Vec<_>>().join(", ")
}

/// `container "a"` / `containers "a", "b"`.
fn named(noun: &str, names: &[impl AsRef<str>]) -> String {
    if names.len() == 1 { format!("{noun} {}", quoted(names)) } else { format!("{noun}s {}", quoted(names)) }
}

/// `pod`, `container "a"`, `pod and containers "a", "b"`.
fn pod_and(pod: bool, containers: &[&str]) -> String {
    match (pod, containers.is_empty()) {
        (true, true) => "pod".into(),
        (true, false) => format!("pod and {}", named("container", containers)),
        (false, _) => named("container", containers),
    }
}

/// Singular or plural verb for a subject list.
fn verb(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

fn dedup<T: PartialEq>(mut v: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len());
    for x in v.drain(..) {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

// ---- baseline ----------------------------------------------------------------------------

fn host_namespaces(pod: &PodView<'_>, _: u32) -> Option<CheckResult> {
    let s = pod.spec;
    let set: Vec<&str> = [("hostNetwork", s.host_network), ("hostPID", s.host_pid), ("hostIPC", s.host_ipc)]
        .into_iter()
        .filter(|(_, v)| *v == Some(true))
        .map(|(k, _)| k)
        .collect();
    if set.is_empty() {
        return None;
    }
    fail("host namespaces", set.iter().map(|k| format!("{k}=true")).collect::<Vec<_>>().join(", "))
}

fn privileged(pod: &PodView<'_>, _: u32) -> Option<CheckResult> {
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| c.security_context.and_then(|sc| sc.privileged) == Some(true))
        .map(|c| c.name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    fail("privileged", format!("{} must not set securityContext.privileged=true", named("container", &bad)))
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added_capabilities<'a>(c: &ContainerView<'a>) -> &'a [String] {
    c.security_context
        .and_then(|sc| sc.capabilities.as_ref())
        .and_then(|caps| caps.add.as_deref())
        .unwrap_or_default()
}

fn capabilities_baseline(pod: &PodView<'_>, _: u32) -> Option<CheckResult> {
    let mut containers = Vec::new();
    let mut caps = Vec::new();
    for c in pod.containers() {
        let bad: Vec<&String> =
            added_capabilities(&c).iter().filter(|a| !BASELINE_CAPABILITIES.contains(&a.as_str())).collect();
        if !bad.is_empty() {
            containers.push(c.name);
            caps.extend(bad);
        }
    }
    if containers.is_empty() {
        return None;
    }
    let caps = dedup(caps);
    fail(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            named("container", &containers),
            quoted(&caps)
        ),
    )
}

fn host_path_volumes(pod: &PodView<'_>, _: u32) -> Option<CheckResult> {
    let bad: Vec<&str> = pod
        .spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.host_path.is_some())
        .map(|v| v.name.as_str())
        .collect();
    if bad.is_empty() {
        return None;
    }
    fail("hostPath volumes", named("volume", &bad))
}

fn host_ports(pod: &PodView<'_>, _: u32) -> Option<CheckResult> {
    let mut containers = Vec::new();
    let mut ports = Vec::new();
    for c in pod.containers() {
        let bad: Vec<i32> = c.ports.iter().filter_map(|p| p.host_port).filter(|p| *p != 0).collect();
        if !bad.is_empty() {
            containers.push(c.name);
            ports.extend(bad);
        }
    }
    if containers.is_empty() {
        return None;
    }
    let ports = dedup(ports);
    let list = ports.iter().map(i32::to_string).collect::<Vec<_>>().join(", ");
    fail(
        "hostPort",
        format!(
            "{} {} {} {list}",
            named("container", &containers),
            verb(containers.len(), "uses", "use"),
            verb(ports.len(), "hostPort", "hostPorts")
        ),
    )
}

fn host_probes_and_lifecycle(pod: &PodView<'_>, _: u32) -> Option<CheckResult> {
    let mut containers = Vec::new();
    let mut hosts = Vec::new();
    for c in pod.containers() {
        let mut found = Vec::new();
        for probe in c.probes.iter().flatten() {
            found.extend(probe.http_get.as_ref().and_then(|h| h.host.clone()));
            found.extend(probe.tcp_socket.as_ref().and_then(|t| t.host.clone()));
        }
        if let Some(l) = c.lifecycle {
            for handler in [l.post_start.as_ref(), l.pre_stop.as_ref()].into_iter().flatten() {
                found.extend(handler.http_get.as_ref().and_then(|h| h.host.clone()));
                found.extend(handler.tcp_socket.as_ref().and_then(|t| t.host.clone()));
            }
        }
        found.retain(|h| !h.is_empty());
        if !found.is_empty() {
            containers.push(c.name);
            hosts.extend(found);
        }
    }
    if containers.is_empty() {
        return None;
    }
    let hosts = dedup(hosts);
    fail(
        "probe or lifecycle host",
        format!(
            "{} {} {}",
            named("container", &containers),
            verb(containers.len(), "uses", "use"),
            named("host", &hosts)
        ),
    )
}

fn proc_mount(pod: &PodView<'_>, minor: u32) -> Option<CheckResult> {
    // From 1.35 a pod in its own user namespace may use any procMount.
    if minor >= 35 && pod.user_namespaced() {
        return None;
    }
    proc_mount_check(pod)
}

fn proc_mount_restricted(pod: &PodView<'_>, _: u32) -> Option<CheckResult> {
    proc_mount_check(pod)
}

fn proc_mount_check(pod: &PodView<'_>) -> Option<CheckResult> {
    let mut containers = Vec::new();
    let mut values = Vec::new();
    for c in pod.containers() {
        if let Some(pm) =
            c.security_context.and_then(|sc| sc.proc_mount.as_deref()).filter(|pm| *pm != "Default")
        {
            containers.push(c.name);
            values.push(pm);
        }
    }
    if containers.is_empty() {
        return None;
    }
    let values = dedup(values);
    fail(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            named("container", &containers),
            quoted(&values)
        ),
    )
}

fn app_armor_profile(pod: &PodView<'_>, _: u32) -> Option<CheckResult> {
    const PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
    let mut bad = Vec::new();
    for (k, v) in pod.annotations.into_iter().flatten() {
        let allowed = v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
        if k.starts_with(PREFIX) && !allowed {
            bad.push(format!("{k}={v:?}"));
        }
    }
    let ok_type = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    if let Some(p) = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.app_armor_profile.as_ref())
        .filter(|p| !ok_type(&p.type_))
    {
        bad.push(format!("pod securityContext.appArmorProfile.type={:?}", p.type_));
    }
    for c in pod.containers() {
        if let Some(p) =
            c.security_context.and_then(|sc| sc.app_armor_profile.as_ref()).filter(|p| !ok_type(&p.type_))
        {
            bad.push(format!("container {:?} securityContext.appArmorProfile.type={:?}", c.name, p.type_));
        }
    }
    if bad.is_empty() {
        return None;
    }
    let reason = if bad.len() == 1 { "forbidden AppArmor profile" } else { "forbidden AppArmor profiles" };
    fail(reason, bad.join(", "))
}

fn se_linux_options(pod: &PodView<'_>, minor: u32) -> Option<CheckResult> {
    let allowed_type = |t: &str| {
        matches!(t, "" | "container_t" | "container_init_t" | "container_kvm_t")
            || (minor >= 31 && t == "container_engine_t")
    };
    let mut problems: Vec<String> = Vec::new();
    let mut check = |o: &k8s_openapi::api::core::v1::SELinuxOptions| {
        let mut bad = false;
        if let Some(t) = o.type_.as_deref().filter(|t| !allowed_type(t)) {
            problems.push(format!("type {t:?}"));
            bad = true;
        }
        if let Some(u) = o.user.as_deref().filter(|u| !u.is_empty()) {
            problems.push(format!("user {u:?}"));
            bad = true;
        }
        if let Some(r) = o.role.as_deref().filter(|r| !r.is_empty()) {
            problems.push(format!("role {r:?}"));
            bad = true;
        }
        bad
    };
    let pod_bad = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.se_linux_options.as_ref())
        .is_some_and(&mut check);
    let containers: Vec<&str> = pod
        .containers()
        .filter(|c| c.security_context.and_then(|sc| sc.se_linux_options.as_ref()).is_some_and(&mut check))
        .map(|c| c.name)
        .collect();
    if !pod_bad && containers.is_empty() {
        return None;
    }
    let problems = dedup(problems);
    fail(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            pod_and(pod_bad, &containers),
            problems.join("; ")
        ),
    )
}

fn seccomp_baseline(pod: &PodView<'_>, minor: u32) -> Option<CheckResult> {
    if minor < 19 {
        // Before 1.19 seccomp was set with annotations.
        let ok = |v: &str| {
            v.is_empty() || v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
        };
        let mut bad = Vec::new();
        if let Some(v) = pod.annotation("seccomp.security.alpha.kubernetes.io/pod").filter(|v| !ok(v)) {
            bad.push(format!("seccomp.security.alpha.kubernetes.io/pod={v:?}"));
        }
        for c in pod.containers() {
            let key = format!("container.seccomp.security.alpha.kubernetes.io/{}", c.name);
            if let Some(v) = pod.annotation(&key).filter(|v| !ok(v)) {
                bad.push(format!("{key}={v:?}"));
            }
        }
        return if bad.is_empty() { None } else { fail("seccompProfile", bad.join(", ")) };
    }
    let bad_type = |t: &str| t == "Unconfined";
    let pod_bad = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.seccomp_profile.as_ref())
        .is_some_and(|p| bad_type(&p.type_));
    let containers: Vec<&str> = pod
        .containers()
        .filter(|c| {
            c.security_context.and_then(|sc| sc.seccomp_profile.as_ref()).is_some_and(|p| bad_type(&p.type_))
        })
        .map(|c| c.name)
        .collect();
    if !pod_bad && containers.is_empty() {
        return None;
    }
    fail(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
            pod_and(pod_bad, &containers)
        ),
    )
}

fn allowed_sysctl(name: &str, minor: u32) -> bool {
    const V1_0: &[&str] = &[
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    ];
    const V1_29: &[&str] = &[
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ];
    const V1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];
    const V1_37: &[&str] = &["net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"];
    V1_0.contains(&name)
        || (minor >= 27 && name == "net.ipv4.ip_local_reserved_ports")
        || (minor >= 29 && V1_29.contains(&name))
        || (minor >= 32 && V1_32.contains(&name))
        || (minor >= 37 && V1_37.contains(&name))
}

fn sysctls(pod: &PodView<'_>, minor: u32) -> Option<CheckResult> {
    let bad: Vec<&str> = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.sysctls.as_ref())
        .into_iter()
        .flatten()
        .map(|s| s.name.as_str())
        .filter(|n| !allowed_sysctl(n, minor))
        .collect();
    if bad.is_empty() {
        return None;
    }
    fail("forbidden sysctls", bad.join(", "))
}

fn windows_host_process(pod: &PodView<'_>, _: u32) -> Option<CheckResult> {
    let pod_bad = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.windows_options.as_ref())
        .and_then(|w| w.host_process)
        == Some(true);
    let containers: Vec<&str> = pod
        .containers()
        .filter(|c| {
            c.security_context.and_then(|sc| sc.windows_options.as_ref()).and_then(|w| w.host_process)
                == Some(true)
        })
        .map(|c| c.name)
        .collect();
    if !pod_bad && containers.is_empty() {
        return None;
    }
    fail(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            pod_and(pod_bad, &containers)
        ),
    )
}

// ---- restricted --------------------------------------------------------------------------

const RESTRICTED_VOLUME_SOURCES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn restricted_volumes(pod: &PodView<'_>, _: u32) -> Option<CheckResult> {
    let mut names = Vec::new();
    let mut types = Vec::new();
    for v in pod.spec.volumes.iter().flatten() {
        let Ok(serde_json::Value::Object(map)) = serde_json::to_value(v) else { continue };
        // A volume without a source is defaulted to emptyDir by the API server.
        let bad: Vec<String> = map
            .keys()
            .filter(|k| *k != "name" && !RESTRICTED_VOLUME_SOURCES.contains(&k.as_str()))
            .cloned()
            .collect();
        if !bad.is_empty() {
            names.push(v.name.clone());
            types.extend(bad);
        }
    }
    if names.is_empty() {
        return None;
    }
    let types = dedup(types);
    fail(
        "restricted volume types",
        format!(
            "{} {} restricted volume {} {}",
            named("volume", &names),
            verb(names.len(), "uses", "use"),
            verb(types.len(), "type", "types"),
            quoted(&types)
        ),
    )
}

fn windows_exempt(pod: &PodView<'_>, minor: u32) -> bool {
    minor >= 25 && pod.is_windows()
}

fn allow_privilege_escalation(pod: &PodView<'_>, minor: u32) -> Option<CheckResult> {
    if windows_exempt(pod, minor) {
        return None;
    }
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| c.security_context.and_then(|sc| sc.allow_privilege_escalation) != Some(false))
        .map(|c| c.name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    fail(
        "allowPrivilegeEscalation != false",
        format!("{} must set securityContext.allowPrivilegeEscalation=false", named("container", &bad)),
    )
}

fn capabilities_restricted(pod: &PodView<'_>, minor: u32) -> Option<CheckResult> {
    if windows_exempt(pod, minor) {
        return None;
    }
    let mut no_drop = Vec::new();
    let mut bad_add = Vec::new();
    let mut added = Vec::new();
    for c in pod.containers() {
        let caps = c.security_context.and_then(|sc| sc.capabilities.as_ref());
        let drops_all = caps.and_then(|c| c.drop.as_ref()).is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !drops_all {
            no_drop.push(c.name);
        }
        let bad: Vec<&String> = added_capabilities(&c).iter().filter(|a| *a != "NET_BIND_SERVICE").collect();
        if !bad.is_empty() {
            bad_add.push(c.name);
            added.extend(bad);
        }
    }
    if no_drop.is_empty() && bad_add.is_empty() {
        return None;
    }
    let mut details = Vec::new();
    if !no_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            named("container", &no_drop)
        ));
    }
    if !bad_add.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            named("container", &bad_add),
            quoted(&dedup(added))
        ));
    }
    fail("unrestricted capabilities", details.join("; "))
}

fn run_as_non_root(pod: &PodView<'_>, minor: u32) -> Option<CheckResult> {
    if minor >= 35 && pod.user_namespaced() {
        return None;
    }
    let pod_value = pod.spec.security_context.as_ref().and_then(|sc| sc.run_as_non_root);
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in pod.containers() {
        match c.security_context.and_then(|sc| sc.run_as_non_root) {
            Some(false) => explicit.push(c.name),
            Some(true) => {}
            None if pod_value == Some(true) => {}
            None => implicit.push(c.name),
        }
    }
    let pod_false = pod_value == Some(false);
    if !pod_false && explicit.is_empty() && implicit.is_empty() {
        return None;
    }
    let mut details = Vec::new();
    if pod_false || !explicit.is_empty() {
        details.push(format!(
            "{} must not set securityContext.runAsNonRoot=false",
            pod_and(pod_false, &explicit)
        ));
    }
    if !implicit.is_empty() {
        let subject = if implicit.len() == pod.containers().count() && !pod_false {
            format!("pod or {}", named("container", &implicit))
        } else {
            named("container", &implicit)
        };
        details.push(format!("{subject} must set securityContext.runAsNonRoot=true"));
    }
    fail("runAsNonRoot != true", details.join("; "))
}

fn run_as_user(pod: &PodView<'_>, minor: u32) -> Option<CheckResult> {
    if minor >= 35 && pod.user_namespaced() {
        return None;
    }
    let pod_bad = pod.spec.security_context.as_ref().and_then(|sc| sc.run_as_user) == Some(0);
    let containers: Vec<&str> = pod
        .containers()
        .filter(|c| c.security_context.and_then(|sc| sc.run_as_user) == Some(0))
        .map(|c| c.name)
        .collect();
    if !pod_bad && containers.is_empty() {
        return None;
    }
    fail("runAsUser=0", format!("{} must not set runAsUser=0", pod_and(pod_bad, &containers)))
}

fn seccomp_restricted(pod: &PodView<'_>, minor: u32) -> Option<CheckResult> {
    if windows_exempt(pod, minor) {
        return None;
    }
    let ok = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let pod_type = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.seccomp_profile.as_ref())
        .map(|p| p.type_.as_str());
    let pod_ok = pod_type.is_some_and(ok);
    let pod_bad = pod_type.is_some_and(|t| !ok(t));
    let mut explicit_bad = Vec::new();
    let mut unset = Vec::new();
    for c in pod.containers() {
        match c.security_context.and_then(|sc| sc.seccomp_profile.as_ref()).map(|p| p.type_.as_str()) {
            Some(t) if ok(t) => {}
            Some(_) => explicit_bad.push(c.name),
            None if pod_ok => {}
            None => unset.push(c.name),
        }
    }
    if !pod_bad && explicit_bad.is_empty() && unset.is_empty() {
        return None;
    }
    let mut details = Vec::new();
    if pod_bad || !explicit_bad.is_empty() {
        details.push(format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            pod_and(pod_bad, &explicit_bad),
            "a value other than \"RuntimeDefault\" or \"Localhost\""
        ));
    }
    if !unset.is_empty() {
        let subject = if pod_type.is_none() {
            format!("pod or {}", named("container", &unset))
        } else {
            named("container", &unset)
        };
        details.push(format!(
            "{subject} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\""
        ));
    }
    fail("seccompProfile", details.join("; "))
}
