//! `sla-timerd run` against a real Kafka broker: end to end, bad input, catch-up,
//! restarts (graceful and kill -9), metrics.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sla_timerd::clock::{Clock, SystemClock};
use sla_timerd::config::Settings;
use sla_timerd::core::time::Span;
use sla_timerd::service::Service;
use tokio::sync::watch;

use crate::helpers::{assert_same_alerts, data};
use crate::kafka_helpers::*;

/// A service running in this process until the returned sender is told to stop.
async fn start(
    broker: &str,
    names: &Names,
) -> (
    watch::Sender<bool>,
    std::net::SocketAddr,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    start_with(names.settings(broker)).await
}

pub(crate) async fn start_with(
    settings: Settings,
) -> (
    watch::Sender<bool>,
    std::net::SocketAddr,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let service = Service::build(settings, Arc::new(SystemClock))
        .await
        .expect("the service builds");
    let addr = service.http_addr();
    let (tx, rx) = watch::channel(false);
    let handle = tokio::spawn(service.run(rx));
    (tx, addr, handle)
}

fn now_text() -> String {
    SystemClock.now().to_rfc3339()
}

/// basic.jsonl produced, before any daemon starts, to fresh topics (one partition each)
/// named after `prefix`.
async fn basic_backlog(broker: &str, prefix: &str) -> (Names, String) {
    let names = Names::new(prefix);
    create_topics(broker, &names, 1).await;
    let text = std::fs::read_to_string(data("basic.jsonl")).unwrap();
    produce_lines(broker, &names, &text).await;
    (names, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_basic_example_through_kafka_gives_the_replay_alerts() {
    let Some(broker) = broker() else { return };
    // The records are all there before the daemon starts, so it reads them in batches.
    let (names, text) = basic_backlog(&broker, "e2e").await;
    let (stop, _, handle) = start_with(names.settings(&broker)).await;
    let expected = replay_alerts(&text, &now_text());
    let got = alerts(&broker, &names, expected.len(), Duration::from_secs(60));
    stop.send(true).unwrap();
    handle.await.unwrap().expect("a clean shutdown");
    assert_same_alerts(&expected, &got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_the_partitions_and_give_the_replay_alerts() {
    let Some(broker) = broker() else { return };
    let (names, text) = basic_backlog(&broker, "workers").await;
    let mut settings = names.settings(&broker);
    settings.kafka.workers = 2;
    let (stop, addr, handle) = start_with(settings).await;
    let expected = replay_alerts(&text, &now_text());
    // At least once: a worker that starts before the other has joined may hand a
    // partition over after reading it, and its next owner re-emits; ids tell them apart.
    let distinct = |got: &[Consumed]| {
        got.iter()
            .filter_map(|c| {
                serde_json::from_str::<Value>(&c.value).ok()?["id"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let got = consume(&broker, &names.alerts, Duration::from_secs(60), |got| {
        distinct(got) >= expected.len()
    });
    let mut seen = std::collections::BTreeSet::new();
    let got: Vec<Value> = got
        .iter()
        .map(|c| serde_json::from_str::<Value>(&c.value).expect("alerts are JSON"))
        .filter(|a| seen.insert(a["id"].as_str().expect("an id").to_string()))
        .collect();
    // The second worker may still be joining (the alerts can all come from the first):
    // wait until the group has settled with both members holding partitions.
    use rdkafka::consumer::Consumer as _;
    let admin: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker)
        .create()
        .expect("a client");
    let (mut metrics, mut holding) = (String::new(), Vec::new());
    for _ in 0..60 {
        metrics = http_get(addr, "/metrics").await.1;
        let groups = admin
            .fetch_group_list(Some(&names.group), Duration::from_secs(10))
            .expect("the group is described");
        holding = groups
            .groups()
            .iter()
            .flat_map(|g| g.members())
            .map(|m| {
                // ConsumerProtocolAssignment: version (int16), then the number of topics (int32).
                let topics = m
                    .assignment()
                    .and_then(|a| a.get(2..6))
                    .map(|n| i32::from_be_bytes(n.try_into().unwrap()));
                (m.client_id().to_string(), topics.is_some_and(|n| n > 0))
            })
            .collect();
        let settled = holding.len() == 2 && holding.iter().all(|(_, has)| *has);
        if settled && metrics.lines().any(|l| l == "sla_assigned_partitions 3") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        holding.len(),
        2,
        "each worker is a member of the group: {holding:?}"
    );
    assert!(
        holding.iter().all(|(_, has)| *has),
        "each member holds partitions: {holding:?}"
    );
    assert!(
        metrics.lines().any(|l| l == "sla_assigned_partitions 3"),
        "the workers' partitions add up:\n{metrics}"
    );
    stop.send(true).unwrap();
    handle.await.unwrap().expect("a clean shutdown");
    assert_same_alerts(&expected, &got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_dead_lettered_with_reason_and_bytes_and_every_record_is_counted() {
    let Some(broker) = broker() else { return };
    let names = Names::new("bad");
    create_topics(&broker, &names, 1).await;
    let (stop, addr, handle) = start(&broker, &names).await;
    let text = std::fs::read_to_string(data("basic.jsonl")).unwrap();
    let produced = produce_lines(&broker, &names, &text).await;
    let future = SystemClock.now().plus(Span::from_secs(3600)).to_rfc3339();
    let binary_from_the_future = [
        ("specversion", "1.0"),
        ("id", "f-1"),
        ("source", "helpdesk"),
        ("type", "customer_message.received"),
        ("time", future.as_str()),
    ];
    produce_binary(
        &broker,
        &names.customer_message,
        "T-9",
        &binary_from_the_future,
        r#"{"thread_id":"T-9"}"#,
    )
    .await;
    let letters = consume(
        &broker,
        &names.dead_letter,
        Duration::from_secs(60),
        |got| got.len() >= 3,
    );
    assert_eq!(
        letters.len(),
        3,
        "two bad lines and one event from the future"
    );
    assert!(
        letters.iter().any(|l| l.value == "not even json"),
        "the original bytes are kept"
    );
    for l in &letters {
        for h in [
            "sla_dead_letter_reason",
            "sla_source_topic",
            "sla_source_partition",
            "sla_source_offset",
        ] {
            assert!(l.headers.contains_key(h), "{h} missing: {:?}", l.headers);
        }
    }
    let future_letter = letters
        .iter()
        .find(|l| l.value.contains("T-9"))
        .expect("the binary-mode record");
    assert!(future_letter.headers["sla_dead_letter_reason"].contains("ahead of the wall clock"));
    let mut metrics = String::new();
    for _ in 0..50 {
        let (status, text) = http_get(addr, "/metrics").await;
        assert_eq!(status, 200);
        metrics = text;
        if metrics.contains("sla_consumer_lag_records{") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let consumed: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("sla_records_consumed_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(
        consumed as usize,
        produced + 1,
        "every record is accounted for:\n{metrics}"
    );
    for family in [
        "sla_alerts_produced_total",
        "sla_open_instances",
        "sla_pending_timer_points",
        "sla_consumer_lag_records",
        "sla_partition_clock_behind_seconds",
        "sla_alert_firing_lateness_seconds",
        "sla_processing_latency_seconds",
        "sla_dead_letters_total",
    ] {
        assert!(metrics.contains(family), "{family} missing:\n{metrics}");
    }
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    assert_eq!(http_get(addr, "/readyz").await.0, 200);
    stop.send(true).unwrap();
    handle.await.unwrap().expect("a clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_whose_deadlines_were_met_raises_no_breach_on_catch_up() {
    let Some(broker) = broker() else { return };
    let names = Names::new("catchup");
    create_topics(&broker, &names, 1).await;
    let now = SystemClock.now();
    let hours = |h: i64| Span::from_secs(h * 3600);
    let backlog = [
        event(
            "m-1",
            "customer_message.received",
            now.minus(hours(72)),
            "T-1",
        ),
        event(
            "r-1",
            "customer_message.replied",
            now.minus(hours(47)),
            "T-1",
        ),
        event(
            "m-2",
            "customer_message.received",
            now.minus(hours(1)),
            "T-2",
        ),
    ]
    .join("\n");
    produce_lines(&broker, &names, &backlog).await;
    let (stop, _, handle) = start(&broker, &names).await;
    let got = alerts(&broker, &names, 3, Duration::from_secs(20));
    stop.send(true).unwrap();
    handle.await.unwrap().expect("a clean shutdown");
    let ids: Vec<&str> = got.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "customer_reply:T-1:m-1:warning-86400",
            "customer_reply:T-1:m-1:resolved"
        ],
        "no breach for T-1, nothing yet for T-2"
    );
}

/// Contract section 5 on Kafka: a bad record too large to dead-letter whole goes by
/// reference and the daemon goes on; a dead letter keeps the record's key and every
/// header (a binary-mode record's `ce_` attributes too); a tombstone is skipped and
/// counted, not dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_bad_record_a_binary_one_and_a_tombstone_leave_the_daemon_running() {
    let Some(broker) = broker() else { return };
    let names = Names::new("oversized");
    create_topics(&broker, &names, 1).await;
    let topic = &names.customer_message;
    let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(999_989));
    assert_eq!(big.len(), 1_000_000);
    produce_raw(
        &broker,
        topic,
        Some("T-big"),
        Some(big.as_bytes()),
        &[("trace-id", "t-1")],
    )
    .await;
    let now = SystemClock.now().to_rfc3339();
    produce_raw(
        &broker,
        topic,
        Some("T-b"),
        Some(br#"{"thread_id":"T-b"}"#),
        &[
            ("ce_specversion", "0.3"),
            ("ce_id", "b-1"),
            ("ce_source", "helpdesk"),
            ("ce_type", "customer_message.received"),
            ("ce_time", &now),
            ("trace-id", "t-2"),
        ],
    )
    .await;
    produce_raw(&broker, topic, Some("T-t"), None, &[]).await;
    let due = SystemClock.now().minus(Span::from_secs(49 * 3600));
    let good = event("g-1", "customer_message.received", due, "T-g");
    produce_lines(&broker, &names, &good).await;

    let (stop, addr, handle) = start(&broker, &names).await;
    let got = alerts(&broker, &names, 3, Duration::from_secs(60));
    assert_eq!(
        got.len(),
        3,
        "the event after the bad records gives its two warnings and its breach: {got:?}"
    );
    let letters = consume(
        &broker,
        &names.dead_letter,
        Duration::from_secs(10),
        |got| got.len() >= 3,
    );
    assert_eq!(letters.len(), 2, "two dead letters, none for the tombstone");
    let by_reference = letters
        .iter()
        .find(|l| l.headers.get("trace-id").map(String::as_str) == Some("t-1"))
        .expect("the oversized record is dead-lettered");
    assert_eq!(by_reference.value, "", "by reference: no value");
    assert_eq!(
        by_reference.headers["sla_dead_letter_value_omitted_bytes"],
        "1000000"
    );
    assert_eq!(by_reference.headers["sla_source_offset"], "0");
    let binary = letters
        .iter()
        .find(|l| l.headers.get("trace-id").map(String::as_str) == Some("t-2"))
        .expect("the binary-mode record is dead-lettered");
    for (k, v) in [
        ("ce_specversion", "0.3"),
        ("ce_id", "b-1"),
        ("ce_source", "helpdesk"),
        ("ce_type", "customer_message.received"),
        ("ce_time", now.as_str()),
    ] {
        assert_eq!(binary.headers.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(binary.value, r#"{"thread_id":"T-b"}"#);
    let (_, metrics) = http_get(addr, "/metrics").await;
    let tombstones = metrics
        .lines()
        .find(|l| l.starts_with("sla_records_consumed_total{") && l.contains("tombstone"))
        .unwrap_or_else(|| panic!("tombstones are counted:\n{metrics}"));
    assert!(tombstones.ends_with(" 1"), "{tombstones}");
    stop.send(true).unwrap();
    handle.await.unwrap().expect("a clean shutdown");
}

/// Contract 9.3: not ready while an input topic is missing, naming it; once it is
/// created the daemon picks it up within seconds (not librdkafka's 5 minutes), creates
/// its changelog, and is ready holding its partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_topic_created_after_start_up_is_picked_up_within_seconds() {
    let Some(broker) = broker() else { return };
    let mut names = Names::new("late-topic");
    create_topics(&broker, &names, 1).await;
    names.shipment = format!("{}-created-later", names.shipment);
    let (stop, addr, handle) = start(&broker, &names).await;
    let mut body = String::new();
    for _ in 0..100 {
        (_, body) = http_get(addr, "/readyz").await;
        if body.contains("input topic missing") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        body.contains(&format!("input topic missing: {}", names.shipment)),
        "{body}"
    );
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &broker)
            .create()
            .unwrap();
    let created = std::time::Instant::now();
    admin
        .create_topics(
            &[rdkafka::admin::NewTopic::new(
                &names.shipment,
                2,
                rdkafka::admin::TopicReplication::Fixed(1),
            )],
            &rdkafka::admin::AdminOptions::new(),
        )
        .await
        .unwrap();
    let mut status = 0;
    while created.elapsed() < Duration::from_secs(30) {
        (status, body) = http_get(addr, "/readyz").await;
        let (_, metrics) = http_get(addr, "/metrics").await;
        let holds_it = metrics.lines().any(|l| {
            l.starts_with("sla_consumer_lag_records{") && l.contains(names.shipment.as_str())
        });
        if status == 200 && holds_it {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "late-topic: ready {:.1} s after the topic was created",
        created.elapsed().as_secs_f64()
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        created.elapsed() < Duration::from_secs(20),
        "picked up within seconds, took {:?}",
        created.elapsed()
    );
    stop.send(true).unwrap();
    handle.await.unwrap().expect("a clean shutdown");
}

/// Issue: a flood of librdkafka lines while the broker is unreachable. Now each kind of
/// report is logged once, then once a minute.
#[test]
fn an_unreachable_broker_is_logged_once_not_in_a_flood() {
    if broker().is_none() {
        return;
    }
    let names = Names::new("flood");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sla-timerd"))
        .arg("run")
        .envs(names.env("127.0.0.1:1"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(10));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let lines = text.lines().count();
    eprintln!("flood: {lines} lines in 10 s:\n{text}");
    assert!(lines <= 15, "{lines} lines in 10 s");
    assert!(
        text.contains("reading the cluster's topics"),
        "it says what it waits for"
    );
}

/// Issue: gauges went blank during a catch-up, and no commit came before its end. Now,
/// while a backlog is read, lag is reported above 0, offsets are committed, open
/// instances are counted; and backlog firings are counted apart from live ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gauges_and_commits_go_on_during_a_catch_up() {
    let Some(broker) = broker() else { return };
    let names = Names::new("gauges");
    create_topics(&broker, &names, 1).await;
    let start_at = SystemClock.now().minus(Span::from_secs(20 * 86400));
    let text = thread_stream(20_000, start_at);
    produce_lines(&broker, &names, &text).await;
    let (stop, addr, handle) = start(&broker, &names).await;
    let value = |metrics: &str, prefix: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let mut seen_behind = false;
    let mut last = String::new();
    for _ in 0..600 {
        let (_, metrics) = http_get(addr, "/metrics").await;
        let lag = value(&metrics, "sla_consumer_lag_records{");
        if lag > 0.0
            && value(&metrics, "sla_offset_commits_total{outcome=\"ok\"}") > 0.0
            && value(&metrics, "sla_open_instances{") > 0.0
        {
            seen_behind = true;
        }
        let done = value(&metrics, "sla_records_consumed_total{") >= 33_333.0 && lag == 0.0;
        last = metrics;
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen_behind,
        "while behind: lag > 0, commits made, instances counted:\n{last}"
    );
    assert!(
        value(
            &last,
            "sla_alert_firing_lateness_seconds_count{mode=\"catch_up\"}"
        ) > 0.0,
        "backlog firings are counted as catch_up:\n{last}"
    );
    assert_eq!(
        value(&last, "sla_partition_clock_behind_seconds{"),
        0.0,
        "caught up, no partition's clock is behind"
    );
    stop.send(true).unwrap();
    handle.await.unwrap().expect("a clean shutdown");
}
