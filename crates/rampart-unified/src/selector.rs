//! Reads with selectors. A `list` or `watch` with a label or field selector can only return
//! objects that satisfy it, so a policy condition on the stored objects may be decided for
//! every object at once.
//!
//! The residual condition (what typed partial evaluation left of a policy, the objects
//! unknown) is evaluated abstractly: each expression gets the set of outcomes it can have on
//! the objects the selection lets through, a subset of {true, false, error}. Cedar's own
//! rules carry over: `!` swaps true and false and keeps an error, `&&`/`||` short-circuit,
//! reading an attribute an object may lack is an error, and a policy whose condition errors
//! does not apply. The sets only ever over-approximate, so the verdicts are sound: a permit is
//! proven only when its condition can be nothing but true, a forbid refuted only when its
//! condition can never be true. Anything the evaluator does not understand can be anything.
//!
//! Objects with and without labels are distinct "worlds" (an object lacking
//! `metadata.labels` makes `labels.contains(…)` an error, not false), evaluated separately so
//! that `!(has labels) || …` keeps its guard. The labels-absent world exists only when the
//! selector does not require a label.

use crate::schema::ResourceKind;
use rampart_types::sar::{FieldSelectorRequirement, LabelSelectorRequirement};
use serde_json::Value;

/// What a list's or watch's selectors guarantee about every object it returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    /// Label selector requirements (`-l team=a,tier!=restricted`).
    pub labels: &'a [LabelSelectorRequirement],
    /// Field selector requirements (`--field-selector spec.nodeName=node-1`).
    pub fields: &'a [FieldSelectorRequirement],
}

impl Selection<'_> {
    /// Whether the selection narrows anything at all.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }
}

/// A residual policy's condition over every object a selection can return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// True for every object: a permit applies to all of them.
    True,
    /// Never true: the policy applies to none of them.
    False,
    /// Either, or not understood.
    Unknown,
}

/// A set of outcomes, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcomes(u8);

impl Outcomes {
    const NONE: Outcomes = Outcomes(0);
    const TRUE: Outcomes = Outcomes(1);
    const FALSE: Outcomes = Outcomes(2);
    const ERROR: Outcomes = Outcomes(4);
    const BOOL: Outcomes = Outcomes(3);
    const ALL: Outcomes = Outcomes(7);

    fn of(b: bool) -> Outcomes {
        if b { Outcomes::TRUE } else { Outcomes::FALSE }
    }
    fn has(self, o: Outcomes) -> bool {
        self.0 & o.0 != 0
    }
    fn union(self, o: Outcomes) -> Outcomes {
        Outcomes(self.0 | o.0)
    }
    fn meet(self, o: Outcomes) -> Outcomes {
        Outcomes(self.0 & o.0)
    }
    fn not(self) -> Outcomes {
        let mut out = Outcomes(self.0 & Outcomes::ERROR.0);
        if self.has(Outcomes::TRUE) {
            out = out.union(Outcomes::FALSE);
        }
        if self.has(Outcomes::FALSE) {
            out = out.union(Outcomes::TRUE);
        }
        out
    }
}

/// The field selectors whose key is the object's own JSON path to a string, so that
/// `spec.nodeName=n` means `oldObject.spec.nodeName == "n"`. Others (a boolean such as
/// `spec.unschedulable`, a computed one such as an event's `source`) are ignored: they
/// guarantee nothing this evaluator could use without a guess.
fn is_string_path_field(kind: &ResourceKind, key: &str) -> bool {
    matches!(key, "metadata.name" | "metadata.namespace")
        || matches!(
            (kind.group, kind.resource, key),
            (
                "",
                "pods",
                "spec.nodeName"
                    | "spec.restartPolicy"
                    | "spec.schedulerName"
                    | "spec.serviceAccountName"
                    | "status.phase"
                    | "status.podIP"
                    | "status.nominatedNodeName"
            ) | ("", "secrets", "type")
                | ("", "namespaces", "status.phase")
        )
}

