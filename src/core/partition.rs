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

use super::alert::{
    write_sla_id, write_violation_id, AlertKind, AlertRef, Copied, Outcome, SlaStage,
};
use super::effect::{Change, Closed, Effect, Opened, Sink};
use super::event::{Event, EventType, Field, Input, Money};
use super::instances::{first_point, point_time, Slot, SlotTable, NO_POINT, NO_TIMER};
use super::packed::Room;
use super::retained::{fingerprint, Retained, RetainedSet};
use super::rules::{Check, Profile, RuleId, RuleSet, BASE_PROFILE};
use super::time::{Millis, Span};
use super::wheel::{TimerKey, TimerWheel};

pub use deadlines::{NextPoint, OpenDeadline};

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
    emitted: EmittedIds,
    totals: Retained<Money>,
    /// `L` of each (rule, key) with no open instance, by [`rule_key`] fingerprint,
    /// stamped with `L` itself: forgotten once `L` is older than the retention window.
    lasts: Retained<Millis>,
    slots: SlotTable,
    /// One timer per open instance: its next point.
    wheel: TimerWheel<u32>,
    open_by_rule: Vec<u64>,
    /// The distinct lists of warning leads of open instances ([`Slot::schedule`]): an
    /// instance keeps the leads it opened with, whatever the configuration says later.
    schedules: Vec<Box<[Span]>>,
    /// Per rule, the index in `schedules` of its configured leads, once interned.
    rule_schedules: Vec<u16>,
    /// Where the id of the alert being emitted is written (no allocation per alert).
    alert_id: String,
}

impl PartitionState {
    pub fn new() -> PartitionState {
        PartitionState::default()
    }

