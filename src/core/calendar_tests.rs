use jiff::civil::{date, Date, Weekday};

use super::*;

const WEEK: [Weekday; 5] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
];

fn at(text: &str) -> Millis {
    Millis::parse_rfc3339(text).unwrap()
}

fn hours(from: &str, to: &str) -> Option<WorkingHours> {
    WorkingHours::new(
        MinuteOfDay::parse(from).unwrap(),
        MinuteOfDay::parse(to).unwrap(),
    )
}

fn calendar(zone: &str, days: &[Weekday], wh: Option<WorkingHours>, holidays: &[Date]) -> Calendar {
    Calendar::new("T", zone, days, wh, holidays.iter().copied()).unwrap()
}

const H: i64 = 3_600_000;
const MIN: i64 = 60_000;
const QUARTER: i64 = 15 * MIN;

/// The reference for business days: walk the dates one by one.
fn naive_business_days(c: &Calendar, s: Millis, n: u32) -> Millis {
    let mut d = c.local_date(s).unwrap();
    let mut left = n;
    loop {
        d = d.tomorrow().unwrap();
        if c.is_business_day(d) {
            left -= 1;
            if left == 0 {
                return c
                    .instant_of(d.tomorrow().unwrap(), MinuteOfDay::MIDNIGHT)
                    .unwrap();
            }
        }
    }
}

/// Whether the quarter hour starting at instant `m` is working time.
fn is_working(c: &Calendar, m: Millis) -> bool {
    let wh = c.working_hours().unwrap();
    let d = c.local_date(m).unwrap();
    c.is_business_day(d)
        && c.instant_of(d, wh.from()).unwrap() <= m
        && m < c.instant_of(d, wh.to()).unwrap()
}

/// The reference for business hours: count working quarter hours one at a time (every
/// bound, every `s` and every duration of the tests is on a whole quarter hour).
fn naive_business_hours(c: &Calendar, s: Millis, span: Span) -> Millis {
    let mut left = span.0 / QUARTER;
    let mut m = s;
    loop {
        if is_working(c, m) {
            left -= 1;
            if left == 0 {
                return Millis(m.0 + QUARTER);
            }
        }
        m = Millis(m.0 + QUARTER);
    }
}

#[test]
fn times_of_day_parse_strictly() {
    assert_eq!(MinuteOfDay::parse("09:30").unwrap().to_string(), "09:30");
    assert_eq!(MinuteOfDay::parse("23:59").unwrap().to_string(), "23:59");
    for bad in ["24:00", "9:30", "09:60", "0930", "09:3a", " 09:30", ""] {
        assert_eq!(MinuteOfDay::parse(bad), None, "{bad}");
    }
}

#[test]
fn dates_parse_strictly() {
    assert_eq!(parse_date("2026-12-25"), Some(date(2026, 12, 25)));
    for bad in [
        "2026-02-30",
        "20261225",
        "2026-1-05",
        "2026-13-01",
        "26-12-25",
        "2026-12-25T00:00",
    ] {
        assert_eq!(parse_date(bad), None, "{bad}");
    }
}

#[test]
fn weekdays_are_three_letters_lower_case() {
    assert_eq!(parse_weekday("sat"), Some(Weekday::Saturday));
    assert_eq!(parse_weekday("Sat"), None);
    assert_eq!(parse_weekday("saturday"), None);
}

#[test]
fn an_unknown_zone_or_no_working_day_is_refused() {
    assert_eq!(
        Calendar::new("T", "Europe/Atlantis", &WEEK, None, []).unwrap_err(),
        CalendarError::UnknownZone
    );
    assert_eq!(
        Calendar::new("T", "Europe/Amsterdam", &[], None, []).unwrap_err(),
        CalendarError::NoWorkingDay
    );
}

#[test]
fn a_friday_evening_with_two_business_days_is_due_at_the_end_of_tuesday() {
    let c = calendar("Europe/Amsterdam", &WEEK, None, &[]);
    // Friday 2026-11-06 20:00 local (+01:00).
    let d = c.after_business_days(at("2026-11-06T19:00:00Z"), 2);
    assert_eq!(d, at("2026-11-11T00:00:00+01:00"));
}

