//! The claims of a projected service-account token, read *without* verifying the signature:
//! what the node agent checks before it spends an upstream call (spec §2.3.4), and what the
//! broker reads before it verifies. Error texts follow golang-jwt, which upstream prints.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The claims Pod Identity cares about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenClaims {
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub audiences: Vec<String>,
    pub expires_at: Option<i64>,
    pub not_before: Option<i64>,
    pub issued_at: Option<i64>,
    pub namespace: Option<String>,
    pub service_account: Option<String>,
    pub pod_name: Option<String>,
    pub pod_uid: Option<String>,
    pub node_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
struct Named {
    name: Option<String>,
    uid: Option<String>,
}

#[derive(Deserialize, Default)]
struct KubernetesClaims {
    namespace: Option<String>,
    pod: Option<Named>,
    serviceaccount: Option<Named>,
    node: Option<Named>,
}

#[derive(Deserialize)]
struct RawClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
    #[serde(rename = "kubernetes.io")]
    kubernetes: Option<KubernetesClaims>,
}

impl TokenClaims {
    /// Split and decode a compact JWT. Errors read like golang-jwt's (`token is malformed: …`).
    pub fn parse_unverified(token: &str) -> Result<TokenClaims, String> {
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            return Err("token is malformed: token contains an invalid number of segments".into());
        }
        let header = URL_SAFE_NO_PAD
            .decode(parts[0].trim_end_matches('='))
            .map_err(|_| "token is malformed: could not base64 decode header".to_owned())?;
        serde_json::from_slice::<serde_json::Value>(&header)
            .map_err(|_| "token is malformed: could not JSON decode header".to_owned())?;
        let payload = URL_SAFE_NO_PAD
            .decode(parts[1].trim_end_matches('='))
            .map_err(|_| "token is malformed: could not base64 decode claim".to_owned())?;
        let raw: RawClaims = serde_json::from_slice(&payload)
            .map_err(|e| format!("token is malformed: could not JSON decode claim: {e}"))?;
        let k8s = raw.kubernetes.unwrap_or_default();
        let (pod, sa, node) = (
            k8s.pod.unwrap_or_default(),
            k8s.serviceaccount.unwrap_or_default(),
            k8s.node.unwrap_or_default(),
        );
        Ok(TokenClaims {
            issuer: raw.iss,
            subject: raw.sub,
            audiences: match raw.aud {
                Some(Audience::One(a)) => vec![a],
                Some(Audience::Many(a)) => a,
                None => vec![],
            },
            expires_at: raw.exp.map(|x| x as i64),
            not_before: raw.nbf.map(|x| x as i64),
            issued_at: raw.iat.map(|x| x as i64),
            namespace: k8s.namespace,
            service_account: sa.name,
            pod_name: pod.name,
            pod_uid: pod.uid,
            node_name: node.name,
        })
    }

    /// `exp` in the future and `nbf` not, allowing `leeway` seconds (upstream allows none).
    pub fn check_times(&self, now: i64, leeway: i64) -> Result<(), TimeError> {
        if self.expires_at.is_some_and(|exp| now >= exp + leeway) {
            return Err(TimeError::Expired);
        }
        if self.not_before.is_some_and(|nbf| now + leeway < nbf) {
            return Err(TimeError::NotYetValid);
        }
        Ok(())
    }

    /// Whether `aud` names the Pod Identity audience (agent PR #151: a token for any other
    /// audience is somebody else's credential and must not buy AWS credentials).
    pub fn has_pod_identity_audience(&self) -> bool {
        self.audiences.iter().any(|a| a == super::AUDIENCE)
    }
}

/// A time-claim failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("token has invalid claims: token is expired")]
    Expired,
    #[error("token has invalid claims: token is not valid yet")]
    NotYetValid,
}

#[cfg(test)]
pub(crate) mod test_tokens {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// An unsigned-checked HS256 token with these claims (the agent never verifies it).
    pub fn jwt(claims: &serde_json::Value) -> String {
        let enc = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", enc(&serde_json::json!({"alg": "HS256", "typ": "JWT"})), enc(claims))
    }
}

#[cfg(test)]
mod tests {
    use super::test_tokens::jwt;
    use super::*;
    use serde_json::json;

    const T: i64 = 1_800_000_000;

    #[test]
    fn reads_the_kubernetes_claims() {
        let token = jwt(&json!({
            "iss": "https://oidc.example.com", "sub": "system:serviceaccount:team-a:app",
            "aud": ["pods.eks.amazonaws.com"], "exp": T + 3600, "iat": T, "nbf": T,
            "kubernetes.io": {"namespace": "team-a", "pod": {"name": "app-7d9c", "uid": "U1"},
                "serviceaccount": {"name": "app", "uid": "S1"}, "node": {"name": "n1", "uid": "N1"}}
        }));
        let c = TokenClaims::parse_unverified(&token).unwrap();
        assert_eq!(c.pod_uid.as_deref(), Some("U1"));
        assert_eq!(c.node_name.as_deref(), Some("n1"));
        assert!(c.has_pod_identity_audience());
        assert_eq!(c.check_times(T, 0), Ok(()));
        let single = TokenClaims::parse_unverified(&jwt(&json!({"aud": "sts.amazonaws.com"}))).unwrap();
        assert!(!single.has_pod_identity_audience());
    }

    #[test]
    fn a05_a06_a07_malformed_expired_not_yet_valid() {
        let token = jwt(&json!({"exp": T + 3600}));
        let e = TokenClaims::parse_unverified(&format!("Bearer {token}")).unwrap_err();
        assert_eq!(e, "token is malformed: could not base64 decode header");
        assert!(TokenClaims::parse_unverified("a.b").unwrap_err().contains("invalid number of segments"));
        let expired = TokenClaims::parse_unverified(&jwt(&json!({"exp": T, "nbf": T}))).unwrap();
        assert_eq!(
            expired.check_times(T, 0).unwrap_err().to_string(),
            "token has invalid claims: token is expired"
        );
        let early = TokenClaims::parse_unverified(&jwt(&json!({"exp": T + 3600, "nbf": T + 3600}))).unwrap();
        assert_eq!(early.check_times(T, 0), Err(TimeError::NotYetValid));
        assert_eq!(early.check_times(T, 3600), Ok(()), "leeway");
    }
}
