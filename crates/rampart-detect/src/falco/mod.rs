//! A Falco rule engine for Kubernetes audit events: Falco's own rule files (lists, macros,
//! rules, `append`/`override`, `exceptions`, `enabled`) loaded as data and compiled to an
//! expression tree over the k8saudit fields, with libs' semantics — a missing field makes a
//! comparison false, `in` requires every value to be in the set, `intersects` any.
//!
//! Falco's default `k8s_audit_rules.yaml` is embedded; user files apply on top, in order.

pub mod fields;
pub mod parse;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_yaml::Value as Yaml;

use crate::event::AuditEvent;
use fields::Field;
use parse::{Ast, Item, Op};

/// Falco's default k8saudit rules (falcosecurity/plugins, Apache-2.0).
pub const DEFAULT_RULES: &str = include_str!("../../rules/k8s_audit_rules.yaml");

/// Rule-file errors, naming the file and the item.
#[derive(Debug, thiserror::Error)]
pub enum FalcoError {
    #[error("{file}: not a Falco rules file: {message}")]
    Yaml { file: String, message: String },
    #[error("{file}: {item}: {message}")]
    Item { file: String, item: String, message: String },
    #[error("rule {rule:?}: {message}")]
    Compile { rule: String, message: String },
}

/// Falco priorities, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Priority {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Informational,
    Debug,
}

impl Priority {
    fn parse(s: &str) -> Option<Priority> {
        Some(match s.to_ascii_uppercase().as_str() {
            "EMERGENCY" => Priority::Emergency,
            "ALERT" => Priority::Alert,
            "CRITICAL" => Priority::Critical,
            "ERROR" => Priority::Error,
            "WARNING" | "WARN" => Priority::Warning,
            "NOTICE" => Priority::Notice,
            "INFORMATIONAL" | "INFO" => Priority::Informational,
            "DEBUG" => Priority::Debug,
            _ => return None,
        })
    }

    /// Falco's own spelling (`INFO` for informational, as its outputs print).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "EMERGENCY",
            Priority::Alert => "ALERT",
            Priority::Critical => "CRITICAL",
            Priority::Error => "ERROR",
            Priority::Warning => "WARNING",
            Priority::Notice => "NOTICE",
            Priority::Informational => "INFO",
            Priority::Debug => "DEBUG",
        }
    }
}

/// A compiled expression.
#[derive(Debug, Clone)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `set` holds long lists (over 8 values) for hashed membership tests.
    Cmp {
        field: Field,
        op: Op,
        values: Vec<String>,
        set: Option<HashSet<String, foldhash::fast::FixedState>>,
    },
}

/// One piece of an output template.
#[derive(Debug, Clone)]
enum Segment {
    Text(String),
    Field(Field),
}

/// A compiled, enabled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub desc: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    output: Vec<Segment>,
    /// Capacity to render the output with.
    output_hint: usize,
    /// The condition, less what the gate checks.
    expr: Expr,
    gate: Gate,
    /// The whole condition (tests compare the gated evaluation with it).
    #[cfg(test)]
    full: Expr,
}

/// Values a rule's top-level conjuncts require of cheap fields: if the event's stage or
/// resource is not among them, the condition cannot hold and the rule is skipped without
/// evaluation. Derived from the compiled condition, so it never changes a result — most
/// default rules start `kevt and <resource> and …`, so an event is only evaluated against the
/// few rules about its resource. A conjunct the gate enforces exactly (a plain `=` or `in` on
/// the stage or resource) is taken out of the condition, so it is not tested twice.
#[derive(Debug, Clone, Default)]
struct Gate {
    stages: Option<Vec<String>>,
    resources: Option<Vec<String>>,
}

