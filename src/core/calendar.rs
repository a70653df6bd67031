//! Business calendars and the business-time deadlines of contract section 10.2, written
//! once.
//!
//! # The rules
//!
//! * A **business day** is a local date, in the calendar's IANA zone, that is one of its
//!   working days and not one of its holidays.
//! * The **local date of an instant** `s` is the date of `s` in the calendar's zone,
//!   whatever offset the event was written with.
//! * **Local times become instants** with the zone's rules for that date: a local time
//!   that a daylight-saving change skips (a gap) means the first instant after the gap
//!   (the transition itself); one that occurs twice (a fold) means the earlier.
//! * `{ business_days = N }` (N >= 1): the deadline is the start (local 00:00) of the day
//!   after the N-th business day that comes after the local date of `s`. The day of `s`
//!   itself never counts, whether or not it is a business day: an event on a Friday
//!   evening with N = 2 is due at the start of Wednesday (the end of Tuesday).
//! * `{ business_hours = H }`: working time is `[from, to)` local time on each business
//!   day, one period a day. The deadline is the first instant at which the working time
//!   between `s` and it adds up to `H`: an `s` outside working time starts counting at
//!   the next period's start; a total reached exactly at a period's end is due at that
//!   end, not at the next period's start.
//! * **Working time is elapsed time**: a period that a daylight-saving change lengthens
//!   or shortens counts its real length (09:00 to 17:00 across a spring-forward at
//!   02:00 is still 8 hours, one from 01:00 to 05:00 is 3).
//! * The arithmetic saturates: a deadline beyond the zone database's range (after the
//!   year 9999) is [`Millis::MAX`], a deadline that never comes.
//!
//! Nothing here reads a clock: the zone rules are data (the IANA database compiled into
//! the binary by `jiff`), handed the instants to convert.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

use super::time::{Millis, Span};

/// A minute of the local day, `0..1440` (00:00 to 23:59).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct MinuteOfDay(u16);

impl MinuteOfDay {
    pub const MIDNIGHT: MinuteOfDay = MinuteOfDay(0);

    /// Parses `HH:MM`, `00:00` to `23:59`, two digits each.
    pub fn parse(text: &str) -> Option<MinuteOfDay> {
        let b = text.as_bytes();
        if b.len() != 5 || b[2] != b':' || ![0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
            return None;
        }
        let num = |i: usize| u16::from(b[i] - b'0') * 10 + u16::from(b[i + 1] - b'0');
        let (h, m) = (num(0), num(3));
        (h < 24 && m < 60).then_some(MinuteOfDay(h * 60 + m))
    }

    fn hour(self) -> i8 {
        (self.0 / 60) as i8
    }

    fn minute(self) -> i8 {
        (self.0 % 60) as i8
    }
}

impl fmt::Display for MinuteOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour(), self.minute())
    }
}

/// One working period a day, `[from, to)` local time, `from < to`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WorkingHours {
    from: MinuteOfDay,
    to: MinuteOfDay,
}

impl WorkingHours {
    pub fn new(from: MinuteOfDay, to: MinuteOfDay) -> Option<WorkingHours> {
        (from < to).then_some(WorkingHours { from, to })
    }

    pub fn from(&self) -> MinuteOfDay {
        self.from
    }

    pub fn to(&self) -> MinuteOfDay {
        self.to
    }
}

/// Parses a local date written `YYYY-MM-DD` exactly (no other ISO 8601 form).
pub fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    let digits = [0, 1, 2, 3, 5, 6, 8, 9];
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits.iter().all(|&i| b[i].is_ascii_digit())
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| text[r].parse::<i16>().ok();
    Date::new(n(0..4)?, n(5..7)? as i8, n(8..10)? as i8).ok()
}

