//! The engine state of one input partition, and the timing rules of contract section 4.
//!
//! # Ground rules
//!
//! * **Clock.** The partition's clock is the greatest time of the well-formed events taken
//!   (applied or skipped; duplicates and dead letters do not count), or a later time the
//!   shell hands in ([`PartitionState::advance`], live mode's wall clock). It never
//!   moves backwards.
//! * **Firing.** Before an event at `t` is applied, the clock becomes `max(clock, t)` and
//!   every pending point strictly before the clock fires, earliest first. At the end of
//!   a replay, [`PartitionState::finish`] fires every point at or before `until`.
//! * **Open / close.** Per (rule, key): `L` is the latest closing time seen. An opening
//!   event at `s` opens an instance when none is open and `s > L`; a closing event at `t`
//!   sets `L = max(L, t)` and closes the open instance when `t >= s`, with a
//!   `sla.resolved` alert (`met` when `t <= d`) if the instance had alerted.
//! * **Duplicates.** An input whose (`source`, `id`) was taken within the retention
//!   window is ignored entirely. An alert id emitted within the window is never emitted
//!   again (two sources may reuse an event id).
//! * **Retention.** Seen ids, emitted alert ids, order totals and `L` values are forgotten
//!   once older than the retention window of clock time; open instances never are.
//! * One value holds everything, so moving or restoring a partition moves this value.

use std::collections::VecDeque;

use super::alert::{Alert, AlertKind, Copied, Outcome, SlaStage};
use super::event::{Event, EventType, Field, Input, Money};
use super::instances::{first_point, point_time, Slot, SlotTable, NO_POINT, NO_TIMER};
use super::retained::{fingerprint, Retained, RetainedSet};
use super::rules::{Check, RuleId, RuleSet};
use super::time::{Millis, Span};
use super::wheel::{TimerKey, TimerWheel};

/// What happened to one well-formed input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Taken {
    /// A known type: rules and checks ran.
    Applied,
    /// An unknown type: only its time and id counted.
    Skipped,
    /// Its (`source`, `id`) was already taken: ignored entirely.
    Duplicate,
}

/// Counters of things that are not alerts, for metrics and summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Alerts not emitted because their id already was.
    pub alert_ids_suppressed: u64,
}

/// One partition's engine state.
#[derive(Debug, Default)]
pub struct PartitionState {
    clock: Option<Millis>,
    seen: RetainedSet,
    emitted: RetainedSet,
    totals: Retained<Money>,
    /// `L` of each (rule, key) with no open instance, by [`rule_key`] fingerprint,
    /// stamped with `L` itself: forgotten once `L` is older than the retention window.
    lasts: Retained<Millis>,
    slots: SlotTable,
    /// One timer per open instance: its next point.
    wheel: TimerWheel<u32>,
    open_by_rule: Vec<u64>,
    tally: Tally,
    /// Position of the input being taken, when the shell gives one.
    position: Option<i64>,
    /// (position, slot, start) of instances opened at a position, oldest first; entries
    /// whose instance has closed are dropped lazily. (slot, start) names one instance:
    /// a slot can only reopen after a close at or after the previous start.
    opened_at: VecDeque<(i64, u32, Millis)>,
}

impl PartitionState {
    pub fn new() -> PartitionState {
        PartitionState::default()
    }

    /// Takes one well-formed input: clock rule, duplicate rule, then the event's effects.
    pub fn take(&mut self, rules: &RuleSet, input: &Input<'_>, out: &mut Vec<Alert>) -> Taken {
        self.take_at(rules, input, None, out)
    }

    /// [`Self::take`] for an input read at `position` (a Kafka offset): the partition then
    /// remembers where each open instance was opened, for [`Self::oldest_open_position`].
    /// Positions must not decrease from one call to the next.
    pub fn take_at(&mut self, rules: &RuleSet, input: &Input<'_>, position: Option<i64>, out: &mut Vec<Alert>) -> Taken {
        self.position = position;
        let (source, id) = input.source_and_id();
        let seen = fingerprint(&[source, id]);
        let clock = self.clock.map_or(input.time(), |c| c.max(input.time()));
        if !self.seen.insert(seen, clock, rules.retention) {
            return Taken::Duplicate;
        }
        self.advance(rules, clock, out);
        self.sweep(rules, clock);
        match input {
            Input::Unknown(_) => Taken::Skipped,
            Input::Known(event) => {
                self.apply(rules, event, out);
                Taken::Applied
            }
        }
    }

    /// Moves the clock to `max(clock, now)` and fires every point strictly before it.
    pub fn advance(&mut self, rules: &RuleSet, now: Millis, out: &mut Vec<Alert>) -> Millis {
        let clock = self.clock.map_or(now, |c| c.max(now));
        self.clock = Some(clock);
        self.fire_before(rules, clock, out);
        clock
    }

    /// End of input: fires every point at or before `until` (default: the clock).
    pub fn finish(&mut self, rules: &RuleSet, until: Option<Millis>, out: &mut Vec<Alert>) {
        if let Some(until) = until.or(self.clock) {
            self.fire_before(rules, until.succ(), out);
        }
    }

