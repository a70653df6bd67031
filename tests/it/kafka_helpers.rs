//! Helpers for the tests against a real Kafka broker (started by `scripts/kafka.sh`,
//! found through `KAFKA_BOOTSTRAP_SERVERS`). Each test gets its own topics, group and
//! HTTP port, so tests run in parallel against one broker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::Value;
use sla_timerd::config::{parse, Settings, DEFAULT_CONFIG};
use sla_timerd::core::time::{Millis, Span};

/// The broker to use, or `None` (the test is skipped) when none is configured and
/// `SLA_REQUIRE_KAFKA` is not set.
pub fn broker() -> Option<String> {
    match std::env::var("KAFKA_BOOTSTRAP_SERVERS") {
        Ok(b) if !b.is_empty() => Some(b),
        _ if std::env::var("SLA_REQUIRE_KAFKA").is_ok() => {
            panic!("SLA_REQUIRE_KAFKA is set but KAFKA_BOOTSTRAP_SERVERS is not")
        }
        _ => {
            eprintln!(
                "skipped: no Kafka broker (run scripts/test.sh, or set KAFKA_BOOTSTRAP_SERVERS)"
            );
            None
        }
    }
}

/// Topic and group names unique to one test.
pub struct Names {
    pub customer_message: String,
    pub return_request: String,
    pub shipment: String,
    pub alerts: String,
    pub dead_letter: String,
    pub group: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Names {
    pub fn new(test: &str) -> Names {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = format!(
            "{test}-{}-{n}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() % 1000
        );
        Names {
            customer_message: format!("{p}-customer-message"),
            return_request: format!("{p}-return-request"),
            shipment: format!("{p}-shipment"),
            alerts: format!("{p}-alerts"),
            dead_letter: format!("{p}-dead-letter"),
            group: format!("{p}-group"),
        }
    }

    /// The settings a deployment would write, as environment overrides.
    pub fn env(&self, broker: &str) -> Vec<(String, String)> {
        [
            ("KAFKA__BOOTSTRAP_SERVERS", broker),
            ("KAFKA__GROUP_ID", &self.group),
            ("KAFKA__TOPICS__CUSTOMER_MESSAGE", &self.customer_message),
            ("KAFKA__TOPICS__RETURN_REQUEST", &self.return_request),
            ("KAFKA__TOPICS__SHIPMENT", &self.shipment),
            ("KAFKA__TOPICS__ALERTS", &self.alerts),
            ("KAFKA__TOPICS__DEAD_LETTER", &self.dead_letter),
            ("KAFKA__COMMIT_INTERVAL", "200ms"),
            // A killed member leaves the group after this, not the default 45 s.
            ("KAFKA__PROPERTIES__session.timeout.ms", "6000"),
            ("HTTP__LISTEN", "127.0.0.1:0"),
        ]
        .into_iter()
        .map(|(k, v)| (format!("SLA_TIMERD__{k}"), v.to_string()))
        .collect()
    }

    pub fn settings(&self, broker: &str) -> Settings {
        parse(DEFAULT_CONFIG, "test", self.env(broker).into_iter())
            .expect("test settings are valid")
    }

    /// The input topic an event type goes to, by its prefix.
    pub fn topic_for(&self, event_type: &str) -> &str {
        match event_type.split('.').next() {
            Some("customer_message") => &self.customer_message,
            Some("return") | Some("refund") => &self.return_request,
            _ => &self.shipment,
        }
    }
}

pub async fn create_topics(broker: &str, names: &Names, input_partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .create()
        .expect("an admin client");
    let inputs = [
        &names.customer_message,
        &names.return_request,
        &names.shipment,
    ];
    let mut topics: Vec<NewTopic> = inputs
        .iter()
        .map(|t| NewTopic::new(t, input_partitions, TopicReplication::Fixed(1)))
        .collect();
    topics.push(NewTopic::new(&names.alerts, 3, TopicReplication::Fixed(1)));
    topics.push(NewTopic::new(
        &names.dead_letter,
        1,
        TopicReplication::Fixed(1),
    ));
    let results = admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .expect("topics can be created");
    for r in results {
        r.expect("each topic is created");
    }
}

pub fn producer(broker: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .create()
        .expect("a producer")
}

/// Produces JSON Lines to the input topics by type, keyed as the contract says. Lines
/// that are not events (dead letters) go to the shipment topic unkeyed.
pub async fn produce_lines(broker: &str, names: &Names, text: &str) -> usize {
    let p = producer(broker);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    // A thousand in flight at a time, enqueued in order (join_all polls them in order);
    // the producer is idempotent, so a retry cannot reorder a partition's records.
    for chunk in lines.chunks(1000) {
        let sends = chunk.iter().map(|line| {
            let v: Option<Value> = serde_json::from_str(line).ok();
            let event_type = v
                .as_ref()
                .and_then(|v| v["type"].as_str())
                .unwrap_or("shipment.unknown");
            let key = v.as_ref().and_then(|v| {
                let d = &v["data"];
                d["thread_id"]
                    .as_str()
                    .or(d["order_id"].as_str())
                    .map(str::to_string)
            });
            let topic = names.topic_for(event_type);
            let p = &p;
            async move {
                let mut record = FutureRecord::to(topic).payload(*line);
                if let Some(k) = &key {
                    record = record.key(k);
                }
                p.send(record, Duration::from_secs(10))
                    .await
                    .expect("the broker accepts the record");
            }
        });
        futures_util::future::join_all(sends).await;
    }
    lines.len()
}

/// Produces one record in CloudEvents binary mode.
pub async fn produce_binary(
    broker: &str,
    topic: &str,
    key: &str,
    attributes: &[(&str, &str)],
    data: &str,
) {
    let mut headers = OwnedHeaders::new();
    for (k, v) in attributes {
        headers = headers.insert(Header {
            key: &format!("ce_{k}"),
            value: Some(*v),
        });
    }
    let record = FutureRecord::to(topic)
        .payload(data)
        .key(key)
        .headers(headers);
    producer(broker)
        .send(record, Duration::from_secs(10))
        .await
        .expect("the broker accepts the record");
}

/// A consumed record: value as JSON (or text) and headers.
pub struct Consumed {
    pub value: String,
    pub headers: HashMap<String, String>,
}

/// Reads a topic from the start until `until` holds or `timeout` passes.
pub fn consume(
    broker: &str,
    topic: &str,
    timeout: Duration,
    until: impl Fn(&[Consumed]) -> bool,
) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set(
            "group.id",
            format!("reader-{topic}-{}", COUNTER.fetch_add(1, Ordering::Relaxed)),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while Instant::now() < deadline && !until(&out) {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Consumed {
            value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into(),
            headers,
        });
    }
    out
}

