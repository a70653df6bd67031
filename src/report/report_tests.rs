//! The report's rules on small histories, one rule per test.

use std::sync::Arc;

use super::tally::{Metric, Ratio, RuleCounts, Target};
use super::*;
use crate::config::load_rules;

fn ev(id: &str, t: &str, time: &str, data: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"s","type":"{t}","time":"{time}","data":{{{data}}}}}"#
    )
}

fn at(t: &str) -> Millis {
    Millis::parse_rfc3339(t).unwrap()
}

fn run(lines: &[String], options: &Options) -> Report {
    let mut engine = Engine::new(Arc::new(load_rules(None).unwrap()));
    let text = lines.join("\n");
    report(&mut engine, text.as_bytes(), options, |_| {}).unwrap()
}

fn by_marketplace() -> Options {
    Options {
        by: vec![GroupField::Marketplace],
        ..Options::default()
    }
}

fn metric(r: &Report, group: &str, m: Metric) -> Ratio {
    let g = r
        .groups
        .iter()
        .find(|g| g.values == [group])
        .expect("the group is listed");
    g.metrics[m as usize]
}

fn rule(r: &Report, group: &str, name: &str) -> RuleCounts {
    let g = r
        .groups
        .iter()
        .find(|g| g.values == [group])
        .expect("the group is listed");
    let i = r.rules.iter().position(|n| &**n == name).unwrap();
    g.rules[i]
}

