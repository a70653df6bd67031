//! The `[engine]`, `[[rules]]` and `[[checks]]` sections: raw TOML structs to the
//! engine's validated [`RuleSet`].
//!
//! # Ground rules
//!
//! * Every rule and check is checked against the event schema: every field it reads
//!   exists on the event types it reads it from, with the right kind; a deadline field is
//!   guaranteed present; leads are positive and distinct; names are fit for alert ids.
//! * A problem is returned as (place, problem) with the place spelt as in the file
//!   (`rules[ship_by].opens_on[0].when[1]`); the caller adds the file name.
//! * Calendars (`[calendars.NAME]`, contract 10.2) are checked whole before the rules
//!   that name them: the zone is one of the IANA database's, weekdays are `mon` to `sun`,
//!   dates are `YYYY-MM-DD`, working hours are `HH:MM` with `from` before `to`.
//! * An override (contract 10.1) is checked against every event type that opens its
//!   rule: a condition may only name a field each of them carries, and so may a `field`
//!   deadline (an opening event without that field opens nothing).

use std::collections::BTreeMap;

use std::sync::Arc;

use serde::Deserialize;

use super::calendars::Calendars;
use super::deadlines::{
    check_deadline_field, compile_deadline, compile_override, RawDeadline, RawOverride,
};
use super::Problem;
use crate::core::event::{Currency, Decimal, EventType, Field, Kind, Money, Presence, TYPE_COUNT};
use crate::core::rules::{
    Check, Condition, Expected, Opening, Rule, RuleId, RuleSet, Texts, TypeActions,
};
use crate::core::time::Span;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEngine {
    #[serde(default = "default_retention")]
    retention: String,
}

impl Default for RawEngine {
    fn default() -> Self {
        RawEngine {
            retention: default_retention(),
        }
    }
}

fn default_retention() -> String {
    "7d".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    name: String,
    #[serde(default)]
    #[allow(dead_code)] // documentation for people reading the file
    description: Option<String>,
    key: String,
    opens_on: Vec<RawOpening>,
    deadline: RawDeadline,
    #[serde(default)]
    warn_before: Vec<String>,
    closes_on: Vec<String>,
    severity: String,
    action: String,
    #[serde(default)]
    overrides: Vec<RawOverride>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOpening {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    when: Vec<RawCondition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCondition {
    field: String,
    equals: Option<toml::Value>,
    not_equals: Option<toml::Value>,
    present: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    on: String,
    #[serde(default = "default_check_key")]
    key: String,
    #[serde(default)]
    when: Vec<RawCondition>,
    #[serde(default)]
    order_total_at_least: BTreeMap<String, toml::Value>,
    severity: String,
    action: String,
}

fn default_check_key() -> String {
    "order_id".to_string()
}

/// Validates the rule sections and builds the rule set.
pub(super) fn compile(
    engine: &RawEngine,
    calendars: &Calendars,
    raw_rules: &[RawRule],
    raw_checks: &[RawCheck],
) -> Result<RuleSet, Problem> {
    let retention = span(&engine.retention, "engine.retention")?;
    if retention == Span::ZERO {
        return Err((
            "engine.retention".into(),
            "must be positive, e.g. \"7d\"".into(),
        ));
    }
    let mut by_type = vec![TypeActions::default(); TYPE_COUNT];
    let mut rules = Vec::with_capacity(raw_rules.len());
    for (index, r) in raw_rules.iter().enumerate() {
        let place = format!(
            "rules[{}]",
            if r.name.is_empty() {
                index.to_string()
            } else {
                r.name.clone()
            }
        );
        check_name(&r.name, &place, rules.iter().map(|x: &Rule| &*x.name))?;
        let id = RuleId::try_from(index)
            .map_err(|_| (place.clone(), "too many rules (at most 65535)".into()))?;
        rules.push(compile_rule(r, id, &place, calendars, &mut by_type)?);
    }
    let mut checks = Vec::with_capacity(raw_checks.len());
    for (index, c) in raw_checks.iter().enumerate() {
        let place = format!(
            "checks[{}]",
            if c.name.is_empty() {
                index.to_string()
            } else {
                c.name.clone()
            }
        );
        check_name(&c.name, &place, checks.iter().map(|x: &Check| &*x.name))?;
        let (event_type, check) = compile_check(c, &place)?;
        by_type[event_type.index()].checks.push(index as u16);
        checks.push(check);
    }
    Ok(RuleSet::new(rules, checks, retention, by_type).with_calendars(calendars.all()))
}

fn compile_rule(
    r: &RawRule,
    id: RuleId,
    place: &str,
    calendars: &Calendars,
    by_type: &mut [TypeActions],
) -> Result<Rule, Problem> {
    let key = field_named(&r.key, &format!("{place}.key"))?;
    if key.kind() != Kind::Text {
        return Err((
            format!("{place}.key"),
            format!(
                "`{}` is not a text field and cannot identify an instance",
                r.key
            ),
        ));
    }
    let deadline = compile_deadline(&r.deadline, calendars, &format!("{place}.deadline"))?;
    let warn_before = compile_leads(&r.warn_before, &format!("{place}.warn_before"))?;
    if r.opens_on.is_empty() || r.closes_on.is_empty() {
        return Err((
            place.to_string(),
            "needs at least one `opens_on` and one `closes_on` event type".into(),
        ));
    }
    let mut opened = Vec::new();
    for (i, o) in r.opens_on.iter().enumerate() {
        let at = format!("{place}.opens_on[{i}]");
        let event_type = event_type_named(&o.event_type, &format!("{at}.type"))?;
        require_field(event_type, key, &format!("{place}.key"))?;
        let when = compile_conditions(&o.when, event_type, &format!("{at}.when"))?;
        check_deadline_field(&deadline, event_type, &format!("{place}.deadline"))?;
        by_type[event_type.index()]
            .opens
            .push(Opening { rule: id, when });
        opened.push(event_type);
    }
    for (i, name) in r.closes_on.iter().enumerate() {
        let at = format!("{place}.closes_on[{i}]");
        let event_type = event_type_named(name, &at)?;
        require_field(event_type, key, &format!("{place}.key"))?;
        if opened.contains(&event_type) {
            return Err((
                at,
                format!("`{name}` both opens and closes this rule; pick one"),
            ));
        }
        by_type[event_type.index()].closes.push(id);
    }
    let texts = compile_texts(&r.severity, &r.action, place)?;
    if r.overrides.len() > 255 {
        return Err((
            format!("{place}.overrides"),
            "at most 255 overrides per rule".into(),
        ));
    }
    let overrides = r
        .overrides
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let at = format!("{place}.overrides[{i}]");
            compile_override(o, &opened, &texts, calendars, &at)
        })
        .collect::<Result<_, _>>()?;
    Ok(Rule {
        name: Arc::from(r.name.as_str()),
        key,
        deadline,
        warn_before,
        texts,
        overrides,
    })
}

