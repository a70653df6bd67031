//! The compliance report's numbers (contract section 11), computed from [`Facts`] at
//! the end `E` over the window `[from, to)`.
//!
//! # Ground rules
//!
//! * **State at `E`.** A close timed after `E` has not happened; an instance opened
//!   after `E` does not exist; a metric counts only events timed at or before `E`.
//! * **Fates.** met (closed at `t <= d`), late (closed at `t > d`), overdue (open and
//!   `d <= E`), pending (open and `d > E`).
//! * **Rules.** `opened` counts instances with `s` in the window; met, late, overdue and
//!   pending count those with `d` in the window; `on_time_rate` = met / (met + late +
//!   overdue).
//! * **Metrics.** As the table of section 11; each is a numerator and a denominator,
//!   counted at the time that places it in the window (`d`, `s`, the placement, the first
//!   confirmation), which also places it in one UTC day for the daily series.
//! * **Groups** are listed when any of their numbers is not zero, sorted by their
//!   values in `--by` order.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::facts::{Facts, GroupId, InstanceFact, OrderFacts};
pub use super::measures::{GroupField, Metric, Ratio, RuleCounts, Target};
use crate::core::event::EventType;
use crate::core::rules::RuleSet;
use crate::core::time::{Millis, Span};

const DAY: i64 = 86_400_000;

/// One group's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupReport {
    /// The group's values, in `--by` order.
    pub values: Vec<String>,
    /// Per configured rule, in configuration order.
    pub rules: Vec<RuleCounts>,
    /// Per [`Metric::ALL`].
    pub metrics: [Ratio; 6],
    /// Per day of [`Report::days`], the metrics of what that day placed in the window.
    pub daily: Vec<[Ratio; 6]>,
}

impl GroupReport {
    fn new(values: Vec<String>, rules: usize, days: usize) -> GroupReport {
        GroupReport {
            values,
            rules: vec![RuleCounts::default(); rules],
            metrics: [Ratio::default(); 6],
            daily: vec![[Ratio::default(); 6]; days],
        }
    }

    fn is_zero(&self) -> bool {
        self.rules.iter().all(|r| r.is_zero())
            && self
                .metrics
                .iter()
                .all(|m| m.numerator == 0 && m.denominator == 0)
    }
}

/// `[from, to)` and the end `E`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: Millis,
    pub to: Millis,
    pub until: Millis,
}

impl Window {
    /// The contract's defaults: `E` is `until` or the clock; `to` defaults to `E`,
    /// `from` to 30 days before `to`. `None` when there is no `E` (an empty input).
    pub fn resolve(
        from: Option<Millis>,
        to: Option<Millis>,
        until: Option<Millis>,
        clock: Option<Millis>,
    ) -> Option<Window> {
        let until = until.or(clock)?;
        let to = to.unwrap_or(until);
        let from = from.unwrap_or(to.minus(Span(30 * DAY)));
        Some(Window { from, to, until })
    }

    fn holds(&self, t: Millis) -> bool {
        self.from <= t && t < self.to
    }
}

/// The whole report.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub window: Option<Window>,
    pub by: Vec<GroupField>,
    /// The configured rules' names, in configuration order.
    pub rules: Vec<Arc<str>>,
    /// The start of each UTC day the window touches.
    pub days: Vec<Millis>,
    pub groups: Vec<GroupReport>,
}

/// Computes the report of `facts` at `window`, grouped by `by`.
pub fn tally(facts: &Facts, rules: &RuleSet, window: Option<Window>, by: &[GroupField]) -> Report {
    let names: Vec<Arc<str>> = rules.rules.iter().map(|r| r.name.clone()).collect();
    let mut report = Report {
        window,
        by: by.to_vec(),
        rules: names,
        days: Vec::new(),
        groups: Vec::new(),
    };
    let Some(w) = window else {
        return report;
    };
    if w.from < w.to {
        let first = w.from.0.div_euclid(DAY) * DAY;
        report.days = (first..w.to.0).step_by(DAY as usize).map(Millis).collect();
    }
    let mut counter = Counter::new(facts, &report, w);
    for instance in &facts.instances {
        counter.instance(instance);
    }
    for order in facts.orders().iter() {
        counter.order(&order);
    }
    let mut groups: Vec<GroupReport> = counter
        .groups
        .into_values()
        .filter(|g| !g.is_zero())
        .collect();
    groups.sort_by(|a, b| a.values.cmp(&b.values));
    report.groups = groups;
    report
}

/// Adds facts to their groups.
struct Counter<'a> {
    facts: &'a Facts,
    window: Window,
    by: Vec<GroupField>,
    rule_count: usize,
    day0: i64,
    days: usize,
    /// Per group values, the group's numbers.
    groups: BTreeMap<Vec<String>, GroupReport>,
    /// Which rule the metrics read: ship_by, delivery, customer_reply,
    /// return_authorization.
    metric_rules: [Option<u16>; 4],
}

