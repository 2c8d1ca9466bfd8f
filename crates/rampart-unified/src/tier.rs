//! A tier of unified policies and its two phases: authorization by typed partial evaluation
//! (the objects unknown), and admission, which finishes what authorization left conditional.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cedar_policy::{
    ActionConstraint, Context, Decision, PartialEntities, PartialEntityUid, PartialRequest, PolicyId,
    PolicySet, PrincipalConstraint, Request, ResourceConstraint, Schema,
};
use rampart_policy::entities::Names;
use rampart_policy::{DocumentKind, LoadedPolicy};
use serde_json::Value;

use crate::UnifiedError;
use crate::request::{self, Attributes};
use crate::schema;
use crate::selector::{Selection, Truth};
use crate::shape::Shape;

/// What a phase decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A permit holds and no forbid can.
    Allow { policies: Vec<String> },
    /// A forbid holds (or, for a read, may hold). Denied at authorization, it names the
    /// forbids known to hold then: a subset of a full evaluation's, never empty.
    Deny { policies: Vec<String> },
    /// The answer depends on the objects; admission decides. `policies` names the policies
    /// still undecided; `residuals` holds what is left of each as Cedar text, filled only by
    /// [`UnifiedTier::explain`] (printing them costs more than deciding).
    ///
    /// `may_allow` says whether a permit holds or may hold. When none can, the unified tier
    /// can only deny or have no opinion, so authorization asks the next tiers now and
    /// admission only enforces the forbids; otherwise authorization must answer `allowed` on
    /// the condition and admission decides the rest.
    Conditional { policies: Vec<String>, residuals: Vec<String>, may_allow: bool },
    /// No unified policy applies: the next tier decides.
    NoOpinion,
}

/// Verbs whose requests admission sees with their objects, so a conditional answer can be
/// finished there. Reads (get, list, watch), deletecollection and anything else must be
/// answered at authorization.
pub fn may_be_conditional(verb: &str) -> bool {
    matches!(verb, "create" | "update" | "patch" | "delete" | "connect")
}

/// The admission phase's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The partial evaluation is not conditional: this answer was already given at
    /// authorization (it can differ only if the policies were reloaded in between).
    Final(Outcome),
    /// The partial evaluation was conditional; this is the full evaluation's answer.
    /// `allowed_on_condition` is the partial answer's `may_allow`: whether authorization
    /// answered `allowed` on the condition (else it asked the next tiers, which allowed).
    Completed { outcome: Outcome, allowed_on_condition: bool },
}

/// A loaded tier of unified policies.
#[derive(Debug)]
pub struct UnifiedTier {
    /// The policies whose scope can match each (verb, resource type), then by principal: a
    /// request is evaluated against the policies that can apply to it only, so its cost
    /// follows them, not the size of the tier. A policy whose scope cannot match a request can
    /// never be satisfied or error for it, so leaving it out changes no decision.
    ///
    /// By verb, then resource type (so a lookup borrows the request's strings).
    buckets: HashMap<String, HashMap<String, Bucket>>,
    /// The policies in file order; the buckets hold indices into it.
    policies: Vec<cedar_policy::Policy>,
    /// How each policy depends on the objects (same order).
    shapes: Vec<Shape>,
    /// Built once: making an authorizer costs more than evaluating a few policies.
    authorizer: cedar_policy::Authorizer,
    /// `@id` labels by policy id, for the policies that have one.
    labels: HashMap<String, String>,
    /// How many policies each file holds.
    per_file: HashMap<String, usize>,
    /// `@reason` messages by label, for denials.
    messages: HashMap<String, String>,
    names: Names,
    /// Resource types whose policies all validate against their narrow schema
    /// ([`crate::narrow`]), which partial evaluation then uses.
    narrow: HashMap<String, &'static Schema>,
    /// The evaluation plan of each set of candidates met so far (see [`Plan`]), at most
    /// [`PLAN_CACHE_SIZE`] of them.
    plans: RwLock<HashMap<Vec<usize>, Arc<Plan>>>,
}

/// How many candidate sets keep their plan. A plan depends on the policies only, so the
/// cache holds no request data; requests share few distinct candidate sets (one per team
/// or role and resource type), and when more show up the cache starts over.
const PLAN_CACHE_SIZE: usize = 4096;