fn compile_check(c: &RawCheck, place: &str) -> Result<(EventType, Check), Problem> {
    let event_type = event_type_named(&c.on, &format!("{place}.on"))?;
    let key = field_named(&c.key, &format!("{place}.key"))?;
    require_field(event_type, key, &format!("{place}.key"))?;
    if event_type.presence_of(key) != Some(Presence::Required) || key.kind() != Kind::Text {
        return Err((
            format!("{place}.key"),
            format!("`{}` must be a required text field of `{}`", c.key, c.on),
        ));
    }
    let when = compile_conditions(&c.when, event_type, &format!("{place}.when"))?;
    let mut order_total_at_least = Vec::new();
    for (currency, amount) in &c.order_total_at_least {
        let at = format!("{place}.order_total_at_least.{currency}");
        order_total_at_least.push(threshold(currency, amount, &at)?);
    }
    let texts = compile_texts(&c.severity, &c.action, place)?;
    let check = Check {
        name: Arc::from(c.name.as_str()),
        key,
        when,
        order_total_at_least,
        texts,
    };
    Ok((event_type, check))
}

fn threshold(currency: &str, amount: &toml::Value, at: &str) -> Result<Money, Problem> {
    let currency = Currency::parse(currency).ok_or_else(|| {
        (
            at.to_string(),
            format!("`{currency}` is not an ISO 4217 currency code such as EUR"),
        )
    })?;
    let text = match amount {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        other => {
            return Err((
                at.to_string(),
                format!(
                    "is {}, expected an amount such as \"750.00\"",
                    other.type_str()
                ),
            ))
        }
    };
    let amount = Decimal::parse(&text).ok_or_else(|| {
        (
            at.to_string(),
            format!("`{text}` is not a decimal amount such as \"750.00\""),
        )
    })?;
    if amount.0 < 0 {
        return Err((
            at.to_string(),
            format!("`{text}` is below zero; an order total is never negative, so give an amount of zero or more such as \"750.00\""),
        ));
    }
    Ok(Money { amount, currency })
}

