//! The per (rule, key) state of one partition: `L` (the latest closing time seen) and the
//! open instance, if any, in a compact slot table.
//!
//! # Ground rules
//!
//! * One [`Slot`] per (rule, key) that has an open instance or a remembered `L`. Slots
//!   live in a `Vec` with a free list and are found through a `hashbrown::HashTable` of
//!   slot indices, hashed from (rule, key) with XXH3, so the key is stored once.
//! * A slot holds at most one pending timer in the partition's wheel: the instance's next
//!   point while it is open, or the time at which `L` may be forgotten
//!   (`L + retention`) while it is not.
//! * An instance's points follow [`first_point`] and [`point_time`]: warnings by index
//!   into the rule's leads (largest lead first), then the breach at index `leads.len()`.

use hashbrown::HashTable;

use super::packed::Packed;
use super::rules::RuleId;
use super::time::{Millis, Span};

/// No timer pending for the slot.
pub const NO_TIMER: u32 = u32::MAX;
/// No point left: the breach has fired and the instance waits for its close.
pub const NO_POINT: u8 = u8::MAX;

/// Indices into [`Slot::strings`].
pub const KEY: usize = 0;
pub const OPENED_BY: usize = 1;
pub const ORDER_ID: usize = 2;
pub const SELLER_ID: usize = 3;
pub const MARKETPLACE: usize = 4;

const OPEN: u8 = 1;
const EMITTED: u8 = 2;

/// One (rule, key). 48 bytes plus one string allocation.
#[derive(Clone, Debug)]
pub struct Slot {
    /// key, then (while open) opening event id, order id, seller id, marketplace.
    pub strings: Packed,
    /// `L`: the latest closing time seen; [`Millis::MIN`] when none.
    pub last_close: Millis,
    /// `s`: the opening event's time (meaningful while open).
    pub started: Millis,
    /// `d`: the deadline (meaningful while open).
    pub deadline: Millis,
    /// The raw [`super::wheel::TimerKey`] of the pending timer, or [`NO_TIMER`].
    pub timer: u32,
    pub rule: RuleId,
    /// Index of the next point to fire, or [`NO_POINT`].
    pub next_point: u8,
    flags: u8,
}

impl Slot {
    pub fn key(&self) -> &str {
        self.strings.get(KEY).expect("every slot stores its key")
    }

    pub fn is_open(&self) -> bool {
        self.flags & OPEN != 0
    }

    pub fn has_emitted(&self) -> bool {
        self.flags & EMITTED != 0
    }

    pub fn mark_emitted(&mut self) {
        self.flags |= EMITTED;
    }

    /// Opens an instance in this slot.
    pub fn open(&mut self, strings: Packed, started: Millis, deadline: Millis, first: u8) {
        assert!(!self.is_open(), "opening an instance over an open one: {self:?}");
        self.strings = strings;
        self.started = started;
        self.deadline = deadline;
        self.next_point = first;
        self.flags = OPEN;
    }

    /// Closes the instance, keeping only the key and `L`.
    pub fn close(&mut self) {
        self.strings = Packed::new(&[Some(self.key())]);
        self.next_point = NO_POINT;
        self.flags = 0;
    }

    /// Whether a closing event at `t` may close the open instance (`t >= s`).
    pub fn closes_at(&self, t: Millis) -> bool {
        self.is_open() && t >= self.started
    }

    /// Whether an opening event at `s` may open an instance (none open, `s > L`).
    pub fn opens_at(&self, s: Millis) -> bool {
        !self.is_open() && s > self.last_close
    }
}

/// The first point of an instance opened at `s` with deadline `d` (contract 4.2): the
/// breach when `d <= s`; otherwise the most urgent warning already due at `s` (kept, at
/// `s`), or the first warning still ahead.
pub fn first_point(leads: &[Span], s: Millis, d: Millis) -> u8 {
    if d <= s {
        return leads.len() as u8;
    }
    let already_due = leads.iter().take_while(|lead| d.minus(**lead) <= s).count();
    already_due.saturating_sub(1) as u8
}

/// When point `index` of an instance falls: `d - lead` for a warning, `d` for the breach,
/// never before `s` (contract 4.2).
pub fn point_time(leads: &[Span], s: Millis, d: Millis, index: u8) -> Millis {
    let at = match leads.get(index as usize) {
        Some(lead) => d.minus(*lead),
        None => d,
    };
    at.max(s)
}

/// The slots of one partition, indexed by (rule, key).
#[derive(Clone, Debug, Default)]
pub struct SlotTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    index: HashTable<u32>,
}

