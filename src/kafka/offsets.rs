//! Which offset of an input partition may be committed (pure).
//!
//! # Ground rules
//!
//! * A record's effects (its alerts and dead letter) are *in flight* from the moment it
//!   is consumed until the broker acknowledges every one of them.
//! * The committable offset is the smallest of: the first record with effects in
//!   flight, the record that opened the oldest instance still open (the engine's state
//!   is not persisted yet, so re-reading from there rebuilds it), and the next offset to
//!   read. Committing it can therefore never lose an alert.
//! * Alerts fired by the wall clock are charged to the last record consumed, so they
//!   hold the commit back just the same.

use std::collections::BTreeMap;

/// The in-flight bookkeeping of one input partition.
#[derive(Debug, Default, Clone)]
pub struct OffsetTracker {
    /// One past the last offset consumed.
    next: Option<i64>,
    /// Offset -> (effects still in flight, the record's broker timestamp in ms).
    in_flight: BTreeMap<i64, (u32, Option<i64>)>,
}

/// A record whose effects have all been acknowledged: its timestamp, for latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub offset: i64,
    pub timestamp: Option<i64>,
}

impl OffsetTracker {
    /// Notes a consumed record and how many effects it started.
    pub fn consumed(&mut self, offset: i64, effects: u32, timestamp: Option<i64>) -> Option<Settled> {
        self.next = Some(self.next.map_or(offset + 1, |n| n.max(offset + 1)));
        if effects == 0 {
            return Some(Settled { offset, timestamp });
        }
        self.in_flight.entry(offset).or_insert((0, timestamp)).0 += effects;
        None
    }

    /// Charges `effects` more to the last record consumed (wall-clock alerts); returns
    /// the offset charged, or `None` before anything was consumed.
    pub fn charge_last(&mut self, effects: u32) -> Option<i64> {
        let last = self.next? - 1;
        self.in_flight.entry(last).or_insert((0, None)).0 += effects;
        Some(last)
    }

    /// One effect of the record at `offset` was acknowledged.
    pub fn settle(&mut self, offset: i64) -> Option<Settled> {
        let entry = self.in_flight.get_mut(&offset)?;
        entry.0 -= 1;
        if entry.0 > 0 {
            return None;
        }
        let (_, timestamp) = self.in_flight.remove(&offset).expect("present above");
        Some(Settled { offset, timestamp })
    }

    /// The offset to commit (the next one to read after a restart), if any record was
    /// consumed; `oldest_open` is where the oldest open instance was opened.
    pub fn committable(&self, oldest_open: Option<i64>) -> Option<i64> {
        let next = self.next?;
        let first_in_flight = self.in_flight.keys().next().copied();
        Some([Some(next), first_in_flight, oldest_open].into_iter().flatten().min().expect("next is some"))
    }

    /// One past the last record whose effects, and every earlier record's, are all
    /// acknowledged: records below it need not be processed again for their alerts'
    /// sake. Committed as metadata so a restart can count what it re-emits.
    pub fn acked_through(&self) -> Option<i64> {
        let next = self.next?;
        Some(self.in_flight.keys().next().copied().map_or(next, |first| first.min(next)))
    }

    /// Everything consumed has been acknowledged.
    pub fn is_settled(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// One past the last offset consumed.
    pub fn next(&self) -> Option<i64> {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_consumed_means_nothing_to_commit() {
        assert_eq!(OffsetTracker::default().committable(None), None);
    }

    #[test]
    fn a_record_without_effects_is_committable_at_once() {
        let mut t = OffsetTracker::default();
        assert!(t.consumed(7, 0, Some(1)).is_some());
        assert_eq!(t.committable(None), Some(8));
    }

    #[test]
    fn the_commit_waits_for_the_first_record_with_effects_in_flight() {
        let mut t = OffsetTracker::default();
        t.consumed(0, 2, None);
        t.consumed(1, 1, None);
        t.consumed(2, 0, None);
        assert_eq!(t.committable(None), Some(0));
        assert_eq!(t.settle(1).map(|s| s.offset), Some(1));
        assert_eq!(t.committable(None), Some(0), "record 0 still has an alert in flight");
        assert_eq!(t.settle(0), None);
        assert_eq!(t.settle(0).map(|s| s.offset), Some(0));
        assert_eq!(t.committable(None), Some(3));
    }

    #[test]
    fn the_commit_never_passes_the_oldest_open_instance() {
        let mut t = OffsetTracker::default();
        t.consumed(10, 0, None);
        assert_eq!(t.committable(Some(4)), Some(4));
    }

    #[test]
    fn wall_clock_alerts_hold_back_the_last_record() {
        let mut t = OffsetTracker::default();
        assert_eq!(t.charge_last(1), None);
        t.consumed(5, 0, None);
        assert_eq!(t.charge_last(1), Some(5));
        assert_eq!(t.committable(None), Some(5));
        t.settle(5);
        assert_eq!(t.committable(None), Some(6));
    }
}