/// One world the evaluation runs in.
struct World<'a> {
    labels: &'a [LabelSelectorRequirement],
    /// Field requirements on string paths, split into paths.
    fields: &'a [(Vec<&'a str>, &'a FieldSelectorRequirement)],
    /// Whether objects in this world have `metadata.labels`.
    labels_present: bool,
}

impl World<'_> {
    /// Whether every returned object has the attribute at `path` under the stored object.
    fn present(&self, path: &[&str]) -> bool {
        match path {
            [] | ["metadata"] => true,
            ["metadata", "labels"] => self.labels_present,
            _ => self.fields.iter().any(|(field, r)| {
                field.starts_with(path) && r.operator == "In" && single(r).is_some_and(|v| !v.is_empty())
            }),
        }
    }

    /// Whether no returned object has the attribute at `path`.
    fn absent(&self, path: &[&str]) -> bool {
        path == ["metadata", "labels"] && !self.labels_present
    }
}

/// A field requirement's only value, as the apiserver sends `=` and `!=`.
fn single(r: &FieldSelectorRequirement) -> Option<&str> {
    match r.values.as_deref() {
        Some([v]) => Some(v),
        _ => None,
    }
}

/// Whether a label selector requires some label: then every returned object has labels.
fn requires_a_label(labels: &[LabelSelectorRequirement]) -> bool {
    labels.iter().any(|r| r.operator == "In" || r.operator == "Exists")
}

/// Whether a residual policy's conditions hold for every object the selection can return.
pub fn residual_truth(policy: &cedar_policy::Policy, kind: &ResourceKind, selection: Selection<'_>) -> Truth {
    let Ok(est) = policy.to_json() else { return Truth::Unknown };
    // Residuals carry their scope in the conditions; one that still has a scope is not
    // understood.
    let unscoped = ["principal", "action", "resource"]
        .iter()
        .all(|s| est.get(s).and_then(|c| c.get("op")).and_then(Value::as_str) == Some("All"));
    let Some(conditions) = est.get("conditions").and_then(Value::as_array).filter(|_| unscoped) else {
        return Truth::Unknown;
    };
    let fields = selection
        .fields
        .iter()
        .filter(|r| is_string_path_field(kind, &r.key))
        .map(|r| (r.key.split('.').collect(), r))
        .collect::<Vec<_>>();
    let mut worlds = vec![true];
    if !requires_a_label(selection.labels) {
        worlds.push(false);
    }
    let outcomes = worlds.into_iter().fold(Outcomes::NONE, |acc, labels_present| {
        let world = World { labels: selection.labels, fields: &fields, labels_present };
        acc.union(policy_outcomes(conditions, &world))
    });
    if !outcomes.has(Outcomes::TRUE) {
        Truth::False
    } else if outcomes == Outcomes::TRUE {
        Truth::True
    } else {
        Truth::Unknown
    }
}

/// The conditions in order, as Cedar evaluates them: each must be true for the next to run.
fn policy_outcomes(conditions: &[Value], world: &World<'_>) -> Outcomes {
    conditions.iter().fold(Outcomes::TRUE, |acc, c| {
        let body = c.get("body").map_or(Outcomes::ALL, |b| outcomes(b, world));
        let holds = if c.get("kind").and_then(Value::as_str) == Some("unless") { body.not() } else { body };
        and(acc, || holds)
    })
}

fn and(left: Outcomes, right: impl FnOnce() -> Outcomes) -> Outcomes {
    let mut out = left.meet(Outcomes::FALSE).union(left.meet(Outcomes::ERROR));
    if left.has(Outcomes::TRUE) {
        out = out.union(right());
    }
    out
}

fn or(left: Outcomes, right: impl FnOnce() -> Outcomes) -> Outcomes {
    let mut out = left.meet(Outcomes::TRUE).union(left.meet(Outcomes::ERROR));
    if left.has(Outcomes::FALSE) {
        out = out.union(right());
    }
    out
}

