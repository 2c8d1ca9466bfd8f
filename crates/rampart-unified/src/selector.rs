//! Reads with label selectors. A `list` or `watch` with a label selector can only return
//! objects whose labels satisfy it, so a policy condition on the stored objects' labels may be
//! decided for every object at once. This is a three-valued evaluation of a residual condition
//! (what typed partial evaluation left of a policy, the objects unknown) under what the
//! selector guarantees. It is sound, not complete: anything it does not understand is
//! `Unknown`, and an unknown permit does not allow while an unknown forbid denies.

use rampart_types::sar::LabelSelectorRequirement;
use serde_json::Value;

/// Kleene's three truth values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }
    fn and(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::True, Truth::True) => Truth::True,
            _ => Truth::Unknown,
        }
    }
    fn or(self, other: Truth) -> Truth {
        self.not().and(other.not()).not()
    }
}

/// Whether a residual policy's conditions hold for every object the selector can return.
pub fn residual_truth(policy: &cedar_policy::Policy, selector: &[LabelSelectorRequirement]) -> Truth {
    let Ok(est) = policy.to_json() else { return Truth::Unknown };
    let Some(conditions) = est.get("conditions").and_then(Value::as_array) else { return Truth::Unknown };
    conditions.iter().fold(Truth::True, |acc, c| {
        let body = c.get("body").map_or(Truth::Unknown, |b| truth(b, selector));
        let holds = if c.get("kind").and_then(Value::as_str) == Some("unless") { body.not() } else { body };
        acc.and(holds)
    })
}

fn truth(expr: &Value, selector: &[LabelSelectorRequirement]) -> Truth {
    let Some((op, arg)) = expr.as_object().and_then(|m| m.iter().next()) else { return Truth::Unknown };
    match op.as_str() {
        "Value" => match arg.as_bool() {
            Some(true) => Truth::True,
            Some(false) => Truth::False,
            None => Truth::Unknown,
        },
        "&&" => binary(arg, selector, Truth::and),
        "||" => binary(arg, selector, Truth::or),
        "!" => arg.get("arg").map_or(Truth::Unknown, |a| truth(a, selector).not()),
        "has" => has(arg, selector),
        "contains" => contains(arg, selector),
        _ => Truth::Unknown,
    }
}

fn binary(arg: &Value, selector: &[LabelSelectorRequirement], combine: fn(Truth, Truth) -> Truth) -> Truth {
    match (arg.get("left"), arg.get("right")) {
        (Some(l), Some(r)) => combine(truth(l, selector), truth(r, selector)),
        _ => Truth::Unknown,
    }
}

/// The attribute path an expression reads from a stored object, e.g. `["metadata", "labels"]`
/// for `resource.oldObject.metadata.labels` (the partial evaluator has replaced
/// `resource.oldObject` by the object's entity).
fn object_path(expr: &Value) -> Option<Vec<&str>> {
    let map = expr.as_object()?;
    if let Some(entity) = map.get("Value").and_then(|v| v.get("__entity")) {
        return (entity.get("id").and_then(Value::as_str) == Some("oldObject")).then(Vec::new);
    }
    let dot = map.get(".")?;
    let mut path = object_path(dot.get("left")?)?;
    path.push(dot.get("attr")?.as_str()?);
    Some(path)
}

/// Whether the selector requires some label to be present: then every returned object has
/// labels.
fn requires_a_label(selector: &[LabelSelectorRequirement]) -> bool {
    selector.iter().any(|r| r.operator == "In" || r.operator == "Exists")
}

fn has(arg: &Value, selector: &[LabelSelectorRequirement]) -> Truth {
    let (Some(path), Some(attr)) =
        (arg.get("left").and_then(object_path), arg.get("attr").and_then(Value::as_str))
    else {
        return Truth::Unknown;
    };
    match (path.as_slice(), attr) {
        // Every stored object has metadata.
        ([], "metadata") => Truth::True,
        (["metadata"], "labels") if requires_a_label(selector) => Truth::True,
        _ => Truth::Unknown,
    }
}

/// `….metadata.labels.contains({"key": K, "value": V})`.
fn contains(arg: &Value, selector: &[LabelSelectorRequirement]) -> Truth {
    let is_labels = arg.get("left").and_then(object_path).is_some_and(|p| p == ["metadata", "labels"]);
    let record = arg.get("right").and_then(|r| r.get("Record"));
    let literal = |field: &str| record?.get(field)?.get("Value")?.as_str();
    let (true, Some(key), Some(value)) = (is_labels, literal("key"), literal("value")) else {
        return Truth::Unknown;
    };
    let mut answer = Truth::Unknown;
    for r in selector.iter().filter(|r| r.key == key) {
        let values = r.values.as_deref().unwrap_or_default();
        let named = values.iter().any(|v| v == value);
        let this = match r.operator.as_str() {
            // key=value, or key in (value): only that value.
            "In" if named && values.len() == 1 => Truth::True,
            "In" if !named => Truth::False,
            "NotIn" if named => Truth::False,
            "DoesNotExist" => Truth::False,
            _ => Truth::Unknown,
        };
        // Requirements are ANDed: any definite answer is the answer.
        if this != Truth::Unknown {
            answer = this;
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    fn residual(condition: &str) -> cedar_policy::Policy {
        let text = format!("permit (principal, action, resource) when {{ {condition} }};");
        text.parse().unwrap()
    }

    const LABELS: &str = "core::v1::Secret::\"oldObject\".metadata.labels";

    #[test]
    fn a_selector_proves_or_refutes_a_label_condition() {
        let team_a = residual(&format!("{LABELS}.contains({{\"key\": \"team\", \"value\": \"a\"}})"));
        assert_eq!(residual_truth(&team_a, &[requirement("team", "In", &["a"])]), Truth::True);
        assert_eq!(residual_truth(&team_a, &[requirement("team", "In", &["a", "b"])]), Truth::Unknown);
        assert_eq!(residual_truth(&team_a, &[requirement("team", "In", &["b"])]), Truth::False);
        assert_eq!(residual_truth(&team_a, &[requirement("team", "NotIn", &["a"])]), Truth::False);
        assert_eq!(residual_truth(&team_a, &[requirement("team", "DoesNotExist", &[])]), Truth::False);
        assert_eq!(residual_truth(&team_a, &[requirement("tier", "In", &["x"])]), Truth::Unknown);
        assert_eq!(residual_truth(&team_a, &[]), Truth::Unknown);
    }

    #[test]
    fn guards_and_connectives_are_three_valued() {
        let guarded = residual(&format!(
            "core::v1::Secret::\"oldObject\" has metadata && core::v1::Secret::\"oldObject\".metadata has labels && {LABELS}.contains({{\"key\": \"tier\", \"value\": \"restricted\"}})"
        ));
        let not_restricted =
            [requirement("team", "In", &["a"]), requirement("tier", "NotIn", &["restricted"])];
        assert_eq!(residual_truth(&guarded, &not_restricted), Truth::False);
        // Without `tier!=restricted` the forbid may hold.
        assert_eq!(residual_truth(&guarded, &not_restricted[..1]), Truth::Unknown);
        // Anything else stays unknown: never a guess.
        let other = residual("core::v1::Secret::\"oldObject\".metadata.name like \"x*\"");
        assert_eq!(residual_truth(&other, &not_restricted), Truth::Unknown);
        let negated = residual(&format!("!{LABELS}.contains({{\"key\": \"team\", \"value\": \"a\"}})"));
        assert_eq!(residual_truth(&negated, &not_restricted), Truth::False);
    }
}