impl<'a> Counter<'a> {
    fn new(facts: &'a Facts, report: &Report, window: Window) -> Counter<'a> {
        let find = |name: &str| {
            report
                .rules
                .iter()
                .position(|r| &**r == name)
                .map(|i| i as u16)
        };
        Counter {
            facts,
            window,
            by: report.by.clone(),
            rule_count: report.rules.len(),
            day0: report.days.first().map_or(0, |d| d.0),
            days: report.days.len(),
            groups: BTreeMap::new(),
            metric_rules: [
                find("ship_by"),
                find("delivery"),
                find("customer_reply"),
                find("return_authorization"),
            ],
        }
    }

    fn group(&mut self, id: GroupId) -> &mut GroupReport {
        let (seller, marketplace) = &self.facts.groups[id as usize];
        let values: Vec<String> = self
            .by
            .iter()
            .map(|f| match f {
                GroupField::SellerId => seller.clone(),
                GroupField::Marketplace => marketplace.clone(),
            })
            .collect();
        let (rules, days) = (self.rule_count, self.days);
        self.groups
            .entry(values.clone())
            .or_insert_with(|| GroupReport::new(values, rules, days))
    }

    /// Counts one metric item placed in the window at `at`.
    fn metric(&mut self, id: GroupId, metric: Metric, at: Millis, counted: bool) {
        let day = ((at.0 - self.day0).div_euclid(DAY)) as usize;
        let m = metric as usize;
        let g = self.group(id);
        g.metrics[m].add(counted);
        if let Some(d) = g.daily.get_mut(day) {
            d[m].add(counted);
        }
    }

    fn instance(&mut self, i: &InstanceFact) {
        let (w, e) = (self.window, self.window.until);
        if i.started > e {
            return;
        }
        let closed = i.closed.filter(|(t, _)| *t <= e);
        let rule = i.rule as usize;
        if w.holds(i.started) {
            self.group(i.group).rules[rule].opened += 1;
        }
        let in_window = w.holds(i.deadline);
        if in_window {
            let counts = &mut self.group(i.group).rules[rule];
            match closed {
                Some((t, _)) if t <= i.deadline => counts.met += 1,
                Some(_) => counts.late += 1,
                None if i.deadline <= e => counts.overdue += 1,
                None => counts.pending += 1,
            }
        }
        self.instance_metrics(i, closed, in_window);
    }

    fn instance_metrics(
        &mut self,
        i: &InstanceFact,
        closed: Option<(Millis, EventType)>,
        deadline_in_window: bool,
    ) {
        let e = self.window.until;
        let rule = Some(i.rule);
        let met = matches!(closed, Some((t, _)) if t <= i.deadline);
        let decided = closed.is_some() || i.deadline <= e;
        let closed_by = closed.map(|(_, t)| t);
        let [ship_by, delivery, reply, returns] = self.metric_rules;
        if deadline_in_window && decided {
            let cancelled = closed_by == Some(EventType::OrderCancelled);
            if rule == ship_by && !cancelled {
                self.metric(i.group, Metric::LateShipmentRate, i.deadline, !met);
            } else if rule == delivery && !cancelled {
                self.metric(i.group, Metric::OnTimeDeliveryRate, i.deadline, met);
            } else if rule == returns {
                self.metric(i.group, Metric::ReturnResponseOnTime, i.deadline, met);
            }
        }
        let day_after = i.started.plus(Span(DAY));
        if rule == reply
            && self.window.holds(i.started)
            && day_after <= e
            && closed_by != Some(EventType::MessageNoResponseNeeded)
        {
            let answered = matches!(closed, Some((t, EventType::MessageReplied)) if t <= day_after);
            self.metric(i.group, Metric::ContactResponse24h, i.started, answered);
        }
    }

    fn order(&mut self, o: &OrderFacts<'_>) {
        let (w, e) = (self.window, self.window.until);
        let first_confirm = o.confirms().filter(|c| c.0 <= e).min_by_key(|c| c.0);
        for (placed, group) in o.placements() {
            if placed > e || !w.holds(placed) {
                continue;
            }
            let before_shipping = |t: Millis| first_confirm.is_none_or(|c| t < c.0);
            let cancelled = o
                .cancels()
                .any(|(t, by_buyer)| !by_buyer && t <= e && t >= placed && before_shipping(t));
            self.metric(group, Metric::PreFulfillmentCancelRate, placed, cancelled);
        }
        if let Some((at, tracked, group)) = first_confirm {
            if w.holds(at) {
                let scanned = o.scans().any(|t| t >= at && t <= e);
                self.metric(group, Metric::ValidTrackingRate, at, tracked && scanned);
            }
        }
    }
}
