//! `sla-timerd demo`: the whole live path with nothing to install.
//!
//! It starts librdkafka's in-process **mock** cluster (a stand-in for a real broker,
//! labelled as such; the integration tests use a real Apache Kafka broker), creates the
//! topics, and runs the real daemon against it with a [`ScaledClock`] (one hour of event
//! time per second by default). A feeder publishes a realistic sample stream (orders,
//! customer messages, returns) as their event times come due on that clock, and a reader
//! prints each alert on the alert topic as it fires. Metrics are served as in production,
//! and the query API with the token [`DEMO_TOKEN`]: once a minute of demo time (at most
//! every [`URGENT_EVERY_REAL`] of real time, so that the lines stay readable at the
//! default speed, where a demo minute is 17 ms) the demo prints the three most urgent
//! open deadlines through the same query the API answers, with the `curl` line that
//! asks for them.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use serde_json::Value;
use tokio::sync::watch;

use crate::clock::{Clock, ScaledClock, SystemClock};
use crate::config::{parse, DEFAULT_CONFIG};
use crate::core::time::{Millis, Span};
use crate::query::ask::{Querier, Question};
use crate::query::{merge, Filter, Query, Status};
use crate::sample::{generate, SampleConfig};
use crate::service::{shutdown_on_signals, ChangelogTopics, Service};

/// Demo options.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How many times faster than real time the demo clock runs (0.001 or more; 1 is real
    /// time).
    #[arg(long, default_value_t = 3600.0, value_parser = parse_speed, allow_negative_numbers = true)]
    pub speed: f64,
    /// How long the demo runs, in real seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Where to serve /metrics, /healthz, /readyz and the query API's /v1/ routes.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: String,
}

/// The slowest demo clock: a demo minute in under 17 real hours.
const MIN_SPEED: f64 = 0.001;

/// A clock speed: a finite number, at least [`MIN_SPEED`].
fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(speed) if speed.is_finite() && speed >= MIN_SPEED => Ok(speed),
        Ok(_) => Err(format!(
            "{text} is not a speed; give a number from {MIN_SPEED} up, like 3600 (an hour a second)"
        )),
        Err(_) => Err(format!(
            "{text} is not a number; give one from {MIN_SPEED} up, like 3600"
        )),
    }
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let mock = MockCluster::new(1).context("cannot start the in-process mock Kafka cluster")?;
    let bootstrap = mock.bootstrap_servers();
    let settings = parse(
        DEFAULT_CONFIG,
        "demo",
        demo_env(&bootstrap, &args.listen).into_iter(),
    )?;
    let topics = settings.kafka.topics.clone();
    for t in topics
        .inputs()
        .into_iter()
        .chain([topics.alerts.as_str(), topics.dead_letter.as_str()])
    {
        mock.create_topic(t, 3, 1)
            .with_context(|| format!("cannot create topic {t} on the mock cluster"))?;
    }
    // The mock cluster answers no admin requests, so the demo makes the changelog
    // topics itself (not compacted: the mock has no cleaner anyway).
    for input in topics.inputs() {
        let changelog = crate::kafka::topics::changelog_topic(&settings.kafka.group_id, input);
        mock.create_topic(&changelog, 3, 1)
            .with_context(|| format!("cannot create topic {changelog} on the mock cluster"))?;
    }
    let clock = Arc::new(ScaledClock::new(SystemClock.now(), args.speed));
    let service =
        Service::build_with(settings.clone(), clock.clone(), ChangelogTopics::Trust).await?;
    println!("sla-timerd demo: mock Kafka cluster (librdkafka's in-process mock, not a real broker) at {bootstrap}");
    println!(
        "clock runs {}x real time; metrics at http://{}/metrics; stops after {}s or Ctrl-C\n",
        args.speed,
        service.http_addr(),
        args.seconds
    );
    println!(
        "query the open deadlines: curl -H 'Authorization: Bearer {DEMO_TOKEN}' 'http://{}/v1/deadlines?status=open&limit=3'\n",
        service.http_addr()
    );
    let urgent = tokio::spawn(print_urgent(service.querier(), clock.clone()));
    let signals = shutdown_on_signals();
    let (stop, shutdown) = watch::channel(false);
    let daemon = tokio::spawn(service.run(shutdown));
    let feeder = tokio::spawn(feed(
        bootstrap.clone(),
        settings.kafka.topics.clone(),
        clock.clone(),
    ));
    let counts = Counts::default();
    let reader = tokio::spawn(print_alerts(
        bootstrap,
        topics.alerts.clone(),
        clock,
        counts.clone(),
    ));
    wait(signals, Duration::from_secs(args.seconds)).await;
    feeder.abort();
    urgent.abort();
    let _ = stop.send(true);
    let result = daemon.await.context("the daemon task failed")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    reader.abort();
    // Wait for the aborted tasks to drop their clients while the mock cluster still
    // runs; a client outliving it retries its connections noisily for a long while.
    let _ = feeder.await;
    let _ = reader.await;
    let counts = counts.lock().expect("never poisoned").clone();
    let summary: Vec<String> = counts.iter().map(|(t, n)| format!("{t} {n}")).collect();
    let _ = writeln!(
        std::io::stdout(),
        "\ndemo finished; alerts read back: {}",
        if summary.is_empty() {
            format!(
                "none in {} s (the consumer group takes a few seconds to assign its partitions; give --seconds 15 or more)",
                args.seconds
            )
        } else {
            summary.join(", ")
        }
    );
    result
}