impl Gate {
    /// The gate of a condition, and what of the condition is left to evaluate behind it.
    fn split(expr: Expr) -> (Gate, Expr) {
        let mut conjuncts = Vec::new();
        into_conjuncts(expr, &mut conjuncts);
        let mut gate = Gate::default();
        // Plain comparisons first: the gate takes them over exactly.
        conjuncts.retain(|c| match c {
            Expr::Cmp { field, op: Op::Eq | Op::In, values, .. } => {
                let slot = match field {
                    Field::Stage => &mut gate.stages,
                    Field::TargetResource => &mut gate.resources,
                    _ => return true,
                };
                if slot.is_some() {
                    return true;
                }
                *slot = Some(values.clone());
                false
            }
            _ => true,
        });
        // Then `or`s of them: a necessary condition only, so the conjunct stays.
        for c in &conjuncts {
            if gate.stages.is_none() {
                gate.stages = allowed_values(c, &|f| matches!(f, Field::Stage));
            }
            if gate.resources.is_none() {
                gate.resources = allowed_values(c, &|f| matches!(f, Field::TargetResource));
            }
        }
        // Cheap and selective tests first: `and` stops at the first false one, and the order of
        // side-effect-free tests does not change the result.
        conjuncts.sort_by_key(cost_rank);
        let rest = if conjuncts.len() == 1 { conjuncts.remove(0) } else { Expr::And(conjuncts) };
        (gate, rest)
    }

    fn admits(&self, event: &AuditEvent<'_>) -> bool {
        self.admits_stage(event) && allows(&self.resources, event.resource())
    }

    /// The stage half of [`Gate::admits`], for rules the resource index already chose.
    fn admits_stage(&self, event: &AuditEvent<'_>) -> bool {
        allows(&self.stages, event.stage())
    }
}

/// Whether a gate's values admit a field's value; as a comparison reads it, an empty value is
/// no value.
fn allows(allowed: &Option<Vec<String>>, got: Option<&str>) -> bool {
    match allowed {
        None => true,
        Some(values) => got.filter(|g| !g.is_empty()).is_some_and(|g| values.iter().any(|v| v == g)),
    }
}

/// How early a conjunct should be tested: equality with an envelope field (cheap, and usually
/// false: `user = system:anonymous`), other envelope tests, their negations, then the rest
/// (bodies, lists, `or`s).
fn cost_rank(expr: &Expr) -> u8 {
    match expr {
        Expr::Cmp { field, op: Op::Eq | Op::In, .. } if field.is_envelope() => 0,
        Expr::Cmp { field, .. } if field.is_envelope() => 1,
        Expr::Not(inner) if matches!(&**inner, Expr::Cmp { field, .. } if field.is_envelope()) => 2,
        _ => 3,
    }
}

fn into_conjuncts(expr: Expr, out: &mut Vec<Expr>) {
    match expr {
        Expr::And(parts) => parts.into_iter().for_each(|p| into_conjuncts(p, out)),
        other => out.push(other),
    }
}

fn flatten_and<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    match expr {
        Expr::And(parts) => parts.iter().for_each(|p| flatten_and(p, out)),
        other => out.push(other),
    }
}