    pub fn clock(&self) -> Option<Millis> {
        self.clock
    }

    /// The earliest pending point, for a shell to sleep until. It fires once the clock
    /// is past it.
    pub fn next_due(&self) -> Option<Millis> {
        self.wheel.next_deadline().map(Millis)
    }

    /// Open instances per rule, indexed by [`RuleId`].
    pub fn open_by_rule(&self) -> &[u64] {
        &self.open_by_rule
    }

    pub fn open_instances(&self) -> u64 {
        self.open_by_rule.iter().sum()
    }

    /// Warning and breach points waiting to fire.
    pub fn pending_points(&self) -> usize {
        self.wheel.len()
    }

    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// The position of the input that opened the oldest instance still open, among those
    /// taken with a position. Re-reading from there rebuilds every open instance.
    pub fn oldest_open_position(&mut self) -> Option<i64> {
        while let Some(&(position, i, started)) = self.opened_at.front() {
            let slot = self.slots.get(i);
            if slot.is_live() && slot.started == started {
                return Some(position);
            }
            self.opened_at.pop_front();
        }
        None
    }

    fn remember_opening(&mut self, i: u32, started: Millis) {
        let Some(position) = self.position else { return };
        self.opened_at.push_back((position, i, started));
        let open = self.open_instances() as usize;
        if self.opened_at.len() > 2 * open + 1024 {
            let slots = &self.slots;
            self.opened_at.retain(|&(_, i, s)| slots.get(i).is_live() && slots.get(i).started == s);
        }
    }

    /// Heap bytes held, approximately (slot table, wheel, retained sets).
    pub fn heap_bytes(&self) -> usize {
        self.slots.heap_bytes()
            + self.wheel.heap_bytes()
            + self.seen.heap_bytes()
            + self.emitted.heap_bytes()
            + self.totals.heap_bytes()
            + self.lasts.heap_bytes()
            + self.opened_at.capacity() * size_of::<(i64, u32, Millis)>()
    }

    fn sweep(&mut self, rules: &RuleSet, clock: Millis) {
        self.seen.sweep(clock, rules.retention);
        self.emitted.sweep(clock, rules.retention);
        self.totals.sweep(clock, rules.retention);
        self.lasts.sweep(clock, rules.retention);
    }

    fn fire_before(&mut self, rules: &RuleSet, bound: Millis, out: &mut Vec<Alert>) {
        while let Some((when, slot)) = self.wheel.pop_before(bound.0) {
            self.on_timer(rules, slot, Millis(when), out);
        }
    }

    fn on_timer(&mut self, rules: &RuleSet, i: u32, when: Millis, out: &mut Vec<Alert>) {
        let slot = self.slots.get_mut(i);
        slot.timer = NO_TIMER;
        let rule = rules.rule(slot.rule);
        let point = slot.next_point;
        let stage = match rule.warn_before.get(point as usize) {
            Some(lead) => SlaStage::Warning(*lead),
            None => SlaStage::Breach,
        };
        slot.mark_emitted();
        if (point as usize) < rule.warn_before.len() {
            slot.next_point = point + 1;
            let at = point_time(&rule.warn_before, slot.started, slot.deadline, point + 1);
            slot.timer = self.wheel.insert(at.0, i).to_raw();
        } else {
            slot.next_point = NO_POINT;
        }
        let alert = self.instance_alert(rules, i, when, stage, None);
        self.emit(rules.retention, alert, out);
    }

    fn instance_alert(&self, rules: &RuleSet, i: u32, time: Millis, stage: SlaStage, closed_by: Option<&str>) -> Alert {
        let slot = self.slots.get(i);
        let rule = rules.rule(slot.rule);
        let [key, opened_by, order_id, seller_id, marketplace] = self.slots.texts(i);
        let kind = AlertKind::Sla { stage, deadline: slot.deadline, started_at: slot.started };
        let copied = Copied { order_id, seller_id, marketplace };
        let key = key.expect("every slot stores its key");
        Alert::sla(&rule.name, key, opened_by.unwrap_or_default(), closed_by, time, kind, copied, &rule.texts)
    }

    fn emit(&mut self, retention: Span, alert: Alert, out: &mut Vec<Alert>) {
        let id = fingerprint(&[alert.id()]);
        if self.emitted.insert(id, self.clock.unwrap_or(alert.time), retention) {
            out.push(alert);
        } else {
            self.tally.alert_ids_suppressed += 1;
        }
    }

    fn apply(&mut self, rules: &RuleSet, event: &Event<'_>, out: &mut Vec<Alert>) {
        let actions = rules.actions(event.event_type);
        for &c in &actions.checks {
            self.run_check(rules, &rules.checks[c as usize], event, out);
        }
        if rules.remembers_order_totals && event.event_type == EventType::OrderPlaced {
            self.remember_total(event);
        }
        for &rule in &actions.closes {
            self.close(rules, rule, event, out);
        }
        for opening in &actions.opens {
            if opening.when.iter().all(|c| c.holds(&event.data)) {
                self.open(rules, opening.rule, event);
            }
        }
    }

