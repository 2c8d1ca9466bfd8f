//! Parse `kubectl`-style selectors (`-l`, `--field-selector`) into the requirements the
//! apiserver would put on the wire.
//!
//! Like kube-apiserver's webhook client, `owner=x`, `owner==x` and `owner in (x)` all become
//! operator `In`.

use crate::sar::{
    FieldSelectorAttributes, FieldSelectorRequirement, LabelSelectorAttributes, LabelSelectorRequirement,
};

/// A selector that cannot be parsed, with what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(String);

/// Split on commas that are not inside parentheses.
fn terms(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out.into_iter().filter(|t| !t.is_empty()).collect()
}

fn set_values(s: &str, term: &str) -> Result<Vec<String>, SelectorError> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| SelectorError(format!("in label selector term {term:?}: expected (a,b,…)")))?;
    Ok(inner.split(',').map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect())
}

fn label(key: &str, operator: &str, values: Vec<String>) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.trim().to_owned(),
        operator: operator.to_owned(),
        values: Some(values),
    }
}

/// `-l` syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`.
pub fn parse_labels(s: &str) -> Result<LabelSelectorAttributes, SelectorError> {
    let mut reqs = Vec::new();
    for term in terms(s) {
        let req = if let Some((k, v)) = term.split_once("!=") {
            label(k, "NotIn", vec![v.trim().to_owned()])
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            label(k, "In", vec![v.trim().to_owned()])
        } else if let Some((k, v)) = term.split_once(" notin ") {
            label(k, "NotIn", set_values(v, term)?)
        } else if let Some((k, v)) = term.split_once(" in ") {
            label(k, "In", set_values(v, term)?)
        } else if let Some(k) = term.strip_prefix('!') {
            label(k, "DoesNotExist", vec![])
        } else if term.contains(char::is_whitespace) {
            return Err(SelectorError(format!(
                "cannot parse label selector term {term:?}; use key=value, key!=value, key in (a,b), key or !key"
            )));
        } else {
            label(term, "Exists", vec![])
        };
        reqs.push(req);
    }
    Ok(LabelSelectorAttributes { raw_selector: None, requirements: Some(reqs) })
}

/// `--field-selector` syntax: `a=b`, `a==b`, `a!=b`.
pub fn parse_fields(s: &str) -> Result<FieldSelectorAttributes, SelectorError> {
    let mut reqs = Vec::new();
    for term in terms(s) {
        let (key, operator, value) = if let Some((k, v)) = term.split_once("!=") {
            (k, "NotIn", v)
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            (k, "In", v)
        } else {
            return Err(SelectorError(format!(
                "cannot parse field selector term {term:?}; use field=value or field!=value"
            )));
        };
        reqs.push(FieldSelectorRequirement {
            key: key.trim().to_owned(),
            operator: operator.to_owned(),
            values: Some(vec![value.trim().to_owned()]),
        });
    }
    Ok(FieldSelectorAttributes { raw_selector: None, requirements: Some(reqs) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_forms_arrive_as_the_apiserver_sends_them() {
        let sel = parse_labels("owner=alice,tier in (a, b),!gone,app,env!=prod").unwrap();
        let reqs = sel.requirements.unwrap();
        let ops: Vec<_> = reqs.iter().map(|r| r.operator.as_str()).collect();
        assert_eq!(ops, ["In", "In", "DoesNotExist", "Exists", "NotIn"]);
        assert_eq!(reqs[1].values.as_deref().unwrap(), ["a", "b"]);
        assert!(parse_labels("a b c").is_err());
    }

    #[test]
    fn field_forms() {
        let sel = parse_fields("spec.nodeName=n1,metadata.name!=x").unwrap();
        let reqs = sel.requirements.unwrap();
        assert_eq!(reqs[0].operator, "In");
        assert_eq!(reqs[1].operator, "NotIn");
        assert!(parse_fields("spec.nodeName").is_err());
    }
}
