//! One test per clause of contract section 4, driven through decode and the engine the
//! way replay drives them.

use std::sync::Arc;

use crate::config::load_rules;
use crate::core::engine::{Engine, PartitionId};
use crate::core::time::Millis;
use crate::decode::decode;

use super::*;

/// `(alert id, alert time)` in the order emitted.
type Emitted = Vec<(String, String)>;

fn ev(id: &str, event_type: &str, time: &str, data: &str) -> String {
    ev_from("test", id, event_type, time, data)
}

fn ev_from(source: &str, id: &str, event_type: &str, time: &str, data: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"{source}","type":"{event_type}","time":"2026-11-{time}Z","data":{data}}}"#
    )
}

fn msg(id: &str, event_type: &str, time: &str, thread: &str) -> String {
    ev(
        id,
        event_type,
        time,
        &format!(r#"{{"thread_id":"{thread}"}}"#),
    )
}

/// Replays lines through a fresh engine with the shipped rules.
fn run(lines: &[String], until: Option<&str>) -> Emitted {
    let mut engine = Engine::new(Arc::new(load_rules(None).unwrap()));
    let mut alerts = Vec::new();
    for line in lines {
        if let Ok(input) = decode(line.as_bytes()).into_input() {
            engine.take(PartitionId::REPLAY, &input, &mut alerts);
        }
    }
    let until = until.map(|u| Millis::parse_rfc3339(&format!("2026-11-{u}Z")).unwrap());
    engine.finish(PartitionId::REPLAY, until, &mut alerts);
    alerts
        .iter()
        .map(|a| (a.id().to_string(), a.time.to_rfc3339()))
        .collect()
}

fn ids(emitted: &Emitted) -> Vec<&str> {
    emitted.iter().map(|(id, _)| id.as_str()).collect()
}

fn at(day_time: &str) -> String {
    format!("2026-11-{day_time}.000Z")
}

const RECEIVED: &str = "customer_message.received";
const REPLIED: &str = "customer_message.replied";

#[test]
fn warnings_fire_at_deadline_minus_lead_and_the_breach_at_the_deadline() {
    let out = run(
        &[msg("m1", RECEIVED, "02T10:00:00", "T")],
        Some("04T10:00:00"),
    );
    assert_eq!(
        out,
        vec![
            (
                "customer_reply:T:m1:warning-86400".into(),
                at("03T10:00:00")
            ),
            (
                "customer_reply:T:m1:warning-14400".into(),
                at("04T06:00:00")
            ),
            ("customer_reply:T:m1:breach".into(), at("04T10:00:00")),
        ]
    );
}

#[test]
fn a_second_opening_event_while_an_instance_is_open_does_nothing() {
    let lines = [
        msg("m1", RECEIVED, "02T10:00:00", "T"),
        msg("m2", RECEIVED, "02T11:00:00", "T"),
    ];
    let out = run(&lines, Some("05T00:00:00"));
    assert!(ids(&out).iter().all(|id| id.contains(":m1:")), "{out:?}");
    assert_eq!(out.len(), 3);
}

#[test]
fn a_closing_event_seen_before_its_opening_event_still_closes_it() {
    let lines = [
        msg("r", REPLIED, "03T13:00:00", "T"),
        msg("m", RECEIVED, "03T12:00:00", "T"),
    ];
    assert!(run(&lines, Some("09T00:00:00")).is_empty());
}

#[test]
fn an_opening_event_at_exactly_the_latest_close_does_not_open() {
    let lines = [
        msg("r", REPLIED, "03T12:00:00", "T"),
        msg("m", RECEIVED, "03T12:00:00", "T"),
    ];
    assert!(run(&lines, Some("09T00:00:00")).is_empty());
}

#[test]
fn an_opening_event_after_the_latest_close_opens_a_new_instance() {
    let lines = [
        msg("r", REPLIED, "03T12:00:00", "T"),
        msg("m", RECEIVED, "03T12:00:01", "T"),
    ];
    let out = run(&lines, Some("09T00:00:00"));
    assert_eq!(ids(&out).last(), Some(&"customer_reply:T:m:breach"));
}

#[test]
fn of_the_warnings_already_past_only_the_most_urgent_fires_at_the_start() {
    let order = r#"{"order_id":"O","latest_ship_date":"2026-11-02T14:00:00Z"}"#;
    let out = run(
        &[ev("o", "order.placed", "02T11:00:00", order)],
        Some("02T14:00:00"),
    );
    assert_eq!(
        out,
        vec![
            ("ship_by:O:o:warning-14400".into(), at("02T11:00:00")),
            ("ship_by:O:o:breach".into(), at("02T14:00:00")),
        ]
    );
}

#[test]
fn a_deadline_at_or_before_the_start_breaches_at_the_start_without_warnings() {
    let order = r#"{"order_id":"O","latest_ship_date":"2026-11-01T00:00:00Z"}"#;
    let out = run(&[ev("o", "order.placed", "02T11:00:00", order)], None);
    assert_eq!(out, vec![("ship_by:O:o:breach".into(), at("02T11:00:00"))]);
}

#[test]
fn a_reply_at_exactly_the_deadline_meets_it() {
    let lines = [
        msg("m", RECEIVED, "02T10:00:00", "T"),
        msg("r", REPLIED, "04T10:00:00", "T"),
    ];
    let out = run(&lines, None);
    assert_eq!(ids(&out).last(), Some(&"customer_reply:T:m:resolved"));
    assert!(!ids(&out).contains(&"customer_reply:T:m:breach"), "{out:?}");
}

#[test]
fn a_reply_one_millisecond_late_breaches_then_resolves_late() {
    let lines = [
        msg("m", RECEIVED, "02T10:00:00", "T"),
        ev("r", REPLIED, "04T10:00:00.001", r#"{"thread_id":"T"}"#),
    ];
    let out = run(&lines, None);
    assert_eq!(
        &ids(&out)[2..],
        ["customer_reply:T:m:breach", "customer_reply:T:m:resolved"],
        "the breach fires before the late reply is applied"
    );
}

#[test]
fn a_close_before_any_alert_emits_no_resolution() {
    let lines = [
        msg("m", RECEIVED, "02T10:00:00", "T"),
        msg("r", REPLIED, "02T16:30:00", "T"),
    ];
    assert!(run(&lines, Some("09T00:00:00")).is_empty());
}

#[test]
fn a_closing_event_earlier_than_the_start_leaves_the_instance_open() {
    let lines = [
        msg("m1", RECEIVED, "02T10:00:00", "T"),
        msg("r1", REPLIED, "02T11:00:00", "T"),
        msg("m2", RECEIVED, "02T12:00:00", "T"),
        msg("r0", REPLIED, "02T11:30:00", "T"),
    ];
    let out = run(&lines, Some("04T12:00:00"));
    assert_eq!(
        ids(&out).last(),
        Some(&"customer_reply:T:m2:breach"),
        "{out:?}"
    );
}

#[test]
fn an_event_at_exactly_a_point_is_applied_before_the_point_fires() {
    let lines = [
        msg("m", RECEIVED, "02T10:00:00", "T"),
        msg("r", REPLIED, "03T10:00:00", "T"),
    ];
    assert!(
        run(&lines, None).is_empty(),
        "the reply at the 24h warning point cancels it"
    );
}

#[test]
fn a_point_left_in_the_past_by_an_out_of_order_event_fires_before_the_next_event() {
    let lines = [
        msg("m", RECEIVED, "02T10:00:00", "T"),
        msg("x", RECEIVED, "05T00:00:00", "OTHER"),
        msg("r", REPLIED, "03T09:00:00", "T"),
    ];
    let out = run(&lines, None);
    let t_alerts: Vec<_> = ids(&out)
        .into_iter()
        .filter(|id| id.contains(":T:"))
        .collect();
    assert_eq!(
        t_alerts,
        [
            "customer_reply:T:m:warning-86400",
            "customer_reply:T:m:warning-14400",
            "customer_reply:T:m:breach",
            "customer_reply:T:m:resolved"
        ]
    );
}

#[test]
fn a_skipped_event_moves_the_clock_but_a_dead_letter_does_not() {
    let open = msg("m", RECEIVED, "02T10:00:00", "T");
    let dead = ev("d", "order.placed", "04T11:00:00", r#"{"order_id":"O"}"#);
    let reply = msg("r", REPLIED, "04T10:00:00", "T");
    let after_dead = run(&[open.clone(), dead, reply.clone()], None);
    assert!(
        !ids(&after_dead).contains(&"customer_reply:T:m:breach"),
        "{after_dead:?}"
    );
    let unknown = ev("u", "inventory.adjusted", "04T11:00:00", r#"{"sku":"A"}"#);
    let after_unknown = run(&[open, unknown, reply], None);
    assert!(
        ids(&after_unknown).contains(&"customer_reply:T:m:breach"),
        "{after_unknown:?}"
    );
}

#[test]
fn at_the_end_points_at_or_before_until_fire() {
    let open = [msg("m", RECEIVED, "02T10:00:00", "T")];
    assert_eq!(run(&open, Some("03T09:59:59.999")).len(), 0);
    assert_eq!(run(&open, Some("03T10:00:00")).len(), 1);
    assert_eq!(run(&open, None).len(), 0, "until defaults to the clock");
}

#[test]
fn a_duplicate_event_is_ignored_entirely() {
    let m = msg("m", RECEIVED, "02T10:00:00", "T");
    let late_dup = ev("m", RECEIVED, "09T10:00:00", r#"{"thread_id":"T"}"#);
    let out = run(&[m, late_dup], None);
    assert!(
        out.is_empty(),
        "the duplicate neither opens nor moves the clock: {out:?}"
    );
}

#[test]
fn the_same_id_from_another_source_is_a_different_event() {
    let a = ev_from("a", "x", RECEIVED, "02T10:00:00", r#"{"thread_id":"T1"}"#);
    let b = ev_from("b", "x", RECEIVED, "02T10:00:00", r#"{"thread_id":"T2"}"#);
    assert_eq!(run(&[a, b], Some("04T10:00:00")).len(), 6);
}

#[test]
fn no_alert_id_is_emitted_twice_even_when_two_sources_reuse_an_event_id() {
    let lines = [
        ev_from("a", "x", RECEIVED, "02T10:00:00", r#"{"thread_id":"T"}"#),
        msg("r1", REPLIED, "04T12:00:00", "T"),
        ev_from("b", "x", RECEIVED, "04T13:00:00", r#"{"thread_id":"T"}"#),
    ];
    let out = run(&lines, Some("07T00:00:00"));
    let mut seen = std::collections::HashSet::new();
    assert!(out.iter().all(|(id, _)| seen.insert(id.clone())), "{out:?}");
}

#[test]
fn checks_fire_when_their_event_is_applied() {
    let lines = [
        ev(
            "s1",
            "shipment.confirmed",
            "02T10:00:00",
            r#"{"order_id":"O1"}"#,
        ),
        ev(
            "s2",
            "shipment.confirmed",
            "02T10:00:00",
            r#"{"order_id":"O2","tracking_number":"  "}"#,
        ),
        ev(
            "a1",
            "return.authorized",
            "02T11:00:00",
            r#"{"return_id":"R","order_id":"O3","item_return_required":true,"return_label_provided":false}"#,
        ),
        ev(
            "a2",
            "return.authorized",
            "02T11:00:00",
            r#"{"return_id":"R2","order_id":"O4","item_return_required":true,"return_address_provided":true}"#,
        ),
        ev(
            "c1",
            "return.closed",
            "02T12:00:00",
            r#"{"return_id":"R3","order_id":"O5"}"#,
        ),
        ev(
            "c2",
            "return.closed",
            "02T12:00:00",
            r#"{"return_id":"R4","order_id":"O6","reason":"kept"}"#,
        ),
    ];
    let out = run(&lines, None);
    assert_eq!(
        ids(&out),
        [
            "tracking_missing:s1",
            "tracking_missing:s2",
            "return_instructions_missing:a1",
            "close_reason_missing:c1"
        ]
    );
}

#[test]
fn signature_is_required_from_the_threshold_in_its_currency_only() {
    let placed = |id: &str, order: &str, amount: &str, currency: &str| {
        let data = format!(
            r#"{{"order_id":"{order}","latest_ship_date":"2026-11-09T00:00:00Z","order_total":{{"amount":{amount},"currency":"{currency}"}}}}"#
        );
        ev(id, "order.placed", "02T09:00:00", &data)
    };
    let shipped = |id: &str, order: &str, signed: &str| {
        let data = format!(
            r#"{{"order_id":"{order}","tracking_number":"X","signature_confirmation":{signed}}}"#
        );
        ev(id, "shipment.confirmed", "02T10:00:00", &data)
    };
    let lines = [
        placed("p1", "AT", "\"750.00\"", "EUR"),
        placed("p2", "BELOW", "749.99", "EUR"),
        placed("p3", "GBP", "\"5000\"", "GBP"),
        placed("p4", "SIGNED", "\"900\"", "EUR"),
        shipped("s1", "AT", "false"),
        shipped("s2", "BELOW", "false"),
        shipped("s3", "GBP", "false"),
        shipped("s4", "SIGNED", "true"),
        shipped("s5", "UNKNOWN", "false"),
    ];
    let out = run(&lines, None);
    let violations: Vec<_> = ids(&out)
        .into_iter()
        .filter(|id| id.starts_with("signature"))
        .collect();
    assert_eq!(violations, ["signature_missing:s1"]);
}

#[test]
fn retention_forgets_ids_and_latest_closes_but_never_open_instances() {
    let lines = [
        msg("old", RECEIVED, "01T00:00:00", "KEEP"),
        msg("r", REPLIED, "01T00:00:00", "T"),
        msg("tick", RECEIVED, "09T00:00:00", "OTHER"),
        msg("m", RECEIVED, "01T00:00:00.001", "T"),
    ];
    let out = run(&lines, Some("09T00:00:00"));
    assert!(
        ids(&out).contains(&"customer_reply:KEEP:old:breach"),
        "{out:?}"
    );
    assert!(
        ids(&out).contains(&"customer_reply:T:m:breach"),
        "L was forgotten after 7 days: {out:?}"
    );
}

#[test]
fn the_partition_reports_its_open_instances_and_pending_points() {
    let rules = load_rules(None).unwrap();
    let mut p = PartitionState::new();
    let line = msg("m", RECEIVED, "02T10:00:00", "T");
    let input = decode(line.as_bytes()).into_input().unwrap();
    assert_eq!(p.take(&rules, &input, &mut Vec::new()), Taken::Applied);
    assert_eq!(p.take(&rules, &input, &mut Vec::new()), Taken::Duplicate);
    assert_eq!(p.open_instances(), 1);
    assert_eq!(
        p.pending_points(),
        1,
        "one timer per instance: the next point"
    );
    assert_eq!(
        p.next_due(),
        Some(Millis::parse_rfc3339("2026-11-03T10:00:00Z").unwrap())
    );
}
