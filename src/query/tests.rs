//! The query over workers' states: order, filters, pages across workers, restores.

use std::sync::Arc;

use super::*;
use crate::config::load_rules;
use crate::core::engine::PartitionId;
use crate::core::time::Span;
use crate::decode::decode;
use crate::sample::{generate, SampleConfig};
use crate::worker::{Guarantee, WorkerConfig};

fn topics() -> Vec<String> {
    ["customer-message", "return-request", "shipment"]
        .map(String::from)
        .to_vec()
}

fn pid(topic: u16, partition: i32) -> PartitionId {
    PartitionId { topic, partition }
}

fn worker(partitions: &[PartitionId]) -> Worker {
    let config = WorkerConfig {
        guarantee: Guarantee::ExactlyOnce,
        max_clock_skew: Span(300_000),
        commit_interval: Span(0),
    };
    let mut w = Worker::new(Arc::new(load_rules(None).unwrap()), config);
    w.handle_assigned(partitions);
    for &p in partitions {
        w.handle_restored(p);
    }
    while w.poll_action().is_some() {}
    w
}

/// Far enough ahead that no sample event is dead-lettered as from the future.
fn now() -> Millis {
    Millis::parse_rfc3339("2100-01-01T00:00:00Z").unwrap()
}

fn feed(w: &mut Worker, p: PartitionId, lines: &[String]) {
    let next = w.task(p).and_then(|t| t.next_offset()).unwrap_or(0);
    for (i, line) in lines.iter().enumerate() {
        w.handle_record(
            p,
            next + i as i64,
            decode(line.as_bytes()).into_input(),
            now(),
        );
    }
    while w.poll_action().is_some() {}
}

fn message(id: &str, thread: &str, time: &str, seller: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"s","type":"customer_message.received","time":"{time}","data":{{"thread_id":"{thread}","seller_id":"{seller}","marketplace":"NL"}}}}"#
    )
}

fn order(id: &str, order: &str, time: &str, ship_by: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"s","type":"order.placed","time":"{time}","data":{{"order_id":"{order}","latest_ship_date":"{ship_by}","seller_id":"S2","marketplace":"DE"}}}}"#
    )
}

/// Messages on customer-message 0, orders on shipment 1, in one worker.
fn small() -> Worker {
    let (m, s) = (pid(0, 0), pid(2, 1));
    let mut w = worker(&[m, s]);
    feed(
        &mut w,
        m,
        &[
            message("m1", "T1", "2026-11-20T00:00:00Z", "S1"),
            message("m2", "T2", "2026-11-20T06:00:00Z", "S1"),
            message("m3", "T3", "2026-11-19T00:00:00Z", "S2"),
        ],
    );
    feed(
        &mut w,
        s,
        &[
            order("o1", "O1", "2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z"),
            order("o2", "O2", "2026-11-20T00:00:00Z", "2026-11-20T12:00:00Z"),
        ],
    );
    w
}

fn keys(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.key.as_str()).collect()
}

fn query(filter: Filter) -> Query {
    Query {
        filter,
        ..Query::default()
    }
}

#[test]
fn entries_come_sorted_by_deadline_then_rule_then_key_with_their_partition() {
    let w = small();
    let all = select(&w, &topics(), &Query::default());
    // T3 due 11-21 00:00; O2 11-20 12:00; T1 11-22 00:00 and O1 11-22 00:00 (customer_reply
    // before ship_by); T2 11-22 06:00.
    assert_eq!(keys(&all), ["O2", "T3", "T1", "O1", "T2"]);
    let o2 = &all[0];
    assert_eq!(
        (o2.rule.as_str(), o2.topic.as_str(), o2.partition),
        ("ship_by", "shipment", 1)
    );
    assert_eq!(o2.order_id.as_deref(), Some("O2"));
    assert_eq!(
        (o2.seller_id.as_deref(), o2.marketplace.as_deref()),
        (Some("S2"), Some("DE"))
    );
    assert_eq!(o2.opened_by, "o2");
    let t1 = &all[2];
    assert_eq!(
        (t1.topic.as_str(), t1.order_id.as_deref()),
        ("customer-message", None)
    );
}