/// What evaluating one set of candidate policies needs, built once per set: policy sets
/// cost more to build than to evaluate.
#[derive(Debug)]
struct Plan {
    /// Every candidate: what the admission phase and the partial evaluator run.
    all: PolicySet,
    /// The object-free policies and the guards (see [`Shape`]), as permits for one ordinary
    /// evaluation without the objects.
    concrete: PolicySet,
    /// The policies in `concrete`, and whether each is object-free (when satisfied it holds)
    /// rather than a guard (when satisfied it is residual).
    concrete_policies: Vec<(usize, bool)>,
    /// Policies whose every condition reads the objects: residual whatever the request.
    always_residual: Vec<usize>,
    /// Policies only typed partial evaluation can decide, and them as a set.
    partial: Vec<usize>,
    partial_set: PolicySet,
}

/// The policies of one (verb, resource type), by principal key.
#[derive(Debug, Default)]
struct Bucket {
    /// By the uid a `principal ==`/`principal in` names (the user itself, or a group).
    by_principal: HashMap<cedar_policy::EntityUid, Vec<usize>>,
    /// Policies with no principal uid in their scope (`principal`, `principal is T`).
    any: Vec<usize>,
}

/// The (verb, resource type) pairs a policy's scope can match.
fn scope_keys(policy: &cedar_policy::Policy) -> Vec<(String, String)> {
    let verbs =
        scope_verbs(policy).unwrap_or_else(|| schema::VERBS.iter().map(|v| (*v).to_owned()).collect());
    let types: Vec<String> = match policy.resource_constraint() {
        ResourceConstraint::Any => schema::RESOURCES.iter().map(|r| r.type_name().to_owned()).collect(),
        // Unified resources have no parents, so `in` matches only the entity itself.
        ResourceConstraint::In(uid) | ResourceConstraint::Eq(uid) => vec![uid.type_name().to_string()],
        ResourceConstraint::Is(t) | ResourceConstraint::IsIn(t, _) => vec![t.to_string()],
    };
    verbs.iter().flat_map(|v| types.iter().map(move |t| (v.clone(), t.clone()))).collect()
}

/// The verbs a policy's action scope names; `None` for any action.
fn scope_verbs(policy: &cedar_policy::Policy) -> Option<Vec<String>> {
    match policy.action_constraint() {
        ActionConstraint::Any => None,
        ActionConstraint::In(list) => Some(list.iter().map(|a| a.id().unescaped().to_owned()).collect()),
        ActionConstraint::Eq(a) => Some(vec![a.id().unescaped().to_owned()]),
    }
}

/// The principal uid a policy's scope names, if any: the principal must be it or in it.
fn principal_key(policy: &cedar_policy::Policy) -> Option<cedar_policy::EntityUid> {
    match policy.principal_constraint() {
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => None,
        PrincipalConstraint::In(uid) | PrincipalConstraint::Eq(uid) | PrincipalConstraint::IsIn(_, uid) => {
            Some(uid)
        }
    }
}

impl UnifiedTier {
    /// Parse and strictly validate unified policies. Refused: anything that does not validate
    /// against the unified schema, a policy naming `update` without `patch` or the reverse
    /// (admission sees both as UPDATE and could not tell which the policy meant), and a forbid
    /// that can error (see [`crate::errors`]).
    pub fn load(text: &str, file_name: &str) -> Result<Self, UnifiedError> {
        Self::load_files(&[(file_name.to_owned(), text.to_owned())])
    }

