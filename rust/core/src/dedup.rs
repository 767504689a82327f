//! The bounded, expiring "seen" cache: has this key (a message id) been seen
//! before, within its time to live?
//!
//! Time is passed in by the caller, in seconds as `f64` (a monotonic clock, or
//! wall-clock milliseconds / 1000: any clock works as long as one cache always
//! gets the same one), so tests control it completely.
//!
//! An entry is live while `now <= expires`. Memory is bounded: the cache never
//! holds more than `capacity` entries. When a new key arrives at capacity, the
//! expired entries go first; if none has expired, the entry closest to its
//! expiry goes (of equal expiries, the oldest insertion).
//!
//! A `HashMap` (SipHash with a random key, so an attacker choosing message ids
//! cannot force collisions) holds the entries; a min-heap on expiry finds the
//! next to expire. Every operation is O(log n) amortized, and expired entries
//! are dropped as time passes, on inserts, so `len()` stays near the live
//! count.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

#[derive(Clone, Copy)]
struct Slot {
    expires: f64,
    generation: u64,
}

/// One heap item; stale once its key was removed or re-inserted (its
/// `generation` no longer matches the map's).
struct Due {
    expires: f64,
    generation: u64,
    key: Box<[u8]>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        self.expires.total_cmp(&other.expires).then(self.generation.cmp(&other.generation))
    }
}

pub struct SeenCache {
    capacity: usize,
    default_ttl: f64,
    map: HashMap<Box<[u8]>, Slot>,
    due: BinaryHeap<Reverse<Due>>,
    generation: u64,
}

/// A time or duration that is a number: NaN becomes 0.
fn sane(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x
    }
}

impl SeenCache {
    /// A cache of at most `capacity` entries (a capacity of 0 is taken as 1),
    /// each living `default_ttl` seconds unless told otherwise. Negative or NaN
    /// ttls count as 0; an infinite ttl never expires (but can be evicted).
    pub fn new(capacity: usize, default_ttl: f64) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            default_ttl: sane(default_ttl).max(0.0),
            map: HashMap::with_capacity(capacity.min(1 << 16)),
            due: BinaryHeap::with_capacity(capacity.min(1 << 16)),
            generation: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn default_ttl(&self) -> f64 {
        self.default_ttl
    }

