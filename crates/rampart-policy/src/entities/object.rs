//! Kubernetes objects (raw JSON) → Cedar values.
//!
//! * objects become records; `null` and empty records are skipped;
//! * arrays become sets;
//! * `labels`, `annotations` and `nodeSelector` at any depth, plus the kind-specific string
//!   maps of [`KV_FIELDS`], become `Set<{key, value}>` so policies can write
//!   `resource.metadata.labels.contains({"key": "owner", "value": principal.name})`;
//! * `extra` maps of string lists become `Set<{key, value: Set<String>}>` (upstream never
//!   converted them, Appendix A #5);
//! * strings under IP-valued keys (`podIP`, `hostIPs`, …) become `ipaddr` when they parse;
//! * floats become `decimal` when Cedar can hold them exactly, else strings (upstream
//!   rejected the whole request with a 500, Appendix A #3).

use std::sync::LazyLock;

use cedar_policy_core::ast::{Literal, Name, RestrictedExpr, Value};
use cedar_policy_core::evaluator::RestrictedEvaluator;
use cedar_policy_core::extensions::Extensions;
use serde_json::Map;
use smol_str::SmolStr;

use crate::EntityError;

/// Nesting limit; deeper objects are rejected rather than risking the stack.
pub const MAX_DEPTH: usize = 32;

/// Keys whose string values are IP addresses or CIDRs.
const IP_KEYS: &[&str] = &["podIP", "clusterIP", "loadBalancerIP", "hostIP", "ip", "podIPs", "hostIPs"];

/// String maps converted to key/value sets wherever they appear.
const KV_ANYWHERE: &[&str] = &["labels", "annotations", "nodeSelector"];

/// String maps converted to key/value sets for a given (Cedar group namespace, top-level kind).
pub const KV_FIELDS: &[(&str, &str, &str)] = &[
    ("core", "ConfigMap", "data"),
    ("core", "ConfigMap", "binaryData"),
    ("core", "Secret", "data"),
    ("core", "Secret", "stringData"),
    ("core", "Service", "selector"),
    ("core", "ReplicationController", "selector"),
    ("core", "PersistentVolume", "volumeAttributes"),
    ("core", "Pod", "volumeAttributes"),
    ("storage", "StorageClass", "parameters"),
    ("storage", "VolumeAttachment", "attachmentMetadata"),
    ("discovery", "EndpointSlice", "deprecatedTopology"),
];

/// Converts one object; knows its group namespace and kind for the key/value table.
///
/// Objects become Cedar values directly, not restricted expressions for Cedar to evaluate:
/// an UPDATE's old object is both an entity and `context.oldObject`, and a value is shared
/// between the two by reference, where an expression would be evaluated (and its strings
/// copied) once per use. For the largest object the apiserver sends that is most of the cost
/// of an admission request.
pub struct ObjectConverter<'a> {
    pub group_namespace: &'a str,
    pub kind: &'a str,
}

fn string(s: &str) -> Value {
    Value::from(Literal::String(SmolStr::new(s)))
}

fn key_value(key: &str, value: Value) -> Value {
    Value::record([("key", string(key)), ("value", value)], None)
}

fn is_ip_or_cidr(s: &str) -> bool {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    addr.parse::<std::net::IpAddr>().is_ok() && prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|n| n <= 128))
}

static IP: LazyLock<Option<Name>> = LazyLock::new(|| "ip".parse().ok());
static DECIMAL: LazyLock<Option<Name>> = LazyLock::new(|| "decimal".parse().ok());

/// `function("text")` of a Cedar extension (`ip`, `decimal`), evaluated; `None` when Cedar
/// refuses the text.
fn extension(function: &LazyLock<Option<Name>>, text: &str) -> Option<Value> {
    let function = Option::clone(function)?;
    let call = RestrictedExpr::call_extension_fn(function, [RestrictedExpr::val(text)]);
    RestrictedEvaluator::new(Extensions::all_available()).interpret(call.as_borrowed()).ok()
}