fn demo_env(bootstrap: &str, listen: &str) -> Vec<(String, String)> {
    [
        ("KAFKA__BOOTSTRAP_SERVERS", bootstrap),
        ("KAFKA__GROUP_ID", "sla-timerd-demo"),
        ("HTTP__LISTEN", listen),
        ("KAFKA__COMMIT_INTERVAL", "1s"),
        ("HTTP__API_TOKEN", DEMO_TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (format!("SLA_TIMERD__{k}"), v.to_string()))
    .collect()
}

/// The demo's query API token.
pub const DEMO_TOKEN: &str = "demo-token";
/// The least real time between two prints of the most urgent deadlines.
pub const URGENT_EVERY_REAL: Duration = Duration::from_secs(5);

/// Prints the three most urgent open deadlines once a minute of demo time (at most every
/// [`URGENT_EVERY_REAL`]), asked of the workers as the query API asks them.
async fn print_urgent(querier: Querier, clock: Arc<ScaledClock>) {
    let query = Arc::new(Query {
        filter: Filter {
            status: Some(Status::Open),
            ..Filter::default()
        },
        limit: 3,
        after: None,
    });
    loop {
        let minute = clock.real_until(clock.now().plus(Span::from_secs(60)));
        tokio::time::sleep(minute.max(URGENT_EVERY_REAL)).await;
        let Ok(answers) = querier.ask(Question::Page(query.clone())).await else {
            continue;
        };
        let page = merge(answers, query.limit);
        if page.entries.is_empty() {
            continue;
        }
        let now = clock.now().to_rfc3339();
        let table = crate::deadlines::table(&page.to_json(), clock.now());
        let table: String = table
            .lines()
            .filter(|l| !l.starts_with("more:"))
            .map(|l| format!("    {l}\n"))
            .collect();
        let _ = write!(
            std::io::stdout(),
            "\n[{}] the three most urgent open deadlines:\n{table}\n",
            &now[..16]
        );
    }
}

async fn wait(mut signals: watch::Receiver<bool>, limit: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(limit) => {}
        _ = signals.changed() => {}
    }
}

