//! The engine the review targets decide with: the README's policies, loaded once.

use std::sync::OnceLock;

use rampart_policy::document::{DocumentKind, parse_document};
use rampart_policy::engine::{Engine, EngineOptions};

const POLICIES: &str = r#"
permit (principal in k8s::Group::"viewers", action in [k8s::Action::"get", k8s::Action::"list"], resource is k8s::Resource)
unless { resource.apiGroup == "" && resource.resource == "secrets" };
forbid (principal is k8s::User in k8s::Group::"requires-labels", action in [k8s::Action::"list", k8s::Action::"watch"], resource is k8s::Resource)
unless { resource has labelSelector && resource.labelSelector.contains({"key": "owner", "operator": "in", "values": [principal.name]}) };
forbid (principal is k8s::User in k8s::Group::"requires-labels", action in [k8s::admission::Action::"create", k8s::admission::Action::"update"], resource)
unless { resource has metadata && resource.metadata has labels && resource.metadata.labels.contains({"key": "owner", "value": principal.name}) };
"#;

pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let policies = parse_document(&DocumentKind::Memory { name: "fuzz".into() }, POLICIES)
            .unwrap_or_else(|e| panic!("the fuzz policies parse: {}", e.message));
        Engine::new(vec![("fuzz".into(), policies)], EngineOptions::default())
            .unwrap_or_else(|e| panic!("the fuzz engine builds: {e}"))
    })
}
