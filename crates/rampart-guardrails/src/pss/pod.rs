//! A read-only view of a pod (or pod template) that treats init, regular and ephemeral
//! containers alike, as the checks need.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EphemeralContainer, Lifecycle, PodSpec, Probe, SecurityContext,
};

/// One container of any of the three kinds.
#[derive(Debug, Clone, Copy)]
pub struct ContainerView<'a> {
    pub name: &'a str,
    pub image: Option<&'a str>,
    pub security_context: Option<&'a SecurityContext>,
    pub ports: &'a [ContainerPort],
    pub probes: [Option<&'a Probe>; 3],
    pub lifecycle: Option<&'a Lifecycle>,
}

impl<'a> From<&'a Container> for ContainerView<'a> {
    fn from(c: &'a Container) -> Self {
        ContainerView {
            name: &c.name,
            image: c.image.as_deref(),
            security_context: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            probes: [c.liveness_probe.as_ref(), c.readiness_probe.as_ref(), c.startup_probe.as_ref()],
            lifecycle: c.lifecycle.as_ref(),
        }
    }
}

impl<'a> From<&'a EphemeralContainer> for ContainerView<'a> {
    fn from(c: &'a EphemeralContainer) -> Self {
        ContainerView {
            name: &c.name,
            image: c.image.as_deref(),
            security_context: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            probes: [c.liveness_probe.as_ref(), c.readiness_probe.as_ref(), c.startup_probe.as_ref()],
            lifecycle: c.lifecycle.as_ref(),
        }
    }
}

/// A pod's annotations and spec.
#[derive(Debug, Clone, Copy)]
pub struct PodView<'a> {
    pub annotations: Option<&'a BTreeMap<String, String>>,
    pub spec: &'a PodSpec,
}

impl<'a> PodView<'a> {
    pub fn new(annotations: Option<&'a BTreeMap<String, String>>, spec: &'a PodSpec) -> Self {
        PodView { annotations, spec }
    }

    /// Init containers, containers, then ephemeral containers (upstream's visiting order).
    pub fn containers(&self) -> impl Iterator<Item = ContainerView<'a>> + 'a {
        let s = self.spec;
        s.init_containers
            .iter()
            .flatten()
            .map(ContainerView::from)
            .chain(s.containers.iter().map(ContainerView::from))
            .chain(s.ephemeral_containers.iter().flatten().map(ContainerView::from))
    }

    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.annotations.and_then(|a| a.get(key)).map(String::as_str)
    }

    pub fn is_windows(&self) -> bool {
        self.spec.os.as_ref().is_some_and(|os| os.name == "windows")
    }

    /// `spec.hostUsers: false`: the pod runs in its own user namespace.
    pub fn user_namespaced(&self) -> bool {
        self.spec.host_users == Some(false)
    }
}
