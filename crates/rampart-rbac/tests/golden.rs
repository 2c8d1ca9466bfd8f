//! The 13 upstream converter examples through Rampart's converter, against reviewed goldens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use std::path::Path;

use rampart_rbac::convert::convert;
use rampart_rbac::manifest::World;
use serde::Deserialize;

/// Upstream's inputs are a binding then its role, without `kind`s: add them, then convert the
/// pair as given (the role object's name may differ from `roleRef.name`, as upstream allows).
fn convert_example(text: &str, source: &str) -> String {
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .collect();
    let [binding, role] = docs.as_slice() else { panic!("{source}: expected a binding and a role") };
    let namespace = binding.get("metadata").and_then(|m| m.get("namespace")).cloned();
    let mut binding = binding.clone();
    let mut role = role.clone();
    let role_kind = binding["roleRef"]["kind"].as_str().unwrap().to_owned();
    binding["kind"] = (if namespace.is_some() { "RoleBinding" } else { "ClusterRoleBinding" }).into();
    role["kind"] = role_kind.as_str().into();
    if let (Some(ns), "Role") = (namespace, role_kind.as_str()) {
        role["metadata"]["namespace"] = ns;
    }
    let mut world = World::default();
    let yaml =
        format!("{}---\n{}", serde_yaml::to_string(&binding).unwrap(), serde_yaml::to_string(&role).unwrap());
    world.add_yaml(&yaml, source).unwrap();
    let binding = world.cluster_role_bindings.first().or(world.role_bindings.first()).unwrap();
    let role = world.cluster_roles.first().or(world.roles.first()).unwrap();
    convert(binding, role)
}

#[test]
fn converter_goldens() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    inputs.sort();
    assert_eq!(inputs.len(), 13);
    let bless = std::env::var_os("RAMPART_BLESS").is_some();
    let mut failures = Vec::new();
    for input in inputs {
        let text = convert_example(&std::fs::read_to_string(&input).unwrap(), &input.display().to_string());
        let golden = input.with_extension("cedar");
        if bless {
            std::fs::write(&golden, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if text != want {
            failures.push(format!("{}:\n--- want\n{want}\n--- got\n{text}", golden.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