    /// Entries held, including expired ones not yet dropped.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.due.clear();
    }

    /// Whether `key` is held and live at `now`, without changing anything.
    pub fn contains(&self, key: impl AsRef<[u8]>, now: f64) -> bool {
        self.map.get(key.as_ref()).is_some_and(|slot| sane(now) <= slot.expires)
    }

    /// `true` if `key` was not seen (or its entry expired): it is now recorded
    /// for `ttl` seconds (the default when `None`). `false` if it was seen and
    /// is still live; the entry is left as it was.
    pub fn check_and_insert(&mut self, key: impl AsRef<[u8]>, ttl: Option<f64>, now: f64) -> bool {
        let now = sane(now);
        let ttl = ttl.map_or(self.default_ttl, |t| sane(t).max(0.0));
        self.check_and_insert_until(key, now + ttl, now)
    }

    /// As [`check_and_insert`](Self::check_and_insert), with the entry's expiry
    /// given as a time rather than a duration.
    pub fn check_and_insert_until(&mut self, key: impl AsRef<[u8]>, expires: f64, now: f64) -> bool {
        let key = key.as_ref();
        let now = sane(now);
        if let Some(slot) = self.map.get(key) {
            if now <= slot.expires {
                return false;
            }
        }
        self.purge(now);
        if !self.map.contains_key(key) {
            while self.map.len() >= self.capacity {
                if !self.evict_one() {
                    break;
                }
            }
        }
        self.generation += 1;
        let slot = Slot { expires: sane(expires), generation: self.generation };
        let key: Box<[u8]> = key.into();
        self.due.push(Reverse(Due { expires: slot.expires, generation: slot.generation, key: key.clone() }));
        self.map.insert(key, slot);
        self.compact();
        true
    }

    /// Drop every entry expired at `now`.
    pub fn purge(&mut self, now: f64) {
        let now = sane(now);
        while let Some(Reverse(top)) = self.due.peek() {
            if top.expires >= now {
                break;
            }
            if let Some(Reverse(item)) = self.due.pop() {
                self.remove_if_current(&item);
            }
        }
    }

    /// Remove the entry that expires first; `false` if there was none.
    fn evict_one(&mut self) -> bool {
        while let Some(Reverse(item)) = self.due.pop() {
            if self.remove_if_current(&item) {
                return true;
            }
        }
        false
    }

    fn remove_if_current(&mut self, item: &Due) -> bool {
        match self.map.get(&item.key) {
            Some(slot) if slot.generation == item.generation => {
                self.map.remove(&item.key);
                true
            }
            _ => false,
        }
    }

    /// Stale heap items can only pile up when keys are re-inserted before their
    /// old items were popped; rebuild the heap if they ever outnumber the live.
    fn compact(&mut self) {
        if self.due.len() > 2 * self.map.len() + 64 {
            self.due = self
                .map
                .iter()
                .map(|(key, slot)| {
                    Reverse(Due { expires: slot.expires, generation: slot.generation, key: key.clone() })
                })
                .collect();
        }
    }

    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.due.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_key_is_new_the_first_time_and_seen_the_second() {
        let mut cache = SeenCache::new(10, 60.0);
        assert!(cache.check_and_insert("a", None, 0.0));
        assert!(!cache.check_and_insert("a", None, 1.0));
        assert!(!cache.check_and_insert(b"a", None, 60.0));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn str_and_bytes_keys_with_the_same_bytes_are_the_same_key() {
        let mut cache = SeenCache::new(10, 60.0);
        assert!(cache.check_and_insert("abc", None, 0.0));
        assert!(!cache.check_and_insert(b"abc", None, 0.0));
    }

    #[test]
    fn an_entry_is_live_up_to_and_including_its_expiry_and_new_after_it() {
        let mut cache = SeenCache::new(10, 60.0);
        assert!(cache.check_and_insert("a", Some(5.0), 100.0));
        assert!(!cache.check_and_insert("a", None, 105.0));
        assert!(cache.check_and_insert("a", None, 105.001));
        // Re-inserted with the default ttl from then on.
        assert!(!cache.check_and_insert("a", None, 165.0));
    }

    #[test]
    fn a_seen_check_does_not_extend_the_entry() {
        let mut cache = SeenCache::new(10, 10.0);
        assert!(cache.check_and_insert("a", None, 0.0));
        assert!(!cache.check_and_insert("a", Some(1000.0), 5.0));
        assert!(cache.check_and_insert("a", None, 10.5));
    }

    #[test]
    fn at_capacity_expired_entries_go_first() {
        let mut cache = SeenCache::new(3, 100.0);
        assert!(cache.check_and_insert("short", Some(1.0), 0.0));
        assert!(cache.check_and_insert("long-1", None, 0.0));
        assert!(cache.check_and_insert("long-2", None, 0.0));
        assert!(cache.check_and_insert("new", None, 2.0));
        assert_eq!(cache.len(), 3);
        assert!(!cache.check_and_insert("long-1", None, 2.0));
        assert!(!cache.check_and_insert("long-2", None, 2.0));
        assert!(!cache.check_and_insert("new", None, 2.0));
    }

    #[test]
    fn at_capacity_with_nothing_expired_the_entry_closest_to_expiry_goes() {
        let mut cache = SeenCache::new(3, 100.0);
        assert!(cache.check_and_insert("a", Some(50.0), 0.0));
        assert!(cache.check_and_insert("b", Some(10.0), 0.0));
        assert!(cache.check_and_insert("c", Some(30.0), 0.0));
        assert!(cache.check_and_insert("d", Some(40.0), 1.0));
        assert_eq!(cache.len(), 3);
        assert!(cache.contains("a", 1.0) && cache.contains("c", 1.0) && cache.contains("d", 1.0));
        assert!(!cache.contains("b", 1.0));
    }

    #[test]
    fn of_equal_expiries_the_oldest_insertion_goes() {
        let mut cache = SeenCache::new(2, 10.0);
        assert!(cache.check_and_insert("first", None, 0.0));
        assert!(cache.check_and_insert("second", None, 0.0));
        assert!(cache.check_and_insert("third", None, 0.0));
        assert!(!cache.contains("first", 0.0));
        assert!(cache.contains("second", 0.0) && cache.contains("third", 0.0));
    }

    #[test]
    fn expired_entries_are_dropped_as_time_passes() {
        let mut cache = SeenCache::new(1000, 1.0);
        for i in 0..100 {
            cache.check_and_insert(format!("k{i}"), None, 0.0);
        }
        assert_eq!(cache.len(), 100);
        cache.check_and_insert("later", None, 5.0);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn clear_forgets_everything() {
        let mut cache = SeenCache::new(10, 60.0);
        cache.check_and_insert("a", None, 0.0);
        cache.clear();
        assert!(cache.is_empty());
        assert!(cache.check_and_insert("a", None, 0.0));
    }

    #[test]
    fn nan_and_negative_times_do_not_panic_or_break_the_bound() {
        let mut cache = SeenCache::new(2, f64::NAN);
        assert_eq!(cache.default_ttl(), 0.0);
        cache.check_and_insert("a", Some(f64::NAN), f64::NAN);
        cache.check_and_insert("b", Some(-5.0), -1.0);
        cache.check_and_insert("c", Some(f64::INFINITY), f64::NEG_INFINITY);
        cache.check_and_insert("d", None, f64::INFINITY);
        assert!(cache.len() <= 2);
    }

    #[test]
    fn a_capacity_of_zero_holds_one() {
        let mut cache = SeenCache::new(0, 60.0);
        assert_eq!(cache.capacity(), 1);
        assert!(cache.check_and_insert("a", None, 0.0));
        assert!(!cache.check_and_insert("a", None, 0.0));
        assert!(cache.check_and_insert("b", None, 0.0));
        assert_eq!(cache.len(), 1);
    }

    /// A model with the same rules, written plainly (linear scans).
    struct Model {
        capacity: usize,
        entries: Vec<(Vec<u8>, f64, u64)>,
        generation: u64,
    }

    impl Model {
        fn check_and_insert(&mut self, key: &[u8], ttl: f64, now: f64) -> bool {
            if let Some(e) = self.entries.iter().find(|e| e.0 == key) {
                if now <= e.1 {
                    return false;
                }
            }
            self.entries.retain(|e| e.1 >= now);
            self.entries.retain(|e| e.0 != key);
            if self.entries.len() >= self.capacity {
                let victim = (0..self.entries.len())
                    .min_by(|&a, &b| {
                        let (x, y) = (&self.entries[a], &self.entries[b]);
                        x.1.total_cmp(&y.1).then(x.2.cmp(&y.2))
                    })
                    .unwrap();
                self.entries.remove(victim);
            }
            self.generation += 1;
            self.entries.push((key.to_vec(), now + ttl, self.generation));
            true
        }
    }

    proptest! {
        #[test]
        fn the_bound_is_never_exceeded_and_answers_match_a_plain_model(
            capacity in 1usize..12,
            ops in proptest::collection::vec((0u8..20, 0u32..30, 0u32..4), 1..300),
        ) {
            let mut cache = SeenCache::new(capacity, 10.0);
            let mut model = Model { capacity, entries: Vec::new(), generation: 0 };
            let mut now = 0.0;
            for (key, ttl, step) in ops {
                now += f64::from(step);
                let key = [key];
                let ttl = f64::from(ttl);
                prop_assert_eq!(cache.check_and_insert(key, Some(ttl), now), model.check_and_insert(&key, ttl, now));
                prop_assert!(cache.len() <= capacity);
                prop_assert!(cache.heap_len() <= 2 * capacity + 65);
            }
        }
    }
}
