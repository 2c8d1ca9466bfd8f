//! Policy replay: every audited request decided again by a candidate policy set, and the
//! differences from what actually happened, grouped by user and deciding policy — so a policy
//! change can be rolled out knowing exactly whom it would lock out (allowed → denied) and what
//! it would open up (denied → allowed).
//!
//! A request is rebuilt as the SubjectAccessReview the apiserver sent: the impersonated user
//! when there is one (authorization is for them), groups, uid and extra; the verb and
//! `objectRef` (group, version, resource, subresource, namespace, name) with the label and field
//! selectors of the URI; or the path for non-resource URLs.

use std::collections::{BTreeMap, HashSet};

use rampart_policy::Engine;
use rampart_types::Decision;
use rampart_types::sar::{NonResourceAttributes, ResourceAttributes, SubjectAccessReviewSpec};
use rampart_types::wiring::{self, Route};
use serde::Serialize;

use crate::event::AuditEvent;
use crate::finding::EventRef;

/// What the cluster decided, as the audit event records it; `None` when authorization never
/// ran (401: authentication failed) or the event cannot tell.
pub fn historical(e: &AuditEvent<'_>) -> Option<bool> {
    match e.decision() {
        Some("allow") => Some(true),
        Some("forbid") => Some(false),
        _ => match e.code()? {
            401 => None,
            403 => Some(false),
            _ => Some(true),
        },
    }
}

/// The SubjectAccessReview spec the apiserver built for this request.
pub fn review_of(e: &AuditEvent<'_>) -> Option<SubjectAccessReviewSpec> {
    let who = e.impersonated_user.as_ref().unwrap_or(&e.user);
    let extra = who
        .extra
        .and_then(|extra| sonic_rs::from_value::<BTreeMap<String, Vec<String>>>(extra).ok())
        .filter(|m| !m.is_empty());
    let verb = e.verb()?.to_owned();
    let mut spec = SubjectAccessReviewSpec {
        user: who.username.map(str::to_owned),
        uid: who.uid.map(str::to_owned),
        groups: Some(who.groups.iter().map(|g| g.to_string()).collect()),
        extra,
        ..Default::default()
    };
    match &e.object_ref {
        Some(obj) => {
            let labels = e.query_params("labelSelector").into_iter().next();
            let fields = e.query_params("fieldSelector").into_iter().next();
            spec.resource_attributes = Some(ResourceAttributes {
                verb: Some(verb),
                group: obj.api_group.map(str::to_owned),
                version: None,
                resource: obj.resource.map(str::to_owned),
                subresource: e.subresource().map(str::to_owned),
                namespace: obj.namespace.map(str::to_owned),
                name: obj.name.map(str::to_owned),
                label_selector: labels.and_then(|l| rampart_types::selector::parse_labels(&l).ok()),
                field_selector: fields.and_then(|f| rampart_types::selector::parse_fields(&f).ok()),
            });
        }
        None => {
            let path = e.uri()?.split('?').next().unwrap_or_default().to_owned();
            spec.non_resource_attributes = Some(NonResourceAttributes { path: Some(path), verb: Some(verb) });
        }
    }
    Some(spec)
}

/// `get pods/log team-a/web` or `get /healthz`.
fn describe(spec: &SubjectAccessReviewSpec) -> String {
    if let Some(ra) = &spec.resource_attributes {
        let resource = match (&ra.resource, &ra.subresource) {
            (Some(r), Some(s)) => format!("{r}/{s}"),
            (Some(r), None) => r.clone(),
            _ => String::new(),
        };
        let group =
            ra.group.as_deref().filter(|g| !g.is_empty()).map(|g| format!(".{g}")).unwrap_or_default();
        let target = match (&ra.namespace, &ra.name) {
            (Some(ns), Some(n)) => format!(" {ns}/{n}"),
            (Some(ns), None) => format!(" -n {ns}"),
            (None, Some(n)) => format!(" {n}"),
            _ => String::new(),
        };
        format!("{} {resource}{group}{target}", ra.verb.as_deref().unwrap_or_default())
    } else if let Some(nr) = &spec.non_resource_attributes {
        format!("{} {}", nr.verb.as_deref().unwrap_or_default(), nr.path.as_deref().unwrap_or_default())
    } else {
        String::new()
    }
}

