//! Which `(auditID, stage)` pairs were already analysed: CloudWatch and webhook backends may
//! deliver an event twice, and overlapping files repeat them.
//!
//! Memory is bounded by generations: a key is remembered for at least one generation of new
//! keys and at most two, then forgotten. Each key is one `u64` slot (the key's hash with the
//! generation in its low byte), so a million remembered events take about 18 MB of table
//! (reserved at the first event) and every lookup is a single probe — this runs once per event
//! on the hot path.

use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::HashTable;

/// New keys per generation.
#[cfg(not(test))]
pub const GENERATION: usize = 1 << 20;
/// Small in tests, to see generations turn over.
#[cfg(test)]
pub const GENERATION: usize = 4;

/// The remembered keys.
#[derive(Debug, Default)]
pub struct SeenSet {
    slots: HashTable<u64>,
    generation: u8,
    in_generation: usize,
    /// Seeded per run (auditIDs are client-influenced; a fixed hash would invite collisions).
    hasher: foldhash::fast::RandomState,
}

/// The key part of a slot (everything but the generation byte).
fn key_of(slot: u64) -> u64 {
    slot >> 8
}

/// Where the table files a slot: the key bits, mixed so that both the bucket (low bits) and
/// the control byte (high bits) vary.
fn table_hash(slot: u64) -> u64 {
    key_of(slot).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A remembered `(auditID, stage)`: its hash, as [`SeenSet::key`] computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(u64);

impl SeenSet {
    /// The key of `(audit_id, stage)`.
    pub fn key(&self, audit_id: &str, stage: Option<&str>) -> Key {
        let mut h = self.hasher.build_hasher();
        audit_id.hash(&mut h);
        stage.hash(&mut h);
        Key(h.finish() << 8)
    }

    /// Whether `key` is remembered. Used on a batch of keys before [`SeenSet::check_and_insert`]
    /// on each: the lookups are independent, so done together their memory reads overlap (on a
    /// large input the table is far bigger than the cache), and the inserts then find their
    /// slots cached.
    pub fn contains(&self, key: Key) -> bool {
        self.slots.find(table_hash(key.0), |s| key_of(*s) == key_of(key.0)).is_some()
    }

    /// Records `key`; true if it was already there.
    pub fn check_and_insert(&mut self, key: Key) -> bool {
        if self.contains(key) {
            // Left in its generation: a repeat does not extend how long the key is kept.
            return true;
        }
        if self.slots.capacity() == 0 {
            // Room for a generation at once: growing a table of millions of slots step by step
            // moves every slot again at each step and faults in fresh memory each time.
            self.slots.reserve(GENERATION, |s| table_hash(*s));
        }
        let slot = key.0 | u64::from(self.generation);
        self.slots.insert_unique(table_hash(slot), slot, |s| table_hash(*s));
        self.in_generation += 1;
        if self.in_generation >= GENERATION {
            self.generation = self.generation.wrapping_add(1);
            self.in_generation = 0;
            let previous = self.generation.wrapping_sub(1);
            // Only the generation just finished survives (the new one is empty).
            self.slots.retain(|s| (*s as u8) == previous);
        }
        false
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_at_least_a_generation_and_at_most_two() {
        let mut seen = SeenSet::default();
        let id = |n: usize| format!("id-{n}");
        let check = |seen: &mut SeenSet, id: &str, stage: Option<&str>| {
            let key = seen.key(id, stage);
            let known = seen.contains(key);
            let repeat = seen.check_and_insert(key);
            assert_eq!(known, repeat);
            repeat
        };
        assert!(!check(&mut seen, &id(0), Some("ResponseComplete")));
        assert!(check(&mut seen, &id(0), Some("ResponseComplete")));
        assert!(!check(&mut seen, &id(0), Some("ResponseStarted")), "another stage is another event");
        assert!(!check(&mut seen, &id(0), None));
        for n in 1..10 * GENERATION {
            assert!(!check(&mut seen, &id(n), Some("ResponseComplete")), "{n}");
            assert!(seen.len() <= 2 * GENERATION, "{}", seen.len());
            if n >= GENERATION {
                let recent = n + 1 - GENERATION;
                assert!(check(&mut seen, &id(recent), Some("ResponseComplete")), "{recent} at {n}");
            }
        }
        // Long forgotten: seen as new rather than remembered for ever.
        assert!(!check(&mut seen, &id(1), Some("ResponseComplete")));
        // Past 256 generations the generation byte wraps; nothing old comes back.
        for n in 0..300 * GENERATION {
            check(&mut seen, &format!("w-{n}"), None);
        }
        assert!(seen.len() <= 2 * GENERATION);
        assert!(!check(&mut seen, "w-0", None));
    }
}
