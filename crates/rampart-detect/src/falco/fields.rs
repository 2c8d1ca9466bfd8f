//! Falco's k8saudit fields (`ka.*`, `jevt.*`), extracted from an [`AuditEvent`] with the
//! plugin's semantics: list fields yield one value per element (containers, init containers and
//! ephemeral containers kept apart), booleans read as `true`/`false`, an image's repository is
//! the text before its first `:` and then before `@` (upstream's quirk, kept for rule parity).

use std::borrow::Cow;

use crate::json::{Json, JsonContainerTrait, JsonExt, JsonValueTrait};
use smallvec::{SmallVec, smallvec};

use crate::event::AuditEvent;

/// Which container list a pod field reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containers {
    Regular,
    Init,
    Ephemeral,
}

/// A container attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerAttr {
    Image,
    Repository,
    Name,
    Command,
    Args,
    Privileged,
    AllowPrivilegeEscalation,
    ReadOnlyFs,
    RunAsUser,
    EffRunAsUser,
    RunAsGroup,
    EffRunAsGroup,
    ProcMount,
    AddCapabilities,
    HostPort,
}

/// A resolved field.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    AuditId,
    Stage,
    AuthDecision,
    AuthReason,
    UserName,
    UserGroups,
    ImpUserName,
    Verb,
    Uri,
    UriParam(String),
    TargetName,
    TargetNamespace,
    TargetResource,
    TargetSubresource,
    TargetPodName,
    RespName,
    ResponseCode,
    ResponseReason,
    UserAgent,
    SourceIps,
    ClusterName,
    BindingSubjects,
    BindingSubjectNames(&'static str),
    BindingRole,
    ConfigMapName,
    ConfigMapObj,
    Container(Containers, ContainerAttr),
    HostNetwork,
    HostPid,
    HostIpc,
    PodRunAsUser,
    PodRunAsGroup,
    PodFsGroup,
    PodSupplementalGroups,
    VolumesHostPath,
    VolumesFlexDriver,
    VolumesType,
    RoleRules,
    RoleRulesList(&'static str),
    ServiceType,
    ServicePorts,
    JsonPointer(String),
    RawTime,
    JsonObj,
}

impl Field {
    /// The field a name denotes, or an error naming it.
    pub fn parse(name: &str) -> Result<Field, String> {
        let arg =
            |prefix: &str| name.strip_prefix(prefix).and_then(|r| r.strip_suffix(']')).map(str::to_owned);
        if let Some(p) = arg("jevt.value[") {
            // The default rules' `kevt` reads `/stage` on every event: the envelope field says
            // the same without a walk through the document.
            return Ok(if p == "/stage" { Field::Stage } else { Field::JsonPointer(p) });
        }
        if let Some(p) = arg("ka.uri.param[") {
            return Ok(Field::UriParam(p));
        }
        for (list, which) in [
            ("ka.req.pod.containers.", Containers::Regular),
            ("ka.req.pod.initContainers.", Containers::Init),
            ("ka.req.pod.ephemeralContainers.", Containers::Ephemeral),
            // Older single-container names.
            ("ka.req.container.", Containers::Regular),
        ] {
            if let Some(attr) = name.strip_prefix(list) {
                let attr = match attr {
                    "image" => ContainerAttr::Image,
                    "image.repository" => ContainerAttr::Repository,
                    "name" => ContainerAttr::Name,
                    "command" => ContainerAttr::Command,
                    "args" => ContainerAttr::Args,
                    "privileged" => ContainerAttr::Privileged,
                    "allow_privilege_escalation" => ContainerAttr::AllowPrivilegeEscalation,
                    "read_only_fs" => ContainerAttr::ReadOnlyFs,
                    "run_as_user" => ContainerAttr::RunAsUser,
                    "eff_run_as_user" => ContainerAttr::EffRunAsUser,
                    "run_as_group" => ContainerAttr::RunAsGroup,
                    "eff_run_as_group" => ContainerAttr::EffRunAsGroup,
                    "proc_mount" => ContainerAttr::ProcMount,
                    "add_capabilities" => ContainerAttr::AddCapabilities,
                    "host_port" => ContainerAttr::HostPort,
                    _ => return Err(format!("unknown field {name}")),
                };
                return Ok(Field::Container(which, attr));
            }
        }
        Ok(match name {
            "ka.auditid" => Field::AuditId,
            "ka.stage" => Field::Stage,
            "ka.auth.decision" => Field::AuthDecision,
            "ka.auth.reason" => Field::AuthReason,
            "ka.user.name" => Field::UserName,
            "ka.user.groups" => Field::UserGroups,
            "ka.impuser.name" => Field::ImpUserName,
            "ka.verb" => Field::Verb,
            "ka.uri" => Field::Uri,
            "ka.target.name" => Field::TargetName,
            "ka.target.namespace" => Field::TargetNamespace,
            "ka.target.resource" => Field::TargetResource,
            "ka.target.subresource" => Field::TargetSubresource,
            "ka.target.pod.name" => Field::TargetPodName,
            "ka.resp.name" => Field::RespName,
            "ka.response.code" => Field::ResponseCode,
            "ka.response.reason" => Field::ResponseReason,
            "ka.useragent" => Field::UserAgent,
            "ka.sourceips" => Field::SourceIps,
            "ka.cluster.name" => Field::ClusterName,
            "ka.req.binding.subjects" => Field::BindingSubjects,
            "ka.req.binding.subjects.user_names" => Field::BindingSubjectNames("User"),
            "ka.req.binding.subjects.serviceaccount_names" => Field::BindingSubjectNames("ServiceAccount"),
            "ka.req.binding.subjects.serviceaccount_ns_names" => {
                Field::BindingSubjectNames("ServiceAccountNs")
            }
            "ka.req.binding.subjects.group_names" => Field::BindingSubjectNames("Group"),
            "ka.req.binding.role" => Field::BindingRole,
            "ka.req.configmap.name" => Field::ConfigMapName,
            "ka.req.configmap.obj" => Field::ConfigMapObj,
            "ka.req.pod.host_network" => Field::HostNetwork,
            "ka.req.pod.host_pid" => Field::HostPid,
            "ka.req.pod.host_ipc" => Field::HostIpc,
            "ka.req.pod.run_as_user" => Field::PodRunAsUser,
            "ka.req.pod.run_as_group" => Field::PodRunAsGroup,
            "ka.req.pod.fs_group" => Field::PodFsGroup,
            "ka.req.pod.supplemental_groups" => Field::PodSupplementalGroups,
            "ka.req.pod.volumes.hostpath" | "ka.req.volume.hostpath" => Field::VolumesHostPath,
            "ka.req.pod.volumes.flexvolume_driver" => Field::VolumesFlexDriver,
            "ka.req.pod.volumes.volume_type" => Field::VolumesType,
            "ka.req.role.rules" => Field::RoleRules,
            "ka.req.role.rules.apiGroups" => Field::RoleRulesList("apiGroups"),
            "ka.req.role.rules.resources" => Field::RoleRulesList("resources"),
            "ka.req.role.rules.verbs" => Field::RoleRulesList("verbs"),
            "ka.req.role.rules.nonResourceURLs" => Field::RoleRulesList("nonResourceURLs"),
            "ka.req.service.type" => Field::ServiceType,
            "ka.req.service.ports" => Field::ServicePorts,
            "jevt.rawtime" | "jevt.time" | "jevt.time.iso8601" => Field::RawTime,
            "jevt.obj" => Field::JsonObj,
            _ => return Err(format!("unknown field {name}")),
        })
    }
}

/// Extracted values (inline up to two, so single-valued fields never allocate); `None` when
/// the field is absent (comparisons on it are false).
pub type Values<'e> = Option<SmallVec<[Cow<'e, str>; 2]>>;

