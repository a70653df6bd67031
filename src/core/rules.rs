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
//! * A rule's overrides (contract 10.1) are tried in file order on the opening event; the
//!   first whose conditions all hold gives the instance its deadline and, where it has
//!   them, its warning leads and texts. Which one applied is the instance's [`Profile`],
//!   kept with it, so a breach and a resolution use the texts the instance opened with.

use std::sync::Arc;

use super::calendar::Calendar;
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
    /// The start of the day after the n-th business day after the opening day.
    BusinessDays { days: u32, calendar: Arc<Calendar> },
    /// The instant the working time since the opening adds up to the span.
    BusinessHours { span: Span, calendar: Arc<Calendar> },
}

impl Deadline {
    /// The deadline an opening event at `time` sets, or `None` when its deadline field
    /// is absent (contract 10.2 for the business-time forms, see [`Calendar`]).
    pub fn at(&self, time: Millis, data: &Fields<'_>) -> Option<Millis> {
        match self {
            Deadline::After(span) => Some(time.plus(*span)),
            Deadline::Field(field) => data.instant(*field),
            Deadline::BusinessDays { days, calendar } => {
                Some(calendar.after_business_days(time, *days))
            }
            Deadline::BusinessHours { span, calendar } => {
                Some(calendar.after_business_hours(time, *span))
            }
        }
    }
}

/// Which variant of its rule an instance opened with: 0 for the rule itself, `i + 1`
/// for its override `i`.
pub type Profile = u8;

/// The rule itself, no override.
pub const BASE_PROFILE: Profile = 0;

/// An override of a rule for the opening events its conditions select (contract 10.1).
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// All must hold on the opening event; empty always holds.
    pub when: Vec<Condition>,
    pub deadline: Deadline,
    /// The override's leads, positive, distinct, largest first; `None` keeps the rule's.
    pub warn_before: Option<Vec<Span>>,
    /// The rule's texts with the override's severity and action where it gives them.
    pub texts: Texts,
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
    /// Tried in order on the opening event; at most 255.
    pub overrides: Vec<Override>,
}

impl Rule {
    /// The profile an opening event selects: its first override whose conditions all
    /// hold, else the rule itself.
    pub fn profile_for(&self, data: &Fields<'_>) -> Profile {
        self.overrides
            .iter()
            .position(|o| o.when.iter().all(|c| c.holds(data)))
            .map_or(BASE_PROFILE, |i| (i + 1) as Profile)
    }

    fn overridden(&self, profile: Profile) -> Option<&Override> {
        (profile as usize)
            .checked_sub(1)
            .and_then(|i| self.overrides.get(i))
    }

    /// The deadline of an instance of this profile opened at `time`, or `None` when its
    /// deadline field is absent.
    pub fn deadline_for(
        &self,
        profile: Profile,
        time: Millis,
        data: &Fields<'_>,
    ) -> Option<Millis> {
        match self.overridden(profile) {
            Some(o) => o.deadline.at(time, data),
            None => self.deadline.at(time, data),
        }
    }

    /// The warning leads of a profile, largest first.
    pub fn leads(&self, profile: Profile) -> &[Span] {
        self.overridden(profile)
            .and_then(|o| o.warn_before.as_deref())
            .unwrap_or(&self.warn_before)
    }

    /// The texts of a profile. A profile the configuration no longer has (an instance
    /// restored under a changed configuration) gets the rule's own.
    pub fn texts(&self, profile: Profile) -> &Texts {
        self.overridden(profile).map_or(&self.texts, |o| &o.texts)
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
    /// The configured calendars, in name order (for `check-config`).
    pub calendars: Vec<Arc<Calendar>>,
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
            calendars: Vec::new(),
        }
    }

    /// The same rules, listing the calendars they were given.
    pub(crate) fn with_calendars(mut self, calendars: Vec<Arc<Calendar>>) -> RuleSet {
        self.calendars = calendars;
        self
    }

    pub fn actions(&self, event_type: EventType) -> &TypeActions {
        &self.by_type[event_type.index()]
    }

    pub fn rule(&self, id: RuleId) -> &Rule {
        &self.rules[id as usize]
    }
}
