//! Instants and durations of the engine, and the one place the time rules are written.
//!
//! # Ground rules
//!
//! * **Resolution.** Every instant is a whole number of milliseconds since the Unix epoch,
//!   UTC ([`Millis`]). RFC 3339 timestamps with finer fractions are truncated towards the
//!   past to the millisecond (`12:00:00.9999Z` is `12:00:00.999Z`), so two timestamps are
//!   equal exactly when the contract says they are: "compared as instants at millisecond
//!   precision".
//! * **Offsets.** A timestamp must carry an explicit offset (`Z` or `+01:00`); the offset
//!   is applied and forgotten. Alerts are written in UTC with a `Z` and three fraction
//!   digits.
//! * **What happens at a point's time.** A point at instant `p` fires only once the clock
//!   has moved *past* `p` (`p < clock`), so an event stamped exactly `p` is applied first:
//!   a reply at the deadline meets it. At the end of a replay, points at or before `until`
//!   fire, which is "before `until + 1 ms`". Both cases are [`Millis::succ`] away from one
//!   primitive, "fire every point strictly before `t`".
//! * **Range.** Arithmetic saturates at the ends of `i64`, so a configured duration can
//!   never wrap a deadline into the past.
//!
//! This module never reads a clock; the shell's `clock.rs` does.

use std::fmt;

/// An instant: milliseconds since 1970-01-01T00:00:00Z (negative before it).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Millis(pub i64);

/// A span of time in milliseconds; never negative once validated by the config loader.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Span(pub i64);

impl Millis {
    pub const MIN: Millis = Millis(i64::MIN);
    pub const MAX: Millis = Millis(i64::MAX);

    /// The next representable instant (`self + 1 ms`), saturating.
    pub fn succ(self) -> Millis {
        Millis(self.0.saturating_add(1))
    }

    pub fn plus(self, span: Span) -> Millis {
        Millis(self.0.saturating_add(span.0))
    }

    pub fn minus(self, span: Span) -> Millis {
        Millis(self.0.saturating_sub(span.0))
    }

    /// Parses an RFC 3339 timestamp with an explicit offset, truncated to the millisecond.
    pub fn parse_rfc3339(text: &str) -> Result<Millis, TimeError> {
        let text = text.trim();
        if let Some(t) = parse_common_rfc3339(text.as_bytes()) {
            return Ok(t);
        }
        let parsed = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
            TimeError(format!(
                "`{}` is not an RFC 3339 timestamp with an offset ({e})",
                shorten(text)
            ))
        })?;
        Ok(Millis(parsed.timestamp_millis()))
    }

    /// Writes the instant as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn to_rfc3339(self) -> String {
        self.to_string()
    }
}

impl Millis {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` as bytes, for years 0 to 9999 (`None` outside), computed
    /// digit by digit: alerts carry three of these and are written at a high rate.
    pub fn rfc3339_bytes(self) -> Option<[u8; 24]> {
        const MIN: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00Z
        const MAX: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
        if !(MIN..=MAX).contains(&self.0) {
            return None;
        }
        let (days, ms_of_day) = (self.0.div_euclid(86_400_000), self.0.rem_euclid(86_400_000));
        let (y, m, d) = civil_from_days(days);
        let (secs, ms) = (ms_of_day / 1000, ms_of_day % 1000);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut pair = |at: usize, value: i64| {
            let v = value as usize * 2;
            out[at..at + 2].copy_from_slice(&PAIRS[v..v + 2]);
        };
        pair(0, y / 100);
        pair(2, y % 100);
        pair(5, m);
        pair(8, d);
        pair(11, secs / 3600);
        pair(14, secs / 60 % 60);
        pair(17, secs % 60);
        pair(20, ms / 10);
        out[22] = b'0' + (ms % 10) as u8;
        Some(out)
    }
}

impl fmt::Display for Millis {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` for years 0 to 9999; other instants in chrono's form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(bytes) = self.rfc3339_bytes() {
            return f.write_str(std::str::from_utf8(&bytes).expect("ASCII digits and separators"));
        }
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
            None => write!(f, "{}ms", self.0),
        }
    }
}

