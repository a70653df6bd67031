//! Model-based property test: random event sequences (reordered, duplicated, ids reused
//! across sources, equal times) run through the engine and through a naive reference
//! model written straight from contract section 4; the alerts must agree.
//!
//! The model keeps every point of every instance in a plain list and scans it, so its
//! only claim is being obviously right. It reads the shipped rules' tables (which event
//! opens or closes what, under which conditions) from the same `RuleSet`: the
//! configuration is not what is under test here, the timing is. A second run uses the
//! spec's marketplace pack: the model picks the first override whose conditions hold
//! (contract 10.1) and takes its deadline from [`Deadline::at`] (the calendar
//! arithmetic has its own exhaustive tests), its leads and its action, which every
//! compared alert carries.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use proptest::prelude::*;
use sla_timerd::config::load_rules;
use sla_timerd::core::alert::{Alert, AlertKind, SlaStage};
use sla_timerd::core::engine::{Engine, PartitionId};
use sla_timerd::core::event::{
    Currency, Decimal, Event, EventType, Field, Fields, Input, Money, Unknown, Value,
};
use sla_timerd::core::rules::{Deadline, RuleSet};
use sla_timerd::core::time::{Millis, Span};

const BASE: i64 = 1_793_000_000_000; // 2026-10-26
const HALF_HOUR: i64 = 1_800_000;

