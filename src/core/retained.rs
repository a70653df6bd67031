//! Facts remembered for a retention window of clock time: seen event ids, alert ids
//! already emitted, order totals.
//!
//! # Ground rules
//!
//! * Keys are 64-bit fingerprints ([`fingerprint`]), stable across processes and
//!   releases (chained XXH3), so a snapshot taken by one build can be restored by
//!   another. Two different strings share a fingerprint with probability about 2^-64 per
//!   pair; with ten million live entries that is about one in 370,000 over the whole set.
//! * An entry stamped at clock `c` is kept at least while `c + retention >= clock`.
//!   Forgetting is batched: a sweep runs each time the clock has moved an eighth of the
//!   window, so an entry lives between one window and one and an eighth.

use std::hash::{BuildHasherDefault, Hasher};

use hashbrown::HashMap;

use super::time::{Millis, Span};

/// A 64-bit fingerprint of text parts: each part is hashed with XXH3 seeded by the hash
/// of the parts before it (and its length), so `("ab", "c")` and `("a", "bc")` differ.
/// One-shot hashing: no streaming state to set up per call.
pub fn fingerprint(parts: &[&str]) -> u64 {
    parts.iter().fold(0x5157_4154_494d_4552, |seed, part| {
        xxhash_rust::xxh3::xxh3_64_with_seed(part.as_bytes(), seed ^ part.len() as u64)
    })
}

/// Passes a fingerprint through as its own hash: it is already uniformly distributed.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A fingerprint-keyed map whose entries expire a retention window after their stamp.
#[derive(Clone, Debug)]
pub struct Retained<V> {
    map: HashMap<u64, (V, Millis), BuildHasherDefault<PassThrough>>,
    next_sweep: Option<Millis>,
}

impl<V> Default for Retained<V> {
    fn default() -> Self {
        Retained { map: HashMap::default(), next_sweep: None }
    }
}

impl<V> Retained<V> {
    pub fn get(&self, key: u64) -> Option<&V> {
        self.map.get(&key).map(|(v, _)| v)
    }

    pub fn contains(&self, key: u64) -> bool {
        self.map.contains_key(&key)
    }

    /// Inserts or replaces, stamped `now`.
    pub fn insert(&mut self, key: u64, value: V, now: Millis) {
        self.map.insert(key, (value, now));
    }

    pub fn remove(&mut self, key: u64) {
        self.map.remove(&key);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Forgets entries older than `retention` at `clock`, at most once per eighth of it.
    pub fn sweep(&mut self, clock: Millis, retention: Span) {
        let due = self.next_sweep.get_or_insert(clock.plus(Span(retention.0 / 8)));
        if clock < *due {
            return;
        }
        *due = clock.plus(Span(retention.0 / 8));
        let horizon = clock.minus(retention);
        self.map.retain(|_, (_, stamp)| *stamp >= horizon);
    }

    pub fn heap_bytes(&self) -> usize {
        self.map.capacity() * (std::mem::size_of::<(u64, (V, Millis))>() + 1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &V, Millis)> {
        self.map.iter().map(|(k, (v, t))| (*k, v, *t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_separate_their_parts() {
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
        assert_eq!(fingerprint(&["a", "b"]), fingerprint(&["a", "b"]));
    }

    #[test]
    fn an_entry_is_kept_for_the_whole_window_and_then_forgotten() {
        let window = Span(800);
        let mut r = Retained::default();
        r.insert(1, (), Millis(0));
        r.sweep(Millis(0), window);
        r.sweep(Millis(800), window);
        assert!(r.contains(1), "still inside the window");
        r.sweep(Millis(1000), window);
        assert!(!r.contains(1), "older than the window after a sweep");
    }
}
