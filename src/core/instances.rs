//! The open instances of one partition, one compact [`Slot`] each, indexed by
//! (rule, key).
//!
//! # Ground rules
//!
//! * A slot exists exactly while its instance is open: it is created by the opening event
//!   and removed by the close. `L` (the latest closing time) of a (rule, key) with no
//!   open instance lives elsewhere (the partition's retained map); while an instance is
//!   open its `L` cannot matter, because only a close at or after `s > L` ends it, and
//!   that close becomes the new `L`.
//! * Slots live in an [`Arena`] with a free list and are found through a
//!   `hashbrown::HashTable` of slot indices, hashed from (rule, key) with XXH3, so the
//!   key is stored once.
//! * An instance's texts are one block of the table's [`TextSlab`]; the seller id and
//!   the marketplace, which few distinct values take, are numbers there, and their text
//!   is stored once for all instances ([`Interner`]). Ids of digits and dashes are
//!   stored in nibbles, so texts are read through a [`Room`] they are unpacked into, and
//!   a key is found, and hashed, in its stored form ([`Probe`]): the index never unpacks
//!   one.
//! * A slot holds the one pending timer of its instance in the partition's wheel: the
//!   next point, or none once the breach has fired.
//! * An instance's points follow [`first_point`] and [`point_time`]: warnings by index
//!   into the rule's leads (largest lead first), then the breach at index `leads.len()`.

use hashbrown::HashTable;

use super::arena::Arena;
use super::packed::{read_varint, write_varint, Interner, Probe, Room, TextRef, TextSlab};
use super::rules::RuleId;
use super::time::{Millis, Span};

/// No timer pending for the slot.
pub const NO_TIMER: u32 = u32::MAX;
/// No point left: the breach has fired and the instance waits for its close.
pub const NO_POINT: u8 = u8::MAX;

/// Indices into an instance's texts ([`SlotTable::texts`]).
pub const KEY: usize = 0;
pub const OPENED_BY: usize = 1;
pub const ORDER_ID: usize = 2;
pub const SELLER_ID: usize = 3;
pub const MARKETPLACE: usize = 4;
/// The texts stored once for all instances that have them, their number in the block.
const SHARED: [usize; 2] = [SELLER_ID, MARKETPLACE];
/// The order of the texts in a block: first what every close reads (the key, then the
/// shared ones), so a close unpacks nothing else.
const STORED: [usize; 5] = [KEY, SELLER_ID, MARKETPLACE, OPENED_BY, ORDER_ID];

/// The slot holds an open instance (cleared when the slot is freed).
const LIVE: u8 = 1;
/// The instance has emitted a warning or its breach.
const EMITTED: u8 = 2;

/// One open instance of a (rule, key): 32 bytes (31 used), and its texts in the table's slab.
#[derive(Clone, Debug)]
pub struct Slot {
    /// Key, opening event id, order id, seller id, marketplace, in the table's slab.
    pub texts: TextRef,
    /// `s`: the opening event's time.
    pub started: Millis,
    /// `d`: the deadline.
    pub deadline: Millis,
    /// The raw [`super::wheel::TimerKey`] of the pending timer, or [`NO_TIMER`].
    pub timer: u32,
    pub rule: RuleId,
    /// Which list of warning leads the instance's points follow, an index into the
    /// partition's schedules: the leads it opened with.
    pub schedule: u16,
    /// Index of the next point to fire, or [`NO_POINT`].
    pub next_point: u8,
    flags: u8,
    /// Which of the rule's overrides it opened with ([`super::rules::Profile`]).
    pub profile: u8,
}

impl Slot {
    /// A slot for an instance opened at `started`, its first point `first` of the leads
    /// `schedule` names; no timer yet and no texts until [`SlotTable::insert`] stores them.
    pub fn open(
        rule: RuleId,
        started: Millis,
        deadline: Millis,
        first: u8,
        schedule: u16,
        profile: u8,
    ) -> Slot {
        Slot {
            texts: TextRef::NONE,
            started,
            deadline,
            timer: NO_TIMER,
            rule,
            schedule,
            next_point: first,
            flags: LIVE,
            profile,
        }
    }

    /// Whether the slot holds an instance (a freed slot does not).
    pub fn is_live(&self) -> bool {
        self.flags & LIVE != 0
    }

    pub fn has_emitted(&self) -> bool {
        self.flags & EMITTED != 0
    }