/// One alert as compared: (id, time, outcome or "").
type Seen = (String, i64, &'static str);

#[derive(Debug)]
struct Instance {
    /// The action its alerts carry (the override's, else the rule's).
    action: String,
    rule: usize,
    key: String,
    opened_by: String,
    s: i64,
    d: i64,
    /// Pending points: (time, alert id suffix).
    points: Vec<(i64, String)>,
    emitted: bool,
    open: bool,
}

#[derive(Default)]
struct Model {
    clock: Option<i64>,
    seen: HashSet<(String, String)>,
    last_close: HashMap<(usize, String), i64>,
    instances: Vec<Instance>,
    emitted: HashSet<String>,
    totals: HashMap<String, Option<Money>>,
    out: Vec<Seen>,
}

impl Model {
    /// Emits an alert once per id; the compared id carries the alert's action.
    fn emit(&mut self, id: String, time: i64, outcome: &'static str, action: &str) {
        if self.emitted.insert(id.clone()) {
            self.out.push((format!("{id}#{action}"), time, outcome));
        }
    }

    /// Fires every pending point with time < bound, earliest first.
    fn fire_before(&mut self, rules: &RuleSet, bound: i64) {
        let mut due: Vec<(i64, usize, usize)> = Vec::new();
        for (i, inst) in self.instances.iter().enumerate().filter(|(_, x)| x.open) {
            for (j, (t, _)) in inst.points.iter().enumerate() {
                if *t < bound {
                    due.push((*t, i, j));
                }
            }
        }
        due.sort();
        for (t, i, j) in &due {
            let inst = &mut self.instances[*i];
            inst.emitted = true;
            let id = format!(
                "{}:{}:{}:{}",
                rules.rules[inst.rule].name, inst.key, inst.opened_by, inst.points[*j].1
            );
            let action = inst.action.clone();
            self.emit(id, *t, "", &action);
        }
        for inst in &mut self.instances {
            inst.points.retain(|(t, _)| *t >= bound);
        }
    }

    fn take(&mut self, rules: &RuleSet, input: &Input<'_>) {
        let (source, id) = input.source_and_id();
        if !self.seen.insert((source.to_string(), id.to_string())) {
            return;
        }
        let clock = self.clock.map_or(input.time().0, |c| c.max(input.time().0));
        self.clock = Some(clock);
        self.fire_before(rules, clock);
        if let Input::Known(e) = input {
            self.apply(rules, e);
        }
    }

    fn apply(&mut self, rules: &RuleSet, e: &Event<'_>) {
        let actions = rules.actions(e.event_type);
        for &c in &actions.checks {
            let check = &rules.checks[c as usize];
            let mut violated = check.when.iter().all(|w| w.holds(&e.data));
            if check.uses_order_totals() {
                let total = e
                    .data
                    .text(Field::OrderId)
                    .and_then(|o| self.totals.get(o).copied().flatten());
                violated &= check.total_reaches_threshold(total);
            }
            if violated {
                let id = format!("{}:{}", check.name, e.id);
                self.emit(id, e.time.0, "", &check.texts.action);
            }
        }
        if e.event_type == EventType::OrderPlaced {
            let order = e.data.text(Field::OrderId).unwrap().to_string();
            self.totals.insert(order, e.data.money(Field::OrderTotal));
        }
        for &r in &actions.closes {
            self.close(rules, r as usize, e);
        }
        for o in &actions.opens {
            if o.when.iter().all(|w| w.holds(&e.data)) {
                self.open(rules, o.rule as usize, e);
            }
        }
    }

    fn close(&mut self, rules: &RuleSet, rule: usize, e: &Event<'_>) {
        let Some(key) = e.data.text(rules.rules[rule].key) else {
            return;
        };
        let t = e.time.0;
        let l = self.last_close.entry((rule, key.to_string())).or_insert(t);
        *l = (*l).max(t);
        let open = self
            .instances
            .iter()
            .position(|x| x.open && x.rule == rule && x.key == key);
        let Some(i) = open.filter(|&i| t >= self.instances[i].s) else {
            return;
        };
        let inst = &mut self.instances[i];
        inst.open = false;
        if inst.emitted {
            let id = format!(
                "{}:{}:{}:resolved",
                rules.rules[rule].name, key, inst.opened_by
            );
            let outcome = if t <= inst.d { "met" } else { "late" };
            let action = inst.action.clone();
            self.emit(id, t, outcome, &action);
        }
    }

    fn open(&mut self, rules: &RuleSet, rule: usize, e: &Event<'_>) {
        let r = &rules.rules[rule];
        let Some(key) = e.data.text(r.key) else {
            return;
        };
        let s = e.time.0;
        if self
            .instances
            .iter()
            .any(|x| x.open && x.rule == rule && x.key == key)
        {
            return;
        }
        if self
            .last_close
            .get(&(rule, key.to_string()))
            .is_some_and(|l| s <= *l)
        {
            return;
        }
        let chosen = r
            .overrides
            .iter()
            .find(|o| o.when.iter().all(|c| c.holds(&e.data)));
        let (deadline, leads, action) = match chosen {
            Some(o) => (
                &o.deadline,
                o.warn_before.as_ref().unwrap_or(&r.warn_before),
                &o.texts.action,
            ),
            None => (&r.deadline, &r.warn_before, &r.texts.action),
        };
        let d = match deadline {
            Deadline::After(span) => s + span.as_millis(),
            Deadline::Field(f) => match e.data.instant(*f) {
                Some(d) => d.0,
                None => return,
            },
            business => business.at(e.time, &e.data).unwrap().0,
        };
        let points = points(leads, s, d);
        let opened_by = e.id.to_string();
        self.instances.push(Instance {
            action: action.to_string(),
            rule,
            key: key.to_string(),
            opened_by,
            s,
            d,
            points,
            emitted: false,
            open: true,
        });
    }
}

/// Contract 4.2, literally.
fn points(leads: &[Span], s: i64, d: i64) -> Vec<(i64, String)> {
    let mut out = vec![(d.max(s), "breach".to_string())];
    if d <= s {
        return out;
    }
    let warnings: Vec<(i64, i64)> = leads
        .iter()
        .map(|l| (d - l.as_millis(), l.as_millis()))
        .collect();
    let past_smallest = warnings
        .iter()
        .filter(|(t, _)| *t <= s)
        .map(|(_, lead)| *lead)
        .min();
    for (t, lead) in warnings {
        let keep = t > s || Some(lead) == past_smallest;
        if keep {
            out.push((t.max(s), format!("warning-{}", lead / 1000)));
        }
    }
    out
}

#[derive(Clone, Debug)]
struct Spec {
    source: u8,
    id: u8,
    kind: u8,
    key: u8,
    time: i64,
    offset: i64,
    flags: u8,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0u8..2,
        0u8..40,
        0u8..19,
        0u8..3,
        0i64..(5 * 48),
        -6i64..110,
        any::<u8>(),
    )
        .prop_map(|(source, id, kind, key, slot, offset, flags)| Spec {
            source,
            id,
            kind,
            key,
            time: BASE + slot * HALF_HOUR,
            offset,
            flags,
        })
}

const KINDS: [&str; 18] = [
    "customer_message.received",
    "customer_message.replied",
    "customer_message.no_response_needed",
    "order.placed",
    "order.cancelled",
    "order.out_of_stock",
    "shipment.confirmed",
    "shipment.carrier_scanned",
    "shipment.delivered",
    "return.requested",
    "return.authorized",
    "return.closed",
    "return.item_received",
    "refund.requested",
    "refund.issued",
    "order.placed",
    "customer_message.received",
    "shipment.confirmed",
];

