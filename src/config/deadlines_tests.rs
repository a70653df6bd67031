//! Calendars, business-time deadlines and overrides as the loader checks them.

use crate::config::{parse_rules, ConfigError};
use crate::core::rules::Deadline;

const CALENDARS: &str = r#"
[calendars.NL]
time_zone = "Europe/Amsterdam"
holidays = ["2026-12-25"]

[calendars.US]
time_zone = "America/Los_Angeles"
working_hours = { from = "09:00", to = "17:00" }
"#;

const REFUND: &str = r#"
[[rules]]
name = "refund"
key = "order_id"
opens_on = [{ type = "refund.requested" }, { type = "return.item_received" }]
deadline = { after = "48h" }
warn_before = ["24h", "4h"]
closes_on = ["refund.issued"]
severity = "high"
action = "Refund."
"#;

fn with_override(calendars: &str, over: &str) -> String {
    format!("{calendars}{REFUND}\n[[rules.overrides]]\n{over}\n")
}

fn problem(text: &str) -> ConfigError {
    parse_rules(text, "test.toml").expect_err("the config should be refused")
}

fn refused(calendars: &str, over: &str, place: &str, words: &str) {
    let e = problem(&with_override(calendars, over));
    assert_eq!(e.place, place, "{e}");
    assert!(e.problem.contains(words), "{e}");
}

const NL_2: &str = r#"deadline = { business_days = 2, calendar = "NL" }"#;

#[test]
fn an_override_loads_with_its_deadline_leads_and_texts() {
    let text = with_override(
        CALENDARS,
        &format!("when = [{{ field = \"marketplace\", equals = \"NL\" }}]\n{NL_2}\nwarn_before = []\nseverity = \"critical\""),
    );
    let rules = parse_rules(&text, "test.toml").unwrap();
    let o = &rules.rules[0].overrides[0];
    assert!(matches!(o.deadline, Deadline::BusinessDays { days: 2, .. }));
    assert_eq!(o.warn_before.as_deref(), Some(&[][..]));
    assert_eq!(&*o.texts.severity, "critical");
    assert_eq!(&*o.texts.action, "Refund.");
    assert_eq!(rules.calendars.len(), 2);
}

#[test]
fn an_unknown_zone_is_refused_with_its_place() {
    let cal = CALENDARS.replace("Europe/Amsterdam", "Europe/Amsterdm");
    refused(&cal, NL_2, "calendars.NL.time_zone", "IANA");
}

#[test]
fn an_unknown_calendar_is_refused_naming_the_known_ones() {
    let over = r#"deadline = { business_days = 2, calendar = "DE" }"#;
    refused(
        CALENDARS,
        over,
        "rules[refund].overrides[0].deadline.calendar",
        "NL, US",
    );
}

#[test]
fn an_unknown_weekday_is_refused() {
    let cal = CALENDARS.replace(
        "holidays = [\"2026-12-25\"]",
        "working_days = [\"mon\", \"tues\"]",
    );
    refused(&cal, NL_2, "calendars.NL.working_days[1]", "tues");
}

#[test]
fn a_malformed_or_impossible_date_is_refused() {
    for bad in ["2026-12-32", "25-12-2026", "2026-2-01"] {
        let cal = CALENDARS.replace("2026-12-25", bad);
        refused(&cal, NL_2, "calendars.NL.holidays[0]", "YYYY-MM-DD");
    }
}

#[test]
fn malformed_or_reversed_working_hours_are_refused() {
    let cal = CALENDARS.replace("to = \"17:00\"", "to = \"24:00\"");
    refused(&cal, NL_2, "calendars.US.working_hours.to", "HH:MM");
    let cal = CALENDARS.replace("to = \"17:00\"", "to = \"08:00\"");
    refused(&cal, NL_2, "calendars.US.working_hours", "before");
}

#[test]
fn zero_business_days_are_refused() {
    let over = r#"deadline = { business_days = 0, calendar = "NL" }"#;
    refused(
        CALENDARS,
        over,
        "rules[refund].overrides[0].deadline.business_days",
        "from 1 to 1000",
    );
    let over = r#"deadline = { business_days = 5000, calendar = "NL" }"#;
    refused(
        CALENDARS,
        over,
        "rules[refund].overrides[0].deadline.business_days",
        "from 1 to 1000",
    );
}

#[test]
fn business_hours_need_a_calendar_with_working_hours() {
    let over = r#"deadline = { business_hours = "8h", calendar = "NL" }"#;
    refused(
        CALENDARS,
        over,
        "rules[refund].overrides[0].deadline.calendar",
        "working_hours",
    );
    let over = r#"deadline = { business_hours = "8h" }"#;
    refused(
        CALENDARS,
        over,
        "rules[refund].overrides[0].deadline.calendar",
        "needs a calendar",
    );
}