    pub fn mark_emitted(&mut self) {
        self.flags |= EMITTED;
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

/// The open instances of one partition, indexed by (rule, key).
#[derive(Clone, Debug, Default)]
pub struct SlotTable {
    slots: Arena<Slot>,
    free: Vec<u32>,
    index: HashTable<u32>,
    texts: TextSlab,
    shared: Interner,
}

/// The hash of a stored slot's (rule, key), from the key as stored.
fn hash_of(texts: &TextSlab, slot: &Slot) -> u64 {
    texts.part_hash(slot.texts, KEY, u64::from(slot.rule))
}

/// A key, opening event id or order id as stored, read back without validating it
/// again: the slab gives back exactly the bytes of the `&str` it was given (stored as
/// they are or in nibbles, property-tested in `packed`), and only [`SlotTable::insert`]
/// writes blocks, from `&str`s. Checked in debug builds.
fn utf8(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok(), "packed from &str");
    // SAFETY: `bytes` are those of a `&str` given to `insert` (see above).
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// A shared text's number as stored in a block: a LEB128 varint, as the block's lengths.
fn encode_number(n: u32, out: &mut [u8; 5]) -> &[u8] {
    let len = write_varint(out, 0, n as usize);
    &out[..len]
}

fn decode_number(bytes: &[u8]) -> u32 {
    read_varint(bytes).0 as u32
}

impl SlotTable {
    pub fn find(&self, rule: RuleId, key: &str) -> Option<u32> {
        let (slots, texts) = (&self.slots, &self.texts);
        let probe = Probe::new(key.as_bytes());
        let matches = |&i: &u32| {
            let slot = slots.get(i);
            slot.rule == rule && texts.part_is(slot.texts, KEY, &probe)
        };
        self.index
            .find(probe.hash(u64::from(rule)), matches)
            .copied()
    }

    /// Stores the slot of a newly opened instance, whose (rule, key) has none, with its
    /// texts: the key first, then those that [`KEY`] to [`MARKETPLACE`] name.
    pub fn insert(&mut self, mut slot: Slot, texts: &[Option<&str>; 5]) -> u32 {
        let key = texts[KEY].expect("every slot stores its key");
        debug_assert!(
            slot.is_live() && self.find(slot.rule, key).is_none(),
            "{slot:?} {key} is already open"
        );
        let mut numbers = [[0u8; 5]; 2];
        let mut parts = texts.map(|t| t.map(str::as_bytes));
        for (&part, number) in SHARED.iter().zip(&mut numbers) {
            if let Some(text) = texts[part] {
                parts[part] = Some(encode_number(self.shared.acquire(text), number));
            }
        }
        slot.texts = self.texts.insert(&STORED.map(|part| parts[part]));
        let i = match self.free.pop() {
            Some(i) => {
                *self.slots.get_mut(i) = slot;
                i
            }
            None => self.slots.push(slot, u32::MAX),
        };
        let (slots, texts) = (&self.slots, &self.texts);
        let h = hash_of(texts, slots.get(i));
        self.index
            .insert_unique(h, i, |&j| hash_of(texts, slots.get(j)));
        i
    }

    /// Frees a slot (its instance closed); it must have no pending timer. The freed slot
    /// keeps its `started`, so a stale reference can tell it from a later instance.
    pub fn remove(&mut self, i: u32) {
        let slot = self.slots.get(i);
        assert_eq!(
            slot.timer, NO_TIMER,
            "removing a slot whose timer is pending: {slot:?}"
        );
        let h = hash_of(&self.texts, slot);
        let found = self
            .index
            .find_entry(h, |&j| j == i)
            .expect("a live slot is indexed");
        found.remove();
        self.free.push(i);
        let slot = self.slots.get_mut(i);
        let mut room = Room::new();
        let [_, shared @ ..] = self.texts.all::<3>(slot.texts, &mut room);
        for number in shared.into_iter().flatten() {
            self.shared.release(decode_number(number));
        }
        self.texts.remove(slot.texts);
        slot.texts = TextRef::NONE;
        slot.flags = 0;
    }

    pub fn get(&self, i: u32) -> &Slot {
        self.slots.get(i)
    }

    pub fn get_mut(&mut self, i: u32) -> &mut Slot {
        self.slots.get_mut(i)
    }

    /// An open instance's texts, indexed by [`KEY`] to [`MARKETPLACE`], those stored in
    /// nibbles unpacked into `room`.
    pub fn texts<'a>(&'a self, i: u32, room: &'a mut Room<5>) -> [Option<&'a str>; 5] {
        let stored = self.stored(i, room);
        let mut texts = [None; 5];
        for (&part, text) in STORED.iter().zip(stored) {
            texts[part] = text;
        }
        texts
    }

    /// An open instance's key, seller id and marketplace: what a close reads.
    pub fn key_and_shared<'a>(&'a self, i: u32, room: &'a mut Room<3>) -> [Option<&'a str>; 3] {
        self.stored(i, room)
    }

