//! The TokenReview webhook's logic: token checks → STS → mapping, with successful answers
//! cached until the token expires (a repeated token costs no STS call).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::host::HostVerifier;
use crate::mapping::{Mapper, MappingError};
use crate::sts::{Identity, StsClient, StsError};
use crate::token::{TokenError, verify};

/// A successful authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Why a token was refused; decides the HTTP status (403, or 429 when STS throttles).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Sts(#[from] StsError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
}

impl AuthError {
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::Sts(StsError::Throttled(_)) => 429,
            _ => 403,
        }
    }

    /// The metric label upstream uses (with its typo, so dashboards keep working).
    pub fn metric_label(&self) -> &'static str {
        match self {
            AuthError::Token(_) => "invalid_token",
            AuthError::Sts(StsError::Throttled(_)) => "sts_throttling",
            AuthError::Sts(_) => "sts_error",
            AuthError::Mapping(_) => "uknown_user",
        }
    }
}

/// Bounded so a flood of distinct tokens cannot grow memory without limit.
const CACHE_LIMIT: usize = 10_000;

pub struct Authenticator {
    hosts: HostVerifier,
    sts: StsClient,
    /// Replaced when a live aws-auth ConfigMap changes (reads hold it across an EC2 lookup).
    mapper: tokio::sync::RwLock<Mapper>,
    cache: Mutex<HashMap<String, (i64, Authenticated)>>,
}

fn extra(id: &Identity) -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([
        ("accessKeyId".into(), vec![id.access_key_id.clone()]),
        ("arn".into(), vec![id.arn.clone()]),
        ("canonicalArn".into(), vec![id.canonical_arn.clone()]),
        ("principalId".into(), vec![id.user_id.clone()]),
        ("sessionName".into(), vec![id.session_name.clone()]),
        ("sigs.k8s.io/aws-iam-authenticator/principalId".into(), vec![id.user_id.clone()]),
    ])
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(hosts: HostVerifier, sts: StsClient, mapper: Mapper) -> Self {
        Authenticator { hosts, sts, mapper: tokio::sync::RwLock::new(mapper), cache: Mutex::default() }
    }

    /// Swap in a new aws-auth mapping (a live ConfigMap changed). Cached answers are dropped:
    /// a removed mapping must stop working at once, not when its tokens expire.
    pub async fn set_aws_auth(&self, aws_auth: crate::mapping::AwsAuth) {
        self.mapper.write().await.aws_auth = aws_auth;
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }

    /// Authenticate a bearer token at time `now` (Unix seconds).
    pub async fn authenticate(&self, token: &str, now: i64) -> Result<Authenticated, AuthError> {
        if let Some(hit) = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(token).filter(|(exp, _)| now <= *exp).map(|(_, a)| a.clone()))
        {
            return Ok(hit);
        }
        let url = verify(token, &self.hosts, now)?;
        let id = self.sts.get_caller_identity(&url).await?;
        let user = self.mapper.read().await.map(&id).await?;
        let authenticated = Authenticated {
            username: user.username,
            uid: format!("aws-iam-authenticator:{}:{}", id.account_id, id.user_id),
            groups: user.groups,
            extra: extra(&id),
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.retain(|_, (exp, _)| now <= *exp);
                if cache.len() >= CACHE_LIMIT {
                    cache.clear();
                }
            }
            cache.insert(token.to_owned(), (url.expires_at(), authenticated.clone()));
        }
        Ok(authenticated)
    }
}

/// The TokenReview reply for an answer, echoing the request's apiVersion.
pub fn token_review_response(api_version: &str, result: &Result<Authenticated, AuthError>) -> Value {
    let status = match result {
        Ok(a) => {
            let mut user = json!({"username": a.username, "uid": a.uid, "extra": a.extra});
            if !a.groups.is_empty() {
                user["groups"] = json!(a.groups);
            }
            json!({"authenticated": true, "user": user})
        }
        Err(_) => json!({"authenticated": false, "user": {}}),
    };
    json!({"apiVersion": api_version, "kind": "TokenReview", "metadata": {"creationTimestamp": null}, "spec": {}, "status": status})
}
