//! The `[calendars.NAME]` sections (contract 10.2): raw TOML to validated
//! [`Calendar`]s, each problem with its place (`calendars.US.holidays[2]`) and the fix.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::Problem;
use crate::core::calendar::{
    parse_date, parse_weekday, Calendar, CalendarError, MinuteOfDay, WorkingHours,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCalendar {
    time_zone: String,
    #[serde(default = "default_working_days")]
    working_days: Vec<String>,
    working_hours: Option<RawWorkingHours>,
    #[serde(default)]
    holidays: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkingHours {
    from: String,
    to: String,
}

fn default_working_days() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri"]
        .map(String::from)
        .to_vec()
}

/// The validated calendars, by name.
#[derive(Debug, Default)]
pub(super) struct Calendars(BTreeMap<String, Arc<Calendar>>);

impl Calendars {
    pub fn get(&self, name: &str) -> Option<Arc<Calendar>> {
        self.0.get(name).cloned()
    }

    /// The names defined, for an error message.
    pub fn known(&self) -> String {
        if self.0.is_empty() {
            return "no calendar is defined: add a [calendars.NAME] section".into();
        }
        let names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        format!("defined calendars: {}", names.join(", "))
    }

    pub fn all(&self) -> Vec<Arc<Calendar>> {
        self.0.values().cloned().collect()
    }
}

pub(super) fn compile(raw: &BTreeMap<String, RawCalendar>) -> Result<Calendars, Problem> {
    let mut out = BTreeMap::new();
    for (name, c) in raw {
        let place = format!("calendars.{name}");
        out.insert(name.clone(), Arc::new(compile_one(name, c, &place)?));
    }
    Ok(Calendars(out))
}

fn compile_one(name: &str, c: &RawCalendar, place: &str) -> Result<Calendar, Problem> {
    if name.trim().is_empty() || name.trim() != name {
        return Err((
            place.to_string(),
            "a calendar name must be non-empty, without surrounding spaces".into(),
        ));
    }
    let mut days = Vec::new();
    for (i, d) in c.working_days.iter().enumerate() {
        let at = format!("{place}.working_days[{i}]");
        let day = parse_weekday(d).ok_or_else(|| {
            (
                at.clone(),
                format!("unknown weekday `{d}`; write mon, tue, wed, thu, fri, sat or sun"),
            )
        })?;
        if days.contains(&day) {
            return Err((at, format!("`{d}` is listed twice")));
        }
        days.push(day);
    }
    let working_hours = match &c.working_hours {
        None => None,
        Some(h) => Some(working_hours(h, &format!("{place}.working_hours"))?),
    };
    let mut holidays = Vec::with_capacity(c.holidays.len());
    for (i, h) in c.holidays.iter().enumerate() {
        let date = parse_date(h).ok_or_else(|| {
            (
                format!("{place}.holidays[{i}]"),
                format!("`{h}` is not a date; write YYYY-MM-DD, e.g. \"2026-12-25\""),
            )
        })?;
        holidays.push(date);
    }
    Calendar::new(name, &c.time_zone, &days, working_hours, holidays).map_err(|e| match e {
        CalendarError::UnknownZone => (
            format!("{place}.time_zone"),
            format!(
                "unknown time zone `{}`; give an IANA zone name such as \"Europe/Amsterdam\" or \"America/Los_Angeles\"",
                c.time_zone
            ),
        ),
        CalendarError::NoWorkingDay => (
            format!("{place}.working_days"),
            "needs at least one working day, e.g. [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]"
                .into(),
        ),
    })
}

fn working_hours(h: &RawWorkingHours, place: &str) -> Result<WorkingHours, Problem> {
    let time = |text: &str, at: &str| {
        MinuteOfDay::parse(text).ok_or_else(|| {
            (
                format!("{place}.{at}"),
                format!("`{text}` is not a time of day; write HH:MM from 00:00 to 23:59, e.g. \"09:00\""),
            )
        })
    };
    let (from, to) = (time(&h.from, "from")?, time(&h.to, "to")?);
    WorkingHours::new(from, to).ok_or_else(|| {
        (
            place.to_string(),
            format!(
                "`from` ({from}) must be before `to` ({to}): one working period a day, within the day"
            ),
        )
    })
}
