//! The unified tier in front of the engine's tiers, for the webhooks: a SubjectAccessReview or
//! an AdmissionRequest mapped to a unified request, and the unified answer composed with the
//! engine's Cedar and RBAC tiers.
//!
//! Authorization asks the unified tier first. Allow and Deny are final; NoOpinion goes on to
//! the engine's tiers; Conditional is answered `allowed` (Kubernetes cannot carry conditions
//! yet, KEP-5681) and the validating webhook finishes it: [`complete_admission`] rebuilds the
//! authorization request from the AdmissionRequest, re-runs the partial evaluation (nothing is
//! carried between the two calls: the apiserver caches authorization answers, and a create has
//! no name at authorization), and when it is still conditional evaluates with the objects. A
//! NoOpinion then continues to the engine's tiers exactly as authorization would have.

use std::collections::BTreeMap;

use rampart_policy::engine::{AuthorizationVerdict, Engine};
use rampart_policy::entities::principal::UserInfoRef;
use rampart_types::Decision;
use rampart_types::admission::{AdmissionRequest, AdmissionResponse, Operation};
use rampart_types::sar::{ResourceAttributes, SubjectAccessReviewSpec};

use crate::request::Attributes;
use crate::schema::resource_kind;
use crate::selector::Selection;
use crate::{Completion, Outcome, UnifiedTier};

/// The tier name decisions and metrics carry.
pub const TIER: &str = "unified";

/// Whether the unified tier judges this user at all. The engine's own exemptions apply to it
/// too, so a unified policy can never lock out the webhook's own reads or the control plane's
/// `system:` users (service accounts and nodes are judged).
fn judged(engine: &Engine, username: &str) -> bool {
    let options = engine.options();
    if username == options.self_identity {
        return false;
    }
    let control_plane = username.starts_with("system:")
        && !username.starts_with("system:serviceaccount:")
        && !username.starts_with("system:node:");
    !(options.skip_system_users && control_plane)
}

/// Whether the validating webhook judges requests in this namespace. A conditional answer is
/// only sound when it does: elsewhere every residual must fold at authorization.
fn admission_sees(engine: &Engine, namespace: &str) -> bool {
    !engine.options().admission_exempt_namespaces.iter().any(|n| n == namespace)
}

/// Decide a SubjectAccessReview: the unified tier, then the engine's tiers on NoOpinion.
pub fn authorize(
    tier: &UnifiedTier,
    engine: &Engine,
    spec: &SubjectAccessReviewSpec,
) -> AuthorizationVerdict {
    let user = spec.user.as_deref().unwrap_or_default();
    let Some(ra) = spec.resource_attributes.as_ref() else { return engine.authorize(spec) };
    let verb = ra.verb.as_deref().unwrap_or_default();
    let Some(kind) = resource_kind(
        ra.group.as_deref().unwrap_or_default(),
        ra.resource.as_deref().unwrap_or_default(),
        ra.subresource.as_deref().unwrap_or_default(),
    ) else {
        return engine.authorize(spec);
    };
    if !judged(engine, user) {
        return engine.authorize(spec);
    }
    let groups = spec.groups.as_deref().unwrap_or_default();
    let namespace = ra.namespace.as_deref().unwrap_or_default();
    let attributes = Attributes {
        user: UserInfoRef {
            username: user,
            uid: spec.uid.as_deref().unwrap_or_default(),
            groups,
            extra: spec.extra.as_ref(),
        },
        verb,
        kind,
        namespace,
        name: ra.name.as_deref().unwrap_or_default(),
    };
    // The apiserver sends a list's or watch's selectors as parsed requirements
    // (AuthorizeWithSelectors, on by default since 1.34): a policy on the listed objects'
    // labels or fields may be proven for all of them.
    let selection = Selection {
        labels: ra.label_selector.as_ref().and_then(|l| l.requirements.as_deref()).unwrap_or_default(),
        fields: ra.field_selector.as_ref().and_then(|f| f.requirements.as_deref()).unwrap_or_default(),
    };
    let outcome = if matches!(verb, "list" | "watch") && !selection.is_empty() {
        tier.authorize_selected(&attributes, selection)
    } else if admission_sees(engine, namespace) {
        tier.authorize(&attributes)
    } else {
        tier.authorize_final(&attributes)
    };
    match outcome {
        Ok(Outcome::NoOpinion) => engine.authorize(spec),
        Ok(Outcome::Allow { policies }) => {
            verdict(Decision::Allow, format!("allowed by unified policy {}", policies.join(", ")), "")
        }
        Ok(Outcome::Deny { policies }) => {
            verdict(Decision::Deny, format!("denied by unified policy {}", policies.join(", ")), "")
        }
        // Only forbids may still hold: the unified tier can deny or stay silent, so the next
        // tiers answer now and the validating webhook enforces the forbids with the object.
        Ok(Outcome::Conditional { may_allow: false, .. }) => engine.authorize(spec),
        Ok(Outcome::Conditional { policies, .. }) => verdict(
            Decision::Allow,
            format!(
                "conditional on the object: rampart's admission webhook decides (unified policy {})",
                policies.join(", ")
            ),
            "",
        ),
        // Fail closed: a forbid may have applied. Control-plane users are not judged here
        // (see `judged`), so this cannot lock the cluster out.
        Err(e) => verdict(Decision::Deny, "unified policies could not be evaluated".into(), &e.to_string()),
    }
}