/// The [`crate::event::Derived`] slots this module uses.
#[derive(Clone, Copy)]
enum Slot {
    RawTime,
    ConfigMapData,
    RoleRules,
    ServicePorts,
}

const _: () = assert!(Slot::ServicePorts as usize + 1 == crate::event::DERIVED_SLOTS);

/// `jevt.rawtime`: the event time in nanoseconds. The plugin stamps every event with a time,
/// so `jevt.rawtime exists` always holds (1 when the event carries none).
pub fn raw_time(event: &AuditEvent<'_>) -> Option<i64> {
    Some(event.time_micros().map_or(1, |m| m.saturating_mul(1000)))
}

fn one<'e>(v: Option<&'e str>) -> Values<'e> {
    v.map(|s| smallvec![Cow::Borrowed(s)])
}

fn scalar<'e>(v: &'e Json) -> Cow<'e, str> {
    match v.as_str() {
        Some(s) => Cow::Borrowed(s),
        None if v.is_null() => Cow::Borrowed("<NA>"),
        None => Cow::Owned(v.to_string()),
    }
}

fn boolean(v: Option<&Json>) -> Cow<'static, str> {
    Cow::Borrowed(if v.and_then(Json::as_bool).unwrap_or(false) { "true" } else { "false" })
}

/// `registry:5000/x:tag` → `registry` (cut at the first `:`, then at `@`), as upstream.
pub fn repository(image: &str) -> &str {
    let cut = image.split(':').next().unwrap_or(image);
    cut.split('@').next().unwrap_or(cut)
}

