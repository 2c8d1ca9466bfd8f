//! The engine: ordered tiers → webhook decisions for authorization and admission.

use cedar_policy::Authorizer;
use rampart_types::admission::{AdmissionRequest, AdmissionResponse};
use rampart_types::sar::SubjectAccessReviewSpec;
use rampart_types::{Decision, Diagnostic, PolicyRef, ReasonFormat, SourcePosition};

use crate::entities::admission::{ADMISSION_OPERATIONS, TypeNameCache, from_admission};
use crate::entities::authorization::from_sar;
use crate::entities::{CedarRequest, Names};
use crate::index::ActionHierarchy;
use crate::tier::{AuditHit, Tier, TierDecision};
use crate::{EntityError, LoadedPolicy};

/// What admission does when a request cannot be mapped to Cedar (e.g. a malformed object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMappingError {
    /// Reject with HTTP 500 semantics. The default: an object Rampart cannot read must not
    /// slip past forbids that were written for it.
    #[default]
    Deny,
    /// Allow and log; for clusters that prefer availability over enforcement.
    Allow,
}

/// Engine behaviour that is not expressed in policies.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The webhook's own identity: always allowed to read `cedar.k8s.aws` policies and RBAC
    /// objects, so a policy store in the cluster can never lock the webhook out of itself.
    pub self_identity: String,
    /// Never evaluate `system:*` users other than service accounts and nodes (the apiserver
    /// and controllers must not be broken by a policy mistake); they get NoOpinion.
    pub skip_system_users: bool,
    /// Namespaces admission never evaluates (allowed at once).
    pub admission_exempt_namespaces: Vec<String>,
    pub on_mapping_error: OnMappingError,
    /// How reasons and denial messages are written (the Go webhook's JSON by default).
    pub reason_format: ReasonFormat,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            self_identity: "system:authorizer:cedar-authorizer".into(),
            skip_system_users: true,
            admission_exempt_namespaces: vec![
                "kube-system".into(),
                "rampart-system".into(),
                "cedar-k8s-authz-system".into(),
            ],
            on_mapping_error: OnMappingError::Deny,
            reason_format: ReasonFormat::default(),
        }
    }
}

/// The authorization answer with everything needed to log, count and explain it.
#[derive(Debug, Clone)]
pub struct AuthorizationVerdict {
    pub decision: Decision,
    /// The Go-compatible reason string (`status.reason`).
    pub reason: String,
    /// `status.evaluationError`, when the request could not be evaluated.
    pub evaluation_error: String,
    /// Name of the tier that decided, if any.
    pub tier: Option<String>,
    pub diagnostic: Diagnostic,
    pub audit: Vec<AuditHit>,
}

impl AuthorizationVerdict {
    fn fixed(decision: Decision, reason: &str) -> Self {
        AuthorizationVerdict {
            decision,
            reason: reason.into(),
            evaluation_error: String::new(),
            tier: None,
            diagnostic: Diagnostic::default(),
            audit: vec![],
        }
    }
}

/// The admission answer.
#[derive(Debug, Clone)]
pub struct AdmissionVerdict {
    pub response: AdmissionResponse,
    pub tier: Option<String>,
    pub diagnostic: Diagnostic,
    pub audit: Vec<AuditHit>,
}

/// Result of walking the tiers.
#[derive(Debug, Clone)]
pub struct TieredResult {
    pub decision: TierDecision,
    /// The deciding tier, if any decided.
    pub tier: Option<String>,
    pub diagnostic: Diagnostic,
    pub audit: Vec<AuditHit>,
}

/// An allow-only authorizer usable as a tier.
#[derive(Debug)]
pub enum AllowOnly {
    /// Kubernetes RBAC.
    Rbac(rampart_rbac::RbacAuthorizer),
    /// EKS access entries with their access policies.
    AccessPolicies(rampart_rbac::access_policies::AccessPolicyAuthorizer),
}

/// An allow-only tier (RBAC, EKS access policies): it either allows (deciding) or falls through.
#[derive(Debug)]
pub struct RbacTier {
    pub name: String,
    pub authorizer: AllowOnly,
}

/// Position of a tier in the authorization walk.
#[derive(Debug, Clone, Copy)]
enum TierRef {
    Cedar(usize),
    Rbac(usize),
}

/// Ordered tiers plus the options; immutable once built (reloads build a new engine).
#[derive(Debug)]
pub struct Engine {
    tiers: Vec<Tier>,
    rbac: Vec<RbacTier>,
    /// Authorization order over Cedar and RBAC tiers (admission uses the Cedar tiers only).
    layout: Vec<TierRef>,
    names: Names,
    types: TypeNameCache,
    authorizer: Authorizer,
    options: EngineOptions,
    ready: bool,
}

