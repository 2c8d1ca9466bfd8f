//! JSON values of audit events. An event is parsed once, whole, by `sonic-rs` (a SIMD JSON
//! parser whose DOM lives in one arena per document): building the complete tree, bodies
//! included, costs about what `serde_json` needs merely to skip over the same text, so every
//! detector reads the envelope and the bodies without a second parse.
//!
//! `Json` is `sonic_rs::Value`; its accessors come from the two re-exported traits. This module
//! adds RFC 6901 pointers (Falco's `jevt.value[/a/b]`, rule paths written `/spec/template/spec`)
//! and typed shortcuts the detectors share.

pub use sonic_rs::{JsonContainerTrait, JsonValueTrait};

/// One JSON value (a whole event or any part of it).
pub type Json = sonic_rs::Value;

/// Parse one JSON text.
pub fn parse(text: &str) -> Result<Json, sonic_rs::Error> {
    sonic_rs::from_str(text)
}

/// Navigation and typed reads shared by the detectors.
pub trait JsonExt {
    /// RFC 6901 pointer (`/spec/containers/0/image`, `~1` for `/`, `~0` for `~`).
    fn at(&self, pointer: &str) -> Option<&Json>;
    /// The array at `key` of this object (empty if missing or not an array).
    fn items(&self, key: &str) -> &[Json];
    /// The elements of this array (empty if it is not one).
    fn elements(&self) -> &[Json];
    /// The `(key, value)` pairs of this object, in document order (none if it is not one).
    fn entries(&self) -> impl Iterator<Item = (&str, &Json)>;
}

impl JsonExt for Json {
    fn at(&self, pointer: &str) -> Option<&Json> {
        if pointer.is_empty() {
            return Some(self);
        }
        let mut at = self;
        for raw in pointer.strip_prefix('/')?.split('/') {
            let token = if raw.contains('~') {
                std::borrow::Cow::Owned(raw.replace("~1", "/").replace("~0", "~"))
            } else {
                std::borrow::Cow::Borrowed(raw)
            };
            at = if at.is_object() {
                at.get(token.as_ref())?
            } else if at.is_array() {
                at.get(token.parse::<usize>().ok()?)?
            } else {
                return None;
            };
        }
        Some(at)
    }

    fn items(&self, key: &str) -> &[Json] {
        self.get(key).map(JsonExt::elements).unwrap_or_default()
    }

    fn elements(&self) -> &[Json] {
        self.as_array().map(|a| a.as_slice()).unwrap_or_default()
    }

    fn entries(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.as_object().into_iter().flat_map(|o| o.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_navigate_objects_arrays_and_escapes() {
        let text = r#"{"spec":{"containers":[{"name":"a","image":"nginx","n":3,"x":1.5,"esc":"a\"b","p":null,"b":true}]},"a/b":{"~":1}}"#;
        let j = parse(text).unwrap();
        assert_eq!(j.at("/spec/containers/0/image").and_then(|v| v.as_str()), Some("nginx"));
        assert_eq!(j.at("/spec/containers/0/esc").and_then(|v| v.as_str()), Some("a\"b"));
        assert_eq!(j.at("/a~1b/~0").and_then(|v| v.as_i64()), Some(1));
        assert_eq!(j.at("/spec/containers/1"), None);
        assert_eq!(j.at("/spec/containers/x"), None);
        assert_eq!(j.at("spec"), None, "a pointer starts with /");
        assert_eq!(j.at("").map(|v| v.is_object()), Some(true));
        assert_eq!(j.at("/spec").map(|s| s.items("containers").len()), Some(1));
        assert!(j.items("missing").is_empty());
        // Printing gives the same JSON back.
        let reparsed: serde_json::Value = serde_json::from_str(&j.to_string()).unwrap();
        assert_eq!(reparsed, serde_json::from_str::<serde_json::Value>(text).unwrap());
    }

    #[test]
    fn refuses_broken_json() {
        for bad in ["", "{", r#"{"a":}"#, r#"{"a":"\u12"}"#, "[1,]", r#"{"a":1}x"#] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