fn placed(id: &str, order: &str, time: &str, ship_by: &str, mp: &str) -> String {
    ev(
        id,
        "order.placed",
        time,
        &format!(r#""order_id":"{order}","latest_ship_date":"{ship_by}","marketplace":"{mp}""#),
    )
}

#[test]
fn an_empty_input_without_until_has_no_times_and_no_groups() {
    let r = run(&[], &Options::default());
    assert_eq!(r.window, None);
    assert!(r.groups.is_empty());
    assert!(render::json(&r).starts_with(r#"{"from":null,"to":null,"until":null,"groups":[]"#));
}

#[test]
fn the_window_defaults_to_the_30_days_before_the_end() {
    let r = run(
        &[placed(
            "p",
            "O",
            "2026-11-10T12:00:00Z",
            "2026-11-12T00:00:00Z",
            "NL",
        )],
        &Options::default(),
    );
    let w = r.window.unwrap();
    assert_eq!(
        (w.until, w.to),
        (at("2026-11-10T12:00:00Z"), at("2026-11-10T12:00:00Z"))
    );
    assert_eq!(w.from, at("2026-10-11T12:00:00Z"));
    let only_to = Options {
        to: Some(at("2026-11-01T00:00:00Z")),
        ..Options::default()
    };
    let w = run(
        &[placed(
            "p",
            "O",
            "2026-11-10T12:00:00Z",
            "2026-11-12T00:00:00Z",
            "NL",
        )],
        &only_to,
    )
    .window
    .unwrap();
    assert_eq!(w.from, at("2026-10-02T00:00:00Z"));
}

#[test]
fn fates_are_judged_at_the_end_a_later_close_has_not_happened() {
    let lines = [
        placed(
            "p1",
            "A",
            "2026-11-01T10:00:00Z",
            "2026-11-02T10:00:00Z",
            "NL",
        ),
        placed(
            "p2",
            "B",
            "2026-11-01T10:00:00Z",
            "2026-11-02T10:00:00Z",
            "NL",
        ),
        placed(
            "p3",
            "C",
            "2026-11-01T10:00:00Z",
            "2026-11-09T10:00:00Z",
            "NL",
        ),
        ev(
            "s1",
            "shipment.confirmed",
            "2026-11-02T10:00:00Z",
            r#""order_id":"A""#,
        ),
        ev(
            "s2",
            "shipment.confirmed",
            "2026-11-04T10:00:00Z",
            r#""order_id":"B""#,
        ),
        // After E: the ship of C has not happened, the order placed after E does not count.
        ev(
            "s3",
            "shipment.confirmed",
            "2026-11-06T10:00:00Z",
            r#""order_id":"C""#,
        ),
        placed(
            "p4",
            "D",
            "2026-11-06T10:00:00Z",
            "2026-11-07T10:00:00Z",
            "NL",
        ),
    ];
    let options = Options {
        until: Some(at("2026-11-05T00:00:00Z")),
        to: Some(at("2026-11-10T00:00:00Z")),
        ..by_marketplace()
    };
    let r = run(&lines, &options);
    let c = rule(&r, "NL", "ship_by");
    assert_eq!(
        (c.opened, c.met, c.late, c.overdue, c.pending),
        (3, 1, 1, 0, 1)
    );
    let lsr = metric(&r, "NL", Metric::LateShipmentRate);
    assert_eq!(
        (lsr.numerator, lsr.denominator),
        (1, 2),
        "pending is not counted"
    );
}

#[test]
fn an_instance_due_exactly_at_the_window_end_is_outside_it_and_one_at_its_start_inside() {
    let lines = [
        placed(
            "p1",
            "A",
            "2026-10-01T00:00:00Z",
            "2026-10-05T00:00:00Z",
            "NL",
        ),
        placed(
            "p2",
            "B",
            "2026-10-01T00:00:00Z",
            "2026-10-10T00:00:00Z",
            "NL",
        ),
        ev("x", "unknown.type", "2026-10-20T00:00:00Z", r#""k":1"#),
    ];
    let options = Options {
        from: Some(at("2026-10-05T00:00:00Z")),
        to: Some(at("2026-10-10T00:00:00Z")),
        ..by_marketplace()
    };
    let c = rule(&run(&lines, &options), "NL", "ship_by");
    assert_eq!((c.opened, c.overdue), (0, 1));
}

#[test]
fn cancellations_are_the_sellers_unless_the_buyer_cancelled_and_count_only_before_shipping() {
    let lines = [
        placed(
            "p1",
            "A",
            "2026-11-01T10:00:00Z",
            "2026-11-03T10:00:00Z",
            "NL",
        ),
        ev(
            "c1",
            "order.cancelled",
            "2026-11-01T11:00:00Z",
            r#""order_id":"A","cancelled_by":" buyer ""#,
        ),
        placed(
            "p2",
            "B",
            "2026-11-01T10:00:00Z",
            "2026-11-03T10:00:00Z",
            "NL",
        ),
        ev(
            "c2",
            "order.cancelled",
            "2026-11-01T11:00:00Z",
            r#""order_id":"B","cancelled_by":"marketplace""#,
        ),
        placed(
            "p3",
            "C",
            "2026-11-01T10:00:00Z",
            "2026-11-03T10:00:00Z",
            "NL",
        ),
        ev(
            "s3",
            "shipment.confirmed",
            "2026-11-01T11:00:00Z",
            r#""order_id":"C""#,
        ),
        ev(
            "c3",
            "order.cancelled",
            "2026-11-01T11:00:00Z",
            r#""order_id":"C""#,
        ),
        placed(
            "p4",
            "D",
            "2026-11-01T10:00:00Z",
            "2026-11-03T10:00:00Z",
            "NL",
        ),
        ev(
            "c4",
            "order.cancelled",
            "2026-11-01T10:00:00Z",
            r#""order_id":"D""#,
        ),
        ev("end", "unknown.type", "2026-11-05T00:00:00Z", r#""k":1"#),
    ];
    let r = run(&lines, &by_marketplace());
    let m = metric(&r, "NL", Metric::PreFulfillmentCancelRate);
    // B (marketplace) and D (at the placement time) count; A was the buyer's; C shipped
    // at the same instant, and a cancel must come before every confirmation.
    assert_eq!((m.numerator, m.denominator), (2, 4));
    // Cancelled ship_by instances leave the late shipment rate.
    assert_eq!(metric(&r, "NL", Metric::LateShipmentRate).denominator, 1);
}

#[test]
fn valid_tracking_reads_the_first_confirmation_with_a_scan_at_or_after_it() {
    let conf = |id: &str, order: &str, time: &str, tracking: &str| {
        ev(
            id,
            "shipment.confirmed",
            time,
            &format!(r#""order_id":"{order}","tracking_number":"{tracking}","marketplace":"UK""#),
        )
    };
    let lines = [
        conf("a2", "A", "2026-11-02T10:00:00Z", "T2"),
        conf("a1", "A", "2026-11-01T10:00:00Z", " "),
        ev(
            "sa",
            "shipment.carrier_scanned",
            "2026-11-02T11:00:00Z",
            r#""order_id":"A""#,
        ),
        conf("b1", "B", "2026-11-01T10:00:00Z", "T1"),
        ev(
            "sb",
            "shipment.delivered",
            "2026-11-01T10:00:00Z",
            r#""order_id":"B""#,
        ),
        conf("c1", "C", "2026-11-01T10:00:00Z", "T3"),
        ev(
            "sc",
            "shipment.carrier_scanned",
            "2026-11-01T09:00:00Z",
            r#""order_id":"C""#,
        ),
        ev("end", "unknown.type", "2026-11-05T00:00:00Z", r#""k":1"#),
    ];
    let m = metric(
        &run(&lines, &by_marketplace()),
        "UK",
        Metric::ValidTrackingRate,
    );
    // A's first confirmation (earliest in time) has no tracking number; B's delivery at
    // the same instant counts; C's scan came before its confirmation.
    assert_eq!((m.numerator, m.denominator), (1, 3));
}

#[test]
fn contact_response_counts_replies_within_24h_of_messages_a_day_old_at_the_end() {
    let msg = |id: &str, thread: &str, time: &str| {
        ev(
            id,
            "customer_message.received",
            time,
            &format!(r#""thread_id":"{thread}","marketplace":"US""#),
        )
    };
    let lines = [
        msg("m1", "T1", "2026-11-01T10:00:00Z"),
        ev(
            "r1",
            "customer_message.replied",
            "2026-11-02T10:00:00Z",
            r#""thread_id":"T1""#,
        ),
        msg("m2", "T2", "2026-11-01T10:00:00Z"),
        ev(
            "r2",
            "customer_message.replied",
            "2026-11-02T10:00:00.001Z",
            r#""thread_id":"T2""#,
        ),
        msg("m3", "T3", "2026-11-01T10:00:00Z"),
        ev(
            "n3",
            "customer_message.no_response_needed",
            "2026-11-01T11:00:00Z",
            r#""thread_id":"T3""#,
        ),
        msg("m4", "T4", "2026-11-04T10:00:01Z"),
        ev("end", "unknown.type", "2026-11-05T10:00:00Z", r#""k":1"#),
    ];
    let m = metric(
        &run(&lines, &by_marketplace()),
        "US",
        Metric::ContactResponse24h,
    );
    assert_eq!((m.numerator, m.denominator), (1, 2));
}

#[test]
fn targets_are_decided_on_the_exact_fraction() {
    assert!(!Target::Below(4, 100).met_by(1, 25), "1/25 is exactly 0.04");
    assert!(Target::Below(4, 100).met_by(1, 26));
    assert!(
        Target::AtLeast(95, 100).met_by(19, 20),
        "19/20 is exactly 0.95"
    );
    assert!(!Target::AtLeast(97, 100).met_by(96, 99));
    let r = Ratio {
        numerator: 0,
        denominator: 0,
    };
    assert_eq!(r.ok(Metric::LateShipmentRate.target()), None);
    assert_eq!(
        Ratio {
            numerator: 1,
            denominator: 2
        }
        .ok(None),
        None
    );
}

#[test]
fn groups_with_only_zeros_are_left_out_and_the_rest_sorted_by_their_values() {
    let lines = [
        placed(
            "p1",
            "A",
            "2026-11-01T10:00:00Z",
            "2026-11-03T10:00:00Z",
            "UK",
        ),
        placed(
            "p2",
            "B",
            "2026-11-01T10:00:00Z",
            "2026-11-03T10:00:00Z",
            "",
        ),
        placed(
            "p3",
            "C",
            "2026-11-01T10:00:00Z",
            "2026-11-03T10:00:00Z",
            "DE",
        ),
        // Opened before the window: counts nowhere.
        placed(
            "p4",
            "D",
            "2026-01-01T10:00:00Z",
            "2026-01-03T10:00:00Z",
            "FR",
        ),
        ev("end", "unknown.type", "2026-11-05T00:00:00Z", r#""k":1"#),
    ];
    let r = run(&lines, &by_marketplace());
    let names: Vec<&str> = r.groups.iter().map(|g| g.values[0].as_str()).collect();
    assert_eq!(names, ["", "DE", "UK"]);
}

#[test]
fn duplicates_and_dead_letters_count_nowhere() {
    let p = placed(
        "p1",
        "A",
        "2026-11-01T10:00:00Z",
        "2026-11-03T10:00:00Z",
        "UK",
    );
    let lines = [
        p.clone(),
        p,
        "not json".to_string(),
        ev(
            "bad",
            "order.placed",
            "2026-11-01T10:00:00Z",
            r#""order_id":"B","marketplace":"UK""#,
        ),
        // The window ends before E: an event exactly at E is outside it.
        ev("end", "unknown.type", "2026-11-05T00:00:00Z", r#""k":1"#),
    ];
    let m = metric(
        &run(&lines, &by_marketplace()),
        "UK",
        Metric::PreFulfillmentCancelRate,
    );
    assert_eq!(m.denominator, 1);
}

#[test]
fn daily_series_place_each_item_on_its_day() {
    let lines = [
        placed(
            "p1",
            "A",
            "2026-11-01T10:00:00Z",
            "2026-11-02T10:00:00Z",
            "NL",
        ),
        placed(
            "p2",
            "B",
            "2026-11-01T10:00:00Z",
            "2026-11-03T10:00:00Z",
            "NL",
        ),
        ev(
            "s2",
            "shipment.confirmed",
            "2026-11-02T12:00:00Z",
            r#""order_id":"B""#,
        ),
        ev("end", "unknown.type", "2026-11-05T00:00:00Z", r#""k":1"#),
    ];
    let r = run(&lines, &by_marketplace());
    assert_eq!(r.days.len(), 30, "the window's 30 UTC days");
    let g = r.groups.iter().find(|g| g.values == ["NL"]).unwrap();
    let day = |t: &str| r.days.iter().position(|d| *d == at(t)).unwrap();
    let lsr = |i: usize| g.daily[i][Metric::LateShipmentRate as usize];
    assert_eq!(
        lsr(day("2026-11-02T00:00:00Z")),
        Ratio {
            numerator: 1,
            denominator: 1
        }
    );
    assert_eq!(
        lsr(day("2026-11-03T00:00:00Z")),
        Ratio {
            numerator: 0,
            denominator: 1
        }
    );
}

#[test]
fn the_last_progress_call_says_how_many_records_were_left_out() {
    let lines = [
        ev(
            "m1",
            "customer_message.received",
            "2026-11-02T09:00:00Z",
            r#""thread_id":"T1","message_id":"M1""#,
        ),
        "not json".to_string(),
        r#"{"specversion":"1.0"}"#.to_string(),
    ];
    let mut engine = Engine::new(Arc::new(load_rules(None).unwrap()));
    let mut calls = Vec::new();
    report(
        &mut engine,
        lines.join("\n").as_bytes(),
        &Options::default(),
        |p| calls.push(p),
    )
    .unwrap();
    let last = calls.last().copied().expect("a call at the end");
    assert!(last.done, "{calls:?}");
    assert_eq!((last.records, last.dead_lettered), (3, 2), "{calls:?}");
    assert_eq!(calls.iter().filter(|p| p.done).count(), 1, "{calls:?}");
}