fn verdict(decision: Decision, reason: String, error: &str) -> AuthorizationVerdict {
    AuthorizationVerdict {
        decision,
        reason,
        evaluation_error: error.to_owned(),
        tier: Some(TIER.to_owned()),
        diagnostic: Default::default(),
        audit: vec![],
    }
}

/// The authorization verb an admitted operation was authorized as. PATCH and UPDATE both
/// arrive as UPDATE; unified policies name both or neither (enforced at load), so either
/// gives the same answer.
fn verb_of(operation: Operation) -> &'static str {
    match operation {
        Operation::Create => "create",
        Operation::Update => "update",
        Operation::Delete => "delete",
        Operation::Connect => "connect",
    }
}

/// The SubjectAccessReview the apiserver authorized for an admitted request, rebuilt from
/// the AdmissionRequest: what the engine's tiers are asked when the unified tier leaves a
/// conditional request to them.
pub fn authorization_of(req: &AdmissionRequest) -> SubjectAccessReviewSpec {
    let (group, version, resource) = requested_resource(req);
    let subresource = requested_subresource(req);
    SubjectAccessReviewSpec {
        user: req.user_info.username.clone(),
        uid: req.user_info.uid.clone(),
        groups: req.user_info.groups.clone(),
        extra: req.user_info.extra.clone(),
        resource_attributes: Some(ResourceAttributes {
            group: Some(group.to_owned()),
            version: Some(version.to_owned()),
            resource: Some(resource.to_owned()),
            subresource: Some(subresource.to_owned()).filter(|s| !s.is_empty()),
            namespace: req.namespace.clone().filter(|n| !n.is_empty()),
            name: authorized_name(req).map(str::to_owned),
            verb: Some(verb_of(req.operation).to_owned()),
            ..Default::default()
        }),
        non_resource_attributes: None,
    }
}

/// The resource as the client asked for it (`requestResource`), which is what was authorized;
/// `resource` when the apiserver did not say.
fn requested_resource(req: &AdmissionRequest) -> (&str, &str, &str) {
    let r = req.request_resource.as_ref().unwrap_or(&req.resource);
    (&r.group, &r.version, &r.resource)
}

fn requested_subresource(req: &AdmissionRequest) -> &str {
    req.request_sub_resource.as_deref().or(req.sub_resource.as_deref()).unwrap_or_default()
}

/// The name authorization saw: none for a create of the resource itself (a subresource is
/// created under a named parent, e.g. pods/eviction).
fn authorized_name(req: &AdmissionRequest) -> Option<&str> {
    let creating_resource = req.operation == Operation::Create && requested_subresource(req).is_empty();
    req.name.as_deref().filter(|n| !n.is_empty() && !creating_resource)
}

/// The admission phase of the unified tier: `None` when the request may go on (to the
/// admission tiers), or the rejection to send. Only a request that authorization answered
/// conditionally is judged here; every other answer was final at authorization.
pub fn complete_admission(
    tier: &UnifiedTier,
    engine: &Engine,
    req: &AdmissionRequest,
) -> Option<AdmissionResponse> {
    let username = req.user_info.username.as_deref().unwrap_or_default();
    let (group, _, resource) = requested_resource(req);
    let kind = resource_kind(group, resource, requested_subresource(req))?;
    let namespace = req.namespace.as_deref().unwrap_or_default();
    if !judged(engine, username) || !admission_sees(engine, namespace) {
        return None;
    }
    let empty = Vec::new();
    let extra: Option<&BTreeMap<String, Vec<String>>> = req.user_info.extra.as_ref();
    let attributes = Attributes {
        user: UserInfoRef {
            username,
            uid: req.user_info.uid.as_deref().unwrap_or_default(),
            groups: req.user_info.groups.as_ref().unwrap_or(&empty),
            extra,
        },
        verb: verb_of(req.operation),
        kind,
        namespace,
        name: authorized_name(req).unwrap_or_default(),
    };
    let reject = |message: String| Some(AdmissionResponse::reject(&req.uid, 403, message));
    match tier.complete(&attributes, req.object.as_ref(), req.old_object.as_ref()) {
        // A Deny here means the policies changed since authorization: still a Deny.
        Ok(
            Completion::Final(Outcome::Deny { policies })
            | Completion::Completed { outcome: Outcome::Deny { policies }, .. },
        ) => reject(tier.denial_message(&policies)),
        // Final: authorization already decided exactly this request.
        Ok(Completion::Final(_) | Completion::Completed { outcome: Outcome::Allow { .. }, .. }) => None,
        // The forbids do not hold, and authorization was the next tiers' (which allowed, or
        // the request would not be here).
        Ok(Completion::Completed { allowed_on_condition: false, .. }) => None,
        Ok(Completion::Completed { outcome: Outcome::NoOpinion | Outcome::Conditional { .. }, .. }) => {
            // What authorization would have done without the unified tier's opinion.
            let rest = engine.authorize(&authorization_of(req));
            match rest.decision {
                Decision::Allow => None,
                Decision::Deny => reject(rest.reason),
                // The apiserver's own later authorizers (its RBAC) cannot be asked from here:
                // the conditional `allowed` stood in for them, so fail closed.
                Decision::NoOpinion => reject(
                    "no unified policy allows this once the object is known, and no other \
                     Rampart tier does; Rampart cannot consult the apiserver's RBAC at \
                     admission, so give `rampart serve` the RBAC objects (--rbac) or grant it \
                     in a unified permit"
                        .to_owned(),
                ),
            }
        }
        Err(e) => reject(format!("unified policies could not be evaluated: {e}")),
    }
}