/// For `field = v`, `field in (…)`, or an `or` of those on the same field: the values that
/// can make it true.
fn allowed_values(expr: &Expr, is_field: &dyn Fn(&Field) -> bool) -> Option<Vec<String>> {
    match expr {
        Expr::Cmp { field, op: Op::Eq | Op::In, values, .. } if is_field(field) => Some(values.clone()),
        Expr::Or(parts) => {
            let mut all = Vec::new();
            for p in parts {
                let mut inner = Vec::new();
                flatten_and(p, &mut inner);
                all.extend(inner.iter().find_map(|c| allowed_values(c, is_field))?);
            }
            Some(all)
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Default)]
struct RuleDef {
    condition: String,
    output: String,
    desc: String,
    priority: String,
    tags: Vec<String>,
    enabled: bool,
    exceptions: Vec<Yaml>,
    k8s_audit: bool,
}

/// Lists, macros and rules as written, before compilation.
#[derive(Debug, Default)]
struct Definitions {
    lists: HashMap<String, Vec<Item>>,
    macros: HashMap<String, String>,
    rules: Vec<(String, RuleDef)>,
}

fn yaml_str(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn list_items(v: Option<&Yaml>) -> Vec<Item> {
    v.and_then(Yaml::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|i| match i {
            Yaml::String(s) => Some(Item::Bare(s.clone())),
            other => yaml_str(other).map(Item::Bare),
        })
        .collect()
}

/// Whether `key` of an item is to be appended (legacy `append: true` or `override: {key: append}`).
fn mode(item: &Yaml, key: &str) -> Option<&'static str> {
    if item.get("append").and_then(Yaml::as_bool) == Some(true) {
        return Some("append");
    }
    match item.get("override").and_then(|o| o.get(key)).and_then(Yaml::as_str) {
        Some("append") => Some("append"),
        Some("replace") => Some("replace"),
        _ => None,
    }
}

impl Definitions {
    fn add_file(&mut self, file: &str, text: &str) -> Result<(), FalcoError> {
        let doc: Yaml = serde_yaml::from_str(text)
            .map_err(|e| FalcoError::Yaml { file: file.into(), message: e.to_string() })?;
        let items = match doc {
            Yaml::Sequence(items) => items,
            Yaml::Null => return Ok(()),
            _ => {
                return Err(FalcoError::Yaml {
                    file: file.into(),
                    message: "expected a list of items".into(),
                });
            }
        };
        for item in &items {
            let err = |what: String, message: &str| FalcoError::Item {
                file: file.into(),
                item: what,
                message: message.into(),
            };
            if let Some(name) = item.get("list").and_then(Yaml::as_str) {
                let new = list_items(item.get("items"));
                match (mode(item, "items"), self.lists.get_mut(name)) {
                    (Some("append"), Some(existing)) => existing.extend(new),
                    (Some("append"), None) => {
                        return Err(err(format!("list {name}"), "appends to a list that is not defined"));
                    }
                    _ => {
                        self.lists.insert(name.to_owned(), new);
                    }
                }
            } else if let Some(name) = item.get("macro").and_then(Yaml::as_str) {
                let cond = item.get("condition").and_then(yaml_str).unwrap_or_default();
                match (mode(item, "condition"), self.macros.get_mut(name)) {
                    (Some("append"), Some(existing)) => *existing = format!("{existing} {cond}"),
                    (Some("append"), None) => {
                        return Err(err(format!("macro {name}"), "appends to a macro that is not defined"));
                    }
                    _ => {
                        self.macros.insert(name.to_owned(), cond);
                    }
                }
            } else if let Some(name) = item.get("rule").and_then(Yaml::as_str) {
                self.add_rule(name, item).map_err(|m| err(format!("rule {name}"), &m))?;
            }
            // required_engine_version, required_plugin_versions: nothing to do.
        }
        Ok(())
    }

    fn add_rule(&mut self, name: &str, item: &Yaml) -> Result<(), String> {
        let text = |k: &str| item.get(k).and_then(yaml_str);
        let existing = self.rules.iter_mut().find(|(n, _)| n == name).map(|(_, d)| d);
        let is_override =
            item.get("append").and_then(Yaml::as_bool) == Some(true) || item.get("override").is_some();
        let only_enabled = item.as_mapping().is_some_and(|m| m.len() == 2 && m.contains_key("enabled"));
        match existing {
            Some(def) if is_override || only_enabled => {
                if let Some(c) = text("condition") {
                    def.condition = if mode(item, "condition") == Some("replace") {
                        c
                    } else {
                        format!("{} {c}", def.condition)
                    };
                }
                if let Some(o) = text("output") {
                    def.output = if mode(item, "output") == Some("append") {
                        format!("{} {o}", def.output)
                    } else {
                        o
                    };
                }
                if let Some(p) = text("priority") {
                    def.priority = p;
                }
                if let Some(d) = text("desc") {
                    def.desc = d;
                }
                if let Some(e) = item.get("enabled").and_then(Yaml::as_bool) {
                    def.enabled = e;
                }
                if let Some(ex) = item.get("exceptions").and_then(Yaml::as_sequence) {
                    def.exceptions.extend(ex.iter().cloned());
                }
                Ok(())
            }
            None if is_override || only_enabled => Err("overrides a rule that is not defined".into()),
            _ => {
                let def = RuleDef {
                    condition: text("condition").ok_or("has no condition")?,
                    output: text("output").unwrap_or_default(),
                    desc: text("desc").unwrap_or_default(),
                    priority: text("priority").unwrap_or_else(|| "WARNING".into()),
                    tags: item
                        .get("tags")
                        .and_then(Yaml::as_sequence)
                        .into_iter()
                        .flatten()
                        .filter_map(yaml_str)
                        .collect(),
                    enabled: item.get("enabled").and_then(Yaml::as_bool).unwrap_or(true),
                    exceptions: item
                        .get("exceptions")
                        .and_then(Yaml::as_sequence)
                        .cloned()
                        .unwrap_or_default(),
                    // Rules of other sources (syscalls) are kept but never evaluated here.
                    k8s_audit: text("source").is_none_or(|s| s == "k8s_audit"),
                };
                match self.rules.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = def,
                    None => self.rules.push((name.to_owned(), def)),
                }
                Ok(())
            }
        }
    }

    /// A list's items with nested list names expanded.
    fn expand(&self, items: &[Item], out: &mut Vec<String>, depth: usize) {
        for item in items {
            match item {
                Item::Bare(name) if depth < 16 && self.lists.contains_key(name) => {
                    if let Some(inner) = self.lists.get(name) {
                        self.expand(inner, out, depth + 1);
                    }
                }
                Item::Bare(s) | Item::Quoted(s) => out.push(s.clone()),
            }
        }
    }

    fn compile(&self, ast: &Ast, stack: &mut Vec<String>) -> Result<Expr, String> {
        Ok(match ast {
            Ast::And(parts) => {
                Expr::And(parts.iter().map(|p| self.compile(p, stack)).collect::<Result<_, _>>()?)
            }
            Ast::Or(parts) => {
                Expr::Or(parts.iter().map(|p| self.compile(p, stack)).collect::<Result<_, _>>()?)
            }
            Ast::Not(inner) => Expr::Not(Box::new(self.compile(inner, stack)?)),
            Ast::Name(name) => {
                let cond = self.macros.get(name).ok_or_else(|| format!("undefined macro {name:?}"))?;
                if stack.contains(name) {
                    return Err(format!("macro {name:?} refers to itself"));
                }
                stack.push(name.clone());
                let inner = parse::parse(cond).map_err(|e| format!("macro {name:?}: {e}"))?;
                let compiled = self.compile(&inner, stack)?;
                stack.pop();
                compiled
            }
            Ast::Cmp { field, op, values } => {
                let field = Field::parse(field)?;
                let mut expanded = Vec::new();
                self.expand(values, &mut expanded, 0);
                let set = (op.takes_list() && expanded.len() > 8).then(|| expanded.iter().cloned().collect());
                Expr::Cmp { field, op: *op, values: expanded, set }
            }
        })
    }
}