#[test]
fn overdue_is_per_partition_clock_and_filters_narrow_the_list() {
    let w = small();
    let t = &topics();
    // The shipment partition's clock is 11-20 00:00: O2 (due 12:00) is not overdue; the
    // message partition's clock is 11-20 06:00: nothing there is overdue either.
    assert!(select(&w, t, &Query::default()).iter().all(|e| !e.overdue));
    let mut w = w;
    feed(
        &mut w,
        pid(0, 0),
        &[message("m4", "T4", "2026-11-21T01:00:00Z", "S3")],
    );
    let overdue = select(
        &w,
        t,
        &query(Filter {
            status: Some(Status::Overdue),
            ..Filter::default()
        }),
    );
    assert_eq!(
        keys(&overdue),
        ["T3"],
        "past its deadline on its own partition's clock"
    );
    let open = select(
        &w,
        t,
        &query(Filter {
            status: Some(Status::Open),
            ..Filter::default()
        }),
    );
    assert_eq!(keys(&open), ["O2", "T1", "O1", "T2", "T4"]);
    let rule = Some(
        w.rules()
            .rules
            .iter()
            .position(|r| &*r.name == "ship_by")
            .unwrap() as u16,
    );
    let by_rule = select(
        &w,
        t,
        &query(Filter {
            rule,
            ..Filter::default()
        }),
    );
    assert_eq!(keys(&by_rule), ["O2", "O1"]);
    let seller = select(
        &w,
        t,
        &query(Filter {
            seller_id: Some("S1".into()),
            ..Filter::default()
        }),
    );
    assert_eq!(keys(&seller), ["T1", "T2"]);
    let nl = select(
        &w,
        t,
        &query(Filter {
            marketplace: Some("NL".into()),
            ..Filter::default()
        }),
    );
    assert_eq!(keys(&nl), ["T3", "T1", "T2", "T4"]);
    let key = select(
        &w,
        t,
        &query(Filter {
            key: Some("T2".into()),
            ..Filter::default()
        }),
    );
    assert_eq!(keys(&key), ["T2"]);
    let before = Some(Millis::parse_rfc3339("2026-11-22T00:00:00Z").unwrap());
    let due = select(
        &w,
        t,
        &query(Filter {
            due_before: before,
            ..Filter::default()
        }),
    );
    assert_eq!(keys(&due), ["O2", "T3"], "strictly before");
}

#[test]
fn the_next_point_and_alerts_emitted_follow_the_points_fired() {
    let mut w = small();
    feed(
        &mut w,
        pid(2, 1),
        &[order(
            "o3",
            "O3",
            "2026-11-21T20:30:00Z",
            "2026-11-25T00:00:00Z",
        )],
    );
    let all = select(
        &w,
        &topics(),
        &query(Filter {
            key: Some("O1".into()),
            ..Filter::default()
        }),
    );
    let o1 = &all[0];
    // 24h warning at 11-21 00:00 and 4h warning at 11-21 20:00 fired; the breach is next.
    assert_eq!(o1.alerts_emitted, 2);
    let next = o1.next_point.unwrap();
    assert_eq!(
        (next.lead, next.at.to_rfc3339().as_str()),
        (None, "2026-11-22T00:00:00.000Z")
    );
    let json = o1.to_json();
    assert_eq!(json["next_point"]["stage"], "breach");
    assert_eq!(json["next_point"]["lead_seconds"], serde_json::Value::Null);
    assert_eq!(json["deadline"], "2026-11-22T00:00:00.000Z");
}

#[test]
fn one_instance_is_found_by_rule_and_key() {
    let w = small();
    let rule = w
        .rules()
        .rules
        .iter()
        .position(|r| &*r.name == "customer_reply")
        .unwrap() as u16;
    let found = find(&w, &topics(), rule, "T2");
    assert_eq!(keys(&found), ["T2"]);
    assert!(find(&w, &topics(), rule, "O1").is_empty());
}

#[test]
fn a_partition_still_restoring_answers_nothing() {
    let mut w = small();
    w.handle_assigned(&[pid(1, 0)]);
    assert_eq!(select(&w, &topics(), &Query::default()).len(), 5);
    w.handle_lost(&[pid(0, 0)]);
    // Under exactly once a loss with uncommitted work rewinds the rest: restoring.
    assert!(select(&w, &topics(), &Query::default()).is_empty());
}

/// Every entry of the workers, by paging with `limit` and following `next`.
fn pages(workers: &[Worker], limit: usize, filter: &Filter) -> Vec<Entry> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let q = Query {
            filter: filter.clone(),
            limit,
            after,
        };
        let page = merge(workers.iter().map(|w| select(w, &topics(), &q)), limit);
        assert!(page.entries.len() <= limit);
        all.extend(page.entries);
        match page.next {
            Some(c) => after = Some(Cursor::decode(&c.encode()).unwrap()),
            None => return all,
        }
    }
}

#[test]
fn pages_over_two_workers_give_every_entry_once_in_order() {
    let lines: Vec<String> = generate(&SampleConfig {
        seed: 5,
        ..SampleConfig::sized(3_000)
    })
    .take(3_000)
    .collect();
    let parts = [pid(2, 0), pid(2, 1), pid(2, 2)];
    let mut a = worker(&parts[..2]);
    let mut b = worker(&parts[2..]);
    for (i, chunk) in lines.chunks(1_000).enumerate() {
        match i {
            0 => feed(&mut a, parts[0], chunk),
            1 => feed(&mut a, parts[1], chunk),
            _ => feed(&mut b, parts[2], chunk),
        }
    }
    let workers = [a, b];
    let everything = pages(&workers, MAX_LIMIT, &Filter::default());
    assert!(everything.len() > 200, "{}", everything.len());
    let sorted = everything
        .windows(2)
        .all(|p| p[0].sort_key() < p[1].sort_key());
    assert!(sorted, "strictly increasing sort keys");
    for limit in [1, 7, 100] {
        assert_eq!(
            pages(&workers, limit, &Filter::default()),
            everything,
            "limit {limit}"
        );
    }
    let overdue = Filter {
        status: Some(Status::Overdue),
        ..Filter::default()
    };
    let expected: Vec<Entry> = everything.iter().filter(|e| e.overdue).cloned().collect();
    assert!(!expected.is_empty());
    assert_eq!(pages(&workers, 13, &overdue), expected);
}