fn outcomes(expr: &Value, world: &World<'_>) -> Outcomes {
    let Some((op, arg)) = expr.as_object().and_then(|m| m.iter().next()) else { return Outcomes::ALL };
    let side = |s: &str| arg.get(s).map_or(Outcomes::ALL, |e| outcomes(e, world));
    match op.as_str() {
        "Value" => arg.as_bool().map_or(Outcomes::ALL, Outcomes::of),
        "&&" => and(side("left"), || side("right")),
        "||" => or(side("left"), || side("right")),
        "!" => side("arg").not(),
        "has" => has(arg, world),
        "contains" => contains(arg, world),
        "==" => equals(arg, world),
        "!=" => equals(arg, world).not(),
        _ => Outcomes::ALL,
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

/// What reading `path` can add to an expression's outcomes: an error unless every returned
/// object has it.
fn reading(path: &[&str], world: &World<'_>) -> Outcomes {
    if world.present(path) { Outcomes::NONE } else { Outcomes::ERROR }
}

fn has(arg: &Value, world: &World<'_>) -> Outcomes {
    let (Some(mut path), Some(attr)) =
        (arg.get("left").and_then(object_path), arg.get("attr").and_then(Value::as_str))
    else {
        return Outcomes::ALL;
    };
    let on = reading(&path, world);
    path.push(attr);
    let found = if world.present(&path) {
        Outcomes::TRUE
    } else if world.absent(&path) {
        Outcomes::FALSE
    } else {
        Outcomes::BOOL
    };
    on.union(found)
}

/// `….metadata.labels.contains({"key": K, "value": V})`.
fn contains(arg: &Value, world: &World<'_>) -> Outcomes {
    let path = arg.get("left").and_then(object_path);
    let record = arg.get("right").and_then(|r| r.get("Record"));
    let literal = |field: &str| record?.get(field)?.get("Value")?.as_str();
    let (Some(path), Some(key), Some(value)) = (path, literal("key"), literal("value")) else {
        return Outcomes::ALL;
    };
    if path != ["metadata", "labels"] {
        return Outcomes::ALL;
    }
    if world.absent(&path) {
        return Outcomes::ERROR;
    }
    // Requirements are ANDed: each narrows what the label can be.
    let found = world.labels.iter().filter(|r| r.key == key).fold(Outcomes::BOOL, |acc, r| {
        let values = r.values.as_deref().unwrap_or_default();
        let named = values.iter().any(|v| v == value);
        acc.meet(match r.operator.as_str() {
            // key=value, or key in (value): only that value.
            "In" if named && values.len() == 1 => Outcomes::TRUE,
            "In" if !named => Outcomes::FALSE,
            "NotIn" if named => Outcomes::FALSE,
            "DoesNotExist" => Outcomes::FALSE,
            _ => Outcomes::BOOL,
        })
    });
    found.union(reading(&path, world))
}

fn string_literal(e: &Value) -> Option<&str> {
    e.get("Value").and_then(Value::as_str)
}

/// `….<field path> == "literal"`, either way round.
fn equals(arg: &Value, world: &World<'_>) -> Outcomes {
    let (Some(l), Some(r)) = (arg.get("left"), arg.get("right")) else { return Outcomes::ALL };
    let (path, literal) = match (object_path(l), string_literal(r), object_path(r), string_literal(l)) {
        (Some(path), Some(literal), _, _) | (_, _, Some(path), Some(literal)) => (path, literal),
        // `==` itself never errors, but reading the path may.
        _ => return Outcomes::ALL,
    };
    let mut found = Outcomes::BOOL.union(reading(&path, world));
    for (_, r) in world.fields.iter().filter(|(field, _)| *field == path) {
        let Some(v) = single(r) else { continue };
        found = found.meet(match r.operator.as_str() {
            // A non-empty value: the field is set to exactly it.
            "In" if !v.is_empty() => Outcomes::of(literal == v),
            // `field=`: empty or unset.
            "In" => Outcomes::of(literal.is_empty()).union(Outcomes::ERROR),
            "NotIn" if literal == v => Outcomes::FALSE.union(Outcomes::ERROR),
            _ => Outcomes::ALL,
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::resource_kind;

    fn label(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    fn field(key: &str, operator: &str, value: &str) -> FieldSelectorRequirement {
        FieldSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(vec![value.into()]),
        }
    }

    fn residual(condition: &str) -> cedar_policy::Policy {
        let text = format!("permit (principal, action, resource) when {{ {condition} }};");
        text.parse().unwrap()
    }

    fn secrets(condition: &str, labels: &[LabelSelectorRequirement]) -> Truth {
        let kind = resource_kind("", "secrets", "").unwrap();
        residual_truth(&residual(condition), kind, Selection { labels, fields: &[] })
    }

    fn pods(condition: &str, fields: &[FieldSelectorRequirement]) -> Truth {
        let kind = resource_kind("", "pods", "").unwrap();
        residual_truth(&residual(condition), kind, Selection { labels: &[], fields })
    }

    const OBJECT: &str = "core::v1::Secret::\"oldObject\"";
    const LABELS: &str = "core::v1::Secret::\"oldObject\".metadata.labels";
    const NODE: &str = "core::v1::Pod::\"oldObject\".spec.nodeName";

    #[test]
    fn a_selector_proves_or_refutes_a_label_condition() {
        let team_a = format!(
            "{OBJECT}.metadata has labels && {LABELS}.contains({{\"key\": \"team\", \"value\": \"a\"}})"
        );
        assert_eq!(secrets(&team_a, &[label("team", "In", &["a"])]), Truth::True);
        assert_eq!(secrets(&team_a, &[label("team", "In", &["a", "b"])]), Truth::Unknown);
        assert_eq!(secrets(&team_a, &[label("team", "In", &["b"])]), Truth::False);
        assert_eq!(secrets(&team_a, &[label("team", "NotIn", &["a"])]), Truth::False);
        assert_eq!(secrets(&team_a, &[label("team", "DoesNotExist", &[])]), Truth::False);
        assert_eq!(secrets(&team_a, &[label("tier", "In", &["x"])]), Truth::Unknown);
        assert_eq!(secrets(&team_a, &[]), Truth::Unknown);
        // Contradictory requirements return no object: nothing to prove.
        assert_eq!(
            secrets(&team_a, &[label("team", "In", &["a"]), label("team", "In", &["b"])]),
            Truth::False
        );
    }

    #[test]
    fn an_unguarded_read_of_labels_errors_on_objects_without_them() {
        let unguarded = format!("{LABELS}.contains({{\"key\": \"team\", \"value\": \"a\"}})");
        // `team=a` requires a label, so every object has labels.
        assert_eq!(secrets(&unguarded, &[label("team", "In", &["a"])]), Truth::True);
        // `team!=b` lets through objects without labels: there the condition errors, so a
        // permit is not proven (before the outcome sets, this was wrongly True).
        let negated = format!("!{LABELS}.contains({{\"key\": \"team\", \"value\": \"b\"}})");
        assert_eq!(secrets(&negated, &[label("team", "NotIn", &["b"])]), Truth::Unknown);
        // …but a forbid with it can never apply (false or an error on every object).
        assert_eq!(secrets(&unguarded, &[label("team", "NotIn", &["a"])]), Truth::False);
        // A guard makes the labels-absent world false, not an error.
        let guarded = format!(
            "!({OBJECT}.metadata has labels) || !{LABELS}.contains({{\"key\": \"team\", \"value\": \"b\"}})"
        );
        assert_eq!(secrets(&guarded, &[label("team", "NotIn", &["b"])]), Truth::True);
    }

    #[test]
    fn guards_and_connectives_are_three_valued() {
        let guarded = format!(
            "{OBJECT} has metadata && {OBJECT}.metadata has labels && {LABELS}.contains({{\"key\": \"tier\", \"value\": \"restricted\"}})"
        );
        let not_restricted = [label("team", "In", &["a"]), label("tier", "NotIn", &["restricted"])];
        assert_eq!(secrets(&guarded, &not_restricted), Truth::False);
        // Without `tier!=restricted` the forbid may hold.
        assert_eq!(secrets(&guarded, &not_restricted[..1]), Truth::Unknown);
        // Anything else stays unknown: never a guess.
        let other = format!("{OBJECT}.metadata.name like \"x*\"");
        assert_eq!(secrets(&other, &not_restricted), Truth::Unknown);
        let negated = format!("!{LABELS}.contains({{\"key\": \"team\", \"value\": \"a\"}})");
        assert_eq!(secrets(&negated, &not_restricted), Truth::False);
        // `unless` is a negated condition.
        let text = format!(
            "permit (principal, action, resource) when {{ true }} unless {{ {LABELS}.contains({{\"key\": \"team\", \"value\": \"b\"}}) }};"
        );
        let kind = resource_kind("", "secrets", "").unwrap();
        let selection = Selection { labels: &not_restricted[..1], fields: &[] };
        assert_eq!(residual_truth(&text.parse().unwrap(), kind, selection), Truth::True);
    }

    #[test]
    fn a_field_selector_proves_a_field_condition() {
        let own = format!("core::v1::Pod::\"oldObject\".spec has nodeName && {NODE} == \"node-1\"");
        assert_eq!(pods(&own, &[field("spec.nodeName", "In", "node-1")]), Truth::True);
        assert_eq!(pods(&own, &[field("spec.nodeName", "In", "node-2")]), Truth::False);
        assert_eq!(pods(&own, &[field("spec.nodeName", "NotIn", "node-1")]), Truth::False);
        assert_eq!(pods(&own, &[field("spec.nodeName", "NotIn", "node-2")]), Truth::Unknown);
        assert_eq!(pods(&own, &[]), Truth::Unknown);
        // Unguarded, the read errors on a pod without a node unless the selector names one.
        let unguarded = format!("{NODE} == \"node-1\"");
        assert_eq!(pods(&unguarded, &[field("spec.nodeName", "In", "node-1")]), Truth::True);
        // `spec.nodeName=` is unscheduled pods: the field is empty or unset.
        assert_eq!(pods(&unguarded, &[field("spec.nodeName", "In", "")]), Truth::False);
        let empty = format!("{NODE} == \"\"");
        assert_eq!(pods(&empty, &[field("spec.nodeName", "In", "")]), Truth::Unknown);
        // Literal on the left, and `!=`.
        assert_eq!(
            pods(&format!("\"node-1\" == {NODE}"), &[field("spec.nodeName", "In", "node-1")]),
            Truth::True
        );
        assert_eq!(
            pods(&format!("{NODE} != \"node-1\""), &[field("spec.nodeName", "In", "node-1")]),
            Truth::False
        );
    }

    #[test]
    fn only_string_fields_at_their_own_path_count() {
        // A field the selector does not name as a plain string path guarantees nothing.
        let kind = resource_kind("", "nodes", "").unwrap();
        let condition = residual("core::v1::Node::\"oldObject\".spec.unschedulable == \"true\"");
        let fields = [field("spec.unschedulable", "In", "true")];
        assert_eq!(
            residual_truth(&condition, kind, Selection { labels: &[], fields: &fields }),
            Truth::Unknown
        );
        let by_name = "core::v1::Pod::\"oldObject\".metadata.name == \"p\"";
        assert_eq!(pods(by_name, &[field("metadata.name", "In", "p")]), Truth::True);
    }

    #[test]
    fn a_residual_that_keeps_a_scope_is_not_understood() {
        let kind = resource_kind("", "secrets", "").unwrap();
        let scoped: cedar_policy::Policy =
            "permit (principal == k8s::User::\"a\", action, resource);".parse().unwrap();
        assert_eq!(residual_truth(&scoped, kind, Selection::default()), Truth::Unknown);
    }
}