/// Falco exceptions as an expression: `not ((f1 c1 v1 and f2 c2 v2) or …)`.
fn exceptions_ast(exceptions: &[Yaml]) -> Result<Option<Ast>, String> {
    let mut alternatives = Vec::new();
    for ex in exceptions {
        let as_list = |v: Option<&Yaml>| -> Vec<String> {
            match v {
                Some(Yaml::Sequence(s)) => s.iter().filter_map(yaml_str).collect(),
                Some(other) => yaml_str(other).into_iter().collect(),
                None => vec![],
            }
        };
        let fields = as_list(ex.get("fields"));
        let comps = as_list(ex.get("comps"));
        let single = matches!(ex.get("fields"), Some(Yaml::String(_)));
        for tuple in ex.get("values").and_then(Yaml::as_sequence).into_iter().flatten() {
            let tuple: Vec<&Yaml> = if single {
                vec![tuple]
            } else {
                tuple.as_sequence().map(|s| s.iter().collect()).unwrap_or_default()
            };
            let mut parts = Vec::new();
            for (i, field) in fields.iter().enumerate() {
                let comp = comps.get(i).map(String::as_str).unwrap_or(if single { "in" } else { "=" });
                let op = parse::parse(&format!("x {comp} (y)"))
                    .ok()
                    .and_then(|a| if let Ast::Cmp { op, .. } = a { Some(op) } else { None })
                    .ok_or_else(|| format!("exception: unknown comparison {comp:?}"))?;
                let values = match tuple.get(i) {
                    Some(Yaml::Sequence(vs)) => vs.iter().filter_map(yaml_str).map(Item::Bare).collect(),
                    Some(v) => yaml_str(v).map(Item::Bare).into_iter().collect(),
                    None => vec![],
                };
                parts.push(Ast::Cmp { field: field.clone(), op, values });
            }
            alternatives.push(Ast::And(parts));
        }
    }
    Ok((!alternatives.is_empty()).then(|| Ast::Not(Box::new(Ast::Or(alternatives)))))
}