/// A JSON float as a Cedar value: `decimal` when it has at most four fractional digits and
/// fits, else its decimal text as a string.
fn float(f: f64) -> Value {
    let text = if f.fract() == 0.0 { format!("{f:.1}") } else { f.to_string() };
    let fraction_digits = text.split_once('.').map_or(0, |(_, frac)| frac.len());
    let exact = f.is_finite() && f.abs() < 9.0e14 && fraction_digits <= 4;
    exact.then(|| extension(&DECIMAL, &text)).flatten().unwrap_or_else(|| string(&text))
}

impl ObjectConverter<'_> {
    fn is_kv_field(&self, key: &str) -> bool {
        KV_ANYWHERE.contains(&key)
            || KV_FIELDS.iter().any(|(g, k, f)| *g == self.group_namespace && *k == self.kind && *f == key)
    }

    /// The top-level fields of an object, ready to be entity attributes.
    pub fn fields(&self, object: &serde_json::Value) -> Result<Vec<(SmolStr, Value)>, EntityError> {
        match object {
            serde_json::Value::Object(map) => self.record_fields(map, MAX_DEPTH),
            serde_json::Value::Null => Ok(vec![]),
            other => Err(EntityError::Object(format!("object is a {}, not a JSON object", kind_of(other)))),
        }
    }

    fn record_fields(
        &self,
        map: &Map<String, serde_json::Value>,
        depth: usize,
    ) -> Result<Vec<(SmolStr, Value)>, EntityError> {
        let mut out = Vec::with_capacity(map.len());
        for (key, value) in map {
            if let Some(v) = self.value(key, value, depth)? {
                out.push((SmolStr::new(key), v));
            }
        }
        Ok(out)
    }

    /// Convert `value` found under `key`; `None` means "leave the attribute out".
    fn value(
        &self,
        key: &str,
        value: &serde_json::Value,
        depth: usize,
    ) -> Result<Option<Value>, EntityError> {
        use serde_json::Value as Json;
        let depth = depth.checked_sub(1).ok_or_else(|| EntityError::Object("max depth reached".into()))?;
        Ok(match value {
            Json::Null => None,
            Json::Bool(b) => Some(Value::from(*b)),
            Json::Number(n) => Some(match n.as_i64() {
                Some(i) => Value::from(i),
                None => match n.as_f64() {
                    Some(f) if !n.is_u64() => float(f),
                    _ => string(&n.to_string()),
                },
            }),
            Json::String(s) if IP_KEYS.contains(&key) && is_ip_or_cidr(s) => {
                Some(extension(&IP, s).unwrap_or_else(|| string(s)))
            }
            Json::String(s) => Some(string(s)),
            Json::Array(items) => {
                let mut set = Vec::with_capacity(items.len());
                for item in items {
                    // Elements see the array's key, so `podIPs[]` strings become IPs.
                    if let Some(v) = self.value(key, item, depth)? {
                        set.push(v);
                    }
                }
                Some(Value::set(set, None))
            }
            Json::Object(map) if key == "extra" && is_string_list_map(map) => Some(string_list_map(map)),
            Json::Object(map) if self.is_kv_field(key) => Some(string_map(map)),
            Json::Object(map) if map.is_empty() => None,
            Json::Object(map) => {
                let fields = self.record_fields(map, depth)?;
                if fields.is_empty() { None } else { Some(Value::record(fields, None)) }
            }
        })
    }
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    use serde_json::Value as Json;
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// `map[string]string` → `Set<{key, value}>`; entries with non-string values are skipped
/// (upstream stopped at the first one, nondeterministically).
fn string_map(map: &Map<String, serde_json::Value>) -> Value {
    let entries = map.iter().filter_map(|(k, v)| Some(key_value(k, string(v.as_str()?))));
    Value::set(entries, None)
}

fn is_string_list_map(map: &Map<String, serde_json::Value>) -> bool {
    map.values().all(|v| v.as_array().is_some_and(|a| a.iter().all(serde_json::Value::is_string)))
}

