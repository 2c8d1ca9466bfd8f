//! Label and field selectors of a SubjectAccessReview as Cedar requirement records.
//!
//! kube-apiserver's webhook client turns `-l owner=x`, `owner==x` and `owner in (x)` all into
//! the wire operator `In`, which becomes Cedar operator `"in"`. Invalid requirements are
//! dropped, as the apiserver's own conversion does; dropping is safe because requirements are
//! ANDed, so a dropped one can only widen what the *request* asks for, never what a policy
//! grants (a policy that demands a selector then simply does not match).

use cedar_policy::RestrictedExpression;
use rampart_types::sar::{FieldSelectorAttributes, LabelSelectorAttributes};

/// `Set<{key, operator, values}>`, or `None` when no requirement survives.
pub fn label_requirements(sel: &LabelSelectorAttributes) -> Option<RestrictedExpression> {
    let mut out = Vec::new();
    for req in sel.requirements.iter().flatten() {
        let values = req.values.as_deref().unwrap_or_default();
        let op = match req.operator.as_str() {
            "In" if !values.is_empty() => "in",
            "NotIn" if !values.is_empty() => "notin",
            "Exists" if values.is_empty() => "exists",
            "DoesNotExist" if values.is_empty() => "!",
            _ => continue,
        };
        if !is_qualified_name(&req.key) || !values.iter().all(|v| is_label_value(v)) {
            continue;
        }
        let values = values.iter().map(|v| RestrictedExpression::new_string(v.clone()));
        if let Ok(record) = RestrictedExpression::new_record([
            ("key".to_owned(), RestrictedExpression::new_string(req.key.clone())),
            ("operator".to_owned(), RestrictedExpression::new_string(op.to_owned())),
            ("values".to_owned(), RestrictedExpression::new_set(values)),
        ]) {
            out.push(record);
        }
    }
    (!out.is_empty()).then(|| RestrictedExpression::new_set(out))
}

/// `Set<{field, operator, value}>`: `In`/`NotIn` with exactly one value become `=`/`!=`;
/// everything else is dropped.
pub fn field_requirements(sel: &FieldSelectorAttributes) -> Option<RestrictedExpression> {
    let mut out = Vec::new();
    for req in sel.requirements.iter().flatten() {
        let [value] = req.values.as_deref().unwrap_or_default() else { continue };
        let op = match req.operator.as_str() {
            "In" => "=",
            "NotIn" => "!=",
            _ => continue,
        };
        if let Ok(record) = RestrictedExpression::new_record([
            ("field".to_owned(), RestrictedExpression::new_string(req.key.clone())),
            ("operator".to_owned(), RestrictedExpression::new_string(op.to_owned())),
            ("value".to_owned(), RestrictedExpression::new_string(value.clone())),
        ]) {
            out.push(record);
        }
    }
    (!out.is_empty()).then(|| RestrictedExpression::new_set(out))
}

fn is_name_part(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// A label key: `[prefix/]name`, prefix a DNS subdomain, name ≤ 63 characters.
pub fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_name_part(name, 63),
        None => is_name_part(key, 63),
    }
}

/// A label value: empty, or ≤ 63 characters of the name alphabet.
pub fn is_label_value(v: &str) -> bool {
    v.is_empty() || is_name_part(v, 63)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_types::sar::{FieldSelectorRequirement, LabelSelectorRequirement};

    fn label(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn to_json(e: RestrictedExpression) -> serde_json::Value {
        use cedar_policy::{Entity, EntityUid};
        use std::str::FromStr;
        let uid = EntityUid::from_str("T::\"x\"").unwrap();
        let ent = Entity::new(uid, [("a".to_owned(), e)].into(), Default::default()).unwrap();
        ent.to_json_value().unwrap()["attrs"]["a"].clone()
    }

    #[test]
    fn wire_operators_map_to_cedar_strings() {
        let sel = LabelSelectorAttributes {
            raw_selector: None,
            requirements: Some(vec![
                label("owner", "In", &["alice"]),
                label("team", "NotIn", &["x", "y"]),
                label("tier", "Exists", &[]),
                label("gone", "DoesNotExist", &[]),
                label("bad", "Equals", &["x"]),
                label("empty", "In", &[]),
                label("Bad Key", "In", &["x"]),
            ]),
        };
        let v = to_json(label_requirements(&sel).unwrap());
        let mut ops: Vec<&str> =
            v.as_array().unwrap().iter().map(|r| r["operator"].as_str().unwrap()).collect();
        ops.sort_unstable();
        // Cedar sets are unordered; compare sorted.
        assert_eq!(ops, ["!", "exists", "in", "notin"]);
    }

    #[test]
    fn field_selectors_need_exactly_one_value() {
        let req = |op: &str, values: &[&str]| FieldSelectorRequirement {
            key: "spec.nodeName".into(),
            operator: op.into(),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
        };
        let sel = FieldSelectorAttributes {
            raw_selector: None,
            requirements: Some(vec![
                req("In", &["n1"]),
                req("NotIn", &["n2"]),
                req("In", &["a", "b"]),
                req("Exists", &[]),
            ]),
        };
        let v = to_json(field_requirements(&sel).unwrap());
        let mut ops: Vec<&str> =
            v.as_array().unwrap().iter().map(|r| r["operator"].as_str().unwrap()).collect();
        ops.sort_unstable();
        assert_eq!(ops, ["!=", "="]);
        let none =
            FieldSelectorAttributes { raw_selector: None, requirements: Some(vec![req("Exists", &[])]) };
        assert!(field_requirements(&none).is_none());
    }

    #[test]
    fn label_syntax() {
        assert!(is_qualified_name("app.kubernetes.io/name"));
        assert!(is_qualified_name("owner"));
        assert!(!is_qualified_name("-owner"));
        assert!(!is_qualified_name("Example.COM/x"));
        assert!(is_label_value(""));
        assert!(!is_label_value(&"a".repeat(64)));
    }
}