fn compile_output(template: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let chars: Vec<char> = template.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '%' && chars.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic()) {
            let mut name = String::new();
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
            {
                name.push(chars[i]);
                i += 1;
            }
            if chars.get(i) == Some(&'[') {
                while i < chars.len() {
                    name.push(chars[i]);
                    i += 1;
                    if name.ends_with(']') {
                        break;
                    }
                }
            }
            if !text.is_empty() {
                out.push(Segment::Text(std::mem::take(&mut text)));
            }
            out.push(Segment::Field(Field::parse(&name)?));
        } else {
            text.push(chars[i]);
            i += 1;
        }
    }
    if !text.is_empty() {
        out.push(Segment::Text(text));
    }
    Ok(out)
}

/// A compiled rule set.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Which rules can fire on an event of a given resource, so an event meets only those
    /// instead of every rule's gate.
    index: ResourceIndex,
}

/// Rule positions by the resource their gate requires, in rule order.
#[derive(Debug, Clone, Default)]
struct ResourceIndex {
    by_resource: HashMap<String, Vec<usize>, foldhash::fast::FixedState>,
    /// Rules that do not name a resource.
    any_resource: Vec<usize>,
}

impl ResourceIndex {
    fn of(rules: &[Rule]) -> Self {
        let mut index = ResourceIndex::default();
        for (i, rule) in rules.iter().enumerate() {
            match &rule.gate.resources {
                Some(resources) => {
                    for r in resources {
                        let list = index.by_resource.entry(r.clone()).or_default();
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
                None => index.any_resource.push(i),
            }
        }
        index
    }

    /// Positions of the rules whose resource gate admits `resource`, in rule order.
    fn candidates<'i>(&'i self, resource: Option<&str>) -> impl Iterator<Item = usize> + 'i {
        let specific: &[usize] = resource.and_then(|r| self.by_resource.get(r)).map_or(&[], Vec::as_slice);
        MergeSorted { a: &self.any_resource, b: specific }
    }
}

/// Two ascending lists of positions, merged.
struct MergeSorted<'i> {
    a: &'i [usize],
    b: &'i [usize],
}

impl Iterator for MergeSorted<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let take_a = match (self.a.first(), self.b.first()) {
            (Some(x), Some(y)) => x < y,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let list = if take_a { &mut self.a } else { &mut self.b };
        let (first, rest) = list.split_first()?;
        *list = rest;
        Some(*first)
    }
}

impl RuleSet {
    /// Falco's default rules.
    pub fn defaults() -> Result<RuleSet, FalcoError> {
        Self::load(&[("k8s_audit_rules.yaml", DEFAULT_RULES)])
    }