#[test]
fn a_deadline_needs_exactly_one_form() {
    let over = r#"deadline = { after = "1h", business_days = 1, calendar = "NL" }"#;
    refused(
        CALENDARS,
        over,
        "rules[refund].overrides[0].deadline",
        "exactly one",
    );
    let over = r#"deadline = { after = "1h", calendar = "NL" }"#;
    refused(
        CALENDARS,
        over,
        "rules[refund].overrides[0].deadline.calendar",
        "only with",
    );
}

#[test]
fn an_override_condition_on_a_field_an_opening_type_lacks_is_refused() {
    // return.item_received opens the rule and carries no `amount`... nor `reason`.
    let over = format!("when = [{{ field = \"reason\", present = true }}]\n{NL_2}");
    refused(
        CALENDARS,
        &over,
        "rules[refund].overrides[0].when[0].field",
        "has no field",
    );
}

#[test]
fn an_override_field_deadline_must_be_carried_by_every_opening_type() {
    let over = r#"deadline = { field = "latest_ship_date" }"#;
    refused(
        CALENDARS,
        over,
        "rules[refund].overrides[0].deadline.field",
        "has no field",
    );
}

#[test]
fn an_empty_severity_in_an_override_is_refused() {
    let over = format!("{NL_2}\nseverity = \" \"");
    refused(
        CALENDARS,
        &over,
        "rules[refund].overrides[0].severity",
        "must not be empty",
    );
}

#[test]
fn an_unknown_key_in_a_calendar_or_override_is_refused() {
    let cal = CALENDARS.replace("holidays =", "holiday =");
    assert!(problem(&with_override(&cal, NL_2))
        .problem
        .contains("holiday"));
    let over = format!("{NL_2}\nwarn = []");
    assert!(problem(&with_override(CALENDARS, &over))
        .problem
        .contains("warn"));
}

const PACK: &str = include_str!("../../config/amazon-marketplaces.toml");

#[test]
fn the_amazon_pack_is_the_shipped_rules_plus_overrides() {
    let pack = parse_rules(PACK, "amazon-marketplaces.toml").unwrap();
    let default = crate::config::load_rules(None).unwrap();
    assert_eq!(pack.checks, default.checks);
    assert_eq!(pack.rules.len(), default.rules.len());
    for (p, d) in pack.rules.iter().zip(&default.rules) {
        let without = crate::core::rules::Rule {
            overrides: Vec::new(),
            ..p.clone()
        };
        assert_eq!(&without, d, "rule {}", p.name);
    }
    let refund = pack.rules.iter().find(|r| &*r.name == "refund").unwrap();
    assert_eq!(refund.overrides.len(), 5);
}

#[test]
fn every_amazon_calendar_lists_holidays_of_2026_and_2027_on_weekdays_it_counts() {
    let pack = parse_rules(PACK, "amazon-marketplaces.toml").unwrap();
    let names: Vec<&str> = pack.calendars.iter().map(|c| &*c.name).collect();
    assert_eq!(names, ["DE", "FR", "NL", "UK", "US"]);
    for c in &pack.calendars {
        for year in [2026, 2027] {
            let n = c.holidays().filter(|d| d.year() == year).count();
            assert!(n >= 7, "calendar {} has {n} holidays in {year}", c.name);
            // New Year's Day is a holiday everywhere (observed on 2027-12-31 in the US).
            let jan1 = jiff::civil::date(year, 1, 1);
            assert!(!c.is_business_day(jan1), "{} {jan1}", c.name);
        }
        // Christmas is not a business day anywhere (a Saturday in 2027).
        assert!(
            !c.is_business_day(jiff::civil::date(2026, 12, 25)),
            "{}",
            c.name
        );
    }
}

#[test]
fn the_pack_dates_refunds_in_business_days_of_each_marketplace() {
    use crate::core::time::Millis;
    let pack = parse_rules(PACK, "amazon-marketplaces.toml").unwrap();
    let refund = pack.rules.iter().find(|r| &*r.name == "refund").unwrap();
    let deadline = |i: usize, s: &str| {
        refund.overrides[i]
            .deadline
            .at(Millis::parse_rfc3339(s).unwrap(), &Default::default())
            .unwrap()
            .to_rfc3339()
    };
    // Wednesday 2026-12-23 noon in the Netherlands: Thursday 24, (25, 26 holidays,
    // weekend), Monday 28: due at the start of Tuesday 2026-12-29.
    assert_eq!(
        deadline(0, "2026-12-23T12:00:00+01:00"),
        "2026-12-28T23:00:00.000Z"
    );
    // Wednesday before Thanksgiving in the US: Friday 27, Monday 30: due Tuesday 00:00.
    assert_eq!(
        deadline(4, "2026-11-25T12:00:00-08:00"),
        "2026-12-01T08:00:00.000Z"
    );
}
