//! A hierarchical timer wheel: a partition's pending deadlines, ordered by time.
//!
//! # Ground rules
//!
//! * **Time is handed in.** The wheel never reads a clock. Instants are `i64` milliseconds
//!   since the Unix epoch (the raw value of `time::Millis`), any value from `i64::MIN` to
//!   `i64::MAX`, at 1 ms resolution: nothing is rounded.
//! * **What is due.** [`TimerWheel::pop_before`]`(now)` hands out the pending timer with
//!   the smallest `when`, provided `when < now` (strictly before: the "fire every point
//!   strictly before `t`" rule of `time.rs`). Repeated calls drain the due timers in
//!   nondecreasing `when` order; equal `when`s come out in an unspecified but
//!   deterministic order. A timer at `i64::MAX` is never due.
//! * **The past is allowed.** A `when` before the wheel's time is accepted, is due at once
//!   and still comes out in `when` order relative to every other timer.
//! * **Keys.** A [`TimerKey`] is an index into the node arena, valid from `insert` until
//!   the timer is popped or cancelled. Then the node is reused, so a stale key names some
//!   other timer or none: callers must forget a key once its timer has fired. Cancelling
//!   a key that is not pending panics with the wheel's state.
//! * **Costs.** `insert` and `cancel` are O(1) (O(log p) amortised for one of the p timers
//!   in the past heap, below). `pop_before` is O(1) amortised plus cascades: a timer moves
//!   down at most `LEVELS - 1` times in its life (about 4 times for a deadline 48 h
//!   ahead). `next_deadline` is O(`LEVELS`), except that when the earliest timer sits above
//!   level 0 the first call scans its slot and caches the result (in a `Cell`, so the
//!   wheel is `Send` but not `Sync`) until that timer is popped or cancelled.
//! * **Memory.** One 20-byte node per timer with `T = u32`, in 64K-node chunks that are
//!   never copied or doubled, plus 45 KiB of list heads. Freed nodes are reused through a
//!   free list; memory goes back to the allocator only when the wheel is dropped.
//!
//! # How it works
//!
//! * **Time.** Instants map to `u64` by flipping the sign bit, which keeps their order and
//!   covers the whole range. `elapsed` is the wheel's time: it starts at the first instant
//!   the wheel sees (first `insert` or `pop_before`), only moves forward, and never passes
//!   the largest `now` handed to `pop_before` (or that first insert). So hand the wheel the
//!   clock before inserting (the engine's `advance` does), and no far-future `now`:
//!   timers inserted before `elapsed` take the slower path of the past heap.
//! * **Levels.** Level `l` has 64 slots of `64^l` ms. A timer goes to the level of the
//!   highest bit in which its `when` differs from `elapsed`, at slot `(when >> 6l) & 63`.
//!   Invariant (checked by `check_invariants` in the tests): on level 0 a timer has
//!   `when >= elapsed` in the same 64 ms block; on a level `l > 0` it lies in a later
//!   level-`l` slot than `elapsed`, within the same `64^(l+1)` ms block. So every timer on
//!   a lower level is due before any on a higher one, and lower slots before higher ones:
//!   the next slot is the `trailing_zeros` of the lowest non-empty level's occupancy mask.
//!   When time reaches the start of a slot above level 0, its timers are cascaded down
//!   relative to that start. All the timers of a level-0 slot share one `when`.
//! * **Lists.** A slot is `LANES` circular doubly-linked lists (`u32` links, a sentinel
//!   head each); a node's lane is its key modulo `LANES`. Unlinking needs no slot lookup,
//!   and a slot's bit is cleared when its last lane empties. The lanes serve the cascade:
//!   walking one list is a chain of dependent cache misses, walking 8 side by side keeps 8
//!   in flight (firing got 2 to 4 times faster at 1M to 10M timers).
//! * **The past.** Timers inserted before `elapsed` go to a binary heap of (`when`, key).
//!   They are all earlier than every timer on the levels, so its top, if any, is the
//!   earliest timer. They are rare in the engine (a deadline already passed when its
//!   event arrives), so O(log p) is good enough. A cancelled entry stays as a tombstone
//!   until it reaches the top, where it is dropped at once: the top is always live.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;

use super::arena::Arena;

/// Bits of `when` one level resolves: 64 slots, one `u64` occupancy mask per level.
const SLOT_BITS: u32 = 6;
/// Slots per level, `2^SLOT_BITS`.
const SLOTS: usize = 1 << SLOT_BITS;
/// `LEVELS = 11` because `11 * 6 = 66 >= 64`: level 10 covers bits 60..63 (only 16 of its
/// slots are reachable), so every `u64` fits and no overflow list is needed.
const LEVELS: usize = 11;

