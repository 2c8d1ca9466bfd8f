//! Pod specs inside workload objects as audit events carry them, read once into a view of the
//! fields detectors ask for (Falco's pod fields, GuardDuty's and the baseline's risky parts).
//! (`rampart_types::workload::pod_template` is the same lookup over `serde_json::Value`.)

use smallvec::SmallVec;

use crate::json::{Json, JsonExt, JsonValueTrait};

use crate::guardduty::SENSITIVE_HOST_PATHS;

/// The pod spec of a Pod, a workload (`spec.template.spec`) or a CronJob
/// (`spec.jobTemplate.spec.template.spec`); a body without `kind` (some patches) is read as a
/// pod spec if it has containers.
pub fn pod_spec(obj: &Json) -> Option<&Json> {
    match obj.get("kind").and_then(Json::as_str) {
        Some("Pod") => obj.get("spec"),
        Some("CronJob") => obj.at("/spec/jobTemplate/spec/template/spec"),
        _ => obj
            .at("/spec/template/spec")
            .or_else(|| obj.get("spec").filter(|s| s.get("containers").is_some())),
    }
}

/// A pod spec read once: the fields detectors ask for, each container's picked out in one pass
/// over its keys. JSON objects are searched key by key, and Falco's pod rules read several
/// fields of every container for every pod event, so this replaces dozens of searches.
#[derive(Debug, Default, Clone)]
pub struct PodView<'d> {
    pub host_network: Option<&'d Json>,
    pub host_pid: Option<&'d Json>,
    pub host_ipc: Option<&'d Json>,
    pub security_context: Option<&'d Json>,
    pub volumes: &'d [Json],
    /// `containers`, `initContainers`, `ephemeralContainers`.
    pub lists: [SmallVec<[ContainerView<'d>; 2]>; 3],
}

/// One container of a [`PodView`].
#[derive(Debug, Default, Clone)]
pub struct ContainerView<'d> {
    pub name: Option<&'d Json>,
    pub image: Option<&'d Json>,
    pub command: Option<&'d Json>,
    pub args: Option<&'d Json>,
    pub ports: &'d [Json],
    pub volume_mounts: &'d [Json],
    pub privileged: Option<&'d Json>,
    pub allow_privilege_escalation: Option<&'d Json>,
    pub read_only_root_filesystem: Option<&'d Json>,
    pub run_as_user: Option<&'d Json>,
    pub run_as_group: Option<&'d Json>,
    pub proc_mount: Option<&'d Json>,
    pub capabilities: Option<&'d Json>,
}

impl<'d> ContainerView<'d> {
    fn of(c: &'d Json) -> Self {
        let mut view = ContainerView::default();
        for (key, value) in c.entries() {
            match key {
                "name" => view.name = Some(value),
                "image" => view.image = Some(value),
                "command" => view.command = Some(value),
                "args" => view.args = Some(value),
                "ports" => view.ports = value.elements(),
                "volumeMounts" => view.volume_mounts = value.elements(),
                "securityContext" => {
                    for (key, value) in value.entries() {
                        match key {
                            "privileged" => view.privileged = Some(value),
                            "allowPrivilegeEscalation" => view.allow_privilege_escalation = Some(value),
                            "readOnlyRootFilesystem" => view.read_only_root_filesystem = Some(value),
                            "runAsUser" => view.run_as_user = Some(value),
                            "runAsGroup" => view.run_as_group = Some(value),
                            "procMount" => view.proc_mount = Some(value),
                            "capabilities" => view.capabilities = Some(value),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        view
    }
}

impl<'d> PodView<'d> {
    /// The view of a pod spec (`spec` of a Pod).
    pub fn of(spec: &'d Json) -> Self {
        let mut view = PodView::default();
        let list = |v: &'d Json| v.elements().iter().map(ContainerView::of).collect();
        for (key, value) in spec.entries() {
            match key {
                "hostNetwork" => view.host_network = Some(value),
                "hostPID" => view.host_pid = Some(value),
                "hostIPC" => view.host_ipc = Some(value),
                "securityContext" => view.security_context = Some(value),
                "volumes" => view.volumes = value.elements(),
                "containers" => view.lists[0] = list(value),
                "initContainers" => view.lists[1] = list(value),
                "ephemeralContainers" => view.lists[2] = list(value),
                _ => {}
            }
        }
        view
    }
}

impl<'d> PodView<'d> {
    /// Every container (regular, init, ephemeral).
    pub fn containers(&self) -> impl Iterator<Item = &ContainerView<'d>> {
        self.lists.iter().flatten()
    }

    /// Images of privileged containers.
    pub fn privileged_images(&self) -> Vec<String> {
        self.containers()
            .filter(|c| c.privileged.and_then(Json::as_bool) == Some(true))
            .map(|c| c.image.and_then(Json::as_str).unwrap_or_default().to_owned())
            .collect()
    }

    /// `volume → path` of sensitive hostPath volumes some container mounts writable.
    pub fn sensitive_writable_mounts(&self) -> Vec<String> {
        let mut out = Vec::new();
        for volume in self.volumes {
            let Some(path) = volume.at("/hostPath/path").and_then(Json::as_str) else { continue };
            let normalized = if path.len() > 1 { path.trim_end_matches('/') } else { path };
            if !SENSITIVE_HOST_PATHS.contains(&normalized) {
                continue;
            }
            let name = volume.get("name").and_then(Json::as_str).unwrap_or_default();
            let writable = self.containers().any(|c| {
                c.volume_mounts.iter().any(|m| {
                    m.get("name").and_then(Json::as_str) == Some(name)
                        && m.get("readOnly").and_then(Json::as_bool) != Some(true)
                })
            });
            if writable {
                out.push(format!("{name}={path}"));
            }
        }
        out
    }

    /// Image names of every container.
    pub fn images(&self) -> Vec<String> {
        self.containers().filter_map(|c| c.image.and_then(Json::as_str)).map(str::to_owned).collect()
    }
}
