//! Which forbids can error. Cedar skips a policy whose evaluation errors, so a forbid that can
//! error can silently not apply — a wrong allow. Strict validation rules out type errors and
//! unguarded attributes; what remains is arithmetic overflow, tags read without `hasTag`, and
//! extension functions given text that may not parse (or that overflow). A unified forbid using
//! any of these is refused at load.

use serde_json::Value;

/// Operators that error on overflow or on a missing tag.
const ERRING_OPERATORS: &[&str] = &["+", "-", "*", "neg", "getTag"];
/// Extension constructors: safe on a literal (the validator parses it), may error otherwise.
const CONSTRUCTORS: &[&str] = &["ip", "decimal", "datetime", "duration"];
/// Extension methods that can overflow.
const ERRING_METHODS: &[&str] = &["offset", "durationSince", "toDate", "toTime"];
/// The first construct in a policy's conditions that can make it error, if any.
pub fn can_error(policy: &cedar_policy::Policy) -> Option<String> {
    // Fail closed: a forbid that cannot be analysed is treated as one that can error.
    let Ok(est) = policy.to_json() else { return Some("its conditions could not be analysed".to_owned()) };
    let conditions = est.get("conditions").and_then(Value::as_array)?;
    conditions.iter().filter_map(|c| c.get("body")).find_map(erring)
}

fn erring(expr: &Value) -> Option<String> {
    match expr {
        Value::Array(items) => items.iter().find_map(erring),
        Value::Object(map) => {
            for (key, value) in map {
                if ERRING_OPERATORS.contains(&key.as_str()) {
                    return Some(format!("`{key}` can overflow or fail"));
                }
                if ERRING_METHODS.contains(&key.as_str()) {
                    return Some(format!("`{key}` can overflow"));
                }
                if CONSTRUCTORS.contains(&key.as_str()) {
                    let literal =
                        value.as_array().is_some_and(|args| args.iter().all(|a| a.get("Value").is_some()));
                    if !literal {
                        return Some(format!("`{key}(…)` of a value that may not parse"));
                    }
                    continue;
                }
                if key == "Value" || key == "Var" || key == "Slot" {
                    continue;
                }
                // Anything else (comparisons, `&&`, `has`, `like`, records, sets, the other
                // extension methods) cannot error itself: look inside.
                if let Some(found) = erring(value) {
                    return Some(found);
                }
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn check(text: &str) -> Option<String> {
        can_error(&cedar_policy::Policy::from_str(text).unwrap())
    }

    #[test]
    fn arithmetic_tags_and_parsed_text_can_error() {
        assert!(
            check("forbid(principal, action, resource) when { context.n + 1 > 2 };").unwrap().contains('+')
        );
        assert!(check("forbid(principal, action, resource) when { resource.getTag(\"x\") == 1 };").is_some());
        assert!(
            check("forbid(principal, action, resource) when { ip(context.addr).isLoopback() };").is_some()
        );
        assert!(
            check(
                "forbid(principal, action, resource) when { context.d.offset(duration(\"1h\")) > context.d };"
            )
            .is_some()
        );
    }

    #[test]
    fn comparisons_literals_and_guards_cannot() {
        assert!(check("forbid(principal, action, resource) when { resource has name && resource.name like \"prod*\" };").is_none());
        assert!(
            check("forbid(principal, action, resource) when { ip(\"10.0.0.1\").isLoopback() };").is_none()
        );
        assert!(
            check(
                "forbid(principal, action, resource) when { context.n > -1 && [1, 2].contains(context.n) };"
            )
            .is_none()
        );
    }
}