/// Builds an input from a spec; kind 18 is an unknown type.
fn input(s: &Spec) -> Input<'static> {
    let source = ["a", "b"][s.source as usize].into();
    let id = format!("e{}", s.id).into();
    let time = Millis(s.time);
    let Some(name) = KINDS.get(s.kind as usize) else {
        return Input::Unknown(Unknown {
            source,
            id,
            type_name: "inventory.adjusted".into(),
            time,
        });
    };
    let event_type = EventType::from_name(name).unwrap();
    let mut data = Fields::default();
    let key = format!("K{}", s.key);
    let bit = |n: u8| s.flags & (1 << n) != 0;
    data.set(Field::ThreadId, Value::Text(key.clone().into()));
    data.set(Field::OrderId, Value::Text(key.clone().into()));
    data.set(Field::ReturnId, Value::Text(format!("R{}", s.key).into()));
    data.set(Field::ItemReturnRequired, Value::Flag(bit(0)));
    data.set(
        Field::ReturnLabelProvided,
        if bit(1) {
            Value::Flag(bit(2))
        } else {
            Value::Absent
        },
    );
    data.set(
        Field::LatestShipDate,
        Value::Instant(Millis(s.time + s.offset * HALF_HOUR)),
    );
    if bit(3) {
        data.set(
            Field::LatestDeliveryDate,
            Value::Instant(Millis(s.time + (s.offset + 30) * HALF_HOUR)),
        );
    }
    data.set(
        Field::FulfillmentChannel,
        Value::Text(if bit(4) { "AFN" } else { "MFN" }.into()),
    );
    if bit(5) {
        data.set(Field::TrackingNumber, Value::Text("TRK".into()));
    }
    data.set(Field::SignatureConfirmation, Value::Flag(bit(6)));
    // The marketplace pack's overrides select on these.
    if let Some(m) = ["NL", "US", "DE"].get(usize::from(s.id % 4)) {
        data.set(Field::Marketplace, Value::Text((*m).into()));
    }
    if s.id % 8 < 4 {
        data.set(Field::SellerId, Value::Text("A1SELLER".into()));
    }
    if bit(7) {
        let amount = Decimal::parse(if bit(2) { "750" } else { "100" }).unwrap();
        data.set(
            Field::OrderTotal,
            Value::Money(Money {
                amount,
                currency: Currency::parse("EUR").unwrap(),
            }),
        );
    }
    Input::Known(Event {
        source,
        id,
        event_type,
        time,
        data,
    })
}

fn run_engine(rules: &Arc<RuleSet>, inputs: &[Input<'_>], until: Option<i64>) -> Vec<Seen> {
    let mut engine = Engine::new(rules.clone());
    let mut out = Vec::new();
    for i in inputs {
        engine.take(PartitionId::REPLAY, i, &mut out);
    }
    engine.finish(PartitionId::REPLAY, until.map(Millis), &mut out);
    out.into_iter()
        .map(|a| {
            (
                format!("{}#{}", a.id(), a.texts.action),
                a.time.0,
                outcome(&a),
            )
        })
        .collect()
}

fn outcome(a: &Alert) -> &'static str {
    match &a.kind {
        AlertKind::Sla {
            stage: SlaStage::Resolved(outcome),
            ..
        } => outcome.as_str(),
        _ => "",
    }
}

fn run_model(rules: &RuleSet, inputs: &[Input<'_>], until: Option<i64>) -> Vec<Seen> {
    let mut model = Model::default();
    for i in inputs {
        model.take(rules, i);
    }
    if let Some(u) = until.or(model.clock) {
        model.fire_before(rules, u + 1);
    }
    model.out
}

/// Alerts emitted between two events may come out in any order among equal times; the
/// comparison sorts each run of equal-time alerts.
fn canonical(mut alerts: Vec<Seen>) -> Vec<Seen> {
    alerts.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    alerts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_agrees_with_the_reference_model(
        specs in prop::collection::vec(spec(), 1..60),
        until_extra in prop::option::of(0i64..(4 * 48)),
    ) {
        let rules = Arc::new(load_rules(None).unwrap());
        agree(&rules, &specs, until_extra)?;
    }

    #[test]
    fn the_engine_agrees_with_the_reference_model_under_overrides_and_calendars(
        specs in prop::collection::vec(spec(), 1..60),
        until_extra in prop::option::of(0i64..(4 * 48)),
    ) {
        let pack = include_str!("../data/marketplace.toml");
        let rules = Arc::new(sla_timerd::config::parse_rules(pack, "marketplace.toml").unwrap());
        agree(&rules, &specs, until_extra)?;
    }
}

fn agree(
    rules: &Arc<RuleSet>,
    specs: &[Spec],
    until_extra: Option<i64>,
) -> Result<(), TestCaseError> {
    {
        let inputs: Vec<_> = specs.iter().map(input).collect();
        let last = specs.iter().map(|s| s.time).max().unwrap();
        let until = until_extra.map(|x| last + x * HALF_HOUR);
        let engine = run_engine(rules, &inputs, until);
        let model = run_model(rules, &inputs, until);
        prop_assert_eq!(canonical(engine), canonical(model));
    }
    Ok(())
}
