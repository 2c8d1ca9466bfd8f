//! A cache of authorization answers, keyed by the exact request body.
//!
//! An authorization decision depends only on the SubjectAccessReview and the policies: the
//! context is empty and every entity is derived from the request. So an identical body under
//! the same policy generation always gets the identical answer, and serving it from memory is
//! exact, not an approximation. The apiserver sends the same review many times (every
//! controller list/watch, every kubectl retry); its own webhook cache is per apiserver and
//! short-lived. Entries die with the policy generation they were computed under.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Mutex;

use axum::body::Bytes;

/// What is remembered of a decision: the encoded response and what metrics need.
#[derive(Debug, Clone)]
pub struct CachedAnswer {
    pub response: Bytes,
    /// The `rampart_decisions_total` series this answer counts into.
    pub counter: prometheus_client::metrics::counter::Counter,
    /// Audit-mode hits, replayed into logs and metrics on every hit.
    pub audit: std::sync::Arc<Vec<rampart_policy::tier::AuditHit>>,
}

const SHARDS: usize = 16;
/// Entries per shard before the shard is cleared (a cheap bound; hot entries come back at once).
const SHARD_CAPACITY: usize = 4096;
/// Bodies larger than this are not cached (real SARs are a few hundred bytes).
pub const MAX_KEY_BYTES: usize = 16 * 1024;

/// Entries are keyed by the body's (keyed, random-seeded) hash, computed once per request and
/// used both to pick the shard and as the map key; the body itself is kept and compared, so a
/// hash collision is a miss, never a wrong answer.
#[derive(Debug, Default)]
struct Shard {
    generation: u64,
    entries: HashMap<u64, (Bytes, CachedAnswer), BuildHasherDefault<PrehashedKey>>,
}

/// The keys are already hashes; hashing them again would only cost time.
#[derive(Debug, Default)]
struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Sharded so concurrent requests rarely contend on one lock.
#[derive(Debug)]
pub struct DecisionCache {
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

impl Default for DecisionCache {
    fn default() -> Self {
        DecisionCache { hasher: RandomState::new(), shards: (0..SHARDS).map(|_| Mutex::default()).collect() }
    }
}

impl DecisionCache {
    fn shard(&self, body: &[u8]) -> Option<(u64, &Mutex<Shard>)> {
        let hash = self.hasher.hash_one(body);
        self.shards.get((hash as usize) % SHARDS).map(|s| (hash, s))
    }

    /// The answer for `body` under policy `generation`, if known.
    pub fn get(&self, generation: u64, body: &Bytes) -> Option<CachedAnswer> {
        let (hash, shard) = self.shard(body)?;
        let shard = shard.lock().ok()?;
        if shard.generation != generation {
            return None;
        }
        shard.entries.get(&hash).filter(|(key, _)| key == body).map(|(_, answer)| answer.clone())
    }

    /// Remember an answer; entries of older generations are dropped.
    pub fn put(&self, generation: u64, body: Bytes, answer: CachedAnswer) {
        if body.len() > MAX_KEY_BYTES {
            return;
        }
        let Some((hash, shard)) = self.shard(&body) else { return };
        let Ok(mut shard) = shard.lock() else { return };
        if shard.generation != generation || shard.entries.len() >= SHARD_CAPACITY {
            shard.entries.clear();
            shard.generation = generation;
        }
        shard.entries.insert(hash, (body, answer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(d: &'static str) -> CachedAnswer {
        CachedAnswer {
            response: Bytes::from_static(d.as_bytes()),
            counter: Default::default(),
            audit: Default::default(),
        }
    }

    #[test]
    fn hits_only_within_a_generation() {
        let cache = DecisionCache::default();
        let body = Bytes::from_static(b"{\"spec\":1}");
        cache.put(1, body.clone(), answer("allow"));
        assert_eq!(cache.get(1, &body).unwrap().response, "allow");
        assert!(cache.get(2, &body).is_none());
        assert!(cache.get(1, &Bytes::from_static(b"{\"spec\":2}")).is_none());
        cache.put(2, body.clone(), answer("deny"));
        assert!(cache.get(1, &body).is_none());
        assert_eq!(cache.get(2, &body).unwrap().response, "deny");
    }

    #[test]
    fn oversized_bodies_are_not_kept() {
        let cache = DecisionCache::default();
        let body = Bytes::from(vec![b'x'; MAX_KEY_BYTES + 1]);
        cache.put(0, body.clone(), answer("allow"));
        assert!(cache.get(0, &body).is_none());
    }
}