/// Parses a weekday as the configuration writes it: `mon` to `sun`.
pub fn parse_weekday(text: &str) -> Option<Weekday> {
    Some(match text {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

/// A validated business calendar (contract 10.2).
#[derive(Clone)]
pub struct Calendar {
    pub name: Arc<str>,
    zone_name: Arc<str>,
    zone: TimeZone,
    /// Indexed by [`Weekday::to_monday_zero_offset`]; at least one is true.
    working_days: [bool; 7],
    working_hours: Option<WorkingHours>,
    holidays: BTreeSet<Date>,
}

/// Why a calendar cannot be built.
#[derive(Debug, PartialEq, Eq)]
pub enum CalendarError {
    UnknownZone,
    NoWorkingDay,
}

impl Calendar {
    pub fn new(
        name: &str,
        zone_name: &str,
        working_days: &[Weekday],
        working_hours: Option<WorkingHours>,
        holidays: impl IntoIterator<Item = Date>,
    ) -> Result<Calendar, CalendarError> {
        let zone = TimeZone::get(zone_name).map_err(|_| CalendarError::UnknownZone)?;
        let mut days = [false; 7];
        for d in working_days {
            days[d.to_monday_zero_offset() as usize] = true;
        }
        if !days.contains(&true) {
            return Err(CalendarError::NoWorkingDay);
        }
        Ok(Calendar {
            name: Arc::from(name),
            zone_name: Arc::from(zone_name),
            zone,
            working_days: days,
            working_hours,
            holidays: holidays.into_iter().collect(),
        })
    }

    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    /// The working days, Monday first.
    pub fn working_days(&self) -> impl Iterator<Item = Weekday> + '_ {
        (0..7)
            .filter(|&i| self.working_days[i as usize])
            .map(|i| Weekday::from_monday_zero_offset(i).expect("0..7 is a weekday"))
    }

    pub fn working_hours(&self) -> Option<WorkingHours> {
        self.working_hours
    }

    pub fn holidays(&self) -> impl Iterator<Item = Date> + '_ {
        self.holidays.iter().copied()
    }

    /// Whether a local date is a working day and not a holiday.
    pub fn is_business_day(&self, date: Date) -> bool {
        self.working_days[date.weekday().to_monday_zero_offset() as usize]
            && !self.holidays.contains(&date)
    }

    /// The local date of an instant in the calendar's zone.
    pub fn local_date(&self, at: Millis) -> Option<Date> {
        let ts = Timestamp::from_millisecond(at.0).ok()?;
        Some(self.zone.to_datetime(ts).date())
    }

    /// The instant of a local time on a local date: a skipped time is the first instant
    /// after the gap, a repeated one the earlier.
    pub fn instant_of(&self, date: Date, time: MinuteOfDay) -> Option<Millis> {
        let dt: DateTime = date.at(time.hour(), time.minute(), 0, 0);
        let ts = match self.zone.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok()?,
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok()?,
            AmbiguousOffset::Gap { after, .. } => {
                // `dt` read with the later offset falls before the transition, so the
                // transition that follows it is the first instant after the gap.
                let inside = after.to_timestamp(dt).ok()?;
                self.zone.following(inside).next()?.timestamp()
            }
        };
        Some(Millis(ts.as_millisecond()))
    }

    /// `{ business_days = n }` from `s`: the start of the day after the n-th business
    /// day after the local date of `s`.
    pub fn after_business_days(&self, s: Millis, n: u32) -> Millis {
        self.business_days_deadline(s, n).unwrap_or(Millis::MAX)
    }

    fn business_days_deadline(&self, s: Millis, n: u32) -> Option<Millis> {
        let mut date = self.local_date(s)?;
        let mut counted = 0;
        while counted < n {
            date = date.tomorrow().ok()?;
            if self.is_business_day(date) {
                counted += 1;
            }
        }
        self.instant_of(date.tomorrow().ok()?, MinuteOfDay::MIDNIGHT)
    }

    /// `{ business_hours = span }` from `s`: the first instant by which the working time
    /// since `s` adds up to `span`. A calendar without working hours counts none, and
    /// the deadline never comes (the loader forbids that combination).
    pub fn after_business_hours(&self, s: Millis, span: Span) -> Millis {
        self.business_hours_deadline(s, span).unwrap_or(Millis::MAX)
    }

    fn business_hours_deadline(&self, s: Millis, span: Span) -> Option<Millis> {
        let hours = self.working_hours?;
        let mut left = span.0;
        let mut date = self.local_date(s)?;
        loop {
            if self.is_business_day(date) {
                let start = self.instant_of(date, hours.from)?.max(s);
                let end = self.instant_of(date, hours.to)?;
                if start < end {
                    let available = end.0 - start.0;
                    if available >= left {
                        return Some(Millis(start.0 + left));
                    }
                    left -= available;
                }
            }
            date = date.tomorrow().ok()?;
        }
    }
}

impl PartialEq for Calendar {
    fn eq(&self, other: &Calendar) -> bool {
        self.name == other.name
            && self.zone_name == other.zone_name
            && self.working_days == other.working_days
            && self.working_hours == other.working_hours
            && self.holidays == other.holidays
    }
}

impl fmt::Debug for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calendar")
            .field("name", &self.name)
            .field("zone", &self.zone_name)
            .field("working_days", &self.working_days)
            .field("working_hours", &self.working_hours)
            .field("holidays", &self.holidays.len())
            .finish()
    }
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;