    /// [`UnifiedTier::load`] for several files (name, text), one tier.
    pub fn load_files(files: &[(String, String)]) -> Result<Self, UnifiedError> {
        let mut located: Vec<(&str, LoadedPolicy)> = Vec::new();
        for (file_name, text) in files {
            let kind = DocumentKind::CedarFile { file_name: file_name.clone() };
            let parsed =
                rampart_policy::document::parse_document(&kind, text).map_err(|f| UnifiedError::Policy {
                    location: format!("{file_name}:{}:{}", f.line, f.column),
                    message: f.message,
                })?;
            located.extend(parsed.into_iter().map(|p| (file_name.as_str(), p)));
        }
        let mut set = PolicySet::new();
        let mut buckets: HashMap<String, HashMap<String, Bucket>> = HashMap::new();
        for (index, (file_name, p)) in located.iter().enumerate() {
            set.add(p.policy.clone()).map_err(|e| UnifiedError::Policy {
                location: format!("{file_name}:{}:{}", p.position.line, p.position.column),
                message: e.to_string(),
            })?;
            let principal = principal_key(&p.policy);
            for (verb, type_name) in scope_keys(&p.policy) {
                let bucket = buckets.entry(verb).or_default().entry(type_name).or_default();
                match &principal {
                    Some(uid) => bucket.by_principal.entry(uid.clone()).or_default().push(index),
                    None => bucket.any.push(index),
                }
            }
            check_update_and_patch(p, file_name)?;
            if p.effect == cedar_policy::Effect::Forbid
                && let Some(why) = crate::errors::can_error(&p.policy)
            {
                return Err(UnifiedError::Policy {
                    location: format!("{file_name}:{}:{}", p.position.line, p.position.column),
                    message: format!(
                        "this forbid can error ({why}), and Cedar skips a policy that errors: it \
                         would silently not apply. Guard or rewrite that part"
                    ),
                });
            }
        }
        let issues = rampart_policy::schema::validate(schema::schema()?, &set);
        if let Some(issue) = issues.first() {
            let location = located
                .iter()
                .find(|(_, p)| p.id == issue.policy_id)
                .map(|(file, p)| format!("{file}:{}:{}", p.position.line, p.position.column))
                .unwrap_or_default();
            return Err(UnifiedError::Policy {
                location,
                message: format!("does not validate against the unified schema: {}", issue.message),
            });
        }
        let names = Names::new().map_err(|e| UnifiedError::Request(e.to_string()))?;
        let mut per_file: HashMap<String, usize> = files.iter().map(|(f, _)| (f.clone(), 0)).collect();
        for (file, _) in &located {
            *per_file.entry((*file).to_owned()).or_default() += 1;
        }
        let policies: Vec<LoadedPolicy> = located.into_iter().map(|(_, p)| p).collect();
        let labels: HashMap<String, String> =
            policies.iter().filter_map(|p| Some((p.id.clone(), p.label.clone()?))).collect();
        let messages = policies
            .iter()
            .filter_map(|p| {
                let label = labels.get(&p.id).cloned().unwrap_or_else(|| p.id.clone());
                Some((label, p.message.clone()?))
            })
            .collect();
        let all_policies: Vec<cedar_policy::Policy> = policies.into_iter().map(|p| p.policy).collect();
        let narrow = narrow_schemas(&buckets, &all_policies);
        let shapes = all_policies.iter().map(crate::shape::shape).collect();
        Ok(UnifiedTier {
            buckets,
            policies: all_policies,
            shapes,
            authorizer: cedar_policy::Authorizer::new(),
            labels,
            per_file,
            messages,
            names,
            narrow,
            plans: RwLock::new(HashMap::new()),
        })
    }

    /// How many policies the tier holds.
    pub fn policy_count(&self) -> usize {
        self.policies.len()
    }

    /// How many policies came from one file.
    pub fn policy_count_of(&self, file: &str) -> usize {
        self.per_file.get(file).copied().unwrap_or(0)
    }

    fn label(&self, id: &PolicyId) -> String {
        let id = id.to_string();
        self.labels.get(&id).cloned().unwrap_or(id)
    }