pub(super) fn compile_leads(leads: &[String], place: &str) -> Result<Vec<Span>, Problem> {
    let mut spans = Vec::with_capacity(leads.len());
    for (i, lead) in leads.iter().enumerate() {
        let at = format!("{place}[{i}]");
        let s = span(lead, &at)?;
        if s == Span::ZERO {
            return Err((
                at,
                "a warning lead must be positive; the breach itself fires at the deadline".into(),
            ));
        }
        if spans.contains(&s) {
            return Err((at, format!("`{lead}` is listed twice")));
        }
        spans.push(s);
    }
    spans.sort_unstable_by(|a, b| b.cmp(a));
    Ok(spans)
}

pub(super) fn compile_conditions(
    raw: &[RawCondition],
    t: EventType,
    place: &str,
) -> Result<Vec<Condition>, Problem> {
    raw.iter()
        .enumerate()
        .map(|(i, c)| compile_condition(c, t, &format!("{place}[{i}]")))
        .collect()
}

fn compile_condition(c: &RawCondition, t: EventType, place: &str) -> Result<Condition, Problem> {
    let field = field_named(&c.field, &format!("{place}.field"))?;
    require_field(t, field, &format!("{place}.field"))?;
    match (&c.equals, &c.not_equals, c.present) {
        (Some(v), None, None) => Ok(Condition::Equals(field, expected(field, v, place)?)),
        (None, Some(v), None) => Ok(Condition::NotEquals(field, expected(field, v, place)?)),
        (None, None, Some(p)) => Ok(Condition::Present(field, p)),
        _ => Err((
            place.to_string(),
            "give exactly one of `equals`, `not_equals` or `present`".into(),
        )),
    }
}

fn expected(field: Field, v: &toml::Value, place: &str) -> Result<Expected, Problem> {
    match (field.kind(), v) {
        (Kind::Text, toml::Value::String(s)) => Ok(Expected::Text(s.trim().to_string())),
        (Kind::Flag, toml::Value::Boolean(b)) => Ok(Expected::Flag(*b)),
        (Kind::Text, _) | (Kind::Flag, _) => {
            let want = if field.kind() == Kind::Text {
                "a string"
            } else {
                "true or false"
            };
            Err((
                place.to_string(),
                format!("`{field}` compares with {want}, not {}", v.type_str()),
            ))
        }
        _ => Err((
            place.to_string(),
            format!("`{field}` can only be tested with `present`"),
        )),
    }
}

pub(super) fn compile_texts(severity: &str, action: &str, place: &str) -> Result<Texts, Problem> {
    if severity.trim().is_empty() || action.trim().is_empty() {
        return Err((
            place.to_string(),
            "`severity` and `action` must not be empty".into(),
        ));
    }
    Ok(Texts {
        severity: Arc::from(severity.trim()),
        action: Arc::from(action.trim()),
    })
}

/// Names go into alert ids (`{rule}:{key}:...`) and subjects (`{rule}/{key}`).
fn check_name<'a>(
    name: &str,
    place: &str,
    mut taken: impl Iterator<Item = &'a str>,
) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err((
            format!("{place}.name"),
            "use lower-case letters, digits and `_` only, e.g. `ship_by`".into(),
        ));
    }
    if taken.any(|n| n == name) {
        return Err((format!("{place}.name"), format!("`{name}` is used twice")));
    }
    Ok(())
}

pub(super) fn span(text: &str, place: &str) -> Result<Span, Problem> {
    Span::parse(text).map_err(|e| (place.to_string(), e.0))
}

fn event_type_named(name: &str, place: &str) -> Result<EventType, Problem> {
    EventType::from_name(name).ok_or_else(|| {
        let known: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        (
            place.to_string(),
            format!(
                "unknown event type `{name}`; known types: {}",
                known.join(", ")
            ),
        )
    })
}

pub(super) fn field_named(name: &str, place: &str) -> Result<Field, Problem> {
    Field::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Field::ALL.iter().map(|f| f.as_str()).collect();
        (
            place.to_string(),
            format!(
                "unknown field `{name}`; the event fields are {}",
                known.join(", ")
            ),
        )
    })
}

fn require_field(t: EventType, f: Field, place: &str) -> Result<(), Problem> {
    match t.presence_of(f) {
        Some(_) => Ok(()),
        None => Err((
            place.to_string(),
            format!("event type `{t}` has no field `{f}`"),
        )),
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
