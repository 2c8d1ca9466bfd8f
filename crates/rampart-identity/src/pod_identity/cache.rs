//! The agent's credential cache (spec §2.3.6, improved per §4.6).
//!
//! * Keyed by SHA-256 of the token (raw tokens are never map keys), with a second index by pod
//!   UID: once a pod's rotated token has been issued credentials, the entry of its old token is
//!   dropped, so the refresher always uses the pod's *latest* token (upstream refreshes with the
//!   first one and fails once it expires, agent #89). A token upstream refused never displaces
//!   anything.
//! * Single flight: concurrent misses for one token wait for one upstream call.
//! * A hit is served only with comfortable validity left (20 min, or half the credentials'
//!   lifetime if they are shorter), so SDKs never enter their 15-minute refresh window and
//!   storm the agent; freshly fetched credentials with ≤ 15 s left are an error, as upstream.
//! * Refresh ahead of expiry: at `min(fetched + retention, expiry − 30 min)` (never sooner than
//!   half-way). Irrecoverable answers (no association, invalid/expired token, access denied —
//!   e.g. because the pod is gone) evict; transient ones keep the old credentials and retry
//!   after 1–2 minutes.
//! * Bounded: past `max_size` entries the oldest-inserted goes. Errors are never cached.
//! * Entries issued for a `(namespace, service account)` whose association changed can be
//!   dropped at once ([`CredentialCache::evict_subjects`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::wire::{ContainerCredentials, PodIdentityError};

/// Validity fetched credentials must have, in seconds (upstream's 15 s).
const MIN_FETCHED_VALIDITY: i64 = 15;
/// Validity a cached hit must have (beyond the SDKs' 15-minute advisory refresh).
const MIN_SERVED_VALIDITY: i64 = 20 * 60;
/// Refresh this long before expiry at the latest.
const REFRESH_BEFORE_EXPIRY: i64 = 30 * 60;

/// Cache limits; a zero retention or size disables the cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Longest time credentials are kept before a refresh (upstream default 3 h).
    pub retention_seconds: i64,
    pub max_size: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { retention_seconds: 3 * 3600, max_size: 2000 }
    }
}

type Key = [u8; 32];

#[derive(Debug, Clone)]
struct Entry {
    creds: ContainerCredentials,
    fetched_at: i64,
    refresh_at: i64,
}

struct Slot {
    token: String,
    pod_uid: Option<String>,
    inserted: u64,
    state: tokio::sync::Mutex<Option<Entry>>,
}

#[derive(Default)]
struct Index {
    slots: HashMap<Key, Arc<Slot>>,
    by_pod: HashMap<String, Key>,
    sequence: u64,
}

/// Whether a request was answered from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    Miss,
}

/// What a background refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    Renewed,
    /// Irrecoverable error: entry removed.
    Evicted(PodIdentityError),
    /// Transient error: old credentials kept, retried later.
    Kept(PodIdentityError),
    /// The entry was gone or busy.
    Skipped,
}

/// The cache.
pub struct CredentialCache {
    config: CacheConfig,
    index: Mutex<Index>,
}