    fn labels<'a>(&self, ids: impl Iterator<Item = &'a PolicyId>) -> Vec<String> {
        let mut out: Vec<String> = ids.map(|id| self.label(id)).collect();
        out.sort();
        out
    }

    /// The policies that can apply to a request; `None` when there are none.
    fn candidates(
        &self,
        a: &Attributes<'_>,
        principal: &cedar_policy::EntityUid,
        groups: &[cedar_policy::EntityUid],
    ) -> Option<Vec<usize>> {
        let bucket = self.buckets.get(a.verb)?.get(a.kind.type_name())?;
        let mut chosen: Vec<usize> = bucket.any.clone();
        for key in std::iter::once(principal).chain(groups) {
            if let Some(found) = bucket.by_principal.get(key) {
                chosen.extend(found);
            }
        }
        if chosen.is_empty() {
            return None;
        }
        chosen.sort_unstable();
        chosen.dedup();
        Some(chosen)
    }

    /// The policies at these indices, as a set.
    fn set_of(&self, indices: impl Iterator<Item = usize>) -> PolicySet {
        // Ids are unique in the tier, so no add can fail.
        PolicySet::from_policies(indices.filter_map(|i| self.policies.get(i)).cloned()).unwrap_or_default()
    }

    /// The plan of a set of candidates: from the cache, or built (and cached).
    fn plan(&self, indices: Vec<usize>) -> Arc<Plan> {
        if let Some(plan) = self.plans.read().ok().and_then(|plans| plans.get(&indices).cloned()) {
            return plan;
        }
        let plan = Arc::new(self.build_plan(&indices));
        // A poisoned lock only costs the cache: the plan is still used.
        if let Ok(mut plans) = self.plans.write() {
            if plans.len() >= PLAN_CACHE_SIZE {
                plans.clear();
            }
            plans.insert(indices, Arc::clone(&plan));
        }
        plan
    }

    fn build_plan(&self, indices: &[usize]) -> Plan {
        let mut concrete = Vec::new();
        let mut concrete_policies = Vec::new();
        let mut always_residual = Vec::new();
        let mut partial = Vec::new();
        for &i in indices {
            match self.shapes.get(i) {
                Some(Shape::ObjectFree { concrete: p }) => {
                    concrete.push(p.clone());
                    concrete_policies.push((i, true));
                }
                Some(Shape::Guarded { guard: Some(p) }) => {
                    concrete.push(p.clone());
                    concrete_policies.push((i, false));
                }
                Some(Shape::Guarded { guard: None }) => always_residual.push(i),
                Some(Shape::Partial) | None => partial.push(i),
            }
        }
        Plan {
            all: self.set_of(indices.iter().copied()),
            // Ids are unique in the tier, so no add can fail.
            concrete: PolicySet::from_policies(concrete).unwrap_or_default(),
            concrete_policies,
            always_residual,
            partial_set: self.set_of(partial.iter().copied()),
            partial,
        }
    }

    /// What both phases need of a request: its principal's entities and the policies that can
    /// apply to it (`None` when none can: no opinion).
    fn prepare(&self, a: &Attributes<'_>) -> Result<Option<Prepared>, UnifiedError> {
        let principal = request::principal_entities(&self.names, a)?;
        Ok(self.candidates(a, &principal.uid, &principal.groups).map(|indices| Prepared {
            plan: self.plan(indices),
            principal: principal.uid,
            entities: principal.entities,
        }))
    }

    /// The authorization phase: the objects unknown.
    pub fn authorize(&self, a: &Attributes<'_>) -> Result<Outcome, UnifiedError> {
        self.ask(a, Ask::DECIDE)
    }

    /// [`UnifiedTier::authorize`], with a conditional answer's residual conditions as text.
    pub fn explain(&self, a: &Attributes<'_>) -> Result<Outcome, UnifiedError> {
        self.ask(a, Ask { explain: true, completable: true, selector: None })
    }

    /// The authorization phase of a `list` or `watch` with label or field selectors: a
    /// residual the selection proves for every object it can return decides (see
    /// [`crate::selector`]); a forbid it cannot refute denies; a permit it cannot prove does
    /// not allow.
    pub fn authorize_selected(
        &self,
        a: &Attributes<'_>,
        selection: Selection<'_>,
    ) -> Result<Outcome, UnifiedError> {
        self.ask(a, Ask { explain: false, completable: false, selector: Some(selection) })
    }

    /// The authorization phase for a request the admission webhook will not see (a namespace
    /// it exempts): nothing may be left conditional, so every residual folds as for a read.
    pub fn authorize_final(&self, a: &Attributes<'_>) -> Result<Outcome, UnifiedError> {
        self.ask(a, Ask { explain: false, completable: false, selector: None })
    }

    /// The authorization phase as `ask` wants it; no opinion when no policy can apply.
    fn ask(&self, a: &Attributes<'_>, ask: Ask) -> Result<Outcome, UnifiedError> {
        match self.prepare(a)? {
            Some(prepared) => self.authorize_prepared(a, &prepared, ask),
            None => Ok(Outcome::NoOpinion),
        }
    }

    /// Run `evaluate` against the resource type's narrow schema, or the full one when there
    /// is none. A narrow schema that still refuses falls back to the full one: never an error
    /// the full schema would not give.
    fn with_schema<T>(
        &self,
        a: &Attributes<'_>,
        evaluate: impl Fn(&Schema) -> Result<T, UnifiedError>,
    ) -> Result<T, UnifiedError> {
        let full = schema::schema()?;
        match self.narrow.get(a.kind.type_name()) {
            Some(narrow) => evaluate(narrow).or_else(|_| evaluate(full)),
            None => evaluate(full),
        }
    }

    fn authorize_prepared(
        &self,
        a: &Attributes<'_>,
        prepared: &Prepared,
        ask: Ask,
    ) -> Result<Outcome, UnifiedError> {
        // Writes that admission will finish: decided by shape (see [`crate::shape`]), with
        // partial evaluation only for the policies that need it. Reads, explanations and
        // selections keep the partial evaluator's exact residuals.
        if ask.completable && !ask.explain && ask.selector.is_none() && may_be_conditional(a.verb) {
            let known = self.by_shape(a, prepared)?;
            return Ok(self.decide(a, &known, ask, Vec::new));
        }
        self.with_schema(a, |schema| self.partially_evaluate(a, prepared, schema, ask))
    }

    /// Typed partial evaluation of the prepared candidates against `schema`.
    fn partially_evaluate(
        &self,
        a: &Attributes<'_>,
        prepared: &Prepared,
        schema: &Schema,
        ask: Ask,
    ) -> Result<Outcome, UnifiedError> {
        self.partial_response(a, prepared, schema, |response| self.fold(a, response, ask))
    }

    /// Run typed partial evaluation of the prepared candidates and read its response.
    fn partial_response<T>(
        &self,
        a: &Attributes<'_>,
        prepared: &Prepared,
        schema: &Schema,
        read: impl FnOnce(&cedar_policy::TpeResponse<'_>) -> T,
    ) -> Result<T, UnifiedError> {
        self.partial_response_of(&prepared.plan.all, a, prepared, schema, read)
    }

    /// [`UnifiedTier::partial_response`] for some of the candidates.
    fn partial_response_of<T>(
        &self,
        set: &PolicySet,
        a: &Attributes<'_>,
        prepared: &Prepared,
        schema: &Schema,
        read: impl FnOnce(&cedar_policy::TpeResponse<'_>) -> T,
    ) -> Result<T, UnifiedError> {
        let partial_entities =
            PartialEntities::from_concrete(request::partial_entities(&prepared.entities, a)?, schema)
                .map_err(|e| UnifiedError::Request(e.to_string()))?;
        let partial = PartialRequest::new(
            PartialEntityUid::from_concrete(prepared.principal.clone()),
            request::action(a.verb)?,
            PartialEntityUid::from_concrete(request::resource_uid(a)?),
            Some(Context::empty()),
            schema,
        )
        .map_err(|e| UnifiedError::Request(e.to_string()))?;
        let response = set
            .tpe(&partial, &partial_entities, schema)
            .map_err(|e| UnifiedError::Evaluation(e.to_string()))?;
        Ok(read(&response))
    }

    /// The outcome of a partial evaluation, with the folding rules for requests admission
    /// never sees.
    fn fold(&self, a: &Attributes<'_>, response: &cedar_policy::TpeResponse<'_>, ask: Ask) -> Outcome {
        if response.true_forbids().next().is_none()
            && let Some(selector) = ask.selector.filter(|_| matches!(a.verb, "list" | "watch"))
        {
            return self.decide_for_selection(a, response, selector);
        }
        let known = Known::from_response(response);
        // Residuals read the objects as the policy wrote them, not by their entity uids.
        let (object, old_object) =
            (format!("{}::\"object\"", a.kind.kind), format!("{}::\"oldObject\"", a.kind.kind));
        let residuals = || {
            response
                .residual_policies()
                .map(|p| {
                    p.to_string()
                        .replace(&object, "resource.object")
                        .replace(&old_object, "resource.oldObject")
                })
                .collect()
        };
        self.decide(a, &known, ask, residuals)
    }

    /// The folding rules over what is known without the objects.
    fn decide(
        &self,
        a: &Attributes<'_>,
        known: &Known,
        ask: Ask,
        residuals: impl FnOnce() -> Vec<String>,
    ) -> Outcome {
        let conditional = ask.completable && may_be_conditional(a.verb);
        if !known.true_forbids.is_empty() {
            return Outcome::Deny { policies: self.labels(known.true_forbids.iter()) };
        }
        if !known.residual_forbids.is_empty() && !conditional {
            // A read cannot be finished later: a forbid that may hold denies.
            return Outcome::Deny { policies: self.labels(known.residual_forbids.iter()) };
        }
        let may_allow = !known.true_permits.is_empty() || !known.residual_permits.is_empty();
        let conditional_on = || {
            let policies = self.labels(known.residual_forbids.iter().chain(&known.residual_permits));
            let residuals = if ask.explain { residuals() } else { Vec::new() };
            Outcome::Conditional { policies, residuals, may_allow }
        };
        if !known.residual_forbids.is_empty() {
            return conditional_on();
        }
        // A permit that may still hold is finished at admission even when another already
        // holds, so an Allow names exactly the permits a full evaluation would.
        if !known.residual_permits.is_empty() && conditional {
            return conditional_on();
        }
        if !known.true_permits.is_empty() {
            return Outcome::Allow { policies: self.labels(known.true_permits.iter()) };
        }
        Outcome::NoOpinion
    }

    /// What is known of the candidates without the objects, from their shapes: an ordinary
    /// evaluation of the object-free policies and of the guards, partial evaluation for the
    /// rest.
    fn by_shape(&self, a: &Attributes<'_>, prepared: &Prepared) -> Result<Known, UnifiedError> {
        let plan = &prepared.plan;
        let mut known = Known::default();
        for &i in &plan.always_residual {
            if let Some(policy) = self.policies.get(i) {
                known.residual(policy);
            }
        }
        if !plan.concrete_policies.is_empty() {
            let request = Request::new(
                prepared.principal.clone(),
                request::action(a.verb)?,
                request::resource_uid(a)?,
                Context::empty(),
                None,
            )
            .map_err(|e| UnifiedError::Request(e.to_string()))?;
            let entities = request::partial_entities(&prepared.entities, a)?;
            let response = self.authorizer.is_authorized(&request, &plan.concrete, &entities);
            let satisfied: std::collections::HashSet<&PolicyId> = response.diagnostics().reason().collect();
            for &(i, object_free) in &plan.concrete_policies {
                let Some(policy) = self.policies.get(i) else { continue };
                if !satisfied.contains(policy.id()) {
                    continue;
                }
                if object_free { known.holds(policy) } else { known.residual(policy) }
            }
        }
        if !plan.partial.is_empty() {
            known.extend(self.with_schema(a, |schema| {
                self.partial_response_of(&plan.partial_set, a, prepared, schema, Known::from_response)
            })?);
        }
        Ok(known)
    }

    /// The admission phase: the same partial evaluation from the admission request's
    /// attributes (nothing is carried over from authorization), finished with the objects
    /// when it is still conditional.
    pub fn admit(
        &self,
        a: &Attributes<'_>,
        object: Option<&Value>,
        old_object: Option<&Value>,
    ) -> Result<Outcome, UnifiedError> {
        let Some(prepared) = self.prepare(a)? else { return Ok(Outcome::NoOpinion) };
        let partial = self.authorize_prepared(a, &prepared, Ask::DECIDE)?;
        if !matches!(partial, Outcome::Conditional { .. }) {
            return Ok(partial);
        }
        self.evaluate_prepared(a, prepared, object, old_object)
    }

    /// A list or watch decided for every object its selector lets through.
    fn decide_for_selection(
        &self,
        a: &Attributes<'_>,
        response: &cedar_policy::TpeResponse<'_>,
        selection: Selection<'_>,
    ) -> Outcome {
        let mut forbids = Vec::new();
        let mut permits: Vec<PolicyId> = response.true_permits().cloned().collect();
        for residual in response.residual_policies() {
            let truth = crate::selector::residual_truth(&residual, a.kind, selection);
            match residual.effect() {
                // Fail closed: a forbid the selector does not refute may hold for some object.
                cedar_policy::Effect::Forbid if truth != Truth::False => forbids.push(residual.id().clone()),
                cedar_policy::Effect::Permit if truth == Truth::True => permits.push(residual.id().clone()),
                _ => {}
            }
        }
        if !forbids.is_empty() {
            return Outcome::Deny { policies: self.labels(forbids.iter()) };
        }
        if !permits.is_empty() {
            return Outcome::Allow { policies: self.labels(permits.iter()) };
        }
        Outcome::NoOpinion
    }

    /// The admission phase as the webhook needs it: `None` when the partial evaluation is not
    /// conditional (its answer was final at authorization), else the full evaluation's.
    pub fn complete(
        &self,
        a: &Attributes<'_>,
        object: Option<&Value>,
        old_object: Option<&Value>,
    ) -> Result<Completion, UnifiedError> {
        let Some(prepared) = self.prepare(a)? else { return Ok(Completion::Final(Outcome::NoOpinion)) };
        match self.authorize_prepared(a, &prepared, Ask::DECIDE)? {
            Outcome::Conditional { may_allow, .. } => Ok(Completion::Completed {
                outcome: self.evaluate_prepared(a, prepared, object, old_object)?,
                allowed_on_condition: may_allow,
            }),
            other => Ok(Completion::Final(other)),
        }
    }

    /// What a denied user reads: each forbid's `@id` (or file:line), and its `@reason`.
    pub fn denial_message(&self, policies: &[String]) -> String {
        let each: Vec<String> = policies
            .iter()
            .map(|p| match self.messages.get(p) {
                Some(reason) => format!("{p}: {reason}"),
                None => p.clone(),
            })
            .collect();
        format!("denied by unified policy {}", each.join("; "))
    }

    /// One ordinary evaluation with everything known: what the two phases together must
    /// always agree with.
    pub fn evaluate(
        &self,
        a: &Attributes<'_>,
        object: Option<&Value>,
        old_object: Option<&Value>,
    ) -> Result<Outcome, UnifiedError> {
        match self.prepare(a)? {
            Some(prepared) => self.evaluate_prepared(a, prepared, object, old_object),
            None => Ok(Outcome::NoOpinion),
        }
    }

    /// [`UnifiedTier::evaluate`] over every policy of the tier, bypassing the index: the
    /// reference the index is tested against.
    pub fn evaluate_unindexed(
        &self,
        a: &Attributes<'_>,
        object: Option<&Value>,
        old_object: Option<&Value>,
    ) -> Result<Outcome, UnifiedError> {
        let principal = request::principal_entities(&self.names, a)?;
        let indices: Vec<usize> = (0..self.policies.len()).collect();
        // Not cached: this reference path must not depend on the cache it checks.
        let plan = Arc::new(self.build_plan(&indices));
        let prepared = Prepared { principal: principal.uid, entities: principal.entities, plan };
        self.evaluate_prepared(a, prepared, object, old_object)
    }

    fn evaluate_prepared(
        &self,
        a: &Attributes<'_>,
        prepared: Prepared,
        object: Option<&Value>,
        old_object: Option<&Value>,
    ) -> Result<Outcome, UnifiedError> {
        let Prepared { principal, entities, plan } = prepared;
        let entities = request::full_entities(entities, a, object, old_object)?;
        let request = Request::new(
            principal,
            request::action(a.verb)?,
            request::resource_uid(a)?,
            Context::empty(),
            None,
        )
        .map_err(|e| UnifiedError::Request(e.to_string()))?;
        let response = self.authorizer.is_authorized(&request, &plan.all, &entities);
        let reasons = self.labels(response.diagnostics().reason());
        Ok(match response.decision() {
            Decision::Allow => Outcome::Allow { policies: reasons },
            Decision::Deny if !reasons.is_empty() => Outcome::Deny { policies: reasons },
            Decision::Deny => Outcome::NoOpinion,
        })
    }
}

/// The narrow schema of each resource type whose candidate policies all validate against it.
fn narrow_schemas(
    buckets: &HashMap<String, HashMap<String, Bucket>>,
    policies: &[cedar_policy::Policy],
) -> HashMap<String, &'static Schema> {
    let mut by_type: HashMap<&str, Vec<usize>> = HashMap::new();
    for (type_name, bucket) in buckets.values().flatten() {
        let indices = by_type.entry(type_name.as_str()).or_default();
        indices.extend(bucket.any.iter().chain(bucket.by_principal.values().flatten()));
    }
    by_type
        .into_iter()
        .filter_map(|(type_name, mut indices)| {
            let narrow = crate::narrow::for_type(type_name)?;
            indices.sort_unstable();
            indices.dedup();
            let set =
                PolicySet::from_policies(indices.iter().filter_map(|&i| policies.get(i)).cloned()).ok()?;
            rampart_policy::schema::validate(narrow, &set).is_empty().then(|| (type_name.to_owned(), narrow))
        })
        .collect()
}