    /// Takes one well-formed input: clock rule, duplicate rule, then the event's effects.
    pub fn take<S: Sink>(&mut self, rules: &RuleSet, input: &Input<'_>, out: &mut S) -> Taken {
        let (source, id) = input.source_and_id();
        let seen = fingerprint(&[source, id]);
        let clock = self.clock.map_or(input.time(), |c| c.max(input.time()));
        if !self.seen.insert(seen, clock, rules.retention) {
            return Taken::Duplicate;
        }
        out.emit(Effect::Changed(Change::Seen {
            id: seen,
            stamp: clock,
        }));
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

    /// Fires the points that the last input left before the clock (an out-of-order
    /// opening), which [`Self::take`] would fire before the next input anyway. Afterwards
    /// no pending point lies before the clock: a changelog written then rebuilds every
    /// instance's next point from the clock alone ([`Self::restore_instance`]).
    pub fn settle<S: Sink>(&mut self, rules: &RuleSet, out: &mut S) {
        if let Some(clock) = self.clock {
            self.fire_before(rules, clock, out);
        }
    }

    /// Moves the clock to `max(clock, now)` and fires every point strictly before it.
    pub fn advance<S: Sink>(&mut self, rules: &RuleSet, now: Millis, out: &mut S) -> Millis {
        let clock = self.clock.map_or(now, |c| c.max(now));
        self.clock = Some(clock);
        self.fire_before(rules, clock, out);
        clock
    }

    /// End of input: fires every point at or before `until` (default: the clock).
    pub fn finish<S: Sink>(&mut self, rules: &RuleSet, until: Option<Millis>, out: &mut S) {
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
        Tally {
            alert_ids_suppressed: self.emitted.suppressed,
        }
    }

    /// Heap bytes held, approximately (slot table, wheel, retained sets).
    pub fn heap_bytes(&self) -> usize {
        self.heap_bytes_by_part().iter().map(|(_, n)| n).sum()
    }

    /// [`Self::heap_bytes`] by what holds them.
    pub fn heap_bytes_by_part(&self) -> Vec<(&'static str, usize)> {
        let mut parts = self.slots.heap_bytes_by_part().to_vec();
        parts.extend([
            ("timers", self.wheel.heap_bytes()),
            ("seen ids", self.seen.heap_bytes()),
            ("emitted ids", self.emitted.ids.heap_bytes()),
            ("order totals", self.totals.heap_bytes()),
            ("closing times", self.lasts.heap_bytes()),
        ]);
        parts
    }

    fn sweep(&mut self, rules: &RuleSet, clock: Millis) {
        self.seen.sweep(clock, rules.retention);
        self.emitted.ids.sweep(clock, rules.retention);
        self.totals.sweep(clock, rules.retention);
        self.lasts.sweep(clock, rules.retention);
    }

    fn fire_before<S: Sink>(&mut self, rules: &RuleSet, bound: Millis, out: &mut S) {
        while let Some((when, slot)) = self.wheel.pop_before(bound.0) {
            self.on_timer(rules, slot, Millis(when), out);
        }
    }

    fn on_timer<S: Sink>(&mut self, rules: &RuleSet, i: u32, when: Millis, out: &mut S) {
        let slot = self.slots.get_mut(i);
        slot.timer = NO_TIMER;
        let leads = &self.schedules[slot.schedule as usize];
        let point = slot.next_point;
        let stage = match leads.get(point as usize) {
            Some(lead) => SlaStage::Warning(*lead),
            None => SlaStage::Breach,
        };
        self.pass_point(i);
        self.emit_instance(rules, i, when, stage, None, out);
    }

    /// The instance's next point has fired (its timer already taken from the wheel):
    /// it has alerted, and its following point, if any, is armed.
    fn pass_point(&mut self, i: u32) {
        let slot = self.slots.get_mut(i);
        slot.mark_emitted();
        let leads = &self.schedules[slot.schedule as usize];
        let point = slot.next_point;
        if (point as usize) < leads.len() {
            slot.next_point = point + 1;
            let at = point_time(leads, slot.started, slot.deadline, point + 1);
            slot.timer = self.wheel.insert(at.0, i).to_raw();
        } else {
            slot.next_point = NO_POINT;
        }
    }

    /// Emits an alert of instance `i` at `time`, unless its id already was: written
    /// from the slot's texts, with no owned copy.
    fn emit_instance<S: Sink>(
        &mut self,
        rules: &RuleSet,
        i: u32,
        time: Millis,
        stage: SlaStage,
        closed_by: Option<&str>,
        out: &mut S,
    ) {
        let slot = self.slots.get(i);
        let rule = rules.rule(slot.rule);
        let mut room = Room::new();
        let [key, opened_by, order_id, seller_id, marketplace] = self.slots.texts(i, &mut room);
        let key = key.expect("every slot stores its key");
        let opened_by = opened_by.unwrap_or_default();
        let kind = AlertKind::Sla {
            stage,
            deadline: slot.deadline,
            started_at: slot.started,
        };
        let copied = Copied {
            order_id,
            seller_id,
            marketplace,
        };
        self.alert_id.clear();
        write_sla_id(&mut self.alert_id, &rule.name, key, opened_by, stage);
        let alert = AlertRef::sla(
            &self.alert_id,
            &rule.name,
            key,
            opened_by,
            closed_by,
            time,
            kind,
            copied,
            rule.texts(slot.profile),
        );
        self.emitted.emit(alert, self.clock, rules.retention, out);
    }

    fn apply<S: Sink>(&mut self, rules: &RuleSet, event: &Event<'_>, out: &mut S) {
        let actions = rules.actions(event.event_type);
        for &c in &actions.checks {
            self.run_check(rules, &rules.checks[c as usize], event, out);
        }
        if rules.remembers_order_totals && event.event_type == EventType::OrderPlaced {
            self.remember_total(event, out);
        }
        for &rule in &actions.closes {
            self.close(rules, rule, event, out);
        }
        for opening in &actions.opens {
            if opening.when.iter().all(|c| c.holds(&event.data)) {
                self.open(rules, opening.rule, event, out);
            }
        }
    }

    fn run_check<S: Sink>(
        &mut self,
        rules: &RuleSet,
        check: &Check,
        event: &Event<'_>,
        out: &mut S,
    ) {
        let Some(key) = event.data.text(check.key) else {
            return;
        };
        if !check.when.iter().all(|c| c.holds(&event.data)) {
            return;
        }
        if check.uses_order_totals() {
            let total = event
                .data
                .text(Field::OrderId)
                .and_then(|o| self.totals.get(fingerprint(&[o])).copied());
            if !check.total_reaches_threshold(total) {
                return;
            }
        }
        self.alert_id.clear();
        write_violation_id(&mut self.alert_id, &check.name, &event.id);
        let alert = AlertRef::violation(
            &self.alert_id,
            &check.name,
            key,
            &event.id,
            event.time,
            copied_from(event),
            &check.texts,
        );
        self.emitted.emit(alert, self.clock, rules.retention, out);
    }

    fn remember_total<S: Sink>(&mut self, event: &Event<'_>, out: &mut S) {
        let Some(order) = event.data.text(Field::OrderId) else {
            return;
        };
        let key = fingerprint(&[order]);
        let total = event.data.money(Field::OrderTotal);
        let stamp = self.clock.unwrap_or(event.time);
        self.set_total(key, total, stamp);
        out.emit(Effect::Changed(Change::Total {
            order: key,
            total,
            stamp,
        }));
    }

    fn set_total(&mut self, order: u64, total: Option<Money>, stamp: Millis) {
        match total {
            Some(total) => self.totals.insert(order, total, stamp),
            None => self.totals.remove(order),
        }
    }

    /// A closing event for `rule`: `L = max(L, t)`, and the open instance, if any, closes
    /// when `t >= s`. (A close before `s` leaves the instance open; its `L` cannot matter
    /// while it is open, see `instances`.)
    fn close<S: Sink>(&mut self, rules: &RuleSet, rule: RuleId, event: &Event<'_>, out: &mut S) {
        let Some(key) = event.data.text(rules.rule(rule).key) else {
            return;
        };
        match self.slots.find(rule, key) {
            Some(i) if event.time >= self.slots.get(i).started => {
                self.close_instance(rules, i, event, out)
            }
            Some(_) => {}
            None => self.raise_last_close(rules, rule, key, event.time, out),
        }
    }

    fn raise_last_close<S: Sink>(
        &mut self,
        rules: &RuleSet,
        rule: RuleId,
        key: &str,
        t: Millis,
        out: &mut S,
    ) {
        let fp = rule_key(rules, rule, key);
        let last = self.lasts.get(fp).map_or(t, |&l| l.max(t));
        self.lasts.insert(fp, last, last);
        out.emit(Effect::Changed(Change::Last { rule_key: fp, last }));
    }

    fn close_instance<S: Sink>(&mut self, rules: &RuleSet, i: u32, event: &Event<'_>, out: &mut S) {
        self.cancel_timer(i);
        let slot = self.slots.get(i);
        let outcome = if event.time <= slot.deadline {
            Outcome::Met
        } else {
            Outcome::Late
        };
        if slot.has_emitted() {
            let stage = SlaStage::Resolved(outcome);
            self.emit_instance(rules, i, event.time, stage, Some(&event.id), out);
        }
        let slot = self.slots.get(i);
        let rule = slot.rule;
        let mut room = Room::new();
        let [key, seller_id, marketplace] = self.slots.key_and_shared(i, &mut room);
        let key = key.expect("every slot stores its key");
        let (started, deadline, at, closed_by) =
            (slot.started, slot.deadline, event.time, event.event_type);
        out.emit(Effect::Closed(Closed {
            instance: i,
            rule,
            key,
            seller_id,
            marketplace,
            started,
            deadline,
            at,
            outcome,
            closed_by,
        }));
        let fp = rule_key(rules, rule, key);
        self.lasts.insert(fp, event.time, event.time);
        out.emit(Effect::Changed(Change::Last {
            rule_key: fp,
            last: event.time,
        }));
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
    fn open<S: Sink>(&mut self, rules: &RuleSet, rule_id: RuleId, event: &Event<'_>, out: &mut S) {
        let rule = rules.rule(rule_id);
        let Some(key) = event.data.text(rule.key) else {
            return;
        };
        let profile = rule.profile_for(&event.data);
        let Some(deadline) = rule.deadline_for(profile, event.time, &event.data) else {
            return;
        };
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
        let leads = rule.leads(profile);
        let schedule = self.rule_schedule(rules, rule_id, profile);
        let first = first_point(leads, s, deadline);
        let d = &event.data;
        let (order_id, seller_id, marketplace) = (
            d.text(Field::OrderId),
            d.text(Field::SellerId),
            d.text(Field::Marketplace),
        );
        let opened = Opened {
            rule: rule_id,
            key,
            opened_by: &event.id,
            order_id,
            seller_id,
            marketplace,
            started: s,
            deadline,
            leads,
            first_point: first,
            profile,
        };
        let i = self.install(rules, opened, schedule, first);
        out.emit(Effect::Opened(opened, i));
    }

    /// Stores an open instance whose next point is `next` (an index into its leads, or
    /// past the breach when every point has fired) and arms its timer.
    fn install(&mut self, rules: &RuleSet, o: Opened<'_>, schedule: u16, next: u8) -> u32 {
        let leads = &self.schedules[schedule as usize];
        let texts = [
            Some(o.key),
            Some(o.opened_by),
            o.order_id,
            o.seller_id,
            o.marketplace,
        ];
        let mut slot = Slot::open(o.rule, o.started, o.deadline, next, schedule, o.profile);
        if next > o.first_point {
            slot.mark_emitted();
        }
        let breach = leads.len() as u8;
        let at = (next <= breach).then(|| point_time(leads, o.started, o.deadline, next));
        if next > breach {
            slot.next_point = NO_POINT;
        }
        let i = self.slots.insert(slot, &texts);
        if let Some(at) = at {
            self.slots.get_mut(i).timer = self.wheel.insert(at.0, i).to_raw();
        }
        if self.open_by_rule.len() < rules.rules.len() {
            self.open_by_rule.resize(rules.rules.len(), 0);
        }
        self.open_by_rule[o.rule as usize] += 1;
        i
    }

    /// The index in `schedules` of a profile's configured leads (an override's are
    /// interned each time: overrides are rarer than the rule itself).
    fn rule_schedule(&mut self, rules: &RuleSet, rule: RuleId, profile: Profile) -> u16 {
        if profile != BASE_PROFILE {
            return self.intern_schedule(rules.rule(rule).leads(profile));
        }
        if let Some(&i) = self
            .rule_schedules
            .get(rule as usize)
            .filter(|&&i| i != u16::MAX)
        {
            return i;
        }
        let i = self.intern_schedule(&rules.rule(rule).warn_before);
        if self.rule_schedules.len() <= rule as usize {
            self.rule_schedules
                .resize(rules.rules.len().max(rule as usize + 1), u16::MAX);
        }
        self.rule_schedules[rule as usize] = i;
        i
    }

    fn intern_schedule(&mut self, leads: &[Span]) -> u16 {
        if let Some(i) = self.schedules.iter().position(|s| **s == *leads) {
            return i as u16;
        }
        assert!(
            self.schedules.len() < u16::MAX as usize,
            "more than 65,534 distinct warning schedules"
        );
        self.schedules.push(leads.into());
        (self.schedules.len() - 1) as u16
    }

    // --- Restoring from a changelog -------------------------------------------------

    /// Sets the clock of a state being restored; before any instance is restored.
    pub fn restore_clock(&mut self, clock: Millis) {
        self.clock = Some(self.clock.map_or(clock, |c| c.max(clock)));
    }

    /// Re-applies a remembered fact, in the order the changes were made.
    pub fn restore_change(&mut self, rules: &RuleSet, change: Change) {
        match change {
            Change::Seen { id, stamp } => {
                self.seen.insert(id, stamp, rules.retention);
            }
            Change::Emitted { id, stamp } => {
                self.emitted.ids.insert(id, stamp, rules.retention);
            }
            Change::Total {
                order,
                total,
                stamp,
            } => self.set_total(order, total, stamp),
            Change::Last { rule_key, last } => self.lasts.insert(rule_key, last, last),
        }
    }

    /// Re-opens an instance as it opened, every point pending; [`Self::restore_done`]
    /// then passes the points before the restored clock. False when its (rule, key) is
    /// open already.
    pub fn restore_instance(&mut self, rules: &RuleSet, o: Opened<'_>) -> bool {
        if self.slots.find(o.rule, o.key).is_some() {
            return false;
        }
        let schedule = self.intern_schedule(o.leads);
        let first = first_point(o.leads, o.started, o.deadline);
        self.install(
            rules,
            Opened {
                first_point: first,
                ..o
            },
            schedule,
            first,
        );
        true
    }

    /// Removes a restored instance that a later changelog record says has closed.
    pub fn restore_close(&mut self, rule: RuleId, key: &str) -> bool {
        let Some(i) = self.slots.find(rule, key) else {
            return false;
        };
        self.cancel_timer(i);
        self.open_by_rule[rule as usize] -= 1;
        self.slots.remove(i);
        true
    }

    /// Ends a restore: every point before the restored clock had fired before the
    /// changelog was written (the invariant [`Self::settle`] keeps), so those points are
    /// passed without alerting, exactly as they left the instances; then the remembered
    /// facts are swept as at that clock.
    pub fn restore_done(&mut self, rules: &RuleSet) {
        let Some(clock) = self.clock else { return };
        while let Some((_, i)) = self.wheel.pop_before(clock.0) {
            self.slots.get_mut(i).timer = NO_TIMER;
            self.pass_point(i);
        }
        self.sweep(rules, clock);
    }

    /// The open instance in slot `i`, as it was reported when opened, its texts unpacked
    /// into `room`.
    pub(super) fn opened_at<'a>(
        &'a self,
        i: u32,
        slot: &Slot,
        room: &'a mut Room<5>,
    ) -> Opened<'a> {
        let [key, opened_by, order_id, seller_id, marketplace] = self.slots.texts(i, room);
        let leads = &self.schedules[slot.schedule as usize];
        Opened {
            rule: slot.rule,
            key: key.expect("every slot stores its key"),
            opened_by: opened_by.unwrap_or_default(),
            order_id,
            seller_id,
            marketplace,
            started: slot.started,
            deadline: slot.deadline,
            leads,
            first_point: first_point(leads, slot.started, slot.deadline),
            profile: slot.profile,
        }
    }
}

