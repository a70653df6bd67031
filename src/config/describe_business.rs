//! `check-config`'s words for calendars, business-time deadlines and overrides
//! (contract section 10).

use std::fmt::{self, Formatter};

use jiff::civil::Weekday;

use super::describe::{list, when, words};
use crate::core::calendar::Calendar;
use crate::core::rules::{Deadline, Override, Rule};

/// `calendar NL: ...` and its holidays.
pub(super) fn calendar_lines(f: &mut Formatter<'_>, c: &Calendar) -> fmt::Result {
    writeln!(f, "calendar {}: local time of {}", c.name, c.zone_name())?;
    let days: Vec<Weekday> = c.working_days().collect();
    writeln!(f, "  working days: {}", weekdays(&days))?;
    match c.working_hours() {
        Some(h) => writeln!(
            f,
            "  working hours: {} to {} local time on each business day",
            h.from(),
            h.to()
        )?,
        None => writeln!(f, "  no working hours (business-day deadlines only)")?,
    }
    let holidays: Vec<String> = c
        .holidays()
        .map(|d| format!("{d} {}", &format!("{:?}", d.weekday())[..3]))
        .collect();
    match holidays.as_slice() {
        [] => writeln!(f, "  no holidays"),
        h => writeln!(f, "  {} holidays: {}", h.len(), h.join(", ")),
    }
}

/// `Monday to Friday`, or a list when the days are not one run.
fn weekdays(days: &[Weekday]) -> String {
    let name = |d: &Weekday| format!("{d:?}");
    let offsets: Vec<i8> = days.iter().map(|d| d.to_monday_zero_offset()).collect();
    let one_run = offsets.windows(2).all(|w| w[1] == w[0] + 1);
    match days {
        [first, .., last] if one_run && days.len() > 2 => {
            format!("{} to {}", name(first), name(last))
        }
        _ => list(&days.iter().map(name).collect::<Vec<_>>(), "and"),
    }
}

/// A deadline in words, as it reads after "deadline: ".
pub(super) fn deadline_words(d: &Deadline) -> String {
    match d {
        Deadline::After(span) => format!("{} after the opening event", words(*span)),
        Deadline::Field(field) => format!("the opening event's {field}"),
        Deadline::BusinessDays { days, calendar } => format!(
            "the end of the {} business day after the opening day, on calendar {} ({} local time)",
            ordinal(*days),
            calendar.name,
            calendar.zone_name()
        ),
        Deadline::BusinessHours { span, calendar } => format!(
            "{} of working time after the opening event, on calendar {} ({} local time)",
            words(*span),
            calendar.name,
            calendar.zone_name()
        ),
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, x) if x != 11 => "st",
        (2, x) if x != 12 => "nd",
        (3, x) if x != 13 => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// One override: when it applies and what it changes.
pub(super) fn override_lines(
    f: &mut Formatter<'_>,
    rule: &Rule,
    n: usize,
    o: &Override,
) -> fmt::Result {
    if n == 0 {
        writeln!(
            f,
            "  overrides, tried in order; the first whose conditions hold applies:"
        )?;
    }
    let condition = match when(&o.when) {
        c if c.is_empty() => " always".to_string(),
        c => c,
    };
    writeln!(f, "  {}. for opening events{condition}:", n + 1)?;
    writeln!(f, "    deadline: {}", deadline_words(&o.deadline))?;
    match &o.warn_before {
        None => writeln!(f, "    warnings as the rule's")?,
        Some(leads) if leads.is_empty() => writeln!(f, "    no warnings")?,
        Some(leads) => {
            let leads: Vec<String> = leads.iter().map(|l| words(*l)).collect();
            writeln!(
                f,
                "    warnings: {} before the deadline",
                list(&leads, "and")
            )?
        }
    }
    if o.texts != rule.texts {
        writeln!(
            f,
            "    breach severity {}; action: {}",
            o.texts.severity, o.texts.action
        )?;
    }
    Ok(())
}
