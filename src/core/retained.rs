//! Facts remembered for a retention window of clock time: seen event ids and alert ids
//! already emitted ([`RetainedSet`]), order totals and latest closing times
//! ([`Retained`]).
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

use std::collections::VecDeque;
use std::hash::{BuildHasherDefault, Hasher};

use hashbrown::{HashMap, HashTable};

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
        Retained {
            map: HashMap::default(),
            next_sweep: None,
        }
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
        let due = self
            .next_sweep
            .get_or_insert(clock.plus(Span(retention.0 / 8)));
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

/// A set of fingerprints stamped with a clock that never goes back, each forgotten once
/// older than the retention window: seen event ids and emitted alert ids.
///
/// Stamps arrive in order, so entries expire in insertion order: the fingerprints sit in
/// a queue, oldest first, cut into batches of an eighth of the window (one stamp per
/// batch, its latest), and the index holds 32-bit sequence numbers into the queue instead
/// of the fingerprints. That is about 19 bytes per entry (8 in the queue, 4 to 8 plus
/// control bytes in the index) where a map of fingerprint to stamp takes 36, and
/// forgetting costs only the entries forgotten, never a pass over the whole set.
#[derive(Clone, Debug, Default)]
pub struct RetainedSet {
    /// Sequence numbers (mod 2^32) of the entries, hashed by their fingerprint.
    index: HashTable<u32>,
    /// Fingerprints in stamp order; `queue[0]` has sequence number `first`.
    queue: VecDeque<u64>,
    first: u32,
    /// (first stamp, latest stamp, entries) of consecutive runs of `queue`, oldest first.
    batches: VecDeque<(Millis, Millis, usize)>,
}

impl RetainedSet {
    pub fn contains(&self, key: u64) -> bool {
        let (queue, first) = (&self.queue, self.first);
        self.index
            .find(key, |&seq| queue[seq.wrapping_sub(first) as usize] == key)
            .is_some()
    }

    /// Adds a fingerprint stamped `now` (at or after every earlier stamp; an earlier one
    /// is taken as the latest so far) unless it is already in the set. True if it was
    /// added. One probe of the index either way.
    pub fn insert(&mut self, key: u64, now: Millis, retention: Span) -> bool {
        let (queue, first) = (&self.queue, self.first);
        let entry = self.index.entry(
            key,
            |&seq| queue[seq.wrapping_sub(first) as usize] == key,
            |&seq| queue[seq.wrapping_sub(first) as usize],
        );
        let hashbrown::hash_table::Entry::Vacant(vacant) = entry else {
            return false;
        };
        vacant.insert(first.wrapping_add(self.queue.len() as u32));
        self.queue.push_back(key);
        match self.batches.back_mut() {
            Some((start, last, count)) if now < start.plus(Span(retention.0 / 8)) => {
                *last = (*last).max(now);
                *count += 1;
            }
            _ => {
                let now = self
                    .batches
                    .back()
                    .map_or(now, |&(_, last, _)| last.max(now));
                self.batches.push_back((now, now, 1));
            }
        }
        true
    }

    /// Forgets the batches whose latest stamp is older than `retention` at `clock`.
    pub fn sweep(&mut self, clock: Millis, retention: Span) {
        let horizon = clock.minus(retention);
        while let Some(&(_, last, count)) = self.batches.front() {
            if last >= horizon {
                break;
            }
            self.batches.pop_front();
            for _ in 0..count {
                let key = self
                    .queue
                    .pop_front()
                    .expect("batches count queued entries");
                let first = self.first;
                let entry = self
                    .index
                    .find_entry(key, |&seq| seq == first)
                    .expect("a queued entry is indexed");
                entry.remove();
                self.first = first.wrapping_add(1);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn heap_bytes(&self) -> usize {
        // hashbrown keeps a quarter of its buckets or more free: buckets = capacity * 8 / 7.
        self.index.capacity() * 8 / 7 * (std::mem::size_of::<u32>() + 1)
            + self.queue.capacity() * std::mem::size_of::<u64>()
            + self.batches.capacity() * std::mem::size_of::<(Millis, Millis, usize)>()
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

    #[test]
    fn a_set_entry_is_kept_for_the_whole_window_and_then_forgotten() {
        let window = Span(1_000);
        let mut set = RetainedSet::default();
        for (key, at) in [(1, 0), (2, 50), (3, 150), (4, 900)] {
            set.insert(key, Millis(at), window);
            set.sweep(Millis(at), window);
        }
        assert!(
            [1, 2, 3, 4].iter().all(|&k| set.contains(k)),
            "all inside the window at 900"
        );
        set.sweep(Millis(1_051), window);
        assert!(
            !set.contains(1) && !set.contains(2),
            "the first batch (stamps 0 and 50) is older than the window"
        );
        assert!(set.contains(3) && set.contains(4));
        set.sweep(Millis(100_000), window);
        assert!(set.is_empty() && !set.contains(3) && !set.contains(4));
    }

    #[test]
    fn a_set_keeps_its_sequence_numbers_straight_across_many_windows() {
        let window = Span(1_000);
        let mut set = RetainedSet::default();
        for t in 0..20_000u64 {
            set.insert(fingerprint(&[&t.to_string()]), Millis(t as i64), window);
            set.sweep(Millis(t as i64), window);
            let old = t.saturating_sub(999);
            assert!(
                set.contains(fingerprint(&[&old.to_string()])),
                "{old} is inside the window at {t}"
            );
        }
        assert!(set.len() <= 1_000 + 1_000 / 8 + 1, "{} entries", set.len());
        assert!(!set.contains(fingerprint(&["0"])));
    }
}
