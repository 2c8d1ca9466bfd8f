//! The broker's token validation (spec §4.4): a Pod Identity token buys AWS credentials, so
//! every check fails closed — a token that cannot be proven to belong to a live pod of the
//! claimed service account gets nothing.
//!
//! Two validators:
//! * [`JwksValidator`]: signature against the cluster's JWKS (RS256/ES256 only; never `none`
//!   or HMAC), exact issuer, the Pod Identity audience, time claims with 60 s skew, `sub`
//!   consistent with the `kubernetes.io` claims, a pod binding, and — through a
//!   [`PodDirectory`] — that the bound pod still exists with that UID and service account and
//!   has not finished (without this a deleted pod's token works until it expires).
//! * [`TokenReviewValidator`]: the apiserver's TokenReview, which covers signature, issuer,
//!   expiry, audience and pod liveness in one call.

use std::sync::Arc;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;

use super::claims::{TimeError, TokenClaims};
use super::wire::PodIdentityError;
use super::{AUDIENCE, BoxFuture};

/// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY: u64 = 60;

fn invalid(message: impl Into<String>) -> PodIdentityError {
    PodIdentityError::invalid_token(message)
}

/// The pod a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerifiedPod {
    pub namespace: String,
    pub service_account: String,
    pub pod_name: String,
    pub pod_uid: String,
}

/// What the live-pod check needs to know about a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    pub uid: String,
    pub service_account: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: String,
    /// Set once the pod is being deleted.
    pub deleting: bool,
}

/// Looks pods up (a kube client in production, a map in tests).
pub trait PodDirectory: Send + Sync {
    /// The pod `namespace/name`, `Ok(None)` if there is none.
    fn pod<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<PodFacts>, String>>;
}

/// Sends a TokenReview and returns its `status` object.
pub trait TokenReviewer: Send + Sync {
    fn review<'a>(
        &'a self,
        token: &'a str,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<serde_json::Value, String>>;
}

/// A token validator.
pub enum Validator {
    Jwks(JwksValidator),
    TokenReview(TokenReviewValidator),
}

impl Validator {
    /// Validate `token` at `now`; the error carries EKS's code (`InvalidTokenException`,
    /// `ExpiredTokenException`) or a 500 when the check itself could not be made.
    pub async fn validate(&self, token: &str, now: i64) -> Result<VerifiedPod, PodIdentityError> {
        // The cheap unverified read first: it tells an expired token from an invalid one
        // (different codes, as EKS Auth answers) before any signature or apiserver work.
        let claims = TokenClaims::parse_unverified(token).map_err(PodIdentityError::invalid_token)?;
        match claims.check_times(now, LEEWAY as i64) {
            Err(TimeError::Expired) => return Err(PodIdentityError::expired_token("token is expired")),
            Err(e) => return Err(PodIdentityError::invalid_token(e.to_string())),
            Ok(()) => {}
        }
        match self {
            Validator::Jwks(v) => v.validate(token, now).await,
            Validator::TokenReview(v) => v.validate(token).await,
        }
    }
}

/// Local validation against the cluster's signing keys.
pub struct JwksValidator {
    issuer: String,
    keys: ArcSwap<JwkSet>,
    pods: Option<Arc<dyn PodDirectory>>,
    /// Pods recently confirmed alive, so an agent validating every request does not ask the
    /// apiserver every time: the whole verified identity (namespace, service account, pod name,
    /// UID — everything the check compared) → when the answer goes stale.
    live: std::sync::Mutex<std::collections::HashMap<VerifiedPod, std::time::Instant>>,
    live_ttl: std::time::Duration,
}

/// How long a positive live-pod answer is reused.
const LIVE_POD_TTL: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Deserialize)]
struct SignedClaims {
    sub: String,
    iat: Option<f64>,
    #[serde(rename = "kubernetes.io")]
    kubernetes: Option<serde_json::Value>,
}

impl JwksValidator {
    /// `pods: None` skips the live-pod check; only do that knowingly (tokens of deleted pods
    /// then stay valid until they expire, up to 24 h).
    pub fn new(issuer: String, keys: JwkSet, pods: Option<Arc<dyn PodDirectory>>) -> Self {
        JwksValidator {
            issuer,
            keys: ArcSwap::from_pointee(keys),
            pods,
            live: Default::default(),
            live_ttl: LIVE_POD_TTL,
        }
    }

