//! Per-resource schemas. Cedar's typed partial evaluation validates its request and entities
//! against the schema and typechecks each policy on every call, and much of that work grows
//! with the schema (every action entity is copied in, the request environment is found by
//! scanning all of them). The unified schema embeds the whole Kubernetes schema, so each
//! resource type gets a schema holding only what its requests can reach: the principal
//! types, the resource type, its object kind's type closure, and the actions applied to it.
//!
//! Two schemas give the same answer for a policy that typechecks under both: the types a
//! request can reach are copied unchanged. A policy that names a type outside the narrow
//! schema (an entity literal, an `is` of another resource type) fails to typecheck there, and
//! the tier then evaluates that resource type with the full schema.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use cedar_policy::{Schema, SchemaFragment};
use serde_json::{Map, Value, json};

use crate::schema::{self, ACTION_NAMESPACE};

/// The principal types of every unified action, and what they are members of.
const PRINCIPAL_TYPES: &[&str] = &["k8s::User", "k8s::ServiceAccount", "k8s::Node", "k8s::Group"];

/// Names that are not schema types.
const BUILTIN_TYPES: &[&str] = &["String", "Long", "Bool", "Boolean", "Set", "Record", "Extension"];

static FULL_JSON: LazyLock<Option<Value>> = LazyLock::new(|| {
    let (fragment, _) = SchemaFragment::from_cedarschema_str(&schema::schema_text()).ok()?;
    fragment.to_json_value().ok()
});

static NARROW: LazyLock<HashMap<String, Schema>> = LazyLock::new(|| {
    let Some(full) = FULL_JSON.as_ref() else { return HashMap::new() };
    schema::RESOURCES
        .iter()
        .filter_map(|kind| {
            let ty = kind.type_name();
            let schema = Schema::from_json_value(narrow_json(full, ty)).ok()?;
            Some((ty.to_owned(), schema))
        })
        .collect()
});

/// The schema for requests on one resource type; `None` when it could not be built (the
/// caller then uses the full schema).
pub fn for_type(type_name: &str) -> Option<&'static Schema> {
    NARROW.get(type_name)
}

/// A qualified type name split into namespace and local name.
fn split(qualified: &str) -> (&str, &str) {
    qualified.rsplit_once("::").unwrap_or(("", qualified))
}

/// Whether a namespace of the JSON schema declares `local` among its `section` types.
fn declares(full: &Value, namespace: &str, section: &str, local: &str) -> bool {
    full.get(namespace).and_then(|n| n.get(section)).and_then(|t| t.get(local)).is_some()
}

/// Resolve a type reference made inside `namespace`: `(section, qualified)` of the common or
/// entity type it names, or `None` for a builtin.
fn resolve(full: &Value, namespace: &str, name: &str) -> Option<(&'static str, String)> {
    let candidates: Vec<String> = if name.contains("::") || namespace.is_empty() {
        vec![name.to_owned()]
    } else {
        vec![format!("{namespace}::{name}"), name.to_owned()]
    };
    for qualified in candidates {
        let (ns, local) = split(&qualified);
        for section in ["commonTypes", "entityTypes"] {
            if declares(full, ns, section, local) {
                return Some((section, qualified.clone()));
            }
        }
    }
    None
}

/// Every type reference in a piece of a type declaration.
fn references<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(name)) = map.get("name")
                && map
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t == "Entity" || t == "EntityOrCommon")
            {
                out.push(name);
            }
            if let Some(Value::String(t)) = map.get("type")
                && !BUILTIN_TYPES.contains(&t.as_str())
                && t != "Entity"
                && t != "EntityOrCommon"
            {
                out.push(t);
            }
            if let Some(Value::Array(members)) = map.get("memberOfTypes") {
                out.extend(members.iter().filter_map(Value::as_str));
            }
            for (key, inner) in map {
                if key != "annotations" {
                    references(inner, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// The JSON schema for one resource type: the closure of the types it and the principals
/// reach, and the unified actions applied to it alone.
fn narrow_json(full: &Value, resource_type: &str) -> Value {
    let mut chosen: BTreeSet<(&'static str, String)> = BTreeSet::new();
    let mut pending: Vec<(&'static str, String)> = PRINCIPAL_TYPES
        .iter()
        .chain(std::iter::once(&resource_type))
        .map(|t| ("entityTypes", (*t).to_owned()))
        .collect();
    while let Some((section, qualified)) = pending.pop() {
        if !chosen.insert((section, qualified.clone())) {
            continue;
        }
        let (ns, local) = split(&qualified);
        let Some(declaration) = full.get(ns).and_then(|n| n.get(section)).and_then(|t| t.get(local)) else {
            continue;
        };
        let mut found = Vec::new();
        references(declaration, &mut found);
        pending.extend(found.into_iter().filter_map(|name| resolve(full, ns, name)));
    }
    let mut namespaces: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (section, qualified) in &chosen {
        let (ns, local) = split(qualified);
        if let Some(declaration) = full.get(ns).and_then(|n| n.get(*section)).and_then(|t| t.get(local)) {
            let space = namespaces.entry(ns.to_owned()).or_default();
            let types = space.entry(*section).or_insert_with(|| json!({}));
            types[local] = declaration.clone();
        }
    }
    let mut actions = Map::new();
    for verb in schema::VERBS {
        actions.insert(
            (*verb).to_owned(),
            json!({"appliesTo": {"principalTypes": ["k8s::User", "k8s::ServiceAccount", "k8s::Node"], "resourceTypes": [resource_type]}}),
        );
    }
    let space = namespaces.entry(ACTION_NAMESPACE.to_owned()).or_default();
    space.insert("actions".into(), Value::Object(actions));
    let mut out = Map::new();
    for (ns, mut space) in namespaces {
        space.entry("entityTypes").or_insert_with(|| json!({}));
        space.entry("actions").or_insert_with(|| json!({}));
        out.insert(ns, Value::Object(space));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_type_has_a_narrow_schema() {
        for kind in schema::RESOURCES {
            let ty = kind.type_name();
            let narrow = for_type(ty).unwrap_or_else(|| panic!("{ty}: no narrow schema"));
            let types: Vec<String> = narrow.entity_types().map(ToString::to_string).collect();
            assert!(types.iter().any(|t| t == ty), "{ty}: {types:?}");
            assert!(types.contains(&"k8s::User".to_owned()));
            // Only its own resource type: the others are what made the schema big.
            assert!(!types.iter().any(|t| t != ty && schema::RESOURCES.iter().any(|r| r.type_name() == t)));
        }
    }

    #[test]
    fn narrow_schemas_are_much_smaller() {
        let full = schema::schema().unwrap().entity_types().count();
        let narrow = for_type("core::configmaps").unwrap().entity_types().count();
        assert!(narrow * 4 < full, "narrow {narrow}, full {full}");
    }
}