impl Containers {
    fn index(self) -> usize {
        match self {
            Containers::Regular => 0,
            Containers::Init => 1,
            Containers::Ephemeral => 2,
        }
    }
}

fn container_values<'e>(event: &'e AuditEvent<'_>, which: Containers, attr: ContainerAttr) -> Values<'e> {
    let pod = event.request_pod()?;
    let list = pod.lists.get(which.index())?;
    let pod_ctx = |k: &str| pod.security_context.and_then(|s| s.get(k));
    let mut out: SmallVec<[Cow<'e, str>; 2]> = SmallVec::new();
    for c in list {
        match attr {
            ContainerAttr::Image => out.push(c.image.map(scalar).unwrap_or(Cow::Borrowed(""))),
            ContainerAttr::Repository => {
                out.push(Cow::Borrowed(repository(c.image.and_then(Json::as_str).unwrap_or_default())))
            }
            ContainerAttr::Name => out.push(c.name.map(scalar).unwrap_or(Cow::Borrowed(""))),
            ContainerAttr::Command => out.extend(c.command.map(|v| Cow::Owned(v.to_string()))),
            ContainerAttr::Args => out.extend(c.args.map(|v| Cow::Owned(v.to_string()))),
            ContainerAttr::Privileged => out.push(boolean(c.privileged)),
            ContainerAttr::AllowPrivilegeEscalation => out.push(boolean(c.allow_privilege_escalation)),
            ContainerAttr::ReadOnlyFs => out.push(boolean(c.read_only_root_filesystem)),
            ContainerAttr::RunAsUser => out.push(c.run_as_user.map(scalar).unwrap_or(Cow::Borrowed("0"))),
            ContainerAttr::EffRunAsUser => out.push(
                c.run_as_user.or_else(|| pod_ctx("runAsUser")).map(scalar).unwrap_or(Cow::Borrowed("0")),
            ),
            ContainerAttr::RunAsGroup => out.push(c.run_as_group.map(scalar).unwrap_or(Cow::Borrowed("0"))),
            ContainerAttr::EffRunAsGroup => out.push(
                c.run_as_group.or_else(|| pod_ctx("runAsGroup")).map(scalar).unwrap_or(Cow::Borrowed("0")),
            ),
            ContainerAttr::ProcMount => out.push(c.proc_mount.map(scalar).unwrap_or(Cow::Borrowed(""))),
            ContainerAttr::AddCapabilities => out.extend(
                c.capabilities
                    .and_then(|c| c.get("add"))
                    .map(Json::elements)
                    .unwrap_or_default()
                    .iter()
                    .map(scalar),
            ),
            ContainerAttr::HostPort => {
                out.extend(c.ports.iter().filter_map(|p| p.get("hostPort")).map(scalar))
            }
        }
    }
    if out.is_empty() { None } else { Some(out) }
}

/// JSON pointer lookup (RFC 6901) on the whole event.
fn pointer<'e>(event: &'e AuditEvent<'_>, ptr: &str) -> Values<'e> {
    let v = event.value().at(ptr)?;
    Some(smallvec![v.as_str().map_or_else(|| Cow::Owned(v.to_string()), Cow::Borrowed)])
}

impl Field {
    /// A field read straight from the event's envelope (no body, no formatting): the cheapest
    /// to test, so conditions test these first.
    pub fn is_envelope(&self) -> bool {
        matches!(
            self,
            Field::AuditId
                | Field::Stage
                | Field::AuthDecision
                | Field::UserName
                | Field::ImpUserName
                | Field::Verb
                | Field::Uri
                | Field::TargetName
                | Field::TargetNamespace
                | Field::TargetResource
                | Field::TargetSubresource
                | Field::ResponseReason
                | Field::UserAgent
        )
    }

    /// The value of a single-valued field (`Some(None)` when absent), or `None` for fields
    /// that can have several values. Conditions compare these without building a list.
    pub fn scalar<'e>(&self, event: &'e AuditEvent<'_>) -> Option<Option<&'e str>> {
        let value = match self {
            Field::AuditId => event.audit_id,
            Field::Stage => event.stage(),
            Field::AuthDecision => event.decision(),
            Field::AuthReason => event.annotation("authorization.k8s.io/reason"),
            Field::UserName => event.username(),
            Field::ImpUserName => event.impersonated_user.as_ref().and_then(|u| u.username),
            Field::Verb => event.verb(),
            Field::Uri => event.uri(),
            Field::TargetName => event.name(),
            Field::TargetNamespace => event.namespace(),
            Field::TargetResource => event.resource(),
            Field::TargetSubresource => event.subresource(),
            Field::RespName => event.response_object()?.at("/metadata/name")?.as_str(),
            Field::ResponseReason => event.response_status.as_ref().and_then(|s| s.reason),
            Field::UserAgent => event.user_agent,
            Field::ClusterName => event.annotation("cluster_name"),
            Field::TargetPodName => {
                if event.resource() == Some("pods") && event.subresource().is_none() {
                    event.response_object()?.at("/metadata/name")?.as_str()
                } else {
                    None
                }
            }
            Field::ConfigMapObj => event
                .derived
                .get(Slot::ConfigMapData as usize, || Some(event.request_object()?.get("data")?.to_string())),
            Field::RoleRules => event
                .derived
                .get(Slot::RoleRules as usize, || Some(event.request_object()?.get("rules")?.to_string())),
            Field::ServicePorts => event.derived.get(Slot::ServicePorts as usize, || {
                Some(event.request_object()?.at("/spec/ports")?.to_string())
            }),
            Field::RawTime => {
                event.derived.get(Slot::RawTime as usize, || raw_time(event).map(|nanos| nanos.to_string()))
            }
            _ => return None,
        };
        Some(value)
    }

    /// The field's values in `event`.
    pub fn extract<'e>(&self, event: &'e AuditEvent<'_>) -> Values<'e> {
        if let Some(value) = self.scalar(event) {
            return one(value);
        }
        match self {
            Field::UserGroups => {
                Some(event.user.groups.iter().map(|g| Cow::Borrowed(*g)).collect::<SmallVec<[_; 2]>>())
                    .filter(|v| !v.is_empty())
            }
            Field::UriParam(k) => event.query_params(k).into_iter().next().map(|v| smallvec![Cow::Owned(v)]),
            Field::ResponseCode => event.code().map(|c| smallvec![Cow::Owned(c.to_string())]),
            Field::SourceIps => {
                Some(event.source_ips.iter().map(|s| Cow::Borrowed(*s)).collect::<SmallVec<[_; 2]>>())
                    .filter(|v| !v.is_empty())
            }
            Field::BindingSubjects => {
                let subjects = event.request_object()?.get("subjects")?;
                Some(smallvec![Cow::Owned(subjects.to_string())])
            }
            Field::BindingSubjectNames(kind) => {
                let subjects = event.request_object()?.get("subjects")?.as_array()?;
                let want = if *kind == "ServiceAccountNs" { "ServiceAccount" } else { kind };
                let v: SmallVec<[Cow<'e, str>; 2]> = subjects
                    .iter()
                    .filter(|s| s.get("kind").and_then(Json::as_str) == Some(want))
                    .map(|s| {
                        let name = s.get("name").and_then(Json::as_str).unwrap_or_default();
                        if *kind == "ServiceAccountNs" {
                            let ns = s.get("namespace").and_then(Json::as_str).unwrap_or_default();
                            Cow::Owned(format!("{ns}:{name}"))
                        } else {
                            Cow::Borrowed(name)
                        }
                    })
                    .collect();
                Some(v).filter(|v| !v.is_empty())
            }
            Field::BindingRole => one(event.request_object()?.at("/roleRef/name")?.as_str()),
            Field::ConfigMapName => one(event.name()),
            Field::Container(which, attr) => container_values(event, *which, *attr),
            Field::HostNetwork => event.request_pod().map(|p| smallvec![boolean(p.host_network)]),
            Field::HostPid => event.request_pod().map(|p| smallvec![boolean(p.host_pid)]),
            Field::HostIpc => event.request_pod().map(|p| smallvec![boolean(p.host_ipc)]),
            Field::PodRunAsUser => one_value(event.request_pod()?.security_context?.get("runAsUser")),
            Field::PodRunAsGroup => one_value(event.request_pod()?.security_context?.get("runAsGroup")),
            Field::PodFsGroup => one_value(event.request_pod()?.security_context?.get("fsGroup")),
            Field::PodSupplementalGroups => {
                let groups = event.request_pod()?.security_context?.get("supplementalGroups")?.as_array()?;
                Some(groups.iter().map(scalar).collect::<SmallVec<[_; 2]>>()).filter(|v| !v.is_empty())
            }
            Field::VolumesHostPath | Field::VolumesFlexDriver | Field::VolumesType => {
                let volumes = event.request_pod()?.volumes;
                let v: SmallVec<[Cow<'e, str>; 2]> = volumes
                    .iter()
                    .filter_map(|vol| match self {
                        Field::VolumesHostPath => vol.at("/hostPath/path").map(scalar),
                        Field::VolumesFlexDriver => vol.at("/flexVolume/driver").map(scalar),
                        _ => {
                            vol.as_object()?.iter().map(|(k, _)| k).find(|k| *k != "name").map(Cow::Borrowed)
                        }
                    })
                    .collect();
                Some(v).filter(|v| !v.is_empty())
            }
            Field::RoleRulesList(key) => {
                let rules = event.request_object()?.get("rules")?.as_array()?;
                let v: SmallVec<[Cow<'e, str>; 2]> =
                    rules.iter().filter_map(|r| r.get(key)?.as_array()).flatten().map(scalar).collect();
                Some(v).filter(|v| !v.is_empty())
            }
            Field::ServiceType => one(event.request_object()?.at("/spec/type")?.as_str()),
            Field::JsonPointer(p) => pointer(event, p),
            Field::JsonObj => Some(smallvec![Cow::Borrowed(event.raw)]),
            // Single-valued fields were answered by `scalar` above.
            _ => None,
        }
    }
}

fn one_value<'e>(v: Option<&'e Json>) -> Values<'e> {
    v.map(|v| smallvec![scalar(v)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_quirk_and_field_names() {
        assert_eq!(repository("nginx"), "nginx");
        assert_eq!(repository("docker.io/library/nginx:1.2@sha256:ab"), "docker.io/library/nginx");
        assert_eq!(repository("registry:5000/x:tag"), "registry");
        assert_eq!(repository("x@sha256:ab"), "x");
        assert_eq!(
            Field::parse("ka.req.pod.initContainers.privileged").unwrap(),
            Field::Container(Containers::Init, ContainerAttr::Privileged)
        );
        assert!(Field::parse("ka.nope").is_err());
    }

    #[test]
    fn extracts_pod_fields() {
        let raw = r#"{"kind":"Event","verb":"create","objectRef":{"resource":"pods","namespace":"default"},"requestObject":{"spec":{"hostNetwork":true,"containers":[{"name":"a","image":"nginx:1","securityContext":{"privileged":true}},{"name":"b","image":"apache"}],"volumes":[{"name":"h","hostPath":{"path":"/etc"}}]}},"responseObject":{"metadata":{"name":"p1"}}}"#;
        let e = crate::event::test_event(raw);
        let get = |f: &str| {
            Field::parse(f).unwrap().extract(&e).map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(get("ka.req.pod.containers.privileged").unwrap(), ["true", "false"]);
        assert_eq!(get("ka.req.pod.containers.image.repository").unwrap(), ["nginx", "apache"]);
        assert_eq!(get("ka.req.pod.volumes.hostpath").unwrap(), ["/etc"]);
        assert_eq!(get("ka.req.pod.host_network").unwrap(), ["true"]);
        assert_eq!(get("ka.resp.name").unwrap(), ["p1"]);
        assert_eq!(get("ka.req.pod.initContainers.privileged"), None);
        assert_eq!(get("jevt.value[/requestObject/spec/containers/1/name]").unwrap(), ["b"]);
        assert_eq!(get("ka.target.subresource"), None);
    }
}
