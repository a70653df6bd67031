//! What one partition's open instances look like from outside: the view the query API
//! (contract section 12) reads, computed from the state alone, so that an instance
//! restored from its changelog answers exactly as the one that opened it.
//!
//! # Ground rules
//!
//! * `overdue`: the deadline has passed on the partition's clock, `clock > d`, the moment
//!   the breach fires (a close exactly at `d` still meets it, contract 4.3).
//! * `next_point`: the point the instance's timer waits for (its time never before `s`,
//!   contract 4.2), or none once the breach has fired.
//! * `alerts_emitted`: the points passed since the instance opened, counted from its first
//!   point ([`first_point`]); a restored instance passes the same points again
//!   ([`PartitionState::restore_done`]), so it counts the same.

use super::PartitionState;
use crate::core::effect::Opened;
use crate::core::instances::{point_time, Slot, NO_POINT};
use crate::core::packed::Room;
use crate::core::rules::RuleId;
use crate::core::time::{Millis, Span};

/// One open instance, borrowed from its partition's state: what it opened with, and
/// where it stands now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenDeadline<'a> {
    pub opened: Opened<'a>,
    /// `d` lies before the partition's clock.
    pub overdue: bool,
    pub next_point: Option<NextPoint>,
    /// Warnings and breach passed so far.
    pub alerts_emitted: u8,
}

/// The point an open instance waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextPoint {
    /// The warning's lead, or `None` for the breach.
    pub lead: Option<Span>,
    pub at: Millis,
}

impl PartitionState {
    /// Calls `f` with every open instance, in no particular order. The view lives for the
    /// call: an instance's texts may be stored packed, and are unpacked for it.
    pub fn each_open_deadline(&self, mut f: impl FnMut(OpenDeadline<'_>)) {
        let mut room = Room::new();
        for (i, slot) in self.slots.iter_indexed() {
            f(self.open_deadline_at(i, slot, &mut room));
        }
    }

    /// `f` of the open instance of (rule, key), if there is one.
    pub fn open_deadline<R>(
        &self,
        rule: RuleId,
        key: &str,
        f: impl FnOnce(OpenDeadline<'_>) -> R,
    ) -> Option<R> {
        let i = self.slots.find(rule, key)?;
        let mut room = Room::new();
        Some(f(self.open_deadline_at(i, self.slots.get(i), &mut room)))
    }

    fn open_deadline_at<'a>(
        &'a self,
        i: u32,
        slot: &Slot,
        room: &'a mut Room<5>,
    ) -> OpenDeadline<'a> {
        let opened = self.opened_at(i, slot, room);
        let (leads, first) = (opened.leads, opened.first_point);
        let (next_point, passed) = if slot.next_point == NO_POINT {
            (None, leads.len() as u8 + 1 - first)
        } else {
            let index = slot.next_point;
            let point = NextPoint {
                lead: leads.get(index as usize).copied(),
                at: point_time(leads, opened.started, opened.deadline, index),
            };
            (Some(point), index - first)
        };
        OpenDeadline {
            opened,
            overdue: self.clock.is_some_and(|c| c > opened.deadline),
            next_point,
            alerts_emitted: passed,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_rules;
    use crate::core::alert::Alert;
    use crate::core::partition::PartitionState;
    use crate::core::time::{Millis, Span};
    use crate::decode::decode;

    const H: i64 = 3_600_000;

    fn t(text: &str) -> Millis {
        Millis::parse_rfc3339(text).unwrap()
    }

    fn take(state: &mut PartitionState, rules: &crate::core::rules::RuleSet, line: &str) {
        let input = decode(line.as_bytes()).into_input().expect("well-formed");
        let mut alerts: Vec<Alert> = Vec::new();
        state.take(rules, &input, &mut alerts);
    }

    fn message(id: &str, thread: &str, time: &str) -> String {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"s","type":"customer_message.received","time":"{time}","data":{{"thread_id":"{thread}","order_id":"o-{thread}","seller_id":"S1","marketplace":"NL"}}}}"#
        )
    }

    /// Where the open instance of (rule, key) stands: next point, alerts emitted, overdue.
    fn stands(
        state: &PartitionState,
        rule: crate::core::rules::RuleId,
        key: &str,
    ) -> Option<(Option<super::NextPoint>, u8, bool)> {
        state.open_deadline(rule, key, |d| (d.next_point, d.alerts_emitted, d.overdue))
    }

    fn tick(time: &str) -> String {
        format!(
            r#"{{"specversion":"1.0","id":"tick-{time}","source":"s","type":"x.unknown","time":"{time}","data":{{}}}}"#
        )
    }

    #[test]
    fn an_open_reply_shows_its_texts_its_next_point_and_what_it_emitted() {
        let rules = load_rules(None).unwrap();
        let mut state = PartitionState::new();
        take(
            &mut state,
            &rules,
            &message("e-1", "T1", "2026-11-20T00:00:00Z"),
        );
        let mut rule = None;
        state.each_open_deadline(|d| {
            assert!(rule.replace(d.opened.rule).is_none(), "one open instance");
            assert_eq!(rules.rule(d.opened.rule).name.as_ref(), "customer_reply");
            assert_eq!((d.opened.key, d.opened.opened_by), ("T1", "e-1"));
            assert_eq!(
                (d.opened.order_id, d.opened.seller_id, d.opened.marketplace),
                (Some("o-T1"), Some("S1"), Some("NL"))
            );
            assert_eq!(d.opened.deadline, t("2026-11-22T00:00:00Z"));
            assert!(!d.overdue);
            let next = d.next_point.unwrap();
            assert_eq!(
                (next.lead, next.at),
                (Some(Span(24 * H)), t("2026-11-21T00:00:00Z"))
            );
            assert_eq!(d.alerts_emitted, 0);
        });
        let rule = rule.expect("one open instance");

        take(&mut state, &rules, &tick("2026-11-21T21:00:00Z"));
        let (next, emitted, overdue) = stands(&state, rule, "T1").unwrap();
        assert_eq!(next.unwrap().lead, None, "the breach is next");
        assert_eq!(emitted, 2, "both warnings fired");
        assert!(!overdue);
    }

    #[test]
    fn an_instance_is_overdue_only_once_its_clock_is_past_the_deadline() {
        let rules = load_rules(None).unwrap();
        let mut state = PartitionState::new();
        take(
            &mut state,
            &rules,
            &message("e-1", "T1", "2026-11-20T00:00:00Z"),
        );
        take(&mut state, &rules, &tick("2026-11-22T00:00:00Z"));
        let mut rule = None;
        state.each_open_deadline(|d| rule = Some(d.opened.rule));
        let rule = rule.expect("one open instance");
        let (next, _, overdue) = stands(&state, rule, "T1").unwrap();
        assert!(!overdue, "a reply at the deadline still meets it");
        assert!(next.is_some());
        take(&mut state, &rules, &tick("2026-11-22T00:00:00.001Z"));
        let (next, emitted, overdue) = stands(&state, rule, "T1").unwrap();
        assert!(overdue);
        assert_eq!((next, emitted), (None, 3));
        assert_eq!(stands(&state, rule, "T2"), None);
    }
}