/// The webhook's own read access to its policies and to RBAC (upstream's hard-coded allows),
/// so a policy mistake can never lock the webhook out of the objects it needs.
fn self_access_reason(spec: &SubjectAccessReviewSpec) -> Option<&'static str> {
    if spec.non_resource_attributes.is_some() {
        return None;
    }
    let ra = spec.resource_attributes.as_ref()?;
    if !matches!(ra.verb.as_deref(), Some("get" | "list" | "watch")) {
        return None;
    }
    match (ra.group.as_deref().unwrap_or_default(), ra.resource.as_deref()) {
        ("cedar.k8s.aws", Some("policies")) => Some("cedar authorizer is always allowed to access policies"),
        ("rbac.authorization.k8s.io", _) => Some("cedar authorizer is always allowed to read RBAC policies"),
        _ => None,
    }
}

/// Ask RBAC about a SubjectAccessReview.
fn rbac_decide(authz: &AllowOnly, spec: &SubjectAccessReviewSpec) -> rampart_rbac::Decision {
    let user = rampart_rbac::User {
        name: spec.user.as_deref().unwrap_or_default(),
        groups: spec.groups.as_deref().unwrap_or_default(),
    };
    let attrs = match (&spec.non_resource_attributes, &spec.resource_attributes) {
        (Some(nra), _) => rampart_rbac::Attributes {
            verb: nra.verb.as_deref().unwrap_or_default(),
            resource_request: false,
            path: nra.path.as_deref().unwrap_or_default(),
            ..Default::default()
        },
        (None, Some(ra)) => rampart_rbac::Attributes {
            verb: ra.verb.as_deref().unwrap_or_default(),
            resource_request: true,
            api_group: ra.group.as_deref().unwrap_or_default(),
            resource: ra.resource.as_deref().unwrap_or_default(),
            subresource: ra.subresource.as_deref().unwrap_or_default(),
            name: ra.name.as_deref().unwrap_or_default(),
            namespace: ra.namespace.as_deref().unwrap_or_default(),
            path: "",
        },
        (None, None) => return rampart_rbac::Decision::NoOpinion { reason: String::new() },
    };
    match authz {
        AllowOnly::Rbac(rbac) => rbac.authorize(&user, &attrs),
        AllowOnly::AccessPolicies(access) => access.authorize(&user, spec.extra.as_ref(), &attrs),
    }
}

/// The id the implicit last admission tier reports, as upstream.
pub const ALLOW_ALL_ADMISSION: &str = "allow-all-admission";

impl Engine {
    /// The action hierarchy every tier is indexed with.
    pub fn action_hierarchy(names: &Names) -> ActionHierarchy {
        let mut h = ActionHierarchy::default();
        for op in ADMISSION_OPERATIONS {
            h.add(names.admission(op), names.admission("all"));
        }
        h
    }

    /// Build an engine from named tiers of parsed policies, highest priority first.
    pub fn new(tiers: Vec<(String, Vec<LoadedPolicy>)>, options: EngineOptions) -> Result<Self, EntityError> {
        let names = Names::new()?;
        let hierarchy = Self::action_hierarchy(&names);
        let tiers: Vec<Tier> =
            tiers.into_iter().map(|(name, policies)| Tier::new(name, policies, &hierarchy)).collect();
        let layout = (0..tiers.len()).map(TierRef::Cedar).collect();
        Ok(Engine {
            tiers,
            rbac: vec![],
            layout,
            names,
            types: TypeNameCache::default(),
            authorizer: Authorizer::new(),
            options,
            ready: true,
        })
    }

    /// Add an RBAC tier before (`first`) or after all Cedar tiers. Before: RBAC grants win over
    /// Cedar forbids (Cedar only adds grants); after: Cedar forbids win, as in the apiserver
    /// chain `Node → Rampart → RBAC`.
    pub fn with_rbac_tier(mut self, tier: RbacTier, first: bool) -> Self {
        let slot = TierRef::Rbac(self.rbac.len());
        self.rbac.push(tier);
        if first {
            self.layout.insert(0, slot)
        } else {
            self.layout.push(slot)
        }
        self
    }

    pub fn rbac_tiers(&self) -> &[RbacTier] {
        &self.rbac
    }

    /// Mark the engine as not (yet) ready: authorization answers NoOpinion and admission
    /// allows, so a cluster can start before its policies are loaded.
    pub fn with_ready(mut self, ready: bool) -> Self {
        self.ready = ready;
        self
    }

    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Number of policies over all tiers.
    pub fn policy_count(&self) -> usize {
        self.tiers.iter().map(|t| t.policies.len()).sum()
    }

