//! Deadlines and overrides of a rule (contract 10.1 and 10.2): the four deadline forms,
//! the calendar a business-time form names, and overrides checked against every event
//! type that opens their rule.

use std::sync::Arc;

use serde::Deserialize;

use super::calendars::Calendars;
use super::rules::{compile_conditions, compile_leads, field_named, span, RawCondition};
use super::Problem;
use crate::core::event::{EventType, Kind};
use crate::core::rules::{Deadline, Override, Texts};
use crate::core::time::Span;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOverride {
    #[serde(default)]
    when: Vec<RawCondition>,
    deadline: RawDeadline,
    warn_before: Option<Vec<String>>,
    severity: Option<String>,
    action: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeadline {
    after: Option<String>,
    field: Option<String>,
    business_days: Option<i64>,
    business_hours: Option<String>,
    calendar: Option<String>,
}

/// An override, checked against every event type that opens its rule.
pub(super) fn compile_override(
    o: &RawOverride,
    opened: &[EventType],
    rule_texts: &Texts,
    calendars: &Calendars,
    place: &str,
) -> Result<Override, Problem> {
    let mut when = Vec::new();
    for &t in opened {
        when = compile_conditions(&o.when, t, &format!("{place}.when"))?;
    }
    let deadline = compile_deadline(&o.deadline, calendars, &format!("{place}.deadline"))?;
    for &t in opened {
        check_deadline_field(&deadline, t, &format!("{place}.deadline"))?;
    }
    let warn_before = match &o.warn_before {
        Some(leads) => Some(compile_leads(leads, &format!("{place}.warn_before"))?),
        None => None,
    };
    let severity = match &o.severity {
        Some(s) => non_empty(s, &format!("{place}.severity"))?,
        None => rule_texts.severity.clone(),
    };
    let action = match &o.action {
        Some(a) => non_empty(a, &format!("{place}.action"))?,
        None => rule_texts.action.clone(),
    };
    Ok(Override {
        when,
        deadline,
        warn_before,
        texts: Texts { severity, action },
    })
}

fn non_empty(text: &str, place: &str) -> Result<Arc<str>, Problem> {
    if text.trim().is_empty() {
        return Err((
            place.to_string(),
            "must not be empty; leave it out to keep the rule's".into(),
        ));
    }
    Ok(Arc::from(text.trim()))
}

/// Bounds that keep the calendar walk at opening short (about three years of days).
const MAX_BUSINESS_DAYS: u32 = 1000;
const MAX_BUSINESS_HOURS: Span = Span(10_000 * 3_600_000);

pub(super) fn compile_deadline(
    d: &RawDeadline,
    calendars: &Calendars,
    place: &str,
) -> Result<Deadline, Problem> {
    let given = [
        d.after.is_some(),
        d.field.is_some(),
        d.business_days.is_some(),
        d.business_hours.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err((
            place.to_string(),
            "give exactly one of `after = \"48h\"`, `field = \"latest_ship_date\"`, \
             `business_days = 2` or `business_hours = \"8h\"` (the last two with a `calendar`)"
                .into(),
        ));
    }
    let business = d.business_days.is_some() || d.business_hours.is_some();
    if let (Some(_), false) = (&d.calendar, business) {
        return Err((
            format!("{place}.calendar"),
            "a calendar goes only with `business_days` or `business_hours`".into(),
        ));
    }
    if let Some(after) = &d.after {
        return Ok(Deadline::After(span(after, &format!("{place}.after"))?));
    }
    if let Some(field) = &d.field {
        let f = field_named(field, &format!("{place}.field"))?;
        if f.kind() != Kind::Instant {
            return Err((
                format!("{place}.field"),
                format!("`{field}` is not a timestamp field"),
            ));
        }
        return Ok(Deadline::Field(f));
    }
    let Some(name) = &d.calendar else {
        return Err((
            format!("{place}.calendar"),
            format!(
                "a business-time deadline needs a calendar, e.g. `calendar = \"NL\"`; {}",
                calendars.known()
            ),
        ));
    };
    let calendar = calendars.get(name).ok_or_else(|| {
        (
            format!("{place}.calendar"),
            format!("unknown calendar `{name}`; {}", calendars.known()),
        )
    })?;
    if let Some(days) = d.business_days {
        let days = u32::try_from(days)
            .ok()
            .filter(|n| (1..=MAX_BUSINESS_DAYS).contains(n))
            .ok_or_else(|| {
                (
                    format!("{place}.business_days"),
                    format!(
                        "`{days}` business days: give a whole number from 1 to {MAX_BUSINESS_DAYS}"
                    ),
                )
            })?;
        return Ok(Deadline::BusinessDays { days, calendar });
    }
    let text = d.business_hours.as_deref().unwrap_or_default();
    let at = format!("{place}.business_hours");
    let hours = span(text, &at)?;
    if hours == Span::ZERO || hours > MAX_BUSINESS_HOURS {
        return Err((
            at,
            "must be positive and at most 10000h, e.g. \"8h\"".into(),
        ));
    }
    if calendar.working_hours().is_none() {
        return Err((
            format!("{place}.calendar"),
            format!("calendar `{name}` has no working hours; add `working_hours = {{ from = \"09:00\", to = \"17:00\" }}` to [calendars.{name}], or count in `business_days`"),
        ));
    }
    Ok(Deadline::BusinessHours {
        span: hours,
        calendar,
    })
}

/// A field deadline must name a timestamp field the opening event type carries; an
/// opening event without it opens nothing (contract 10.2).
pub(super) fn check_deadline_field(d: &Deadline, t: EventType, place: &str) -> Result<(), Problem> {
    let Deadline::Field(f) = *d else {
        return Ok(());
    };
    if t.presence_of(f).is_some() {
        return Ok(());
    }
    Err((
        format!("{place}.field"),
        format!("event type `{t}` has no field `{f}`; name a timestamp field it carries"),
    ))
}

#[cfg(test)]
#[path = "deadlines_tests.rs"]
mod tests;