/// The sample stream as (time, topic, key, line), generated up front (a few thousand lines).
fn sample_records(
    topics: &crate::config::Topics,
    start: Millis,
) -> Vec<(Millis, String, String, String)> {
    let cfg = SampleConfig {
        start,
        span: Span::from_secs(2 * 86400),
        orders: 300,
        threads: 200,
        returns: 80,
        ..SampleConfig::default()
    };
    generate(&cfg)
        .map(|line| {
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            let at = v["time"]
                .as_str()
                .and_then(|t| Millis::parse_rfc3339(t).ok())
                .unwrap_or(start);
            let topic = match v["type"]
                .as_str()
                .unwrap_or("shipment.malformed")
                .split('.')
                .next()
            {
                Some("customer_message") => &topics.customer_message,
                Some("return") | Some("refund") => &topics.return_request,
                _ => &topics.shipment,
            };
            let key = v["data"]["thread_id"]
                .as_str()
                .or(v["data"]["order_id"].as_str())
                .unwrap_or_default()
                .to_string();
            (at, topic.clone(), key, line)
        })
        .collect()
}

/// Publishes the sample stream, each event once the demo clock reaches its time.
async fn feed(
    bootstrap: String,
    topics: crate::config::Topics,
    clock: Arc<ScaledClock>,
) -> Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()?;
    for (at, topic, key, line) in sample_records(&topics, clock.now()) {
        tokio::time::sleep(clock.real_until(at)).await;
        let record = FutureRecord::to(&topic).payload(&line).key(&key);
        producer
            .send(record, Duration::from_secs(5))
            .await
            .map_err(|(e, _)| e)?;
    }
    Ok(())
}

type Counts = Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>;

/// Prints alerts as they arrive, counting them by type.
async fn print_alerts(bootstrap: String, topic: String, clock: Arc<ScaledClock>, counts: Counts) {
    let consumer: StreamConsumer = match ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "sla-timerd-demo-reader")
        .set("auto.offset.reset", "earliest")
        .create()
    {
        Ok(c) => c,
        Err(e) => return eprintln!("cannot read alerts: {e}"),
    };
    if let Err(e) = consumer.subscribe(&[&topic]) {
        return eprintln!("cannot read alerts: {e}");
    }
    loop {
        let Ok(m) = consumer.recv().await else {
            continue;
        };
        let Some(v) = m
            .payload()
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
        else {
            continue;
        };
        *counts
            .lock()
            .expect("never poisoned")
            .entry(v["type"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        let _ = writeln!(std::io::stdout(), "{}", describe(&v, clock.now()));
    }
}

/// One alert as a line a person reads: when it was due, what, which key, and the action.
/// `now` (the demo clock when it was read back) shows the delivery delay.
pub fn describe(alert: &Value, now: Millis) -> String {
    let d = &alert["data"];
    let stage = d["stage"].as_str().unwrap_or("?").to_uppercase();
    let what = d["rule"].as_str().or(d["check"].as_str()).unwrap_or("?");
    let detail = match d["stage"].as_str() {
        Some("warning") => format!(
            "due {} (in {}h)",
            d["deadline"].as_str().unwrap_or("?"),
            d["lead_seconds"].as_i64().unwrap_or(0) / 3600
        ),
        Some("breach") => format!("deadline {} passed", d["deadline"].as_str().unwrap_or("?")),
        Some("resolved") => format!(
            "closed {} ({})",
            alert["time"].as_str().unwrap_or("?"),
            d["outcome"].as_str().unwrap_or("?")
        ),
        _ => format!("on event {}", d["event_id"].as_str().unwrap_or("?")),
    };
    let at = alert["time"].as_str().unwrap_or("????-??-??T??:??");
    let late = alert["time"]
        .as_str()
        .and_then(|t| Millis::parse_rfc3339(t).ok())
        .map_or(0, |t| (now.0 - t.0) / 60_000);
    format!(
        "[{} +{late:>2}m] {:<9} {:<28} {:<22} {} - {}",
        &at[..16.min(at.len())],
        stage,
        what,
        d["key"].as_str().unwrap_or("?"),
        detail,
        d["action"].as_str().unwrap_or("")
    )
}