/// Direction of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Allowed then, denied by the new policies: would break someone.
    AllowedToDenied,
    /// Denied then, allowed by the new policies: would open access.
    DeniedToAllowed,
}

/// One group of identical changes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeGroup {
    pub change: Change,
    pub user: String,
    /// The policies (with positions) or tier that decided the new outcome.
    pub decided_by: String,
    pub count: u64,
    /// Distinct requests (up to 5), e.g. `list secrets -n kube-system`.
    pub requests: Vec<String>,
    pub first: EventRef,
}

/// Replay totals.
#[derive(Debug, Default, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayStats {
    pub requests: u64,
    pub unchanged: u64,
    pub changed: u64,
    /// The new policies have no opinion and no RBAC tier is loaded: the outcome is the rest of
    /// the authorizer chain's, assumed unchanged.
    pub no_opinion: u64,
    /// Decided before or outside Rampart and RBAC (`system:masters` by the apiserver itself,
    /// kubelets by the Node authorizer): kept as logged.
    pub outside: u64,
    /// Events without an authorization outcome (401s, partial events).
    pub skipped: u64,
}

/// Which authorizers a replayed request meets.
#[derive(Debug, Clone)]
pub enum Chain {
    /// The engine alone, for every user.
    EngineOnly,
    /// The kube-apiserver chain `rampart kube-config` wires ([`rampart_types::wiring`]):
    /// `system:masters` allowed first, the Node authorizer for kubelets, Rampart's webhook for
    /// everyone its match conditions do not skip (control plane, kube-system controllers,
    /// Rampart itself, given here), then RBAC — for `system:anonymous` too.
    Apiserver { self_identity: String },
}

/// What the replayed chain decides for one request.
enum Replayed {
    /// Not decided by anything replayed: keep the logged outcome.
    Outside,
    /// No replayed tier has an opinion and no RBAC tier is loaded.
    NoOpinion,
    Decided {
        allowed: bool,
        decided_by: String,
    },
}

/// The replay of a policy set over audit events.
pub struct Replay<'e> {
    engine: &'e Engine,
    chain: Chain,
    seen: HashSet<String>,
    groups: BTreeMap<(Change, String, String), ChangeGroup>,
    /// Audit-mode policies (`@mode("audit")`) that would have denied, with counts.
    pub would_deny: BTreeMap<String, u64>,
    pub stats: ReplayStats,
}

impl<'e> Replay<'e> {
    pub fn new(engine: &'e Engine, chain: Chain) -> Self {
        Replay {
            engine,
            chain,
            seen: HashSet::new(),
            groups: BTreeMap::new(),
            would_deny: BTreeMap::new(),
            stats: ReplayStats::default(),
        }
    }

    /// RBAC's answer when the webhook had none, or was skipped.
    fn rbac(&self, spec: &SubjectAccessReviewSpec, skipped_webhook: bool) -> Replayed {
        if self.engine.rbac_tiers().is_empty() {
            return Replayed::NoOpinion;
        }
        match self.engine.authorize_rbac(spec) {
            Some((tier, _)) => Replayed::Decided { allowed: true, decided_by: format!("tier {tier}") },
            None if skipped_webhook => Replayed::Decided {
                allowed: false,
                decided_by: "no RBAC rule allows it (the webhook's match conditions skip this user)".into(),
            },
            None => Replayed::Decided { allowed: false, decided_by: "no policy allows it".into() },
        }
    }

    /// The webhook (the engine), then RBAC for what it has no opinion on.
    fn webhook(&mut self, spec: &SubjectAccessReviewSpec) -> Replayed {
        let verdict = self.engine.authorize(spec);
        for hit in verdict.audit.iter().filter(|h| h.would_deny()) {
            *self
                .would_deny
                .entry(format!("{} ({})", hit.policy.policy, hit.policy.position))
                .or_default() += 1;
        }
        let allowed = match verdict.decision {
            Decision::Allow => true,
            Decision::Deny => false,
            Decision::NoOpinion => return self.rbac(spec, false),
        };
        let decided_by = if verdict.diagnostic.reasons.is_empty() {
            match verdict.tier.as_deref() {
                Some(t) => format!("tier {t}"),
                None => "no policy allows it".to_owned(),
            }
        } else {
            verdict.diagnostic.reasons.iter().map(|r| r.describe()).collect::<Vec<_>>().join(", ")
        };
        Replayed::Decided { allowed, decided_by }
    }