/// Lists per slot. A node's lane is its key modulo `LANES`; a cascade walks the lanes of
/// a slot side by side, so `LANES` independent memory loads are in flight instead of one
/// chain of dependent ones (each a cache and TLB miss once the arena outgrows the cache).
const LANES: usize = 8;
/// Link values from here up name list heads (`HEAD_BASE + (level * 64 + slot) * LANES +
/// lane`), below it arena nodes; the arena may therefore hold up to `HEAD_BASE` (~4.29e9)
/// nodes. `LEVELS * SLOTS * LANES = 5632` heads fit below the state markers.
const HEAD_BASE: u32 = u32::MAX - 0x3FFF;
/// `prev` of a pending node held by the past heap.
const PAST: u32 = u32::MAX;
/// `prev` of a cancelled node still in the past heap (a tombstone).
const DEAD: u32 = u32::MAX - 1;
/// `prev` of a node on the free list.
const FREE: u32 = u32::MAX - 2;
/// End of the free list.
const NIL: u32 = u32::MAX;

/// Handle of a pending timer: an index into the node arena. Valid until the timer fires
/// or is cancelled; after that the index is reused, so the caller must not use it again.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct TimerKey(u32);

impl TimerKey {
    /// The raw index, for callers that store keys in a `u32` field.
    pub fn to_raw(self) -> u32 {
        self.0
    }

    /// Rebuilds a key from [`TimerKey::to_raw`]; only meaningful for a pending timer.
    pub fn from_raw(raw: u32) -> TimerKey {
        TimerKey(raw)
    }
}

/// One timer: 20 bytes with `T = u32`, because `when` is split into two `u32` halves and
/// the node keeps an alignment of 4.
#[derive(Clone, Copy)]
struct Node<T> {
    /// High and low halves of the mapped `when` (ms, sign bit flipped).
    when_hi: u32,
    when_lo: u32,
    links: Links,
    value: T,
}

/// A node's place in its lane's circular list, or a list head (the sentinel).
#[derive(Clone, Copy, Debug)]
struct Links {
    /// Previous node or head; for a node outside the lists, `PAST`, `DEAD` or `FREE`.
    prev: u32,
    /// Next node or head; on the free list, the next free node or `NIL`.
    next: u32,
}

impl<T> Node<T> {
    fn when(&self) -> u64 {
        (u64::from(self.when_hi) << 32) | u64::from(self.when_lo)
    }
}

/// Pending timers carrying a `T`, keyed by [`TimerKey`]; see the module doc.
pub struct TimerWheel<T: Copy> {
    /// The nodes, in chunks that are never reallocated.
    arena: Arena<Node<T>>,
    /// First node of the free list, or `NIL`.
    free: u32,
    /// `LEVELS * SLOTS * LANES` list heads; the head of an empty list links to itself.
    heads: Box<[Links]>,
    /// Bit `s` of `occupied[l]` is set exactly when slot `s` of level `l` is non-empty.
    occupied: [u64; LEVELS],
    /// The wheel's time (mapped ms): no timer on the levels is earlier. Moves forward only.
    elapsed: u64,
    /// Whether `elapsed` has been set by a first `insert` or `pop_before`.
    started: bool,
    /// Timers inserted earlier than `elapsed`, as (mapped `when`, key); top always live.
    past: BinaryHeap<Reverse<(u64, u32)>>,
    /// Pending timers, on the levels and in `past` (tombstones excluded).
    len: usize,
    /// Exact smallest mapped `when` on the levels, if known; see `next_deadline`.
    level_min: Cell<Option<u64>>,
}

/// Order-preserving map from `i64` to `u64`: flip the sign bit.
fn to_wheel(when: i64) -> u64 {
    (when as u64) ^ (1 << 63)
}

fn from_wheel(when: u64) -> i64 {
    (when ^ (1 << 63)) as i64
}

/// The level of a `when` seen from `elapsed`: that of the highest differing bit (level 0
/// when they agree above the lowest 6 bits).
fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = (elapsed ^ when) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros();
    (significant / SLOT_BITS) as usize
}

fn slot_for(when: u64, level: usize) -> usize {
    ((when >> (SLOT_BITS * level as u32)) & (SLOTS as u64 - 1)) as usize
}