    fn run_check(&mut self, rules: &RuleSet, check: &Check, event: &Event<'_>, out: &mut Vec<Alert>) {
        let Some(key) = event.data.text(check.key) else { return };
        if !check.when.iter().all(|c| c.holds(&event.data)) {
            return;
        }
        if check.uses_order_totals() {
            let total = event.data.text(Field::OrderId).and_then(|o| self.totals.get(fingerprint(&[o])).copied());
            if !check.total_reaches_threshold(total) {
                return;
            }
        }
        let alert = Alert::violation(&check.name, key, &event.id, event.time, copied_from(event), &check.texts);
        self.emit(rules.retention, alert, out);
    }

    fn remember_total(&mut self, event: &Event<'_>) {
        let Some(order) = event.data.text(Field::OrderId) else { return };
        let key = fingerprint(&[order]);
        match event.data.money(Field::OrderTotal) {
            Some(total) => self.totals.insert(key, total, self.clock.unwrap_or(event.time)),
            None => self.totals.remove(key),
        }
    }

    /// A closing event for `rule`: `L = max(L, t)`, and the open instance, if any, closes
    /// when `t >= s`. (A close before `s` leaves the instance open; its `L` cannot matter
    /// while it is open, see `instances`.)
    fn close(&mut self, rules: &RuleSet, rule: RuleId, event: &Event<'_>, out: &mut Vec<Alert>) {
        let Some(key) = event.data.text(rules.rule(rule).key) else { return };
        match self.slots.find(rule, key) {
            Some(i) if event.time >= self.slots.get(i).started => self.close_instance(rules, i, event, out),
            Some(_) => {}
            None => self.raise_last_close(rules, rule, key, event.time),
        }
    }

    fn raise_last_close(&mut self, rules: &RuleSet, rule: RuleId, key: &str, t: Millis) {
        let fp = rule_key(rules, rule, key);
        let last = self.lasts.get(fp).map_or(t, |&l| l.max(t));
        self.lasts.insert(fp, last, last);
    }

    fn close_instance(&mut self, rules: &RuleSet, i: u32, event: &Event<'_>, out: &mut Vec<Alert>) {
        self.cancel_timer(i);
        let slot = self.slots.get(i);
        if slot.has_emitted() {
            let outcome = if event.time <= slot.deadline { Outcome::Met } else { Outcome::Late };
            let alert = self.instance_alert(rules, i, event.time, SlaStage::Resolved(outcome), Some(&event.id));
            self.emit(rules.retention, alert, out);
        }
        let slot = self.slots.get(i);
        let rule = slot.rule;
        let fp = rule_key(rules, rule, self.slots.key(i));
        self.lasts.insert(fp, event.time, event.time);
        self.open_by_rule[rule as usize] -= 1;
        self.slots.remove(i);
    }

    fn cancel_timer(&mut self, i: u32) {
        let slot = self.slots.get_mut(i);
        if slot.timer != NO_TIMER {
            self.wheel.cancel(TimerKey::from_raw(slot.timer));
            slot.timer = NO_TIMER;
        }
    }

    /// An opening event for `rule`: opens an instance when none is open and `s > L`.
    fn open(&mut self, rules: &RuleSet, rule_id: RuleId, event: &Event<'_>) {
        let rule = rules.rule(rule_id);
        let Some(key) = event.data.text(rule.key) else { return };
        let Some(deadline) = rule.deadline_for(event.time, &event.data) else { return };
        if self.slots.find(rule_id, key).is_some() {
            return;
        }
        let s = event.time;
        let fp = rule_key(rules, rule_id, key);
        match self.lasts.get(fp) {
            Some(&last) if s <= last => return,
            Some(_) => self.lasts.remove(fp),
            None => {}
        }
        let first = first_point(&rule.warn_before, s, deadline);
        let d = &event.data;
        let texts = [Some(key), Some(&*event.id), d.text(Field::OrderId), d.text(Field::SellerId), d.text(Field::Marketplace)];
        let i = self.slots.insert(Slot::open(rule_id, s, deadline, first), &texts);
        let at = point_time(&rule.warn_before, s, deadline, first);
        self.slots.get_mut(i).timer = self.wheel.insert(at.0, i).to_raw();
        if self.open_by_rule.len() < rules.rules.len() {
            self.open_by_rule.resize(rules.rules.len(), 0);
        }
        self.open_by_rule[rule_id as usize] += 1;
        self.remember_opening(i, s);
    }
}

/// The fingerprint of (rule, key) under which `L` is remembered: by rule name, so it
/// stays valid when rules are added or reordered.
fn rule_key(rules: &RuleSet, rule: RuleId, key: &str) -> u64 {
    fingerprint(&[&rules.rule(rule).name, key])
}

fn copied_from<'a>(event: &'a Event<'_>) -> Copied<'a> {
    let text = |f| event.data.text(f);
    Copied { order_id: text(Field::OrderId), seller_id: text(Field::SellerId), marketplace: text(Field::Marketplace) }
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