    /// The first `N` texts of an instance, in [`STORED`] order.
    fn stored<'a, const N: usize>(&'a self, i: u32, room: &'a mut Room<N>) -> [Option<&'a str>; N] {
        let stored = self.texts.all::<N>(self.slots.get(i).texts, room);
        let mut texts = [None; N];
        for ((text, &part), bytes) in texts.iter_mut().zip(&STORED).zip(stored) {
            *text = bytes.map(|bytes| self.text(part, bytes));
        }
        texts
    }

    /// Text `part` from its stored bytes.
    fn text<'a>(&'a self, part: usize, bytes: &'a [u8]) -> &'a str {
        match SHARED.contains(&part) {
            true => self.shared.get(decode_number(bytes)),
            false => utf8(bytes),
        }
    }

    /// Open instances.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Every open instance, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.index.iter().map(|&i| self.slots.get(i))
    }

    /// Every open instance with its index, in no particular order.
    pub fn iter_indexed(&self) -> impl Iterator<Item = (u32, &Slot)> {
        self.index.iter().map(|&i| (i, self.slots.get(i)))
    }

    pub fn heap_bytes(&self) -> usize {
        self.heap_bytes_by_part().iter().map(|(_, n)| n).sum()
    }

    /// [`Self::heap_bytes`] by what holds them.
    pub fn heap_bytes_by_part(&self) -> [(&'static str, usize); 4] {
        [
            (
                "instance slots",
                self.slots.heap_bytes() + self.free.capacity() * 4,
            ),
            ("instance index", self.index.capacity() * 8 / 7 * 5),
            ("instance texts", self.texts.heap_bytes()),
            ("shared texts", self.shared.heap_bytes()),
        ]
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
    fn texts_come_back_and_shared_ones_are_stored_once() {
        let mut table = SlotTable::default();
        let open = |table: &mut SlotTable, key: &str, seller: Option<&str>, market: &str| {
            let slot = Slot::open(0, Millis(0), Millis(H), 0, 0, 0);
            table.insert(
                slot,
                &[Some(key), Some("e-1"), Some("111-2"), seller, Some(market)],
            )
        };
        let markets: Vec<String> = (0..300).map(|m| format!("M{m}")).collect();
        let slots: Vec<u32> = (0..600)
            .map(|k| {
                let seller = (k % 3 != 0).then_some("A1SELLER");
                open(&mut table, &format!("T-{k}"), seller, &markets[k % 300])
            })
            .collect();
        assert_eq!(table.shared.len(), 301, "one seller, 300 marketplaces");
        for (k, &i) in slots.iter().enumerate() {
            let seller = (k % 3 != 0).then_some("A1SELLER");
            let key = format!("T-{k}");
            assert_eq!(
                table.texts(i, &mut Room::new()),
                [
                    Some(key.as_str()),
                    Some("e-1"),
                    Some("111-2"),
                    seller,
                    Some(markets[k % 300].as_str())
                ]
            );
            assert_eq!(table.find(0, &key), Some(i));
        }
        for &i in &slots[..300] {
            table.remove(i);
        }
        assert_eq!(table.shared.len(), 301, "each text still has a user");
        for &i in &slots[300..] {
            table.remove(i);
        }
        assert!(table.shared.is_empty(), "the last user frees a shared text");
        let i = open(&mut table, "T-new", Some("A2OTHER"), "DE");
        assert_eq!(
            table.texts(i, &mut Room::new())[SELLER_ID..],
            [Some("A2OTHER"), Some("DE")]
        );
    }

    #[test]
    fn shared_numbers_round_trip() {
        for n in [0, 1, 127, 128, 16_383, 16_384, u32::MAX] {
            let mut buf = [0u8; 5];
            assert_eq!(decode_number(encode_number(n, &mut buf)), n, "{n}");
        }
    }

    #[test]
    fn a_slot_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 32);
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
        assert_eq!(
            first_point(&leads(), s, d),
            1,
            "the 4h warning, not the 24h one"
        );
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

    fn insert(t: &mut SlotTable, rule: RuleId, key: &str) -> u32 {
        t.insert(
            Slot::open(rule, Millis(0), Millis(H), 0, 0, 0),
            &[Some(key), Some("e-1"), None, None, None],
        )
    }

    #[test]
    fn slots_are_found_by_rule_and_key_and_reused_after_removal() {
        let mut t = SlotTable::default();
        let a = insert(&mut t, 0, "K");
        let b = insert(&mut t, 1, "K");
        let mut room = Room::new();
        let texts = t.texts(b, &mut room);
        assert_eq!((texts[KEY], texts[OPENED_BY]), (Some("K"), Some("e-1")));
        assert_ne!(a, b);
        assert_eq!(t.find(0, "K"), Some(a));
        t.remove(a);
        assert!(!t.get(a).is_live());
        assert_eq!(t.find(0, "K"), None);
        assert_eq!(insert(&mut t, 2, "Z"), a, "the freed slot is reused");
        assert_eq!(t.len(), 2);
    }
}