fn head_of(level: usize, slot: usize, lane: usize) -> u32 {
    HEAD_BASE + ((level * SLOTS + slot) * LANES + lane) as u32
}

impl<T: Copy> Default for TimerWheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy> TimerWheel<T> {
    pub fn new() -> Self {
        let empty = |head: u32| Links {
            prev: head,
            next: head,
        };
        let heads = (0..(LEVELS * SLOTS * LANES) as u32).map(|i| empty(HEAD_BASE + i));
        TimerWheel {
            arena: Arena::default(),
            free: NIL,
            heads: heads.collect(),
            occupied: [0; LEVELS],
            elapsed: 0,
            started: false,
            past: BinaryHeap::new(),
            len: 0,
            level_min: Cell::new(None),
        }
    }

    /// Adds a timer due at `when` (ms since the epoch, any `i64`). A `when` earlier than
    /// the wheel's time is allowed and is due at once.
    pub fn insert(&mut self, when: i64, value: T) -> TimerKey {
        let when = to_wheel(when);
        if !self.started {
            self.elapsed = when;
            self.started = true;
        }
        let key = self.alloc(when, value);
        if when < self.elapsed {
            self.node_mut(key).links.prev = PAST;
            self.past.push(Reverse((when, key)));
        } else {
            self.note_level_insert(when);
            self.link(key);
        }
        self.len += 1;
        TimerKey(key)
    }

    /// Removes a pending timer, returning its value. O(1). Panics, printing the wheel's
    /// state, if `key` is not pending.
    pub fn cancel(&mut self, key: TimerKey) -> T {
        let k = key.0;
        assert!(
            self.is_pending(k),
            "cancel of {key:?}, not pending (fired, cancelled or never issued); {self:?}"
        );
        let node = *self.node(k);
        if node.links.prev == PAST {
            self.node_mut(k).links.prev = DEAD;
            self.drop_dead_past();
        } else {
            self.unlink(k);
            self.forget_level_min(node.when());
            self.release(k);
        }
        self.len -= 1;
        node.value
    }

    /// The earliest pending `when`, if any, so a live shell can sleep until exactly then.
    pub fn next_deadline(&self) -> Option<i64> {
        if let Some(&Reverse((when, _))) = self.past.peek() {
            return Some(from_wheel(when));
        }
        let (level, slot) = self.frontier()?;
        if level == 0 {
            return Some(from_wheel(self.slot_start(0, slot)));
        }
        let min = self
            .level_min
            .get()
            .unwrap_or_else(|| self.scan_min(level, slot));
        self.level_min.set(Some(min));
        Some(from_wheel(min))
    }