fn key_of(token: &str) -> Key {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

fn check_fresh(creds: ContainerCredentials, now: i64) -> Result<ContainerCredentials, PodIdentityError> {
    if creds.expires_at - now <= MIN_FETCHED_VALIDITY {
        return Err(PodIdentityError::internal(format!(
            "fetched credentials are expired or will expire within the next {MIN_FETCHED_VALIDITY} seconds"
        )));
    }
    Ok(creds)
}

impl Entry {
    fn new(creds: ContainerCredentials, now: i64, retention: i64) -> Self {
        let lifetime = creds.expires_at - now;
        let ahead = (creds.expires_at - REFRESH_BEFORE_EXPIRY).max(now + lifetime / 2);
        Entry { refresh_at: (now + retention).min(ahead), fetched_at: now, creds }
    }

    fn servable(&self, now: i64) -> bool {
        let lifetime = self.creds.expires_at - self.fetched_at;
        self.creds.expires_at - now > MIN_SERVED_VALIDITY.min(lifetime / 2).max(MIN_FETCHED_VALIDITY)
    }
}

impl CredentialCache {
    pub fn new(config: CacheConfig) -> Self {
        CredentialCache { config, index: Mutex::new(Index::default()) }
    }

    fn enabled(&self) -> bool {
        self.config.retention_seconds > 0 && self.config.max_size > 0
    }

    pub fn len(&self) -> usize {
        self.index.lock().map(|i| i.slots.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot for this token, created if needed; the oldest slot goes when the cache is full.
    fn slot(&self, token: &str, pod_uid: Option<&str>) -> Arc<Slot> {
        let key = key_of(token);
        let Ok(mut index) = self.index.lock() else {
            // A poisoned lock only means another request panicked mid-update; serve uncached.
            return Arc::new(Slot {
                token: token.into(),
                pod_uid: None,
                inserted: 0,
                state: Default::default(),
            });
        };
        if let Some(slot) = index.slots.get(&key) {
            return slot.clone();
        }
        index.sequence += 1;
        let slot = Arc::new(Slot {
            token: token.to_owned(),
            pod_uid: pod_uid.map(str::to_owned),
            inserted: index.sequence,
            state: Default::default(),
        });
        index.slots.insert(key, slot.clone());
        if index.slots.len() > self.config.max_size
            && let Some(oldest) = index.slots.iter().min_by_key(|(_, s)| s.inserted).map(|(k, _)| *k)
        {
            remove(&mut index, &oldest);
        }
        slot
    }

    /// A token's credentials were just issued: it is now its pod's current token, and the
    /// pod's previous token's entry goes. Only issued tokens count, so a forged token that
    /// merely claims a pod's UID cannot push that pod's credentials out of the cache.
    fn make_current(&self, token: &str, pod_uid: Option<&str>) {
        let (Some(uid), Ok(mut index)) = (pod_uid, self.index.lock()) else { return };
        let key = key_of(token);
        if let Some(old) = index.by_pod.insert(uid.to_owned(), key)
            && old != key
        {
            index.slots.remove(&old);
        }
    }

    fn forget(&self, token: &str) {
        if let Ok(mut index) = self.index.lock() {
            remove(&mut index, &key_of(token));
        }
    }

    /// Credentials for `token`: cached, or from `fetch` (one call per token at a time).
    pub async fn get<F, Fut>(
        &self,
        token: &str,
        pod_uid: Option<&str>,
        now: i64,
        fetch: F,
    ) -> (Result<ContainerCredentials, PodIdentityError>, Lookup)
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<ContainerCredentials, PodIdentityError>>,
    {
        if !self.enabled() {
            return (fetch(token.to_owned()).await.and_then(|c| check_fresh(c, now)), Lookup::Miss);
        }
        let slot = self.slot(token, pod_uid);
        let mut state = slot.state.lock().await;
        if let Some(entry) = state.as_ref().filter(|e| e.servable(now)) {
            return (Ok(entry.creds.clone()), Lookup::Hit);
        }
        match fetch(token.to_owned()).await.and_then(|c| check_fresh(c, now)) {
            Ok(creds) => {
                *state = Some(Entry::new(creds.clone(), now, self.config.retention_seconds));
                drop(state);
                self.make_current(token, pod_uid);
                (Ok(creds), Lookup::Miss)
            }
            Err(e) => {
                if state.is_none() {
                    drop(state);
                    self.forget(token);
                }
                (Err(e), Lookup::Miss)
            }
        }
    }

    /// Tokens whose entries are due for refresh at `now`; expired entries are evicted.
    pub fn due(&self, now: i64) -> Vec<String> {
        let slots: Vec<Arc<Slot>> = match self.index.lock() {
            Ok(index) => index.slots.values().cloned().collect(),
            Err(_) => return vec![],
        };
        let mut due = Vec::new();
        for slot in slots {
            let Ok(state) = slot.state.try_lock() else { continue };
            match state.as_ref() {
                Some(e) if e.creds.expires_at <= now => self.forget(&slot.token),
                Some(e) if e.refresh_at <= now => due.push(slot.token.clone()),
                _ => {}
            }
        }
        due
    }

    /// Refresh one due token's entry with `fetch`.
    pub async fn refresh<F, Fut>(&self, token: &str, now: i64, fetch: F) -> Refreshed
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<ContainerCredentials, PodIdentityError>>,
    {
        let slot = match self.index.lock() {
            Ok(index) => index.slots.get(&key_of(token)).cloned(),
            Err(_) => None,
        };
        let Some(slot) = slot else { return Refreshed::Skipped };
        let mut state = slot.state.lock().await;
        let Some(entry) = state.clone() else { return Refreshed::Skipped };
        match fetch(token.to_owned()).await.and_then(|c| check_fresh(c, now)) {
            Ok(creds) => {
                *state = Some(Entry::new(creds, now, self.config.retention_seconds));
                Refreshed::Renewed
            }
            Err(e) if e.is_irrecoverable() => {
                drop(state);
                self.forget(token);
                Refreshed::Evicted(e)
            }
            Err(e) => {
                let retry = now + 60 + fastrand::i64(0..60);
                *state = Some(Entry {
                    refresh_at: retry.min(entry.creds.expires_at - MIN_FETCHED_VALIDITY),
                    ..entry
                });
                Refreshed::Kept(e)
            }
        }
    }

    /// Drop every entry issued for one of these `(namespace, service account)` pairs (their
    /// association changed: the next request fetches credentials for the new role). Entries
    /// being fetched right now are left alone; they get the new association anyway.
    pub fn evict_subjects(&self, changed: &std::collections::HashSet<(String, String)>) -> usize {
        let slots: Vec<Arc<Slot>> = match self.index.lock() {
            Ok(index) => index.slots.values().cloned().collect(),
            Err(_) => return 0,
        };
        let mut evicted = 0;
        for slot in slots {
            let stale = slot
                .state
                .try_lock()
                .ok()
                .and_then(|s| s.as_ref().and_then(|e| e.creds.subject.clone()))
                .is_some_and(|subject| changed.contains(&subject));
            if stale {
                self.forget(&slot.token);
                evicted += 1;
            }
        }
        evicted
    }

    /// Whether a pod's entry exists (tests, introspection).
    pub fn has_pod(&self, pod_uid: &str) -> bool {
        self.index.lock().map(|i| i.by_pod.contains_key(pod_uid)).unwrap_or(false)
    }
}

fn remove(index: &mut Index, key: &Key) {
    if let Some(slot) = index.slots.remove(key)
        && let Some(uid) = &slot.pod_uid
        && index.by_pod.get(uid) == Some(key)
    {
        index.by_pod.remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const T: i64 = 1_800_000_000;

    fn creds(expires_at: i64) -> ContainerCredentials {
        ContainerCredentials {
            access_key_id: format!("AK{expires_at}"),
            secret_access_key: "s".into(),
            token: "t".into(),
            account_id: "123456789012".into(),
            expiration: String::new(),
            expires_at,
            subject: Some(("ns".into(), format!("sa-{expires_at}"))),
        }
    }

    struct Upstream {
        calls: AtomicUsize,
        answer: Mutex<Result<ContainerCredentials, PodIdentityError>>,
    }

    impl Upstream {
        fn new(answer: Result<ContainerCredentials, PodIdentityError>) -> Arc<Self> {
            Arc::new(Upstream { calls: AtomicUsize::new(0), answer: Mutex::new(answer) })
        }
        fn fetch(
            self: &Arc<Self>,
        ) -> impl FnOnce(String) -> std::future::Ready<Result<ContainerCredentials, PodIdentityError>>
        {
            let me = self.clone();
            move |_| {
                me.calls.fetch_add(1, Ordering::SeqCst);
                std::future::ready(me.answer.lock().unwrap().clone())
            }
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn a12_same_token_is_fetched_once_other_tokens_again() {
        let cache = CredentialCache::new(CacheConfig::default());
        let up = Upstream::new(Ok(creds(T + 6 * 3600)));
        assert_eq!(cache.get("tok-a", None, T, up.fetch()).await.1, Lookup::Miss);
        assert_eq!(cache.get("tok-a", None, T + 1, up.fetch()).await.1, Lookup::Hit);
        assert_eq!(up.calls(), 1);
        cache.get("tok-b", None, T, up.fetch()).await.0.unwrap();
        cache.get("tok-a", None, T + 2, up.fetch()).await.0.unwrap();
        assert_eq!(up.calls(), 2);
    }

    #[tokio::test]
    async fn single_flight_for_concurrent_misses() {
        let cache = Arc::new(CredentialCache::new(CacheConfig::default()));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, calls) = (cache.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get("tok", None, T, |_| async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        Ok(creds(T + 3600))
                    })
                    .await
                    .0
                    .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a13_short_credentials_are_an_error_and_errors_are_not_cached() {
        let cache = CredentialCache::new(CacheConfig::default());
        let up = Upstream::new(Ok(creds(T + 14)));
        let e = cache.get("tok", None, T, up.fetch()).await.0.unwrap_err();
        assert_eq!(e.status, 500);
        assert!(e.message.contains("fetched credentials are expired or will expire within the next"));
        assert!(cache.is_empty(), "errors are not cached");
        *up.answer.lock().unwrap() = Err(PodIdentityError::not_found("none"));
        cache.get("tok", None, T, up.fetch()).await.0.unwrap_err();
        cache.get("tok", None, T, up.fetch()).await.0.unwrap_err();
        assert_eq!(up.calls(), 3);
    }

    #[tokio::test]
    async fn a14_refresh_schedule_and_serving_window() {
        let cache = CredentialCache::new(CacheConfig::default());
        let up = Upstream::new(Ok(creds(T + 6 * 3600)));
        cache.get("tok", None, T, up.fetch()).await.0.unwrap();
        assert!(cache.due(T + 3 * 3600 - 1).is_empty());
        assert_eq!(cache.due(T + 3 * 3600), vec!["tok".to_owned()], "retention 3 h");
        let one_hour = CredentialCache::new(CacheConfig::default());
        let up1 = Upstream::new(Ok(creds(T + 3600)));
        one_hour.get("tok", None, T, up1.fetch()).await.0.unwrap();
        assert_eq!(one_hour.due(T + 1800), vec!["tok".to_owned()], "30 min before a 1 h expiry");
        // A hit inside the last 20 minutes is not served: the request fetches anew.
        assert_eq!(one_hour.get("tok", None, T + 41 * 60, up1.fetch()).await.1, Lookup::Miss);
        assert!(cache.due(T + 6 * 3600 + 1).is_empty() && cache.is_empty(), "expired entries are evicted");
    }

    #[tokio::test]
    async fn a15_refresh_errors_evict_or_keep() {
        let cache = CredentialCache::new(CacheConfig::default());
        let up = Upstream::new(Ok(creds(T + 6 * 3600)));
        cache.get("tok", None, T, up.fetch()).await.0.unwrap();
        *up.answer.lock().unwrap() = Err(PodIdentityError::internal("later"));
        let at = T + 3 * 3600;
        assert!(matches!(cache.refresh("tok", at, up.fetch()).await, Refreshed::Kept(_)));
        let again = cache.due(at + 59);
        assert!(again.is_empty(), "retried no sooner than a minute later");
        assert_eq!(cache.due(at + 120).len(), 1);
        assert_eq!(cache.get("tok", None, at, up.fetch()).await.1, Lookup::Hit, "old credentials kept");
        for code in [
            "ResourceNotFoundException",
            "ExpiredTokenException",
            "InvalidTokenException",
            "AccessDeniedException",
        ] {
            let cache = CredentialCache::new(CacheConfig::default());
            let up = Upstream::new(Ok(creds(T + 6 * 3600)));
            cache.get("tok", None, T, up.fetch()).await.0.unwrap();
            *up.answer.lock().unwrap() = Err(PodIdentityError::new(400, code, "gone"));
            assert!(matches!(cache.refresh("tok", at, up.fetch()).await, Refreshed::Evicted(_)), "{code}");
            assert!(cache.is_empty(), "{code}: next request goes upstream");
        }
    }

    #[tokio::test]
    async fn a_rotated_token_replaces_the_pods_entry_and_size_is_bounded() {
        let cache = CredentialCache::new(CacheConfig { retention_seconds: 3600, max_size: 2 });
        let up = Upstream::new(Ok(creds(T + 6 * 3600)));
        cache.get("old", Some("U1"), T, up.fetch()).await.0.unwrap();
        cache.get("new", Some("U1"), T, up.fetch()).await.0.unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.due(T + 3600), vec!["new".to_owned()], "refresh uses the latest token");
        cache.get("b", Some("U2"), T, up.fetch()).await.0.unwrap();
        cache.get("c", Some("U3"), T, up.fetch()).await.0.unwrap();
        assert_eq!(cache.len(), 2);
        assert!(!cache.has_pod("U1"), "oldest evicted");
        let off = CredentialCache::new(CacheConfig { retention_seconds: 0, max_size: 10 });
        off.get("x", None, T, up.fetch()).await.0.unwrap();
        off.get("x", None, T, up.fetch()).await.0.unwrap();
        assert!(off.is_empty());
    }

    #[tokio::test]
    async fn b15_a_changed_association_evicts_its_entries_only() {
        let cache = CredentialCache::new(CacheConfig::default());
        let up = Upstream::new(Ok(creds(T + 6 * 3600)));
        cache.get("a", None, T, up.fetch()).await.0.unwrap();
        let other = Upstream::new(Ok(creds(T + 5 * 3600)));
        cache.get("b", None, T, other.fetch()).await.0.unwrap();
        let changed = std::collections::HashSet::from([("ns".to_owned(), format!("sa-{}", T + 6 * 3600))]);
        assert_eq!(cache.evict_subjects(&changed), 1);
        assert_eq!(cache.get("a", None, T, up.fetch()).await.1, Lookup::Miss, "refetched");
        assert_eq!(cache.get("b", None, T, other.fetch()).await.1, Lookup::Hit, "untouched");
    }

    #[tokio::test]
    async fn a_refused_token_claiming_a_pod_does_not_evict_its_credentials() {
        let cache = CredentialCache::new(CacheConfig::default());
        let up = Upstream::new(Ok(creds(T + 6 * 3600)));
        cache.get("good", Some("U1"), T, up.fetch()).await.0.unwrap();
        let refused = Upstream::new(Err(PodIdentityError::invalid_token("forged")));
        cache.get("forged", Some("U1"), T, refused.fetch()).await.0.unwrap_err();
        assert_eq!(cache.get("good", Some("U1"), T, up.fetch()).await.1, Lookup::Hit);
        assert_eq!(up.calls(), 1);
    }
}