    /// Reuse live-pod answers for `ttl` instead of 5 s (zero: ask every time).
    pub fn with_live_pod_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.live_ttl = ttl;
        self
    }

    /// Replace the key set (key rotation).
    pub fn set_keys(&self, keys: JwkSet) {
        self.keys.store(Arc::new(keys));
    }

    async fn validate(&self, token: &str, now: i64) -> Result<VerifiedPod, PodIdentityError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(format!("token header: {e}")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(invalid(format!(
                "token algorithm {:?} is not accepted (RS256 or ES256)",
                header.alg
            )));
        }
        let keys = self.keys.load();
        let candidates: Vec<_> = match &header.kid {
            Some(kid) => keys.find(kid).into_iter().collect(),
            None => keys.keys.iter().collect(),
        };
        if candidates.is_empty() {
            return Err(invalid("token is signed by a key that is not in the cluster's JWKS"));
        }
        let mut validation = Validation::new(header.alg);
        // exp/nbf were checked against the caller's clock before (same claims: the signature
        // covers them); here they only need to be present.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let mut last = None;
        let mut data = None;
        for jwk in candidates {
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|e| PodIdentityError::internal(format!("JWKS key: {e}")))?;
            match jsonwebtoken::decode::<SignedClaims>(token, &key, &validation) {
                Ok(d) => {
                    data = Some(d.claims);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let claims = match (data, last) {
            (Some(c), _) => c,
            (None, Some(e)) => {
                return Err(match e.kind() {
                    ErrorKind::InvalidAudience => invalid(format!("token audience must include {AUDIENCE}")),
                    ErrorKind::InvalidIssuer => invalid(format!("token issuer is not {}", self.issuer)),
                    _ => invalid(format!("token rejected: {e}")),
                });
            }
            (None, None) => return Err(invalid("no key verified the token")),
        };
        if claims.iat.is_some_and(|iat| iat as i64 > now + LEEWAY as i64) {
            return Err(invalid("token is issued in the future"));
        }
        let k8s = claims.kubernetes.unwrap_or_default();
        let text = |p: &str| k8s.pointer(p).and_then(|v| v.as_str()).map(str::to_owned);
        let pod = VerifiedPod {
            namespace: text("/namespace").ok_or_else(|| invalid("token has no kubernetes.io namespace"))?,
            service_account: text("/serviceaccount/name")
                .ok_or_else(|| invalid("token has no kubernetes.io service account"))?,
            pod_name: text("/pod/name").ok_or_else(|| invalid("token is not bound to a pod"))?,
            pod_uid: text("/pod/uid").ok_or_else(|| invalid("token is not bound to a pod"))?,
        };
        if claims.sub != format!("system:serviceaccount:{}:{}", pod.namespace, pod.service_account) {
            return Err(invalid("token subject does not match its service account"));
        }
        if let Some(pods) = &self.pods {
            let fresh = self
                .live
                .lock()
                .ok()
                .and_then(|m| m.get(&pod).copied())
                .is_some_and(|t| t > std::time::Instant::now());
            if !fresh {
                check_live(pods.as_ref(), &pod).await?;
                if let Ok(mut m) = self.live.lock() {
                    if m.len() > 10_000 {
                        m.clear();
                    }
                    m.insert(pod.clone(), std::time::Instant::now() + self.live_ttl);
                }
            }
        }
        Ok(pod)
    }
}

/// The bound pod must exist with the token's UID and service account and must not be
/// finished or going away.
async fn check_live(pods: &dyn PodDirectory, pod: &VerifiedPod) -> Result<(), PodIdentityError> {
    let facts = pods
        .pod(&pod.namespace, &pod.pod_name)
        .await
        .map_err(|e| PodIdentityError::internal(format!("cannot check the token's pod: {e}")))?
        .ok_or_else(|| {
            PodIdentityError::invalid_token(format!(
                "pod {}/{} no longer exists",
                pod.namespace, pod.pod_name
            ))
        })?;
    let stale = if facts.uid != pod.pod_uid {
        Some("was recreated (UID differs)")
    } else if facts.service_account != pod.service_account {
        Some("runs as another service account")
    } else if matches!(facts.phase.as_str(), "Succeeded" | "Failed") {
        Some("has finished")
    } else if facts.deleting {
        Some("is being deleted")
    } else {
        None
    };
    match stale {
        Some(why) => Err(PodIdentityError::invalid_token(format!(
            "the token's pod {}/{} {why}",
            pod.namespace, pod.pod_name
        ))),
        None => Ok(()),
    }
}

/// Validation by the apiserver.
pub struct TokenReviewValidator {
    reviewer: Arc<dyn TokenReviewer>,
}

