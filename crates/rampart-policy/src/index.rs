//! Scope index: which policies of a tier can possibly match a request.
//!
//! A policy's scope (`principal …, action …, resource …`) is checked before its conditions;
//! a policy whose scope cannot match is never satisfied and never errors, so leaving it out of
//! evaluation does not change the decision. The index buckets policies by action, then by
//! principal key (a literal uid from `==`/`in`, a type from `is`, or "any"), so the cost of a
//! decision depends on the policies that could apply, not on the size of the tier.

use std::collections::HashMap;

use cedar_policy::{ActionConstraint, EntityTypeName, EntityUid, PrincipalConstraint, ResourceConstraint};

use crate::entities::CedarRequest;

/// Action ancestry known to the engine: `child → parents`. Used to expand `action in X`.
#[derive(Debug, Clone, Default)]
pub struct ActionHierarchy {
    children: HashMap<EntityUid, Vec<EntityUid>>,
}

impl ActionHierarchy {
    /// Declare `child in parent`.
    pub fn add(&mut self, child: EntityUid, parent: EntityUid) {
        self.children.entry(parent).or_default().push(child);
    }

    /// `action` and every action below it.
    fn with_descendants(&self, action: &EntityUid) -> Vec<EntityUid> {
        let mut out = vec![action.clone()];
        let mut i = 0;
        while let Some(a) = out.get(i).cloned() {
            for c in self.children.get(&a).into_iter().flatten() {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
            i += 1;
        }
        out
    }
}

#[derive(Debug, Clone, Default)]
struct PrincipalBuckets {
    by_uid: HashMap<EntityUid, Vec<u32>>,
    by_type: HashMap<EntityTypeName, Vec<u32>>,
    any: Vec<u32>,
}

impl PrincipalBuckets {
    fn insert(&mut self, constraint: &PrincipalConstraint, policy: u32) {
        match constraint {
            PrincipalConstraint::Any => self.any.push(policy),
            PrincipalConstraint::Eq(u) | PrincipalConstraint::In(u) | PrincipalConstraint::IsIn(_, u) => {
                self.by_uid.entry(u.clone()).or_default().push(policy)
            }
            PrincipalConstraint::Is(t) => self.by_type.entry(t.clone()).or_default().push(policy),
        }
    }

    fn collect(&self, req: &CedarRequest, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.any);
        if let Some(v) = self.by_type.get(req.principal.type_name()) {
            out.extend_from_slice(v);
        }
        for key in std::iter::once(&req.principal).chain(req.groups.iter()) {
            if let Some(v) = self.by_uid.get(key) {
                out.extend_from_slice(v);
            }
        }
    }
}

/// The exact scope of one policy, re-checked on candidates: bucket keys are necessary
/// conditions, not sufficient ones (an `==` and an `in` on the same uid share a bucket).
#[derive(Debug, Clone)]
struct Scope {
    principal: PrincipalConstraint,
    resource: ResourceConstraint,
}

fn principal_matches(c: &PrincipalConstraint, req: &CedarRequest) -> bool {
    let is_in = |u: &EntityUid| req.principal == *u || req.groups.contains(u);
    match c {
        PrincipalConstraint::Any => true,
        PrincipalConstraint::Eq(u) => req.principal == *u,
        PrincipalConstraint::In(u) => is_in(u),
        PrincipalConstraint::Is(t) => req.principal.type_name() == t,
        PrincipalConstraint::IsIn(t, u) => req.principal.type_name() == t && is_in(u),
    }
}

/// Resources have no ancestors in the Kubernetes model, but `resource in X` is still kept as
/// "may match" so the index never depends on that fact.
fn resource_may_match(c: &ResourceConstraint, req: &CedarRequest) -> bool {
    match c {
        ResourceConstraint::Any | ResourceConstraint::In(_) => true,
        ResourceConstraint::Eq(u) => req.resource == *u,
        ResourceConstraint::Is(t) | ResourceConstraint::IsIn(t, _) => req.resource.type_name() == t,
    }
}

/// The index of one tier.
#[derive(Debug, Clone, Default)]
pub struct PolicyIndex {
    by_action: HashMap<EntityUid, PrincipalBuckets>,
    any_action: PrincipalBuckets,
    scopes: Vec<Scope>,
}

impl PolicyIndex {
    /// Index policies given as `(principal, action, resource)` constraints, in tier order.
    pub fn build(
        policies: impl IntoIterator<Item = (PrincipalConstraint, ActionConstraint, ResourceConstraint)>,
        hierarchy: &ActionHierarchy,
    ) -> Self {
        let mut index = PolicyIndex::default();
        for (i, (principal, action, resource)) in policies.into_iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            let actions: Vec<EntityUid> = match &action {
                ActionConstraint::Any => vec![],
                ActionConstraint::Eq(a) => vec![a.clone()],
                ActionConstraint::In(list) => {
                    let mut all = Vec::new();
                    for a in list.iter().flat_map(|a| hierarchy.with_descendants(a)) {
                        if !all.contains(&a) {
                            all.push(a);
                        }
                    }
                    all
                }
            };
            if matches!(action, ActionConstraint::Any) {
                index.any_action.insert(&principal, id);
            }
            for a in actions {
                index.by_action.entry(a).or_default().insert(&principal, id);
            }
            index.scopes.push(Scope { principal, resource });
        }
        index
    }

    /// Policies whose scope matches `req`, in tier order.
    pub fn candidates(&self, req: &CedarRequest) -> Vec<u32> {
        let mut out = Vec::new();
        if let Some(b) = self.by_action.get(&req.action) {
            b.collect(req, &mut out);
        }
        self.any_action.collect(req, &mut out);
        out.retain(|&i| {
            self.scopes
                .get(i as usize)
                .is_some_and(|s| principal_matches(&s.principal, req) && resource_may_match(&s.resource, req))
        });
        out.sort_unstable();
        out
    }
}