fn hash(rule: RuleId, key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key.as_bytes(), u64::from(rule))
}

impl SlotTable {
    pub fn find(&self, rule: RuleId, key: &str) -> Option<u32> {
        let slots = &self.slots;
        let matches = |&i: &u32| {
            let slot = &slots[i as usize];
            slot.rule == rule && slot.strings.get_bytes(KEY) == Some(key.as_bytes())
        };
        self.index.find(hash(rule, key), matches).copied()
    }

    /// The slot for (rule, key), created empty (no instance, no `L`) when missing.
    pub fn find_or_insert(&mut self, rule: RuleId, key: &str) -> u32 {
        if let Some(i) = self.find(rule, key) {
            return i;
        }
        let slot = Slot {
            strings: Packed::new(&[Some(key)]),
            last_close: Millis::MIN,
            started: Millis::MIN,
            deadline: Millis::MIN,
            timer: NO_TIMER,
            rule,
            next_point: NO_POINT,
            flags: 0,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 slots per partition")
            }
        };
        let slots = &self.slots;
        self.index.insert_unique(hash(rule, key), i, |&j| hash(slots[j as usize].rule, slots[j as usize].key()));
        i
    }

    /// Forgets a slot; it must have no pending timer.
    pub fn remove(&mut self, i: u32) {
        let slot = &self.slots[i as usize];
        assert_eq!(slot.timer, NO_TIMER, "removing a slot whose timer is pending: {slot:?}");
        let h = hash(slot.rule, slot.key());
        let found = self.index.find_entry(h, |&j| j == i).expect("a live slot is indexed");
        found.remove();
        self.slots[i as usize].strings = Packed::default();
        self.free.push(i);
    }

    pub fn get(&self, i: u32) -> &Slot {
        &self.slots[i as usize]
    }

    pub fn get_mut(&mut self, i: u32) -> &mut Slot {
        &mut self.slots[i as usize]
    }

    /// Live slots (with an instance or an `L`).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Every live slot, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.index.iter().map(|&i| &self.slots[i as usize])
    }

    pub fn heap_bytes(&self) -> usize {
        let strings: usize = self.iter().map(|s| s.strings.heap_bytes()).sum();
        self.slots.capacity() * std::mem::size_of::<Slot>() + self.index.capacity() * 5 + strings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn leads() -> Vec<Span> {
        vec![Span(24 * H), Span(4 * H)]
    }

    #[test]
    fn a_slot_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 48);
    }

    #[test]
    fn with_time_to_spare_every_warning_is_ahead() {
        let (s, d) = (Millis(0), Millis(48 * H));
        assert_eq!(first_point(&leads(), s, d), 0);
        assert_eq!(point_time(&leads(), s, d, 0), Millis(24 * H));
        assert_eq!(point_time(&leads(), s, d, 1), Millis(44 * H));
        assert_eq!(point_time(&leads(), s, d, 2), d);
    }

    #[test]
    fn of_the_warnings_already_due_only_the_most_urgent_is_kept_at_the_start() {
        let (s, d) = (Millis(0), Millis(3 * H));
        assert_eq!(first_point(&leads(), s, d), 1, "the 4h warning, not the 24h one");
        assert_eq!(point_time(&leads(), s, d, 1), s);
    }

    #[test]
    fn a_warning_exactly_at_the_start_counts_as_already_due() {
        let (s, d) = (Millis(0), Millis(24 * H));
        assert_eq!(first_point(&leads(), s, d), 0);
        assert_eq!(point_time(&leads(), s, d, 0), s);
    }

    #[test]
    fn a_deadline_at_or_before_the_start_gets_no_warnings_and_breaches_at_the_start() {
        for d in [Millis(0), Millis(-H)] {
            assert_eq!(first_point(&leads(), Millis(0), d), 2);
            assert_eq!(point_time(&leads(), Millis(0), d, 2), Millis(0));
        }
    }

    #[test]
    fn slots_are_found_by_rule_and_key_and_reused_after_removal() {
        let mut t = SlotTable::default();
        let a = t.find_or_insert(0, "K");
        let b = t.find_or_insert(1, "K");
        assert_ne!(a, b);
        assert_eq!(t.find(0, "K"), Some(a));
        t.remove(a);
        assert_eq!(t.find(0, "K"), None);
        assert_eq!(t.find_or_insert(2, "Z"), a, "the freed slot is reused");
        assert_eq!(t.len(), 2);
    }
}