/// The common form `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, with an
/// uppercase `T` and `Z`, a valid date and a second below 60, read without chrono (input
/// events carry one each, at a high rate); `None` for anything else, which chrono reads
/// (or refuses with its message). The fraction is truncated to milliseconds, as chrono's
/// `timestamp_millis` does.
fn parse_common_rfc3339(b: &[u8]) -> Option<Millis> {
    let num = |from: usize, to: usize| -> Option<i64> {
        b.get(from..to)?.iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0;
    if at(i, b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for k in 0..3 {
            ms = ms * 10
                + if k < digits {
                    i64::from(b[i + 1 + k] - b'0')
                } else {
                    0
                };
        }
        i += 1 + digits;
    }
    let offset_secs = match b.get(i)? {
        b'Z' if b.len() == i + 1 => 0,
        sign @ (b'+' | b'-') if b.len() == i + 6 && at(i + 3, b':') => {
            let (oh, om) = (num(i + 1, i + 3)?, num(i + 4, i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss - offset_secs;
    Some(Millis(secs * 1000 + ms))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a (year, month, day) (Howard Hinnant's algorithm, the
/// inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// "00" to "99", two bytes each.
const PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        pairs[2 * i] = b'0' + (i / 10) as u8;
        pairs[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    pairs
};

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Span {
    pub const ZERO: Span = Span(0);

    pub const fn from_secs(secs: i64) -> Span {
        Span(secs.saturating_mul(1000))
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds, as alert ids and `lead_seconds` print them.
    pub fn whole_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Parses `48h`, `90m`, `7d`, `1h30m`, `45s`, `250ms`, `0s`. A leading `-` is refused
    /// with a message saying durations cannot be negative.
    pub fn parse(text: &str) -> Result<Span, TimeError> {
        let t = text.trim();
        if t.starts_with('-') {
            return Err(TimeError(format!(
                "`{t}` is negative; durations must be zero or more"
            )));
        }
        if t.is_empty() {
            return Err(TimeError(
                "empty duration; write e.g. `48h`, `30m`, `7d`".into(),
            ));
        }
        let mut total: i64 = 0;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let unit_len = rest[digits..]
                .bytes()
                .take_while(u8::is_ascii_alphabetic)
                .count();
            if digits == 0 || unit_len == 0 {
                return Err(bad_duration(t));
            }
            let n: i64 = rest[..digits].parse().map_err(|_| bad_duration(t))?;
            let unit = match &rest[digits..digits + unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 604_800_000,
                _ => return Err(bad_duration(t)),
            };
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| TimeError(format!("`{t}` is too long")))?;
            rest = &rest[digits + unit_len..];
        }
        Ok(Span(total))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.whole_secs())
    }
}

fn bad_duration(t: &str) -> TimeError {
    TimeError(format!("`{t}` is not a duration; write a number and a unit (ms, s, m, h, d, w), e.g. `48h` or `1h30m`"))
}

/// Keeps error messages short when a producer sends a huge string.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// A timestamp or duration that could not be read; the message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_is_applied_and_forgotten() {
        let a = Millis::parse_rfc3339("2026-11-05T18:00:00+01:00").unwrap();
        let b = Millis::parse_rfc3339("2026-11-05T17:00:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_rfc3339(), "2026-11-05T17:00:00.000Z");
    }

    #[test]
    fn formatting_agrees_with_chrono_across_the_calendar() {
        let mut t: i64 = -62_167_219_200_000;
        while t < 253_402_300_799_999 {
            let ours = Millis(t).to_rfc3339();
            let theirs = chrono::DateTime::from_timestamp_millis(t)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            assert_eq!(ours, theirs, "at {t}");
            t += 7_777_777_777 + 123;
        }
        assert_eq!(
            Millis(253_402_300_799_999).to_rfc3339(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(Millis(-1).to_rfc3339(), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn sub_millisecond_fractions_are_truncated() {
        let a = Millis::parse_rfc3339("2026-11-05T17:00:00.9999Z").unwrap();
        assert_eq!(a.to_rfc3339(), "2026-11-05T17:00:00.999Z");
    }

    #[test]
    fn a_timestamp_without_an_offset_is_refused() {
        assert!(Millis::parse_rfc3339("2026-11-05T17:00:00").is_err());
        assert!(Millis::parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(Span::parse("48h").unwrap(), Span::from_secs(48 * 3600));
        assert_eq!(Span::parse("1h30m").unwrap(), Span::from_secs(5400));
        assert_eq!(Span::parse("7d").unwrap(), Span::from_secs(7 * 86400));
        assert_eq!(Span::parse("250ms").unwrap(), Span(250));
        for bad in ["-4h", "", "4", "h", "4x", "4h-"] {
            assert!(Span::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    mod common_form {
        use super::*;
        use proptest::prelude::*;

        fn chrono_millis(text: &str) -> Option<Millis> {
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| Millis(t.timestamp_millis()))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(20_000))]

            /// Near-valid timestamps, digits anywhere in range and a little beyond.
            #[test]
            fn the_fast_reading_agrees_with_chrono(
                y in prop_oneof![0i64..=9999, 1999i64..=2101],
                m in 0i64..=13,
                d in 0i64..=32,
                hh in 0i64..=24,
                mm in 0i64..=60,
                ss in 0i64..=61,
                fraction in "(\\.[0-9]{0,11})?",
                zone in prop_oneof![
                    Just("Z".to_string()),
                    Just("z".to_string()),
                    Just("".to_string()),
                    (0i64..=24, 0i64..=60, prop::bool::ANY).prop_map(|(h, m, neg)| {
                        format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' })
                    }),
                ],
                sep in prop_oneof![8 => Just('T'), 1 => Just('t'), 1 => Just(' ')],
            ) {
                let text = format!("{y:04}-{m:02}-{d:02}{sep}{hh:02}:{mm:02}:{ss:02}{fraction}{zone}");
                let fast = parse_common_rfc3339(text.as_bytes());
                let reference = chrono_millis(&text);
                if let Some(fast) = fast {
                    prop_assert_eq!(Some(fast), reference, "{}", text);
                }
                let common = sep == 'T' && ss < 60 && zone != "z" && fraction != ".";
                if reference.is_some() && common {
                    prop_assert!(fast.is_some(), "the common form {} takes the fast path", text);
                }
                prop_assert_eq!(Millis::parse_rfc3339(&text).ok(), reference, "{}", text);
            }

            #[test]
            fn instants_are_written_as_chrono_writes_them(
                t in -62_167_219_200_000i64..=253_402_300_799_999,
            ) {
                let bytes = Millis(t).rfc3339_bytes().expect("years 0 to 9999");
                let chrono = chrono::DateTime::from_timestamp_millis(t)
                    .unwrap()
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string();
                prop_assert_eq!(std::str::from_utf8(&bytes).unwrap(), chrono.as_str());
                prop_assert_eq!(Millis::parse_rfc3339(&chrono).ok(), Some(Millis(t)));
            }
        }
    }
}