    /// Map a SubjectAccessReview to Cedar (exposed for benchmarks and `rampart check`).
    pub fn map_sar(&self, spec: &SubjectAccessReviewSpec) -> Result<CedarRequest, EntityError> {
        from_sar(&self.names, spec)
    }

    /// Map an AdmissionRequest to Cedar.
    pub fn map_admission(&self, req: &AdmissionRequest) -> Result<CedarRequest, EntityError> {
        from_admission(&self.names, &self.types, req, None)
    }

    /// [`Engine::map_admission`], with what image verification found as `context.images`.
    pub fn map_admission_with_images(
        &self,
        req: &AdmissionRequest,
        images: Option<&rampart_types::workload::ImageContext>,
    ) -> Result<CedarRequest, EntityError> {
        from_admission(&self.names, &self.types, req, images)
    }

    /// Walk the tiers for an already-mapped request.
    pub fn evaluate_tiers(&self, req: &CedarRequest) -> TieredResult {
        let mut audit = Vec::new();
        for tier in &self.tiers {
            let outcome = tier.evaluate(&self.authorizer, req);
            audit.extend(outcome.audit);
            if outcome.decision != TierDecision::NoMatch {
                return TieredResult {
                    decision: outcome.decision,
                    tier: Some(tier.name.clone()),
                    diagnostic: outcome.diagnostic,
                    audit,
                };
            }
        }
        TieredResult { decision: TierDecision::NoMatch, tier: None, diagnostic: Diagnostic::default(), audit }
    }

    /// Walk Cedar and RBAC tiers in order. `Err` is an RBAC allow (tier, reason, audit hits so
    /// far); `Ok` is the Cedar result (or no match).
    #[allow(clippy::type_complexity)]
    fn walk_authorization(
        &self,
        req: &CedarRequest,
        spec: &SubjectAccessReviewSpec,
    ) -> Result<TieredResult, (String, String, Vec<AuditHit>)> {
        let mut audit = Vec::new();
        for slot in &self.layout {
            match *slot {
                TierRef::Cedar(i) => {
                    let Some(tier) = self.tiers.get(i) else { continue };
                    let outcome = tier.evaluate(&self.authorizer, req);
                    audit.extend(outcome.audit);
                    if outcome.decision != TierDecision::NoMatch {
                        return Ok(TieredResult {
                            decision: outcome.decision,
                            tier: Some(tier.name.clone()),
                            diagnostic: outcome.diagnostic,
                            audit,
                        });
                    }
                }
                TierRef::Rbac(i) => {
                    let Some(tier) = self.rbac.get(i) else { continue };
                    let decision = rbac_decide(&tier.authorizer, spec);
                    if decision.allowed() {
                        return Err((tier.name.clone(), decision.reason().to_owned(), audit));
                    }
                }
            }
        }
        Ok(TieredResult {
            decision: TierDecision::NoMatch,
            tier: None,
            diagnostic: Diagnostic::default(),
            audit,
        })
    }

    /// The allow-only tiers (RBAC, access policies) alone, in order, for every user (no
    /// `system:` skipping): what the apiserver's RBAC authorizer answers after the webhook.
    /// `Some((tier, reason))` when one allows.
    pub fn authorize_rbac(&self, spec: &SubjectAccessReviewSpec) -> Option<(String, String)> {
        self.rbac.iter().find_map(|tier| {
            let decision = rbac_decide(&tier.authorizer, spec);
            decision.allowed().then(|| (tier.name.clone(), decision.reason().to_owned()))
        })
    }