    /// Load files in order (later files override earlier ones), then compile the enabled
    /// k8s_audit rules.
    pub fn load(files: &[(&str, &str)]) -> Result<RuleSet, FalcoError> {
        let mut defs = Definitions::default();
        for (file, text) in files {
            defs.add_file(file, text)?;
        }
        let mut rules = Vec::new();
        for (name, def) in &defs.rules {
            if !def.enabled || !def.k8s_audit {
                continue;
            }
            let cerr = |message: String| FalcoError::Compile { rule: name.clone(), message };
            let mut ast = parse::parse(&def.condition).map_err(cerr)?;
            if let Some(ex) = exceptions_ast(&def.exceptions).map_err(cerr)? {
                ast = Ast::And(vec![ast, ex]);
            }
            let compiled = defs.compile(&ast, &mut Vec::new()).map_err(cerr)?;
            #[cfg(test)]
            let full = compiled.clone();
            let (gate, expr) = Gate::split(compiled);
            let priority = Priority::parse(&def.priority)
                .ok_or_else(|| cerr(format!("unknown priority {:?}", def.priority)))?;
            let output = compile_output(def.output.trim()).map_err(cerr)?;
            let output_hint = output
                .iter()
                .map(|seg| match seg {
                    Segment::Text(t) => t.len(),
                    Segment::Field(_) => 32,
                })
                .sum();
            rules.push(Rule {
                name: name.clone(),
                desc: def.desc.trim().to_owned(),
                priority,
                tags: def.tags.clone(),
                output,
                output_hint,
                #[cfg(test)]
                full,
                gate,
                expr,
            });
        }
        let index = ResourceIndex::of(&rules);
        Ok(RuleSet { rules, index })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Keep only rules at `priority` or more severe (the rest would be filtered out anyway, so
    /// they are not evaluated at all).
    pub fn retain_at_least(&mut self, priority: Priority) {
        self.rules.retain(|r| r.priority <= priority);
        self.index = ResourceIndex::of(&self.rules);
    }

    /// Positions (in [`RuleSet::rules`]) of every rule that matches `event`, in rule order.
    pub fn matching<'s>(&'s self, event: &'s AuditEvent<'_>) -> impl Iterator<Item = usize> + 's {
        self.index
            .candidates(event.resource())
            // The index only yields rules whose resource gate admits the event: check the rest.
            .filter(move |&i| {
                self.rules.get(i).is_some_and(|r| r.gate.admits_stage(event) && eval(&r.expr, event))
            })
    }

    /// Every rule that matches `event`.
    pub fn matches<'s>(&'s self, event: &'s AuditEvent<'_>) -> impl Iterator<Item = &'s Rule> {
        self.matching(event).filter_map(|i| self.rules.get(i))
    }
}

impl Rule {
    /// Whether the rule fires on `event`.
    pub fn matches(&self, event: &AuditEvent<'_>) -> bool {
        self.gate.admits(event) && eval(&self.expr, event)
    }

    /// The rule's output line for `event` (`<NA>` for missing fields, lists as `(a,b)`).
    pub fn render(&self, event: &AuditEvent<'_>) -> String {
        // Sized for the template plus typical values, so the line is written without regrowing
        // (rendering runs for every finding).
        let mut out = String::with_capacity(self.output_hint);
        for seg in &self.output {
            match seg {
                Segment::Text(t) => out.push_str(t),
                Segment::Field(Field::ResponseCode) => match event.code() {
                    Some(code) => out.push_str(itoa::Buffer::new().format(code)),
                    None => out.push_str("<NA>"),
                },
                // Single-valued fields are written as they are read, without building a list.
                Segment::Field(f) if let Some(value) = f.scalar(event) => {
                    out.push_str(value.unwrap_or("<NA>"))
                }
                Segment::Field(f) => match f.extract(event) {
                    None => out.push_str("<NA>"),
                    Some(v) if v.len() == 1 => out.push_str(&v[0]),
                    Some(v) => {
                        out.push('(');
                        for (i, value) in v.iter().enumerate() {
                            if i > 0 {
                                out.push(',');
                            }
                            out.push_str(value);
                        }
                        out.push(')');
                    }
                },
            }
        }
        out
    }
}