/// What an authorization-phase caller wants.
#[derive(Debug, Clone, Copy)]
struct Ask<'s> {
    /// Print the residual conditions of a conditional answer.
    explain: bool,
    /// Admission will see the request, so the answer may be conditional.
    completable: bool,
    /// The selectors of a list or watch: what every returned object satisfies.
    selector: Option<Selection<'s>>,
}

impl Ask<'_> {
    const DECIDE: Ask<'static> = Ask { explain: false, completable: true, selector: None };
}

/// A request's principal entities and candidate policies, built once and used by both phases.
struct Prepared {
    principal: cedar_policy::EntityUid,
    entities: Vec<cedar_policy::Entity>,
    /// How to evaluate the candidate policies.
    plan: Arc<Plan>,
}

/// What is known of the candidate policies without the objects.
#[derive(Debug, Default)]
struct Known {
    true_forbids: Vec<PolicyId>,
    residual_forbids: Vec<PolicyId>,
    true_permits: Vec<PolicyId>,
    residual_permits: Vec<PolicyId>,
}

impl Known {
    fn from_response(response: &cedar_policy::TpeResponse<'_>) -> Known {
        Known {
            true_forbids: response.true_forbids().cloned().collect(),
            residual_forbids: response.residual_forbids().cloned().collect(),
            true_permits: response.true_permits().cloned().collect(),
            residual_permits: response.residual_permits().cloned().collect(),
        }
    }
    fn holds(&mut self, policy: &cedar_policy::Policy) {
        match policy.effect() {
            cedar_policy::Effect::Forbid => self.true_forbids.push(policy.id().clone()),
            cedar_policy::Effect::Permit => self.true_permits.push(policy.id().clone()),
        }
    }
    fn residual(&mut self, policy: &cedar_policy::Policy) {
        match policy.effect() {
            cedar_policy::Effect::Forbid => self.residual_forbids.push(policy.id().clone()),
            cedar_policy::Effect::Permit => self.residual_permits.push(policy.id().clone()),
        }
    }
    fn extend(&mut self, other: Known) {
        self.true_forbids.extend(other.true_forbids);
        self.residual_forbids.extend(other.residual_forbids);
        self.true_permits.extend(other.true_permits);
        self.residual_permits.extend(other.residual_permits);
    }
}