#[test]
fn the_local_date_decides_not_the_written_offset() {
    let c = calendar("America/Los_Angeles", &WEEK, None, &[]);
    // 2026-11-10T03:00Z is Monday 19:00 in Los Angeles: one business day is Tuesday.
    let d = c.after_business_days(at("2026-11-10T04:00:00+01:00"), 1);
    assert_eq!(d, at("2026-11-11T00:00:00-08:00"));
}

/// Every weekday of `s`, every holiday pattern on the 7 days that follow, every hour of
/// the day, N from 1 to 3, against the date-by-date reference.
#[test]
fn business_days_agree_with_the_reference_on_every_weekday_and_holiday_pattern() {
    for zone in ["Europe/Amsterdam", "America/New_York"] {
        // 2026-11-02 is a Monday; the weeks of 2026-03-23 (Europe) and 2026-03-02 (US)
        // hold daylight-saving changes, as does 2026-10-19 (Europe's end).
        for monday in [
            date(2026, 11, 2),
            date(2026, 3, 23),
            date(2026, 3, 2),
            date(2026, 10, 19),
        ] {
            for pattern in 0u32..(1 << 7) {
                let holidays: Vec<Date> = (0..7)
                    .filter(|i| pattern & (1 << i) != 0)
                    .map(|i| monday.checked_add(jiff::Span::new().days(i + 1)).unwrap())
                    .collect();
                let c = calendar(zone, &WEEK, None, &holidays);
                for day in 0..7i64 {
                    let d = monday.checked_add(jiff::Span::new().days(day)).unwrap();
                    for hour in [0, 1, 12, 23] {
                        let s = c
                            .instant_of(d, MinuteOfDay::parse(&format!("{hour:02}:30")).unwrap())
                            .unwrap();
                        for n in 1..=3 {
                            assert_eq!(
                                c.after_business_days(s, n),
                                naive_business_days(&c, s, n),
                                "{zone} {d} {hour}:30 holidays {holidays:?} n={n}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Every weekday, every holiday pattern of the week, `s` on every quarter hour around
/// the period bounds, durations up to two and a half days of work, against the
/// minute-by-minute reference.
#[test]
fn business_hours_agree_with_the_reference_around_every_period_bound() {
    let weeks = [
        ("Europe/Amsterdam", date(2026, 3, 23)),
        ("Europe/Amsterdam", date(2026, 10, 19)),
        ("America/Los_Angeles", date(2026, 3, 2)),
        ("America/Los_Angeles", date(2026, 10, 26)),
    ];
    for (zone, monday) in weeks {
        for pattern in [0u32, 0b1, 0b10000, 0b101010, 0b1111] {
            let holidays: Vec<Date> = (0..7)
                .filter(|i| pattern & (1 << i) != 0)
                .map(|i| monday.checked_add(jiff::Span::new().days(i)).unwrap())
                .collect();
            let c = calendar(zone, &WEEK, hours("09:00", "17:00"), &holidays);
            for day in 0..7i64 {
                let d = monday.checked_add(jiff::Span::new().days(day)).unwrap();
                for local in [
                    "00:00", "08:45", "09:00", "09:15", "16:45", "17:00", "17:15", "23:45",
                ] {
                    let s = c.instant_of(d, MinuteOfDay::parse(local).unwrap()).unwrap();
                    for span in [15 * MIN, H, 8 * H, 8 * H + 15 * MIN, 20 * H] {
                        assert_eq!(
                            c.after_business_hours(s, Span(span)),
                            naive_business_hours(&c, s, Span(span)),
                            "{zone} {d} {local} holidays {holidays:?} span={}m",
                            span / MIN
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_total_reached_at_a_period_end_is_due_at_that_end() {
    let c = calendar("Europe/Berlin", &WEEK, hours("09:00", "17:00"), &[]);
    let s = at("2026-11-02T09:00:00+01:00");
    assert_eq!(
        c.after_business_hours(s, Span(8 * H)),
        at("2026-11-02T17:00:00+01:00")
    );
    assert_eq!(
        c.after_business_hours(s, Span(8 * H + 1)),
        at("2026-11-03T09:00:00.001+01:00")
    );
}

#[test]
fn a_start_outside_working_time_counts_from_the_next_period() {
    let c = calendar(
        "America/Los_Angeles",
        &WEEK,
        hours("09:00", "17:00"),
        &[date(2026, 11, 26)],
    );
    // Wednesday 2026-11-25 18:00 local; Thursday is Thanksgiving; Friday 09:00 + 16h of
    // work is Monday 17:00.
    let s = at("2026-11-25T18:00:00-08:00");
    assert_eq!(
        c.after_business_hours(s, Span(16 * H)),
        at("2026-11-30T17:00:00-08:00")
    );
}

#[test]
fn working_time_across_a_daylight_saving_change_counts_its_real_length() {
    // Sunday 2026-03-29 is a working day here; clocks go from 02:00 to 03:00.
    let every_day = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];
    let c = calendar("Europe/Amsterdam", &every_day, hours("01:00", "05:00"), &[]);
    let s = at("2026-03-29T01:00:00+01:00");
    // 01:00 to 05:00 local that day is 3 hours of real time.
    assert_eq!(
        c.after_business_hours(s, Span(3 * H)),
        at("2026-03-29T05:00:00+02:00")
    );
    assert_eq!(
        c.after_business_hours(s, Span(4 * H)),
        at("2026-03-30T02:00:00+02:00")
    );
    // The fall-back day: 01:00 to 05:00 local is 5 hours.
    let s = at("2026-10-25T01:00:00+02:00");
    assert_eq!(
        c.after_business_hours(s, Span(5 * H)),
        at("2026-10-25T05:00:00+01:00")
    );
}

#[test]
fn a_skipped_local_time_is_the_first_instant_after_the_gap_and_a_repeated_one_the_earlier() {
    let c = calendar("Europe/Amsterdam", &WEEK, None, &[]);
    let hm = |t| MinuteOfDay::parse(t).unwrap();
    assert_eq!(
        c.instant_of(date(2026, 3, 29), hm("02:30")),
        Some(at("2026-03-29T01:00:00Z"))
    );
    assert_eq!(
        c.instant_of(date(2026, 10, 25), hm("02:30")),
        Some(at("2026-10-25T00:30:00Z"))
    );
    let us = calendar("America/New_York", &WEEK, None, &[]);
    assert_eq!(
        us.instant_of(date(2026, 3, 8), hm("02:00")),
        Some(at("2026-03-08T07:00:00Z"))
    );
    assert_eq!(
        us.instant_of(date(2026, 11, 1), hm("01:30")),
        Some(at("2026-11-01T05:30:00Z"))
    );
}

#[test]
fn a_skipped_midnight_starts_the_day_at_the_end_of_the_gap() {
    // Chile moves from 00:00 -04 to 01:00 -03 on 2026-09-06.
    let c = calendar("America/Santiago", &WEEK, None, &[]);
    assert_eq!(
        c.instant_of(date(2026, 9, 6), MinuteOfDay::MIDNIGHT),
        Some(at("2026-09-06T04:00:00Z"))
    );
    // Thursday 2026-09-03 with two business days: Friday, Monday; due at Tuesday 00:00.
    assert_eq!(
        c.after_business_days(at("2026-09-03T12:00:00-04:00"), 2),
        at("2026-09-08T00:00:00-03:00")
    );
}

#[test]
fn deadlines_beyond_the_zone_database_never_come() {
    let c = calendar("Europe/Amsterdam", &WEEK, hours("09:00", "17:00"), &[]);
    let late = at("9999-12-30T12:00:00Z");
    assert_eq!(c.after_business_days(late, 5), Millis::MAX);
    assert_eq!(c.after_business_hours(late, Span(100 * H)), Millis::MAX);
}