fn eval(expr: &Expr, event: &AuditEvent<'_>) -> bool {
    match expr {
        Expr::And(parts) => parts.iter().all(|p| eval(p, event)),
        Expr::Or(parts) => parts.iter().any(|p| eval(p, event)),
        Expr::Not(inner) => !eval(inner, event),
        Expr::Cmp { field, op, values, set } => {
            let member = |v: &str| match set {
                Some(s) => s.contains(v),
                None => values.iter().any(|x| x == v),
            };
            let first = values.first().map(String::as_str).unwrap_or_default();
            // The default rules' always/never-true macros test `jevt.rawtime` in nearly every
            // rule: compare it as the number it is instead of formatting it each time.
            if let Field::RawTime = field
                && let Some(nanos) = fields::raw_time(event)
                && let Ok(want) = first.parse::<i64>()
            {
                match op {
                    Op::Exists => return true,
                    Op::Eq => return nanos == want,
                    Op::Ne => return nanos != want,
                    Op::Lt => return nanos < want,
                    Op::Le => return nanos <= want,
                    Op::Gt => return nanos > want,
                    Op::Ge => return nanos >= want,
                    _ => {}
                }
            }
            // Most comparisons are on single-valued envelope fields: compare in place.
            if let Some(got) = field.scalar(event) {
                let Some(v) = got.filter(|v| !v.is_empty()) else { return false };
                return match op {
                    Op::Exists => true,
                    Op::Eq => v == first,
                    Op::Ne => v != first,
                    Op::In | Op::Intersects => member(v),
                    Op::StartsWith => v.starts_with(first),
                    Op::EndsWith => v.ends_with(first),
                    Op::Contains => v.contains(first),
                    _ => compare(op, &[Cow::Borrowed(v)], first, values, &member),
                };
            }
            let Some(got) = field.extract(event).filter(|v| !v.is_empty()) else { return false };
            compare(op, &got, first, values, &member)
        }
    }
}

