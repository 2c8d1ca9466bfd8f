//! Any text as RBAC manifests (`kubectl get roles,rolebindings,… -o yaml`), then the
//! authorizer built from them (aggregation included) asked one question.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_rbac::manifest::World;
use rampart_rbac::{Attributes, User};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut world = World::default();
    if world.add_yaml(text, "fuzz.yaml").is_ok() {
        let authz = world.authorizer();
        let groups = vec!["system:authenticated".to_owned()];
        let attrs = Attributes {
            verb: "get",
            resource_request: true,
            api_group: "",
            resource: "secrets",
            subresource: "",
            name: "s",
            namespace: "default",
            path: "",
        };
        let _ = authz.authorize(&User { name: "alice", groups: &groups }, &attrs);
    }
});
