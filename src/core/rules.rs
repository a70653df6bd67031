//! Validated SLA rules and checks, as the engine uses them.
//!
//! # Ground rules
//!
//! * A [`RuleSet`] can only be built by the config loader (`crate::config`), which checks
//!   every rule against the event schema: every field a rule reads exists on the event
//!   types it reads it from, with the right kind. The engine therefore never meets a rule
//!   that asks for something an event cannot have; where a value is still absent at run
//!   time (an optional field), the rule simply does not apply to that event.
//! * Warning leads are positive, distinct and sorted largest first, so a rule's points in
//!   time order are: warnings by index, then the breach.
//! * For each event type the set lists what it does ([`TypeActions`]): the rules it
//!   closes, the rules it opens (under conditions) and the checks it runs, so applying an
//!   event is a table lookup.

use std::sync::Arc;

use super::event::{EventType, Field, Fields, Money, Value, TYPE_COUNT};
use super::time::{Millis, Span};

/// Index of a rule in [`RuleSet::rules`].
pub type RuleId = u16;

/// Where a rule's deadline comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Deadline {
    /// The opening event's `time` plus a span.
    After(Span),
    /// A timestamp field of the opening event.
    Field(Field),
}

/// A test on one field of one event.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// The field is present (non-empty) when `true`, absent when `false`.
    Present(Field, bool),
    /// The field is present and equal to the value.
    Equals(Field, Expected),
    /// The field is absent or differs from the value.
    NotEquals(Field, Expected),
}

/// A value a condition compares with.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    Text(String),
    Flag(bool),
}

impl Condition {
    pub fn holds(&self, data: &Fields<'_>) -> bool {
        match self {
            Condition::Present(f, want) => !matches!(data.get(*f), Value::Absent) == *want,
            Condition::Equals(f, expected) => equals(data.get(*f), expected),
            Condition::NotEquals(f, expected) => !equals(data.get(*f), expected),
        }
    }
}

fn equals(value: &Value<'_>, expected: &Expected) -> bool {
    match (value, expected) {
        (Value::Text(t), Expected::Text(e)) => t.trim() == e,
        (Value::Flag(b), Expected::Flag(e)) => b == e,
        _ => false,
    }
}

/// The texts an alert carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Texts {
    /// Severity of a breach or a violation (`"critical"`, `"high"`, ...).
    pub severity: Arc<str>,
    /// What the seller should do, in one sentence.
    pub action: Arc<str>,
}

/// An SLA rule (contract section 3, first table).
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: Arc<str>,
    /// The field whose value identifies an instance, present on every open and close type.
    pub key: Field,
    pub deadline: Deadline,
    /// Positive, distinct, largest first.
    pub warn_before: Vec<Span>,
    pub texts: Texts,
}

impl Rule {
    /// The deadline an opening event sets, or `None` when its deadline field is absent.
    pub fn deadline_for(&self, time: Millis, data: &Fields<'_>) -> Option<Millis> {
        match self.deadline {
            Deadline::After(span) => Some(time.plus(span)),
            Deadline::Field(field) => data.instant(field),
        }
    }
}

/// A check evaluated on single events (contract section 3, second table).
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub name: Arc<str>,
    /// The field that becomes the alert's `key` (the order id by default).
    pub key: Field,
    /// All must hold for the check to be violated.
    pub when: Vec<Condition>,
    /// When non-empty, the check is violated only if the order's known total is at or
    /// above the threshold for its currency; other currencies and unknown totals pass.
    pub order_total_at_least: Vec<Money>,
    pub texts: Texts,
}

impl Check {
    pub fn uses_order_totals(&self) -> bool {
        !self.order_total_at_least.is_empty()
    }

    /// Whether `total` (the order's latest known total) reaches this check's threshold.
    pub fn total_reaches_threshold(&self, total: Option<Money>) -> bool {
        let Some(total) = total else { return false };
        self.order_total_at_least
            .iter()
            .any(|t| t.currency == total.currency && total.amount >= t.amount)
    }
}

/// An opening of a rule by an event type, under conditions.
#[derive(Clone, Debug, PartialEq)]
pub struct Opening {
    pub rule: RuleId,
    pub when: Vec<Condition>,
}

/// What events of one type do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TypeActions {
    pub closes: Vec<RuleId>,
    pub opens: Vec<Opening>,
    pub checks: Vec<u16>,
}

/// The validated rules and checks, indexed by event type.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub checks: Vec<Check>,
    /// How long event ids, `L` values and order totals are remembered, in clock time.
    pub retention: Span,
    by_type: Vec<TypeActions>,
    /// Whether any check needs order totals remembered from `order.placed`.
    pub remembers_order_totals: bool,
}

impl RuleSet {
    /// Builds the type index. Only the config loader calls this, after validation.
    pub(crate) fn new(
        rules: Vec<Rule>,
        checks: Vec<Check>,
        retention: Span,
        by_type: Vec<TypeActions>,
    ) -> RuleSet {
        assert_eq!(by_type.len(), TYPE_COUNT, "one TypeActions per event type");
        let remembers_order_totals = checks.iter().any(Check::uses_order_totals);
        RuleSet {
            rules,
            checks,
            retention,
            by_type,
            remembers_order_totals,
        }
    }

    pub fn actions(&self, event_type: EventType) -> &TypeActions {
        &self.by_type[event_type.index()]
    }

    pub fn rule(&self, id: RuleId) -> &Rule {
        &self.rules[id as usize]
    }
}