/// `op` over every extracted value (`in`: all of them in the list; most others: any of them).
fn compare(
    op: &Op,
    got: &[Cow<'_, str>],
    first: &str,
    values: &[String],
    member: &dyn Fn(&str) -> bool,
) -> bool {
    let num = |s: &str| s.parse::<f64>().ok();
    match op {
        Op::Exists => true,
        Op::Eq => got.iter().any(|v| v == first),
        Op::Ne => got.iter().all(|v| v != first),
        Op::In => got.iter().all(|v| member(v)),
        Op::Intersects => got.iter().any(|v| member(v)),
        Op::StartsWith => got.iter().any(|v| v.starts_with(first)),
        Op::EndsWith => got.iter().any(|v| v.ends_with(first)),
        Op::Contains => got.iter().any(|v| v.contains(first)),
        Op::IContains => got.iter().any(|v| v.to_lowercase().contains(&first.to_lowercase())),
        Op::Glob => got.iter().any(|v| rampart_types::glob::star_question(first, v)),
        Op::PMatch => got.iter().any(|v| {
            values.iter().any(|p| v.as_ref() == p || v.starts_with(&format!("{}/", p.trim_end_matches('/'))))
        }),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => match (got.first().and_then(|g| num(g)), num(first)) {
            (Some(a), Some(b)) => match op {
                Op::Lt => a < b,
                Op::Le => a <= b,
                Op::Gt => a > b,
                _ => a >= b,
            },
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rules_compile() {
        let rules = RuleSet::defaults().unwrap();
        // 48 rules, of which these are disabled by default through never-true macros but
        // still compiled: all 48 minus none are `enabled: false` upstream.
        assert!(rules.rules().len() >= 40, "{}", rules.rules().len());
        assert!(rules.rules().iter().any(|r| r.name == "Attach/Exec Pod" && r.priority == Priority::Notice));
    }

    #[test]
    fn overrides_append_replace_disable_and_exceptions() {
        let base = "- list: l\n  items: [a]\n- macro: m\n  condition: ka.verb in (l)\n- rule: R\n  desc: d\n  condition: m\n  output: verb=%ka.verb user=%ka.user.name\n  priority: WARNING\n  source: k8s_audit\n";
        let event = crate::event::test_event(r#"{"kind":"Event","verb":"b","user":{"username":"u"}}"#);
        let count = |files: &[(&str, &str)]| RuleSet::load(files).unwrap().matches(&event).count();
        assert_eq!(count(&[("base", base)]), 0);
        assert_eq!(count(&[("base", base), ("o", "- list: l\n  items: [b]\n  append: true\n")]), 1);
        let with_b = ("o", "- list: l\n  items: [b]\n  override:\n    items: append\n");
        assert_eq!(count(&[("base", base), with_b]), 1);
        assert_eq!(count(&[("base", base), with_b, ("d", "- rule: R\n  enabled: false\n")]), 0);
        let ex = "- rule: R\n  exceptions:\n  - name: known\n    fields: [ka.user.name]\n    comps: [=]\n    values: [[u]]\n  override:\n    exceptions: append\n";
        assert_eq!(count(&[("base", base), with_b, ("e", ex)]), 0);
        let rules = RuleSet::load(&[("base", base), with_b]).unwrap();
        assert_eq!(rules.rules()[0].render(&event), "verb=b user=u");
        assert!(RuleSet::load(&[("x", "- rule: R\n  condition: undefined_macro\n")]).is_err());
        // `in` needs every value in the set, `intersects` one; a missing field is false even
        // under `not`-free comparisons, so `not (missing = x)` is true.
        let pod = crate::event::test_event(
            r#"{"kind":"Event","verb":"create","requestObject":{"spec":{"containers":[{"image":"nginx"},{"image":"evil"}]}}}"#,
        );
        let fires = |cond: &str| {
            let text = format!("- rule: R\n  condition: {cond}\n  output: o\n  priority: INFO\n");
            RuleSet::load(&[("r", text.as_str())]).unwrap().matches(&pod).count() == 1
        };
        assert!(!fires("ka.req.pod.containers.image.repository in (nginx)"));
        assert!(fires("ka.req.pod.containers.image.repository intersects (nginx)"));
        assert!(fires("ka.req.pod.containers.image.repository in (nginx, evil)"));
        assert!(!fires("ka.user.name = bob"));
        assert!(fires("not ka.user.name = bob"));
        assert!(fires("ka.verb glob cr*te"));
        assert!(RuleSet::load(&[("x", "- list: nope\n  items: [a]\n  append: true\n")]).is_err());
    }

    #[test]
    fn gates_and_the_resource_index_never_change_a_result() {
        let rules = RuleSet::defaults().unwrap();
        let mut notice_and_up = RuleSet::defaults().unwrap();
        notice_and_up.retain_at_least(Priority::Notice);
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let mut texts =
            vec![std::fs::read_to_string(format!("{dir}/panther-k8s-native-events.jsonl")).unwrap()];
        for f in std::fs::read_dir(format!("{dir}/falco/k8s_audit")).unwrap() {
            texts.push(std::fs::read_to_string(f.unwrap().path()).unwrap());
        }
        texts.push(std::fs::read_to_string(format!("{dir}/audit2rbac-demo.log")).unwrap());
        let mut gated_out = 0;
        for text in &texts {
            for line in text.lines() {
                let Ok(doc) = crate::event::Document::parse(line) else { continue };
                let Ok(e) = doc.event() else { continue };
                for r in rules.rules() {
                    let full = eval(&r.full, &e);
                    assert!(!full || r.gate.admits(&e), "gate of {} refused a match", r.name);
                    assert_eq!(full, r.matches(&e), "{}: {line}", r.name);
                    gated_out += usize::from(!r.gate.admits(&e));
                }
                for set in [&rules, &notice_and_up] {
                    let indexed: Vec<&str> = set.matches(&e).map(|r| r.name.as_str()).collect();
                    let every: Vec<&str> =
                        set.rules().iter().filter(|r| eval(&r.full, &e)).map(|r| r.name.as_str()).collect();
                    assert_eq!(indexed, every, "{line}");
                }
            }
        }
        assert!(gated_out > 1000, "the gates do skip work: {gated_out}");
    }
}
