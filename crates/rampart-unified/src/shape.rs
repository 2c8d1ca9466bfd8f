//! How a unified policy depends on the objects, worked out once at load so that the
//! authorization phase of a write rarely needs Cedar's typed partial evaluation (whose
//! per-call type-checking costs about 40 µs a policy).
//!
//! A policy's conditions are one conjunction: each `when` body split at its top-level `&&`,
//! and each `unless` body negated. A conjunct that never reads `resource.object` or
//! `resource.oldObject` is decided by an ordinary evaluation without the objects; one that
//! does is unknown until admission. So, without the objects:
//! * an object-free policy is decided exactly by ordinary evaluation;
//! * a policy whose object-free conjuncts do not all hold is not satisfied (whatever the
//!   objects, and whichever order Cedar evaluates the conjuncts in: a false or erroring
//!   conjunct leaves the policy unsatisfied either way);
//! * otherwise it is residual: admission, which has the objects, decides it exactly.
//!
//! That is what typed partial evaluation answers too, as long as it cannot decide an
//! object-dependent conjunct on its own. It can when the conjunct mixes object reads with
//! connectives (`resource.namespace == "x" || resource.object…`) or conditionals, so such
//! policies keep going through it ([`Shape::Partial`]). (It can also decide `has` of an
//! attribute the schema requires; calling that conjunct residual instead only leaves a write
//! conditional that admission then decides exactly.)

use cedar_policy::Policy;
use serde_json::{Value, json};

/// How to evaluate a policy without the objects.
#[derive(Debug, Clone)]
pub enum Shape {
    /// Reads no object: `concrete` is the policy as a permit (so an ordinary evaluation lists
    /// it among the satisfied policies whatever its effect).
    ObjectFree { concrete: Policy },
    /// Residual when its object-free conjuncts hold: `guard` is those conjuncts as a permit,
    /// `None` when there are none (always residual).
    Guarded { guard: Option<Policy> },
    /// Needs typed partial evaluation.
    Partial,
}

/// Work out a policy's shape; [`Shape::Partial`] whenever anything is not understood.
pub fn shape(policy: &Policy) -> Shape {
    let Ok(mut est) = policy.to_json() else { return Shape::Partial };
    let Some(conditions) = est.get("conditions").and_then(Value::as_array).cloned() else {
        return Shape::Partial;
    };
    let mut conjuncts = Vec::new();
    for condition in &conditions {
        let Some(body) = condition.get("body") else { return Shape::Partial };
        match condition.get("kind").and_then(Value::as_str) {
            Some("when") => split_and(body, &mut conjuncts),
            Some("unless") => conjuncts.push(json!({"!": {"arg": body}})),
            _ => return Shape::Partial,
        }
    }
    let (dependent, free): (Vec<Value>, Vec<Value>) = conjuncts.into_iter().partition(reads_objects);
    if dependent.iter().any(has_connective) {
        return Shape::Partial;
    }
    est["effect"] = json!("permit");
    if dependent.is_empty() {
        return match Policy::from_json(Some(policy.id().clone()), est) {
            Ok(concrete) => Shape::ObjectFree { concrete },
            Err(_) => Shape::Partial,
        };
    }
    let Some(guard_body) = free.into_iter().reduce(|l, r| json!({"&&": {"left": l, "right": r}})) else {
        return Shape::Guarded { guard: None };
    };
    est["conditions"] = json!([{"kind": "when", "body": guard_body}]);
    match Policy::from_json(Some(policy.id().clone()), est) {
        Ok(guard) => Shape::Guarded { guard: Some(guard) },
        Err(_) => Shape::Partial,
    }
}

/// The conjuncts of a `&&` chain, in order.
fn split_and(expr: &Value, out: &mut Vec<Value>) {
    match expr.get("&&") {
        Some(and) => {
            if let (Some(l), Some(r)) = (and.get("left"), and.get("right")) {
                split_and(l, out);
                split_and(r, out);
            } else {
                out.push(expr.clone());
            }
        }
        None => out.push(expr.clone()),
    }
}

/// Whether an expression reads `resource.object` or `resource.oldObject` (their attributes,
/// `has` on them, anything). `resource has object` reads the resource only.
fn reads_objects(expr: &Value) -> bool {
    match expr {
        Value::Object(map) => {
            if let Some(dot) = map.get(".")
                && dot.get("left").and_then(|l| l.get("Var")).and_then(Value::as_str) == Some("resource")
                && matches!(dot.get("attr").and_then(Value::as_str), Some("object" | "oldObject"))
            {
                return true;
            }
            map.values().any(reads_objects)
        }
        Value::Array(items) => items.iter().any(reads_objects),
        _ => false,
    }
}

/// Whether an expression holds a connective or conditional partial evaluation could decide
/// from its object-free side.
fn has_connective(expr: &Value) -> bool {
    match expr {
        Value::Object(map) => {
            map.keys().any(|k| matches!(k.as_str(), "&&" | "||" | "!" | "if-then-else"))
                || map.values().any(has_connective)
        }
        Value::Array(items) => items.iter().any(has_connective),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Shape {
        shape(&text.parse::<Policy>().unwrap())
    }

    #[test]
    fn shapes() {
        assert!(matches!(
            of("forbid (principal, action, resource) when { resource has namespace && resource.namespace == \"dev\" };"),
            Shape::ObjectFree { ref concrete } if concrete.effect() == cedar_policy::Effect::Permit
        ));
        let guarded = of(
            "forbid (principal, action, resource is core::configmaps) when { resource has namespace && resource.namespace == \"dev\" && resource.object.metadata.name like \"prod*\" } unless { principal in k8s::Group::\"admins\" };",
        );
        let Shape::Guarded { guard: Some(guard) } = guarded else { panic!("{guarded:?}") };
        let text = guard.to_string();
        assert!(
            text.contains("resource.namespace") && text.contains("admins") && !text.contains("prod"),
            "{text}"
        );
        assert!(matches!(
            of(
                "permit (principal, action, resource is core::configmaps) when { resource.object.metadata.name like \"x\" };"
            ),
            Shape::Guarded { guard: None }
        ));
        // A connective mixing object reads with the rest: partial evaluation may decide it.
        assert!(matches!(
            of(
                "permit (principal, action, resource is core::configmaps) when { resource.namespace == \"dev\" || resource.object.metadata.name like \"x\" };"
            ),
            Shape::Partial
        ));
        assert!(matches!(
            of(
                "permit (principal, action, resource is core::configmaps) unless { resource.object.metadata.name like \"x\" };"
            ),
            Shape::Partial
        ));
    }
}