impl TokenReviewValidator {
    pub fn new(reviewer: Arc<dyn TokenReviewer>) -> Self {
        TokenReviewValidator { reviewer }
    }

    async fn validate(&self, token: &str) -> Result<VerifiedPod, PodIdentityError> {
        let status = self
            .reviewer
            .review(token, AUDIENCE)
            .await
            .map_err(|e| PodIdentityError::internal(format!("TokenReview failed: {e}")))?;
        verified_from_review(&status)
    }
}

/// The checks on a TokenReview `status` (spec §4.4 option A).
pub fn verified_from_review(status: &serde_json::Value) -> Result<VerifiedPod, PodIdentityError> {
    if status.get("authenticated").and_then(|a| a.as_bool()) != Some(true) {
        let why = status.get("error").and_then(|e| e.as_str()).unwrap_or("not authenticated");
        return Err(invalid(format!("token rejected by the apiserver: {why}")));
    }
    let audiences = status.get("audiences").and_then(|a| a.as_array()).into_iter().flatten();
    if !audiences.filter_map(|a| a.as_str()).any(|a| a == AUDIENCE) {
        return Err(invalid(format!("token audience must include {AUDIENCE}")));
    }
    let username = status.pointer("/user/username").and_then(|u| u.as_str()).unwrap_or_default();
    let (namespace, service_account) = username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .ok_or_else(|| invalid("token is not a service-account token"))?;
    let extra = |key: &str| {
        status
            .pointer("/user/extra")
            .and_then(|e| e.get(key))
            .and_then(|v| v.as_array())
            .and_then(|v| v.first())
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| invalid("token is not bound to a pod"))
    };
    Ok(VerifiedPod {
        namespace: namespace.to_owned(),
        service_account: service_account.to_owned(),
        pod_name: extra("authentication.kubernetes.io/pod-name")?,
        pod_uid: extra("authentication.kubernetes.io/pod-uid")?,
    })
}

#[cfg(test)]
pub(crate) mod test_keys {
    //! A throw-away RSA key for signing test tokens (never used outside tests).
    use jsonwebtoken::{EncodingKey, Header};

    pub const PRIVATE_PEM: &str = include_str!("../../tests/data/test-sa-key.pem");

    pub fn jwks() -> jsonwebtoken::jwk::JwkSet {
        let keys = crate::oidc::SigningKey::from_pem("test", PRIVATE_PEM).unwrap();
        serde_json::from_value(serde_json::json!({"keys": [keys[0].jwk()]})).unwrap()
    }

    pub fn sign(claims: &serde_json::Value) -> String {
        let kid = crate::oidc::SigningKey::from_pem("test", PRIVATE_PEM).unwrap()[0].kid.clone();
        let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(PRIVATE_PEM.as_bytes()).unwrap())
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::test_keys::{jwks, sign};
    use super::*;
    use crate::pod_identity::claims::test_tokens::jwt;

    const T: i64 = 1_800_000_000;
    const ISSUER: &str = "https://oidc.example.com/c1";