    fn decide(&mut self, spec: &SubjectAccessReviewSpec) -> Replayed {
        let Chain::Apiserver { self_identity } = &self.chain else {
            return self.webhook(spec);
        };
        let user = spec.user.as_deref().unwrap_or_default();
        let groups = spec.groups.as_deref().unwrap_or_default();
        match wiring::route(user, groups, self_identity) {
            Route::Privileged | Route::Node => Replayed::Outside,
            Route::RbacOnly => self.rbac(spec, true),
            Route::Webhook => self.webhook(spec),
        }
    }

    /// Replay one event (each request once: its first stage seen).
    pub fn observe(&mut self, e: &AuditEvent<'_>) {
        if let Some(id) = e.audit_id
            && !self.seen.insert(id.to_owned())
        {
            return;
        }
        let (Some(then), Some(spec)) = (historical(e), review_of(e)) else {
            self.stats.skipped += 1;
            return;
        };
        self.stats.requests += 1;
        let (now, decided_by) = match self.decide(&spec) {
            Replayed::Outside => {
                self.stats.outside += 1;
                self.stats.unchanged += 1;
                return;
            }
            Replayed::NoOpinion => {
                self.stats.no_opinion += 1;
                self.stats.unchanged += 1;
                return;
            }
            Replayed::Decided { allowed, decided_by } => (allowed, decided_by),
        };
        if now == then {
            self.stats.unchanged += 1;
            return;
        }
        self.stats.changed += 1;
        let change = if then { Change::AllowedToDenied } else { Change::DeniedToAllowed };
        let user = spec.user.clone().unwrap_or_default();
        let request = describe(&spec);
        let group = self.groups.entry((change, user.clone(), decided_by.clone())).or_insert_with(|| {
            ChangeGroup { change, user, decided_by, count: 0, requests: vec![], first: EventRef::of(e) }
        });
        group.count += 1;
        if group.requests.len() < 5 && !group.requests.contains(&request) {
            group.requests.push(request);
        }
    }

    /// The groups, breaking changes first, biggest first.
    pub fn groups(&self) -> Vec<&ChangeGroup> {
        let mut v: Vec<&ChangeGroup> = self.groups.values().collect();
        v.sort_by(|a, b| a.change.cmp(&b.change).then(b.count.cmp(&a.count)).then(a.user.cmp(&b.user)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilds_the_review_the_apiserver_sent() {
        let raw = r#"{"kind":"Event","auditID":"a","stage":"ResponseComplete","verb":"list","requestURI":"/api/v1/namespaces/default/configmaps?labelSelector=owner%3Dalice","user":{"username":"admin","groups":["system:masters"]},"impersonatedUser":{"username":"alice","groups":["devs"]},"objectRef":{"resource":"configmaps","namespace":"default","apiVersion":"v1"},"responseStatus":{"code":200},"annotations":{"authorization.k8s.io/decision":"allow"}}"#;
        let e = crate::event::test_event(raw);
        let spec = review_of(&e).unwrap();
        assert_eq!(spec.user.as_deref(), Some("alice"), "authorization is for the impersonated user");
        let ra = spec.resource_attributes.as_ref().unwrap();
        let req = &ra.label_selector.as_ref().unwrap().requirements.as_ref().unwrap()[0];
        assert_eq!((req.key.as_str(), req.operator.as_str()), ("owner", "In"));
        assert_eq!(describe(&spec), "list configmaps -n default");
        assert_eq!(historical(&e), Some(true));
        let health = crate::event::test_event(
            r#"{"kind":"Event","verb":"get","requestURI":"/healthz?verbose","user":{"username":"u"},"responseStatus":{"code":401}}"#,
        );
        assert_eq!(describe(&review_of(&health).unwrap()), "get /healthz");
        assert_eq!(historical(&health), None, "401: authorization never ran");
    }
}