/// The fingerprint of (rule, key) under which `L` is remembered: by rule name, so it
/// stays valid when rules are added or reordered.
fn rule_key(rules: &RuleSet, rule: RuleId, key: &str) -> u64 {
    fingerprint(&[&rules.rule(rule).name, key])
}

/// The alert ids emitted within the retention window, under the rule that an id is
/// emitted once (contract section 4, duplicates).
#[derive(Debug, Default)]
struct EmittedIds {
    ids: RetainedSet,
    /// Alerts not emitted because their id already was.
    suppressed: u64,
}

impl EmittedIds {
    /// Emits `alert` unless its id was emitted within the window before `clock`.
    fn emit<S: Sink>(
        &mut self,
        alert: AlertRef<'_>,
        clock: Option<Millis>,
        retention: Span,
        out: &mut S,
    ) {
        let id = fingerprint(&[alert.id]);
        let stamp = clock.unwrap_or(alert.time);
        if self.ids.insert(id, stamp, retention) {
            out.emit(Effect::Changed(Change::Emitted { id, stamp }));
            out.emit(Effect::Alert(alert));
        } else {
            self.suppressed += 1;
        }
    }
}

fn copied_from<'a>(event: &'a Event<'_>) -> Copied<'a> {
    let text = |f| event.data.text(f);
    Copied {
        order_id: text(Field::OrderId),
        seller_id: text(Field::SellerId),
        marketplace: text(Field::Marketplace),
    }
}

#[path = "deadlines.rs"]
mod deadlines;

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