    struct Pods(HashMap<(String, String), PodFacts>);
    impl PodDirectory for Pods {
        fn pod<'a>(&'a self, ns: &'a str, name: &'a str) -> BoxFuture<'a, Result<Option<PodFacts>, String>> {
            Box::pin(async move { Ok(self.0.get(&(ns.to_owned(), name.to_owned())).cloned()) })
        }
    }

    fn claims() -> serde_json::Value {
        json!({"iss": ISSUER, "sub": "system:serviceaccount:team-a:app", "aud": [AUDIENCE],
               "exp": T + 3600, "iat": T, "nbf": T,
               "kubernetes.io": {"namespace": "team-a", "pod": {"name": "app-7d9c", "uid": "U1"},
                                 "serviceaccount": {"name": "app", "uid": "S1"}}})
    }

    fn validator(pod: Option<PodFacts>) -> Validator {
        let mut map = HashMap::new();
        if let Some(p) = pod {
            map.insert(("team-a".to_owned(), "app-7d9c".to_owned()), p);
        }
        Validator::Jwks(JwksValidator::new(ISSUER.into(), jwks(), Some(Arc::new(Pods(map)))))
    }

    fn live() -> PodFacts {
        PodFacts { uid: "U1".into(), service_account: "app".into(), phase: "Running".into(), deleting: false }
    }

    async fn code(v: &Validator, token: &str) -> String {
        v.validate(token, T).await.unwrap_err().code
    }

    #[tokio::test]
    async fn b01_a_signed_bound_token_of_a_live_pod_is_valid() {
        let pod = validator(Some(live())).validate(&sign(&claims()), T).await.unwrap();
        assert_eq!(
            pod,
            VerifiedPod {
                namespace: "team-a".into(),
                service_account: "app".into(),
                pod_name: "app-7d9c".into(),
                pod_uid: "U1".into()
            }
        );
    }

    #[tokio::test]
    async fn b02_to_b08_every_broken_token_is_refused() {
        let v = validator(Some(live()));
        let with = |patch: serde_json::Value| {
            let mut c = claims();
            for (k, val) in patch.as_object().unwrap() {
                c[k] = val.clone();
            }
            c
        };
        // B02 wrong audience, B08 wrong issuer, sub/claims mismatch, B03 unbound token.
        for bad in [
            with(json!({"aud": ["https://kubernetes.default.svc"]})),
            with(json!({"iss": "https://evil.example.com"})),
            with(json!({"sub": "system:serviceaccount:team-a:other"})),
            with(json!({"kubernetes.io": {"namespace": "team-a", "serviceaccount": {"name": "app"}}})),
            with(json!({"iat": T + 7200})),
        ] {
            assert_eq!(code(&v, &sign(&bad)).await, "InvalidTokenException", "{bad}");
        }
        // B06 expired (beyond the skew) has its own code.
        assert_eq!(code(&v, &sign(&with(json!({"exp": T - 61})))).await, "ExpiredTokenException");
        // B07: alg none and HS256 (signed with the public key as an HMAC secret, the classic
        // confusion attack) are refused before any key is tried.
        assert_eq!(code(&v, &jwt(&claims())).await, "InvalidTokenException");
        let enc = |v: &serde_json::Value| {
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, v.to_string())
        };
        let none = format!("{}.{}.", enc(&json!({"alg": "none"})), enc(&claims()));
        assert_eq!(code(&v, &none).await, "InvalidTokenException");
        // A tampered payload fails the signature.
        let good = sign(&claims());
        let mut parts: Vec<&str> = good.split('.').collect();
        let other = sign(&with(json!({"sub": "system:serviceaccount:team-a:app", "exp": T + 7200})));
        parts[1] = other.split('.').nth(1).unwrap();
        assert_eq!(code(&v, &parts.join(".")).await, "InvalidTokenException");
    }

    #[tokio::test]
    async fn b04_b05_dead_recreated_or_finished_pods_are_refused() {
        let token = sign(&claims());
        assert_eq!(code(&validator(None), &token).await, "InvalidTokenException", "B04 pod deleted");
        let recreated = PodFacts { uid: "U2".into(), ..live() };
        assert_eq!(code(&validator(Some(recreated)), &token).await, "InvalidTokenException", "B05");
        let done = PodFacts { phase: "Succeeded".into(), ..live() };
        assert_eq!(code(&validator(Some(done)), &token).await, "InvalidTokenException");
        let going = PodFacts { deleting: true, ..live() };
        assert_eq!(code(&validator(Some(going)), &token).await, "InvalidTokenException");
    }

    #[test]
    fn token_review_status_checks() {
        let ok = json!({"authenticated": true, "audiences": [AUDIENCE],
            "user": {"username": "system:serviceaccount:team-a:app",
                     "extra": {"authentication.kubernetes.io/pod-name": ["app-7d9c"],
                               "authentication.kubernetes.io/pod-uid": ["U1"]}}});
        assert_eq!(verified_from_review(&ok).unwrap().pod_uid, "U1");
        let mut no_aud = ok.clone();
        no_aud["audiences"] = json!([]);
        assert!(verified_from_review(&no_aud).is_err(), "B02");
        let mut unbound = ok.clone();
        unbound["user"]["extra"] = json!({});
        assert!(verified_from_review(&unbound).is_err(), "B03");
        let mut user = ok.clone();
        user["user"]["username"] = json!("alice");
        assert!(verified_from_review(&user).is_err());
        assert!(verified_from_review(&json!({"authenticated": false, "error": "bad"})).is_err());
    }

    #[tokio::test]
    async fn reused_live_pod_answers_still_check_the_service_account() {
        let v = validator(Some(live()));
        v.validate(&sign(&claims()), T).await.unwrap();
        let mut other = claims();
        other["sub"] = json!("system:serviceaccount:team-a:other");
        other["kubernetes.io"]["serviceaccount"]["name"] = json!("other");
        assert_eq!(code(&v, &sign(&other)).await, "InvalidTokenException", "the pod runs as app, not other");
    }
}