/// `update` and `patch` reach admission as the same operation, so a policy must name both or
/// neither.
fn check_update_and_patch(p: &LoadedPolicy, file_name: &str) -> Result<(), UnifiedError> {
    let Some(actions) = scope_verbs(&p.policy) else { return Ok(()) };
    let update = actions.iter().any(|a| a == "update");
    let patch = actions.iter().any(|a| a == "patch");
    if update != patch {
        let (named, missing) = if update { ("update", "patch") } else { ("patch", "update") };
        return Err(UnifiedError::Policy {
            location: format!("{file_name}:{}:{}", p.position.line, p.position.column),
            message: format!(
                "names {named} without {missing}: admission sees both as UPDATE, so name both \
                 (action in [k8s::unified::Action::\"update\", k8s::unified::Action::\"patch\"])"
            ),
        });
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;
    use rampart_policy::entities::principal::UserInfoRef;

    const GROUPS: &[String] = &[];

    fn create_configmap(tier: &UnifiedTier) -> Outcome {
        let a = Attributes {
            user: UserInfoRef { username: "alice", uid: "", groups: GROUPS, extra: None },
            verb: "create",
            kind: schema::resource_kind("", "configmaps", "").unwrap(),
            namespace: "dev",
            name: "",
        };
        tier.authorize(&a).unwrap()
    }

    #[test]
    fn a_resource_type_uses_its_narrow_schema_unless_a_policy_names_another_type() {
        let own = "permit (principal == k8s::User::\"alice\", action == k8s::unified::Action::\"create\", resource is core::configmaps);";
        let tier = UnifiedTier::load(own, "own.cedar").unwrap();
        assert!(tier.narrow.contains_key("core::configmaps"));
        assert!(matches!(create_configmap(&tier), Outcome::Allow { .. }));

        // `apps::deployments` is not in the configmaps schema: the full schema answers.
        let other = format!(
            "{own}\nforbid (principal, action, resource is core::configmaps) when {{ principal == k8s::User::\"alice\" && !(resource is apps::deployments) }};"
        );
        let tier = UnifiedTier::load(&other, "other.cedar").unwrap();
        assert!(!tier.narrow.contains_key("core::configmaps"));
        assert!(matches!(create_configmap(&tier), Outcome::Deny { .. }));
    }
}