/// Reads the alert topic until `count` alerts arrived (or the timeout), as JSON values.
pub fn alerts(broker: &str, names: &Names, count: usize, timeout: Duration) -> Vec<Value> {
    consume(broker, &names.alerts, timeout, |got| got.len() >= count)
        .into_iter()
        .map(|c| serde_json::from_str(&c.value).expect("alerts are JSON"))
        .collect()
}

/// The alerts the replay engine emits for `text` with points fired up to `until`.
pub fn replay_alerts(text: &str, until: &str) -> Vec<Value> {
    use sla_timerd::core::engine::Engine;
    use sla_timerd::replay::{replay, Sinks};
    let rules = std::sync::Arc::new(sla_timerd::config::load_rules(None).unwrap());
    let mut engine = Engine::new(rules);
    let mut sinks = Sinks {
        alerts: Vec::new(),
        dead_letters: None::<Vec<u8>>,
    };
    let until = sla_timerd::core::time::Millis::parse_rfc3339(until).unwrap();
    replay(&mut engine, text.as_bytes(), &mut sinks, Some(until)).unwrap();
    crate::helpers::json_lines(&String::from_utf8(sinks.alerts).unwrap())
}

/// GETs a path from the service's HTTP endpoint: the status and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) = http_get_as(addr, path, None).await;
    (status, body)
}

/// A `customer-message` event of a thread, as a JSON line.
pub fn event(id: &str, event_type: &str, time: Millis, thread: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"helpdesk","type":"{event_type}","time":"{}","data":{{"thread_id":"{thread}"}}}}"#,
        time.to_rfc3339()
    )
}

/// A customer-message stream on one topic, `threads` threads a minute apart from
/// `start`: a third unanswered, a third answered in 2 hours, a third in 30 or 50.
pub fn thread_stream(threads: usize, start: Millis) -> String {
    let mut lines = Vec::new();
    for t in 0..threads {
        let at = start.plus(Span::from_secs(t as i64 * 60));
        lines.push(event(
            &format!("m-{t}"),
            "customer_message.received",
            at,
            &format!("T-{t}"),
        ));
        if t % 3 != 0 {
            let delay = Span::from_secs(3600 * [2, 30, 50][t % 3]);
            lines.push(event(
                &format!("r-{t}"),
                "customer_message.replied",
                at.plus(delay),
                &format!("T-{t}"),
            ));
        }
    }
    lines.sort_by_key(|l| {
        serde_json::from_str::<Value>(l).unwrap()["time"]
            .as_str()
            .unwrap()
            .to_string()
    });
    lines.join("\n")
}

/// Produces one record as given: any key, value (`None`: a tombstone) and headers.
pub async fn produce_raw(
    broker: &str,
    topic: &str,
    key: Option<&str>,
    value: Option<&[u8]>,
    headers: &[(&str, &str)],
) {
    let mut owned = OwnedHeaders::new();
    for (k, v) in headers {
        owned = owned.insert(Header {
            key: k,
            value: Some(*v),
        });
    }
    let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).headers(owned);
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(v) = value {
        record = record.payload(v);
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("message.max.bytes", "2000000")
        .create()
        .expect("a producer");
    producer
        .send(record, Duration::from_secs(10))
        .await
        .expect("the broker accepts the record");
}

/// GETs a path with `Authorization: Bearer <token>` when a token is given: the status,
/// the headers (lower-cased names) and the body.
pub async fn http_get_as(
    addr: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the endpoint accepts connections");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}