    /// Decide a SubjectAccessReview.
    pub fn authorize(&self, spec: &SubjectAccessReviewSpec) -> AuthorizationVerdict {
        let user = spec.user.as_deref().unwrap_or_default();
        if user == self.options.self_identity
            && let Some(reason) = self_access_reason(spec)
        {
            return AuthorizationVerdict::fixed(Decision::Allow, reason);
        }
        if self.options.skip_system_users
            && user.starts_with("system:")
            && !user.starts_with("system:serviceaccount:")
            && !user.starts_with("system:node:")
        {
            return AuthorizationVerdict::fixed(Decision::NoOpinion, "");
        }
        if !self.ready {
            return AuthorizationVerdict::fixed(Decision::NoOpinion, "");
        }
        let req = match self.map_sar(spec) {
            Ok(r) => r,
            Err(e) => {
                // NoOpinion, not Deny: the next authorizer (RBAC) still applies its rules.
                let mut v = AuthorizationVerdict::fixed(Decision::NoOpinion, "");
                v.evaluation_error = e.to_string();
                return v;
            }
        };
        let result = match self.walk_authorization(&req, spec) {
            Ok(result) => result,
            Err((tier, reason, audit)) => {
                return AuthorizationVerdict {
                    decision: Decision::Allow,
                    reason,
                    evaluation_error: String::new(),
                    tier: Some(tier),
                    diagnostic: Diagnostic::default(),
                    audit,
                };
            }
        };
        let decision = match result.decision {
            TierDecision::Allow => Decision::Allow,
            TierDecision::Deny => Decision::Deny,
            // Errors only: NoOpinion (RBAC decides); the errors are logged, as upstream.
            TierDecision::Error | TierDecision::NoMatch => Decision::NoOpinion,
        };
        if result.decision == TierDecision::Error {
            tracing::warn!(
                errors = %result.diagnostic.to_reason_string(),
                tier = result.tier.as_deref().unwrap_or_default(),
                "policy evaluation errors stopped the tier walk"
            );
        }
        let reason = match decision {
            Decision::NoOpinion => String::new(),
            Decision::Allow => result.diagnostic.reason(self.options.reason_format, "allowed"),
            Decision::Deny => result.diagnostic.reason(self.options.reason_format, "forbidden"),
        };
        AuthorizationVerdict {
            decision,
            reason,
            evaluation_error: String::new(),
            tier: result.tier,
            diagnostic: result.diagnostic,
            audit: result.audit,
        }
    }

    /// Decide an AdmissionRequest (validating webhook).
    pub fn admit(&self, req: &AdmissionRequest) -> AdmissionVerdict {
        self.admit_with_images(req, None)
    }

    /// [`Engine::admit`], with `context.images` from image verification.
    pub fn admit_with_images(
        &self,
        req: &AdmissionRequest,
        images: Option<&rampart_types::workload::ImageContext>,
    ) -> AdmissionVerdict {
        let allow = |tier: Option<String>, diagnostic: Diagnostic, audit: Vec<AuditHit>| AdmissionVerdict {
            response: AdmissionResponse::allow(&req.uid),
            tier,
            diagnostic,
            audit,
        };
        let namespace = req.namespace.as_deref().unwrap_or_default();
        if self.options.admission_exempt_namespaces.iter().any(|n| n == namespace) || !self.ready {
            return allow(None, Diagnostic::default(), vec![]);
        }
        let cedar = match self.map_admission_with_images(req, images) {
            Ok(c) => c,
            Err(e) => {
                let message = format!("error converting request to Cedar resource entity: {e}");
                tracing::warn!(uid = %req.uid, %message, "admission mapping failed");
                return match self.options.on_mapping_error {
                    OnMappingError::Allow => allow(None, Diagnostic::default(), vec![]),
                    OnMappingError::Deny => AdmissionVerdict {
                        response: AdmissionResponse::reject(&req.uid, 500, message),
                        tier: None,
                        diagnostic: Diagnostic::default(),
                        audit: vec![],
                    },
                };
            }
        };
        let result = self.evaluate_tiers(&cedar);
        match result.decision {
            TierDecision::Allow => allow(result.tier, result.diagnostic, result.audit),
            // Admission must allow by default (the request is already authorized): an implicit
            // last tier permits every operation, as upstream's `allow-all-admission`.
            TierDecision::NoMatch => allow(
                Some(ALLOW_ALL_ADMISSION.into()),
                Diagnostic {
                    reasons: vec![PolicyRef {
                        policy: ALLOW_ALL_ADMISSION.into(),
                        position: SourcePosition::default(),
                        label: None,
                        message: None,
                    }],
                    errors: vec![],
                },
                result.audit,
            ),
            TierDecision::Deny => AdmissionVerdict {
                response: AdmissionResponse::reject(
                    &req.uid,
                    403,
                    result.diagnostic.admission_message(self.options.reason_format),
                ),
                tier: result.tier,
                diagnostic: result.diagnostic,
                audit: result.audit,
            },
            TierDecision::Error => {
                // Fail closed. Upstream sent an empty message here; say what failed instead.
                let detail = result
                    .diagnostic
                    .errors
                    .iter()
                    .map(|e| format!("{} at {}: {}", e.policy, e.position, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                AdmissionVerdict {
                    response: AdmissionResponse::reject(
                        &req.uid,
                        403,
                        format!("denied because policy evaluation failed (fail closed): {detail}"),
                    ),
                    tier: result.tier,
                    diagnostic: result.diagnostic,
                    audit: result.audit,
                }
            }
        }
    }
}