/// `map[string][]string` → `Set<{key, value: Set<String>}>`.
fn string_list_map(map: &Map<String, serde_json::Value>) -> Value {
    let entries = map.iter().map(|(k, v)| {
        let values = v.as_array().into_iter().flatten().filter_map(serde_json::Value::as_str);
        key_value(k, Value::set(values.map(string), None))
    });
    Value::set(entries, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn convert(group: &str, kind: &str, v: Value) -> Value {
        let c = ObjectConverter { group_namespace: group, kind };
        let fields = c.fields(&v).unwrap();
        crate::entities::value_entity("T::\"x\"".parse().unwrap(), fields).to_json_value().unwrap()["attrs"]
            .clone()
    }

    #[test]
    fn go_unit_test_pod() {
        let attrs = convert(
            "core",
            "Pod",
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "test-pod", "namespace": "default", "creationTimestamp": null},
                "spec": {"containers": [{"name": "test-container", "image": "test-image", "resources": {}}],
                         "nodeName": "test-node", "hostNetwork": true, "shareProcessNamespace": false},
                "status": {"phase": "Running", "podIP": "10.10.1.4"}
            }),
        );
        assert_eq!(attrs["spec"]["shareProcessNamespace"], false);
        assert_eq!(attrs["status"]["podIP"]["__extn"]["fn"], "ip");
        assert!(attrs["metadata"].get("creationTimestamp").is_none());
        assert!(attrs["spec"]["containers"][0].get("resources").is_none());
    }

    #[test]
    fn string_maps_become_key_value_sets_at_any_depth() {
        let attrs = convert(
            "apps",
            "Deployment",
            json!({
                "metadata": {"labels": {"app": "web", "n": 1}},
                "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"nodeSelector": {"zone": "a"}}},
                         "selector": {"matchLabels": {"app": "web"}}}
            }),
        );
        assert_eq!(attrs["metadata"]["labels"], json!([{"key": "app", "value": "web"}]));
        assert_eq!(attrs["spec"]["template"]["metadata"]["labels"][0]["key"], "app");
        assert_eq!(attrs["spec"]["template"]["spec"]["nodeSelector"][0]["value"], "a");
        // matchLabels stays a record, as upstream.
        assert_eq!(attrs["spec"]["selector"]["matchLabels"]["app"], "web");
    }

    #[test]
    fn kind_specific_maps() {
        let cm = convert("core", "ConfigMap", json!({"data": {"k": "v"}}));
        assert_eq!(cm["data"], json!([{"key": "k", "value": "v"}]));
        let other = convert("example", "Widget", json!({"data": {"k": "v"}}));
        assert_eq!(other["data"]["k"], "v");
    }

    #[test]
    fn floats_extra_and_big_numbers() {
        let attrs = convert(
            "example",
            "Widget",
            json!({"spec": {"ratio": 1.5, "pi": 1.23456789, "big": u64::MAX,
            "extra": {"k": ["a", "b"]}}}),
        );
        assert_eq!(attrs["spec"]["ratio"]["__extn"]["fn"], "decimal");
        assert_eq!(attrs["spec"]["pi"], "1.23456789");
        assert_eq!(attrs["spec"]["big"], u64::MAX.to_string());
        assert_eq!(attrs["spec"]["extra"][0]["value"], json!(["a", "b"]));
    }

    #[test]
    fn depth_is_bounded() {
        let mut v = json!("leaf");
        for _ in 0..40 {
            v = json!({ "a": v });
        }
        let c = ObjectConverter { group_namespace: "core", kind: "Pod" };
        assert_eq!(c.fields(&v).unwrap_err(), EntityError::Object("max depth reached".into()));
    }

    #[test]
    fn ip_detection() {
        assert!(is_ip_or_cidr("10.0.0.1"));
        assert!(is_ip_or_cidr("fd00::1/64"));
        assert!(!is_ip_or_cidr("None"));
        assert!(!is_ip_or_cidr("10.0.0.1/999"));
    }
}
