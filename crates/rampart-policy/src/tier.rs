//! One tier: an indexed policy set evaluated with Cedar semantics.
//!
//! Inside a tier a satisfied forbid beats any permit. A tier where nothing applied lets the
//! request fall through to the next tier; a tier where a policy *errored* and nothing was
//! satisfied stops the fall-through (fail closed: a later, more permissive tier must not
//! decide because an earlier guard could not be evaluated).

use cedar_policy::{Authorizer, Effect};
use rampart_types::{Diagnostic, PolicyErrorRef, PolicyRef};

use crate::document::{LoadedPolicy, PolicyMode};
use crate::entities::CedarRequest;
use crate::index::{ActionHierarchy, PolicyIndex};

/// A named, ordered, indexed list of policies.
#[derive(Debug, Clone)]
pub struct Tier {
    pub name: String,
    pub policies: Vec<LoadedPolicy>,
    index: PolicyIndex,
}

/// What a tier concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierDecision {
    /// A permit was satisfied and no forbid.
    Allow,
    /// A forbid was satisfied.
    Deny,
    /// Nothing was satisfied but some policy errored: the tier decides, fail closed.
    Error,
    /// Nothing applied; ask the next tier.
    NoMatch,
}

/// An audit-mode policy that was satisfied ("would deny" for a forbid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHit {
    pub policy: PolicyRef,
    pub effect: Effect,
    pub tier: String,
}

impl AuditHit {
    /// A satisfied audit-mode forbid: the request would have been denied.
    pub fn would_deny(&self) -> bool {
        self.effect == Effect::Forbid
    }
}

/// The result of evaluating one tier.
#[derive(Debug, Clone)]
pub struct TierOutcome {
    pub decision: TierDecision,
    pub diagnostic: Diagnostic,
    pub audit: Vec<AuditHit>,
    /// How many policies the index handed to Cedar.
    pub evaluated: usize,
}

fn policy_ref(p: &LoadedPolicy) -> PolicyRef {
    PolicyRef {
        policy: p.id.clone(),
        position: p.position.clone(),
        label: p.label.clone(),
        message: p.message.clone(),
    }
}

impl Tier {
    /// Build a tier and its index.
    pub fn new(name: impl Into<String>, policies: Vec<LoadedPolicy>, hierarchy: &ActionHierarchy) -> Self {
        let index = PolicyIndex::build(
            policies.iter().map(|p| {
                (
                    p.policy.principal_constraint(),
                    p.policy.action_constraint(),
                    p.policy.resource_constraint(),
                )
            }),
            hierarchy,
        );
        Tier { name: name.into(), policies, index }
    }

    /// Evaluate the candidates for `req`.
    pub fn evaluate(&self, authorizer: &Authorizer, req: &CedarRequest) -> TierOutcome {
        let candidates = self.index.candidates(req);
        let mut forbids = Vec::new();
        let mut permits = Vec::new();
        let mut errors = Vec::new();
        let mut audit = Vec::new();
        for &i in &candidates {
            let Some(p) = self.policies.get(i as usize) else { continue };
            let response = authorizer.is_authorized(&req.request, &p.single, &req.entities);
            let satisfied = response.diagnostics().reason().next().is_some();
            let error = response.diagnostics().errors().next().map(|e| match e {
                cedar_policy::AuthorizationError::PolicyEvaluationError(e) => e.inner().to_string(),
            });
            match (p.mode, satisfied, error) {
                (PolicyMode::Audit, true, _) => {
                    audit.push(AuditHit { policy: policy_ref(p), effect: p.effect, tier: self.name.clone() })
                }
                (PolicyMode::Audit, false, Some(message)) => {
                    tracing::warn!(policy = %p.id, position = %p.position, %message, "audit-mode policy errored");
                }
                (PolicyMode::Audit, false, None) => {}
                (PolicyMode::Enforce, true, _) => {
                    if p.effect == Effect::Forbid {
                        forbids.push(policy_ref(p))
                    } else {
                        permits.push(policy_ref(p))
                    }
                }
                (PolicyMode::Enforce, false, Some(message)) => errors.push(PolicyErrorRef {
                    policy: p.id.clone(),
                    position: p.position.clone(),
                    message,
                }),
                (PolicyMode::Enforce, false, None) => {}
            }
        }
        let (decision, mut reasons) = if !forbids.is_empty() {
            (TierDecision::Deny, forbids)
        } else if !permits.is_empty() {
            (TierDecision::Allow, permits)
        } else if !errors.is_empty() {
            (TierDecision::Error, vec![])
        } else {
            (TierDecision::NoMatch, vec![])
        };
        reasons.sort();
        errors.sort();
        TierOutcome {
            decision,
            diagnostic: Diagnostic { reasons, errors },
            audit,
            evaluated: candidates.len(),
        }
    }
}