    /// Removes and returns the pending timer with the smallest `when` if that `when` is
    /// before `now`; else `None`, having moved the wheel's time up to `now`.
    pub fn pop_before(&mut self, now: i64) -> Option<(i64, T)> {
        let now = to_wheel(now);
        if !self.past.is_empty() {
            return self.pop_past(now);
        }
        while let Some((level, slot)) = self.frontier() {
            let start = self.slot_start(level, slot);
            if level == 0 && start < now {
                return Some(self.pop_slot(slot));
            }
            if level == 0 || start > now {
                break;
            }
            self.cascade(level, slot);
        }
        self.advance(now);
        None
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of heap the wheel holds (arena chunks, slot heads, past heap).
    pub fn heap_bytes(&self) -> usize {
        self.arena.heap_bytes()
            + self.heads.len() * size_of::<Links>()
            + self.past.capacity() * size_of::<Reverse<(u64, u32)>>()
    }

    // ---- time and levels ----

    /// The lowest non-empty level and its first occupied slot: where the next timer is.
    fn frontier(&self) -> Option<(usize, usize)> {
        let level = self.occupied.iter().position(|&mask| mask != 0)?;
        Some((level, self.occupied[level].trailing_zeros() as usize))
    }

    /// The first instant (mapped) of `slot` on `level`, in the block of `elapsed`.
    fn slot_start(&self, level: usize, slot: usize) -> u64 {
        let block_bits = SLOT_BITS * (level as u32 + 1);
        let block = self
            .elapsed
            .checked_shr(block_bits)
            .map_or(0, |b| b << block_bits);
        block + ((slot as u64) << (SLOT_BITS * level as u32))
    }

    /// Moves the wheel's time to `now`; the caller has checked no slot starts at or before.
    fn advance(&mut self, now: u64) {
        if !self.started || now > self.elapsed {
            self.elapsed = now;
            self.started = true;
        }
    }

    /// Moves the timers of a slot above level 0 down, relative to the slot's start.
    fn cascade(&mut self, level: usize, slot: usize) {
        let start = self.slot_start(level, slot);
        assert!(
            start >= self.elapsed,
            "cascading level {level} slot {slot} would move time back; {self:?}"
        );
        self.elapsed = start;
        self.occupied[level] &= !(1 << slot);
        let heads: [u32; LANES] = std::array::from_fn(|lane| head_of(level, slot, lane));
        let mut cursors = heads.map(|head| self.take_list(head));
        while cursors != heads {
            // First the loads of all lanes (independent, so they overlap), then the links.
            let batch = cursors;
            for lane in (0..LANES).filter(|&lane| batch[lane] != heads[lane]) {
                cursors[lane] = self.node(batch[lane]).links.next;
            }
            for lane in (0..LANES).filter(|&lane| batch[lane] != heads[lane]) {
                self.link(batch[lane]);
            }
        }
    }

    /// Empties a list, returning its first node (or the head itself if it was empty).
    fn take_list(&mut self, head: u32) -> u32 {
        let h = (head - HEAD_BASE) as usize;
        let first = self.heads[h].next;
        self.heads[h] = Links {
            prev: head,
            next: head,
        };
        first
    }

    /// Pops one timer of a level-0 slot (all its timers share one `when`).
    fn pop_slot(&mut self, slot: usize) -> (i64, T) {
        let lanes = &self.heads[slot * LANES..(slot + 1) * LANES];
        let key = lanes
            .iter()
            .map(|head| head.next)
            .find(|&next| next < HEAD_BASE);
        let key = key.expect("an occupied slot has a timer");
        let node = *self.node(key);
        self.unlink(key);
        self.release(key);
        self.len -= 1;
        self.level_min.set(None);
        (from_wheel(node.when()), node.value)
    }

    fn pop_past(&mut self, now: u64) -> Option<(i64, T)> {
        let Reverse((when, key)) = *self.past.peek()?;
        if when >= now {
            return None;
        }
        self.past.pop();
        let value = self.node(key).value;
        self.release(key);
        self.len -= 1;
        self.drop_dead_past();
        Some((from_wheel(when), value))
    }

    /// Frees the tombstones at the top of the past heap, so that its top is live.
    fn drop_dead_past(&mut self) {
        while let Some(&Reverse((_, key))) = self.past.peek() {
            if self.node(key).links.prev != DEAD {
                break;
            }
            self.past.pop();
            self.release(key);
        }
    }

    // ---- the level minimum cache behind next_deadline ----

    fn note_level_insert(&mut self, when: u64) {
        let min = match self.level_min.get() {
            Some(min) => Some(min.min(when)),
            None if self.occupied.iter().all(|&mask| mask == 0) => Some(when),
            None => None,
        };
        self.level_min.set(min);
    }

    fn forget_level_min(&mut self, when: u64) {
        if self.level_min.get() == Some(when) {
            self.level_min.set(None);
        }
    }

    fn scan_min(&self, level: usize, slot: usize) -> u64 {
        let mut min = u64::MAX;
        for head in (0..LANES).map(|lane| head_of(level, slot, lane)) {
            let mut key = self.heads[(head - HEAD_BASE) as usize].next;
            while key != head {
                let node = self.node(key);
                min = min.min(node.when());
                key = node.links.next;
            }
        }
        min
    }

    // ---- lists and arena ----

    /// Appends a node to the slot its `when` belongs to, seen from `elapsed`.
    fn link(&mut self, key: u32) {
        let when = self.node(key).when();
        let level = level_for(self.elapsed, when);
        let slot = slot_for(when, level);
        debug_assert!(
            when >= self.elapsed,
            "linking {when:#x} before the wheel's time; {self:?}"
        );
        let head = head_of(level, slot, key as usize % LANES);
        let tail = self.heads[(head - HEAD_BASE) as usize].prev;
        self.node_mut(key).links = Links {
            prev: tail,
            next: head,
        };
        self.links_mut(tail).next = key;
        self.heads[(head - HEAD_BASE) as usize].prev = key;
        self.occupied[level] |= 1 << slot;
    }

    /// Takes a node out of its list, clearing the slot's bit if all its lanes are empty.
    fn unlink(&mut self, key: u32) {
        let Links { prev, next } = self.node(key).links;
        self.links_mut(prev).next = next;
        self.links_mut(next).prev = prev;
        if prev == next {
            debug_assert!(
                prev >= HEAD_BASE,
                "a one-element circle must be a head; {self:?}"
            );
            let first = (prev - HEAD_BASE) as usize / LANES * LANES;
            let lanes = &self.heads[first..first + LANES];
            if lanes
                .iter()
                .zip(first..)
                .all(|(head, h)| head.next == HEAD_BASE + h as u32)
            {
                self.occupied[first / LANES / SLOTS] &= !(1 << (first / LANES % SLOTS));
            }
        }
    }

    /// The links of a node or of a list head.
    fn links_mut(&mut self, at: u32) -> &mut Links {
        match at.checked_sub(HEAD_BASE) {
            Some(h) => &mut self.heads[h as usize],
            None => &mut self.node_mut(at).links,
        }
    }

    fn alloc(&mut self, when: u64, value: T) -> u32 {
        let links = Links {
            prev: FREE,
            next: NIL,
        };
        let node = Node {
            when_hi: (when >> 32) as u32,
            when_lo: when as u32,
            links,
            value,
        };
        if self.free != NIL {
            let key = self.free;
            self.free = self.node(key).links.next;
            *self.node_mut(key) = node;
            return key;
        }
        self.arena.push(node, HEAD_BASE)
    }

    fn release(&mut self, key: u32) {
        self.node_mut(key).links = Links {
            prev: FREE,
            next: self.free,
        };
        self.free = key;
    }

    fn is_pending(&self, key: u32) -> bool {
        key < self.arena.len() && !matches!(self.node(key).links.prev, DEAD | FREE)
    }

    fn node(&self, key: u32) -> &Node<T> {
        self.arena.get(key)
    }

    fn node_mut(&mut self, key: u32) -> &mut Node<T> {
        self.arena.get_mut(key)
    }
}

/// The wheel's state for assertion messages: time, counts and occupied slots (no values).
impl<T: Copy> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let levels: Vec<String> = (0..LEVELS)
            .filter(|&l| self.occupied[l] != 0)
            .map(|l| format!("L{l}={:#018x}", self.occupied[l]))
            .collect();
        write!(
            f,
            "TimerWheel {{ elapsed: {} ms, len: {}, past heap: {}, arena: {} nodes, occupied: [{}], level_min: {:?} }}",
            from_wheel(self.elapsed),
            self.len,
            self.past.len(),
            self.arena.len(),
            levels.join(" "),
            self.level_min.get().map(from_wheel),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    impl<T: Copy> TimerWheel<T> {
        /// Walks every occupied slot and checks the module invariant, printing the state on
        /// failure. A timer in a slot whose bit is clear would break the count at the end.
        fn check_invariants(&self) {
            let mut on_levels = 0;
            for level in 0..LEVELS {
                for slot in (0..SLOTS).filter(|&slot| self.occupied[level] >> slot & 1 == 1) {
                    let count = self.check_slot(level, slot);
                    assert!(
                        count > 0,
                        "level {level} slot {slot} is marked but empty; {self:?}"
                    );
                    on_levels += count;
                }
            }
            let live_past = self
                .past
                .iter()
                .filter(|Reverse((_, k))| self.node(*k).links.prev == PAST)
                .count();
            assert_eq!(
                on_levels + live_past,
                self.len,
                "counted {on_levels} + {live_past}; {self:?}"
            );
            if let Some(&Reverse((when, key))) = self.past.peek() {
                assert!(
                    self.node(key).links.prev == PAST && when < self.elapsed,
                    "past top {key} {when:#x}; {self:?}"
                );
            }
        }

        fn check_slot(&self, level: usize, slot: usize) -> usize {
            (0..LANES)
                .map(|lane| self.check_list(level, slot, lane))
                .sum()
        }

        fn check_list(&self, level: usize, slot: usize, lane: usize) -> usize {
            let head = head_of(level, slot, lane);
            let (mut prev, mut key, mut count) =
                (head, self.heads[(head - HEAD_BASE) as usize].next, 0);
            while key != head {
                assert_eq!(
                    key as usize % LANES,
                    lane,
                    "node {key} in the wrong lane; {self:?}"
                );
                let node = self.node(key);
                let when = node.when();
                assert_eq!(
                    node.links.prev, prev,
                    "broken back link at node {key}; {self:?}"
                );
                assert!(
                    when >= self.elapsed,
                    "node {key} at {when:#x} is behind the wheel; {self:?}"
                );
                let place = (level_for(self.elapsed, when), slot_for(when, level));
                assert_eq!(place, (level, slot), "node {key} misplaced; {self:?}");
                (prev, key, count) = (key, node.links.next, count + 1);
            }
            count
        }
    }

    fn drain(wheel: &mut TimerWheel<u32>, now: i64) -> Vec<(i64, u32)> {
        std::iter::from_fn(|| wheel.pop_before(now)).collect()
    }

    #[test]
    fn a_node_is_at_most_24_bytes_with_u32_values() {
        assert!(
            size_of::<Node<u32>>() <= 24,
            "{} bytes",
            size_of::<Node<u32>>()
        );
        assert_eq!(size_of::<Node<u32>>(), 20);
    }

    #[test]
    fn the_level_is_that_of_the_highest_differing_bit() {
        for elapsed in [0u64, 5, 63, 64, 1 << 40, u64::MAX - 70] {
            for when in elapsed..elapsed.saturating_add(5000) {
                let bit = 63 - ((elapsed ^ when) | 63).leading_zeros();
                assert_eq!(
                    level_for(elapsed, when),
                    bit as usize / 6,
                    "elapsed {elapsed} when {when}"
                );
            }
        }
        assert_eq!(level_for(0, u64::MAX), LEVELS - 1);
        assert_eq!(level_for(to_wheel(-1), to_wheel(0)), LEVELS - 1);
    }

    #[test]
    fn the_mapping_keeps_the_order_of_instants() {
        let instants = [
            i64::MIN,
            i64::MIN + 1,
            -1_000,
            -1,
            0,
            1,
            1_700_000_000_000,
            i64::MAX - 1,
            i64::MAX,
        ];
        for pair in instants.windows(2) {
            assert!(to_wheel(pair[0]) < to_wheel(pair[1]));
            assert_eq!(from_wheel(to_wheel(pair[0])), pair[0]);
        }
    }

    #[test]
    fn a_timer_fires_only_once_the_clock_has_moved_past_it() {
        let mut wheel = TimerWheel::new();
        wheel.insert(100, 7u32);
        assert_eq!(wheel.pop_before(100), None);
        assert_eq!(wheel.pop_before(101), Some((100, 7)));
        assert!(wheel.is_empty());
    }

    #[test]
    fn timers_fire_in_time_order_across_levels() {
        let mut wheel = TimerWheel::new();
        wheel.pop_before(1_000);
        let whens = [
            1_000 + 48 * 3_600_000,
            1_001,
            1_000 + 5_000,
            1_000 + 64,
            1_063,
            1_000 + 300_000,
        ];
        for (i, &when) in whens.iter().enumerate() {
            wheel.insert(when, i as u32);
        }
        let mut expected: Vec<i64> = whens.to_vec();
        expected.sort();
        let fired: Vec<i64> = drain(&mut wheel, i64::MAX)
            .into_iter()
            .map(|(when, _)| when)
            .collect();
        assert_eq!(fired, expected);
    }

    #[test]
    fn a_timer_in_the_past_is_due_at_once() {
        let mut wheel = TimerWheel::new();
        wheel.insert(10_000, 1u32);
        wheel.pop_before(5_000);
        wheel.insert(20, 2);
        assert_eq!(wheel.next_deadline(), Some(20));
        assert_eq!(wheel.pop_before(5_000), Some((20, 2)));
        assert_eq!(wheel.pop_before(5_000), None);
        assert_eq!(wheel.pop_before(10_001), Some((10_000, 1)));
    }

    #[test]
    fn past_timers_interleave_with_the_others_in_when_order() {
        let mut wheel = TimerWheel::new();
        wheel.pop_before(1_000);
        wheel.insert(1_500, 1u32);
        wheel.insert(900, 2);
        wheel.insert(400, 3);
        wheel.insert(1_000, 4);
        assert_eq!(
            drain(&mut wheel, 2_000),
            vec![(400, 3), (900, 2), (1_000, 4), (1_500, 1)]
        );
    }

    #[test]
    fn cancelling_the_only_timer_in_a_slot_clears_it() {
        let mut wheel = TimerWheel::new();
        wheel.pop_before(0);
        let key = wheel.insert(3_600_000, 9u32);
        assert_ne!(wheel.occupied, [0; LEVELS]);
        assert_eq!(wheel.cancel(key), 9);
        assert_eq!(wheel.occupied, [0; LEVELS]);
        assert_eq!((wheel.next_deadline(), wheel.len()), (None, 0));
        wheel.check_invariants();
    }

    #[test]
    fn a_cancelled_past_timer_is_neither_due_nor_next() {
        let mut wheel = TimerWheel::new();
        wheel.pop_before(1_000);
        let early = wheel.insert(10, 1u32);
        wheel.insert(20, 2);
        wheel.insert(2_000, 3);
        assert_eq!(wheel.cancel(early), 1);
        assert_eq!(wheel.next_deadline(), Some(20));
        assert_eq!(drain(&mut wheel, 5_000), vec![(20, 2), (2_000, 3)]);
        wheel.check_invariants();
    }

    #[test]
    fn next_deadline_is_exact_when_the_earliest_timer_sits_high() {
        let mut wheel = TimerWheel::new();
        wheel.pop_before(0);
        let first = wheel.insert(7_777_777, 1u32);
        wheel.insert(7_777_778, 2);
        wheel.insert(7_000_001, 3);
        assert_eq!(wheel.next_deadline(), Some(7_000_001));
        wheel.insert(7_000_000, 4);
        assert_eq!(wheel.next_deadline(), Some(7_000_000));
        assert_eq!(wheel.pop_before(7_000_001), Some((7_000_000, 4)));
        assert_eq!(wheel.next_deadline(), Some(7_000_001));
        wheel.pop_before(7_000_002);
        wheel.cancel(first);
        assert_eq!(wheel.next_deadline(), Some(7_777_778));
    }

    #[test]
    fn the_extremes_of_i64_are_ordered_and_max_is_never_due() {
        let mut wheel = TimerWheel::new();
        for (i, when) in [i64::MAX, 0, i64::MIN, -1, i64::MAX - 1]
            .into_iter()
            .enumerate()
        {
            wheel.insert(when, i as u32);
        }
        assert_eq!(wheel.next_deadline(), Some(i64::MIN));
        let fired: Vec<i64> = drain(&mut wheel, i64::MAX)
            .into_iter()
            .map(|(when, _)| when)
            .collect();
        assert_eq!(fired, vec![i64::MIN, -1, 0, i64::MAX - 1]);
        assert_eq!(wheel.next_deadline(), Some(i64::MAX));
        wheel.check_invariants();
    }

    #[test]
    fn freed_nodes_are_reused_before_the_arena_grows() {
        let mut wheel = TimerWheel::new();
        let a = wheel.insert(5, 1u32);
        let bytes = wheel.heap_bytes();
        wheel.cancel(a);
        let b = wheel.insert(6, 2);
        assert_eq!((a, wheel.heap_bytes()), (b, bytes));
    }

    #[test]
    fn the_arena_grows_by_whole_chunks_without_moving_nodes() {
        let mut wheel = TimerWheel::new();
        const CHUNK: usize = 1 << crate::core::arena::CHUNK_BITS;
        let keys: Vec<TimerKey> = (0..CHUNK as u32 + 1)
            .map(|i| wheel.insert(i64::from(i), i))
            .collect();
        assert_eq!(wheel.arena.chunks(), 2);
        assert!(
            wheel.heap_bytes() >= 2 * CHUNK * 20 && wheel.heap_bytes() < 2 * CHUNK * 20 + 64 * 1024
        );
        assert_eq!(wheel.cancel(keys[CHUNK]), CHUNK as u32);
        assert_eq!(wheel.len(), CHUNK);
    }

    #[test]
    fn keys_round_trip_through_u32() {
        let mut wheel = TimerWheel::new();
        let key = wheel.insert(1, 1u32);
        assert_eq!(TimerKey::from_raw(key.to_raw()), key);
    }

    #[test]
    #[should_panic(expected = "not pending")]
    fn cancelling_a_key_twice_panics_with_the_state() {
        let mut wheel = TimerWheel::new();
        let key = wheel.insert(1, 1u32);
        wheel.cancel(key);
        wheel.cancel(key);
    }

    #[test]
    #[should_panic(expected = "elapsed")]
    fn cancelling_a_fired_timer_panics_with_the_state() {
        let mut wheel = TimerWheel::new();
        let key = wheel.insert(1, 1u32);
        wheel.pop_before(2);
        wheel.cancel(key);
    }

    #[test]
    fn many_timers_drain_in_order_after_random_cancels() {
        let (mut wheel, mut rng) = (TimerWheel::new(), 0x1234_5678_u64);
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        wheel.pop_before(0);
        let whens: Vec<i64> = (0..50_000).map(|_| (next() % 172_800_000) as i64).collect();
        let keys: Vec<TimerKey> = whens
            .iter()
            .enumerate()
            .map(|(i, &when)| wheel.insert(when, i as u32))
            .collect();
        let mut expected: Vec<(i64, u32)> = Vec::new();
        for (i, &key) in keys.iter().enumerate() {
            match i % 3 {
                0 => assert_eq!(wheel.cancel(key), i as u32),
                _ => expected.push((whens[i], i as u32)),
            }
        }
        let mut fired = Vec::new();
        for now in (0..=173_000_000).step_by(60_000) {
            fired.extend(drain(&mut wheel, now));
        }
        assert!(
            fired.windows(2).all(|pair| pair[0].0 <= pair[1].0),
            "fired out of order"
        );
        fired.sort();
        expected.sort();
        assert_eq!(fired, expected);
        wheel.check_invariants();
    }

    // ---- model test ----

    #[derive(Debug, Clone)]
    enum Op {
        Insert(i64),
        Cancel(prop::sample::Index),
        Pop(i64),
        Drain(i64),
        Peek,
    }

    /// Time ranges: small ones force equal times and slot collisions, wide ones the levels
    /// and the ends of `i64`.
    fn time_range() -> impl Strategy<Value = (i64, i64)> {
        const T0: i64 = 1_790_000_000_000;
        prop_oneof![
            Just((-40, 40)),
            Just((-3_000, 300_000)),
            Just((T0, T0 + 48 * 3_600_000)),
            Just((i64::MIN, i64::MIN + 200)),
            Just((i64::MAX - 200, i64::MAX)),
            Just((-(1 << 62), 1 << 62)),
            Just((i64::MIN, i64::MAX)),
        ]
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        time_range().prop_flat_map(|(lo, hi)| {
            let op = prop_oneof![
                5 => (lo..=hi).prop_map(Op::Insert),
                2 => any::<prop::sample::Index>().prop_map(Op::Cancel),
                3 => (lo..=hi).prop_map(Op::Pop),
                1 => (lo..=hi).prop_map(Op::Drain),
                1 => Just(Op::Peek),
            ];
            prop::collection::vec(op, 1..400)
        })
    }

    /// The reference: pending timers ordered by (when, insertion number), value = number.
    #[derive(Default)]
    struct Model {
        timers: BTreeMap<(i64, u32), TimerKey>,
        whens: BTreeMap<u32, i64>,
        next: u32,
    }

    impl Model {
        fn min(&self) -> Option<i64> {
            self.timers.keys().next().map(|&(when, _)| when)
        }

        fn apply(&mut self, wheel: &mut TimerWheel<u32>, op: &Op) -> Result<(), TestCaseError> {
            match *op {
                Op::Insert(when) => {
                    let key = wheel.insert(when, self.next);
                    self.timers.insert((when, self.next), key);
                    self.whens.insert(self.next, when);
                    self.next += 1;
                }
                Op::Cancel(index) if !self.whens.is_empty() => {
                    let (&id, &when) = self
                        .whens
                        .iter()
                        .nth(index.index(self.whens.len()))
                        .expect("index in range");
                    let key = self
                        .timers
                        .remove(&(when, id))
                        .expect("model agrees with itself");
                    self.whens.remove(&id);
                    prop_assert_eq!(wheel.cancel(key), id);
                }
                Op::Cancel(_) | Op::Peek => {}
                Op::Pop(now) => _ = self.pop(wheel, now)?,
                Op::Drain(now) => while self.pop(wheel, now)? {},
            }
            Ok(())
        }

        /// One `pop_before(now)` checked against the model; true if a timer came out.
        fn pop(&mut self, wheel: &mut TimerWheel<u32>, now: i64) -> Result<bool, TestCaseError> {
            let due = self.min().filter(|&when| when < now);
            match wheel.pop_before(now) {
                None => prop_assert_eq!(due, None, "the wheel held back a due timer"),
                Some((when, id)) => {
                    prop_assert_eq!(Some(when), due, "popped {} ({}) before {}", when, id, now);
                    let known = self.timers.remove(&(when, id)).is_some();
                    prop_assert!(known, "popped {} at {}, not pending there", id, when);
                    self.whens.remove(&id);
                }
            }
            Ok(due.is_some())
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        #[test]
        fn the_wheel_agrees_with_a_sorted_map(ops in ops()) {
            let (mut wheel, mut model) = (TimerWheel::new(), Model::default());
            for op in &ops {
                model.apply(&mut wheel, op)?;
                prop_assert_eq!(wheel.len(), model.timers.len(), "after {:?}: {:?}", op, wheel);
                prop_assert_eq!(wheel.next_deadline(), model.min(), "after {:?}: {:?}", op, wheel);
                wheel.check_invariants();
            }
        }
    }
}
