//! The live daemon end to end against a real Kafka broker: how fast it consumes compared
//! with a bare consumer, and how late breaches fire once it is caught up.
//!
//! # Why a plain `main` and not criterion
//!
//! One measurement creates topics, produces a million records, joins consumer groups and
//! waits for wall-clock deadlines: it takes tens of seconds, and cannot be repeated in a
//! loop on the same input (a second pass would read warm offsets, a rejoined group and a
//! page cache the first pass filled). Criterion's sampling model does not fit, so this is
//! `harness = false` with setup outside the timed parts, printing its figures once.
//!
//! # What is measured, in one run
//!
//! 0. **Warm-up**, untimed: a fifth of `N` through both consumers on topics of its own,
//!    so the broker (often started just before) has its hot paths compiled.
//! 1. **Throughput.** `N` lines of the realistic sample stream
//!    ([`sla_timerd::sample::generate`], sized for `N`, shifted so every event time is in
//!    the past) are produced, before any timing, to fresh topics (3 partitions each),
//!    routed by `type` prefix and keyed by `data.thread_id` or `data.order_id` as the
//!    contract says. Then (a) a bare `StreamConsumer`, configured as the daemon's consumer
//!    ([`sla_timerd::kafka::consumer_config`], fresh group) reads all `N` and does nothing
//!    with them; (b) the daemon ([`Service`], in this process, fresh group) consumes the
//!    same `N`, timed by polling its `/metrics` (`sla_records_consumed_total`) every
//!    100 ms. Both rates count from the first record seen to the last, so the group join
//!    is not part of either. Goal: daemon rate >= 0.70 x bare rate. The alerts the daemon
//!    produced (`sla_alerts_produced_total`, acknowledged by the broker) are reported:
//!    producing them is part of its work.
//! 2. **Firing lateness when caught up.** A daemon on fresh, empty topics; then 10,000
//!    `customer_message.received` on distinct threads, each dated so that its breach
//!    (`customer_reply`, 48h, read from the shipped rules) falls 5 to 60 s from now. Both
//!    warnings (24h and 4h before the deadline) are then in the past, after the message's
//!    time, so both fire at once; the breach fires on the wall clock.
//!    Lateness of each `sla.breach` = the alert record's Kafka timestamp (CreateTime, set
//!    by the daemon's producer when it sends) minus its `data.deadline`. Goal: p99 < 10 ms
//!    and none early (< 0). The daemon's own `sla_alert_firing_lateness_seconds`
//!    histogram is printed too.
//!
//! The bench's topics are deleted at the end.
//!
//! # Running
//!
//! `scripts/bench-daemon.sh` (starts a broker when `KAFKA_BOOTSTRAP_SERVERS` is unset), or
//! `KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 cargo bench --bench daemon`. Without a broker
//! it exits with status 2 and says so. `SLA_BENCH_RECORDS` sets `N` (default 1,000,000);
//! `SLA_BENCH_PARTS` picks parts by name (`throughput` with its warm-up, `lateness`,
//! `restart`; default all), e.g. `SLA_BENCH_PARTS=restart`.

// `Instant::now` is this bench's stopwatch (how long a phase took), not a reading of the
// daemon's clock; wall time (event dates, alert lateness) goes through `SystemClock`.
#![allow(clippy::disallowed_methods)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use sla_timerd::clock::{Clock, SystemClock};
use sla_timerd::config::{parse, Settings, DEFAULT_CONFIG};
use sla_timerd::core::rules::Deadline;
use sla_timerd::core::time::{Millis, Span};
use sla_timerd::sample::{generate, SampleConfig};
use sla_timerd::service::Service;
use sla_timerd::telemetry::{self, LogFormat};

const DEFAULT_RECORDS: usize = 1_000_000;
const DEFAULT_OPEN_INSTANCES: usize = 1_000_000;
/// The parts of the bench, in the order they run; `SLA_BENCH_PARTS` picks some.
const ALL_PARTS: [&str; 3] = ["throughput", "lateness", "restart"];
const INPUT_PARTITIONS: i32 = 3;
/// Customer messages of the lateness run.
const TIMERS: usize = 10_000;
/// Breach deadlines of the lateness run: from now + `FIRST_DUE`, spread over `DUE_SPREAD`.
/// The first 5 s leave time to produce and consume all messages before any breach is due.
const FIRST_DUE: Span = Span(5_000);
const DUE_SPREAD: Span = Span(55_000);
const METRICS_POLL: Duration = Duration::from_millis(100);
const DAY: Span = Span(86_400_000);

fn main() {
    let Some(broker) = std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .ok()
        .filter(|b| !b.trim().is_empty())
    else {
        eprintln!(
            "bench daemon: KAFKA_BOOTSTRAP_SERVERS is not set; this bench needs a real Kafka broker.\n\
             Run scripts/bench-daemon.sh, or: eval \"$(scripts/kafka.sh start)\"; export KAFKA_BOOTSTRAP_SERVERS"
        );
        std::process::exit(2);
    };
    let records = match std::env::var("SLA_BENCH_RECORDS") {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .expect("SLA_BENCH_RECORDS is a number of records"),
        Err(_) => DEFAULT_RECORDS,
    };
    telemetry::init(LogFormat::Human, "warn");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run(&broker, records)) {
        eprintln!("bench daemon: error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(broker: &str, records: usize) -> Result<()> {
    println!("sla-timerd daemon bench against {broker}");
    let (warm, thru, late, again) = (
        Names::new("warm"),
        Names::new("thru"),
        Names::new("late"),
        Names::new("restart"),
    );
    let open = match std::env::var("SLA_BENCH_OPEN_INSTANCES") {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .expect("SLA_BENCH_OPEN_INSTANCES is a number"),
        Err(_) => DEFAULT_OPEN_INSTANCES,
    };
    let parts = std::env::var("SLA_BENCH_PARTS").unwrap_or_else(|_| ALL_PARTS.join(","));
    let parts: Vec<&str> = parts.split(',').map(str::trim).collect();
    if let Some(unknown) = parts.iter().find(|p| !ALL_PARTS.contains(p)) {
        bail!(
            "SLA_BENCH_PARTS names {unknown:?}; the parts are {}",
            ALL_PARTS.join(",")
        );
    }
    let result = async {
        if parts.contains(&"throughput") {
            warm_up(broker, &warm, (records / 5).max(10_000)).await?;
            throughput(broker, &thru, records).await?;
        }
        if parts.contains(&"lateness") {
            lateness(broker, &late).await?;
        }
        if parts.contains(&"restart") {
            restart(broker, &again, open).await?;
        }
        Ok(())
    }
    .await;
    delete_topics(broker, &[&warm, &thru, &late, &again]).await;
    result
}

/// Untimed: the same work on a fifth of the records and topics of its own, so that the
/// broker's JIT compiler has compiled the fetch and produce paths before anything is
/// timed (a broker that has just started spends about 1 µs more CPU per record on
/// them, on the two cores this bench shares with it; a broker in service is warm).
async fn warm_up(broker: &str, names: &Names, records: usize) -> Result<()> {
    create_topics(broker, names).await?;
    let sample = generate(&sample_config(records, SystemClock.now())).take(records);
    let produced = tokio::task::block_in_place(|| produce(broker, names, sample))?;
    bare_consumer(broker, names, produced.records).await?;
    daemon_consumer(
        broker,
        names,
        &names.group("warm"),
        "exactly_once",
        produced.records,
    )
    .await?;
    println!(
        "\n0. warm-up (untimed): {} records through a bare consumer and the daemon",
        produced.records
    );
    Ok(())
}

// --------------------------------------------------------------------- 3. restart ---

/// `instances` messages on threads of their own, received an hour ago (nothing due for
/// 23 hours), consumed by a static member, which then stops gracefully; the same member
/// starts again. Timed: from the second start until every partition is restored and
/// caught up. Counted: records read again, alerts sent again, changelog records read.
/// Memory: the RSS of a daemon process of its own (the release binary, `sla-timerd run`,
/// another group) holding the instances, against its RSS once assigned and idle.
async fn restart(broker: &str, names: &Names, instances: usize) -> Result<()> {
    create_topics(broker, names).await?;
    let process = DaemonProcess::start(broker, names, &names.group("memory")).await?;
    let rss_idle = process.rss_bytes()?;
    let received = SystemClock.now().minus(Span(3_600_000)).to_rfc3339();
    let lines = (0..instances).map(move |i| {
        format!(
            r#"{{"specversion":"1.0","id":"open-{i:07}","source":"bench","type":"customer_message.received","time":"{received}","data":{{"thread_id":"OPEN-T-{i:07}","seller_id":"A1BENCHSELLER0","marketplace":"DE"}}}}"#
        )
    });
    let produced = tokio::task::block_in_place(|| produce(broker, names, lines))?;
    println!(
        "\n3. restart: {} customer messages, each on a thread of its own, produced in {:.1} s",
        produced.records,
        produced.elapsed.as_secs_f64()
    );
    let started = Instant::now();
    wait_open(|| process.scrape(), instances).await?;
    // Until the changelog records in flight are acknowledged and freed, and the
    // allocator has handed freed pages back (jemalloc's dirty decay is 10 s).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let rss_held = process.rss_bytes()?;
    process.stop()?;
    println!(
        "   memory: a daemon process (sla-timerd run) opened {instances} instances in {:.1} s; RSS {:.0} MB assigned and idle, \
         {:.0} MB holding them = {:.0} bytes per open instance (goal <= 160)",
        started.elapsed().as_secs_f64() - 12.0,
        rss_idle as f64 / 1e6,
        rss_held as f64 / 1e6,
        (rss_held as f64 - rss_idle as f64) / instances as f64
    );
    let group = names.group("restart");
    let member = [(
        "KAFKA__PROPERTIES__GROUP_INSTANCE_ID",
        "bench-restart-member",
    )];
    let first = Running::start(broker, names, &group, &member).await?;
    let started = Instant::now();
    wait_open(|| first.scrape(), instances).await?;
    println!(
        "   first run: {instances} instances open after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    first.stop().await?;
    let alerts_before = count_records(broker, &names.alerts)?;
    // The floor: a bare read_committed consumer reading the same changelogs to the end.
    let bare = Instant::now();
    let (records, bytes) = tokio::task::block_in_place(|| changelog_size(broker, names, &group))?;
    println!(
        "   a bare read_committed consumer reads the changelogs ({records} records, {:.0} MB) in {:.2} s",
        bytes as f64 / 1e6,
        bare.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let second = Running::start(broker, names, &group, &member).await?;
    let mut assigned_after = None;
    let caught_up = loop {
        let scrape = second.scrape().await?;
        let partitions = scrape.sum("sla_assigned_partitions");
        if partitions > 0.0 && assigned_after.is_none() {
            assigned_after = Some(started.elapsed());
        }
        if partitions >= 3.0 * INPUT_PARTITIONS as f64
            && scrape.sum("sla_partitions_restoring") == 0.0
            && scrape.sum("sla_open_instances") >= instances as f64
            && scrape.sum("sla_consumer_lag_records") == 0.0
        {
            break scrape;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(300),
            "the restarted member was not caught up within 300 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = started.elapsed();
    let assigned_after = assigned_after.unwrap_or(elapsed);
    second.stop().await?;
    let alerts_after = count_records(broker, &names.alerts)?;
    println!(
        "   restart: assigned {:.2} s after start; restored and caught up {:.2} s after start, {:.2} s after the assignment (goal <= 2 s)",
        assigned_after.as_secs_f64(),
        elapsed.as_secs_f64(),
        (elapsed - assigned_after).as_secs_f64()
    );
    println!(
        "   restart: {:.0} changelog records restored in {:.2} s of restore time (summed over partitions); \
         {:.0} input records read again (goal 0); {} alerts sent again (goal 0)",
        caught_up.sum("sla_restored_records_total"),
        caught_up.sum("sla_restore_duration_seconds_sum"),
        caught_up.sum("sla_records_consumed_total"),
        alerts_after.saturating_sub(alerts_before)
    );
    Ok(())
}

/// Scrapes until `instances` records are consumed and as many instances open.
async fn wait_open<F, Fut>(scrape: F, instances: usize) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Scrape>>,
{
    let started = Instant::now();
    loop {
        let scrape = scrape().await?;
        if scrape.sum("sla_records_consumed_total") >= instances as f64
            && scrape.sum("sla_open_instances") >= instances as f64
        {
            return Ok(());
        }
        ensure!(
            started.elapsed() < consume_timeout(instances),
            "the daemon did not open {instances} instances in time"
        );
        tokio::time::sleep(METRICS_POLL).await;
    }
}

/// The release binary run as a daemon of its own (`sla-timerd run`), for its RSS.
struct DaemonProcess {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Drop for DaemonProcess {
    /// A bench that fails leaves no daemon behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl DaemonProcess {
    /// Starts it and waits until its partitions are assigned and restored.
    async fn start(broker: &str, names: &Names, group: &str) -> Result<DaemonProcess> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let env = settings_env(broker, names, group, &[], &addr.to_string());
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sla-timerd"))
            .arg("run")
            .env("RUST_LOG", "warn")
            .envs(env)
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("cannot start sla-timerd run")?;
        let process = DaemonProcess { child, addr };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(scrape) = process.scrape().await {
                if scrape.sum("sla_assigned_partitions") >= 3.0 * INPUT_PARTITIONS as f64
                    && scrape.sum("sla_partitions_restoring") == 0.0
                {
                    break;
                }
            }
            ensure!(
                Instant::now() < deadline,
                "the daemon process was not assigned its partitions within 60 s"
            );
            tokio::time::sleep(METRICS_POLL).await;
        }
        // Settled: its clients connected, its first transaction begun.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(process)
    }

    async fn scrape(&self) -> Result<Scrape> {
        Scrape::get(self.addr).await
    }

    fn rss_bytes(&self) -> Result<u64> {
        rss_of(&format!("/proc/{}/status", self.child.id()))
            .context("cannot read the daemon process's RSS")
    }

    /// SIGTERM, then waits for it to exit.
    fn stop(mut self) -> Result<()> {
        std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status()?;
        let status = self.child.wait()?;
        ensure!(status.success(), "the daemon process exited with {status}");
        Ok(())
    }
}

/// The resident set in a `/proc/PID/status` file, in bytes.
fn rss_of(status: &str) -> Result<u64> {
    let text = std::fs::read_to_string(status)?;
    let kb = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmRSS line")?;
    Ok(kb * 1024)
}

/// Records in a topic, read read_committed to the end of every partition.
fn count_records(broker: &str, topic: &str) -> Result<u64> {
    let consumer = end_reader(broker)?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len());
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)?;
    }
    Ok(read_to_end(broker, &tpl)?.0)
}

/// A read_committed consumer that reports the end of each partition.
fn end_reader(broker: &str) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", format!("bench-reader-{}", SystemClock.now().0))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        // As the daemon's restore reader: no 1 s pause once a prefetch queue is full.
        .set("fetch.queue.backoff.ms", "5")
        .create()
        .context("cannot create a reading consumer")
}

/// Records and bytes (keys and values) of `tpl`'s partitions, from their offsets to
/// their ends (at most 120 s).
fn read_to_end(broker: &str, tpl: &rdkafka::TopicPartitionList) -> Result<(u64, u64)> {
    let consumer = end_reader(broker)?;
    consumer.assign(tpl)?;
    let (mut records, mut bytes, mut ended) = (0u64, 0u64, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    while ended < tpl.count() && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                records += 1;
                bytes +=
                    (m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len)) as u64;
            }
            Some(Err(KafkaError::PartitionEOF(_))) => ended += 1,
            _ => {}
        }
    }
    Ok((records, bytes))
}

// ------------------------------------------------------------------ 1. throughput ---

async fn throughput(broker: &str, names: &Names, records: usize) -> Result<()> {
    create_topics(broker, names).await?;
    let now = SystemClock.now();
    let sample = generate(&sample_config(records, now)).take(records);
    let produced = tokio::task::block_in_place(|| produce(broker, names, sample))?;
    let latest = produced
        .latest
        .context("no line of the sample has a time")?;
    println!(
        "\n1. throughput: {} records generated and produced in {:.1} s to 3 topics x {INPUT_PARTITIONS} partitions; \
         latest event time {:.1} h before now",
        produced.records,
        produced.elapsed.as_secs_f64(),
        (now.0 - latest.0) as f64 / 3.6e6
    );
    ensure!(
        latest < now,
        "the sample has events after now ({latest}); they would be dead-lettered"
    );
    let bare = bare_consumer(broker, names, produced.records).await?;
    bare.print("bare StreamConsumer");
    let mut rates = Vec::new();
    for guarantee in ["exactly_once", "at_least_once"] {
        let group = names.group(guarantee);
        let (daemon, end, settled) =
            daemon_consumer(broker, names, &group, guarantee, produced.records).await?;
        println!("   -- kafka.guarantee = \"{guarantee}\"");
        daemon.print("daemon");
        println!(
            "   daemon/bare consumer rate ratio: {:.2} (goal >= 0.70)",
            daemon.rate() / bare.rate()
        );
        let read_twice =
            (settled.sum("sla_records_consumed_total") as usize).saturating_sub(produced.records);
        if read_twice > 0 {
            println!(
                "   NOTE: {read_twice} records were read twice (a partition changed hands after the daemon had begun); \
                 the daemon's rate counts them, so it is not comparable"
            );
        }
        print_daemon_work(&end, &settled);
        let changelog = changelog_size(broker, names, &group)?;
        println!(
            "   changelog: {} records, {} bytes (keys and values) = {:.1} bytes per input record",
            changelog.0,
            changelog.1,
            changelog.1 as f64 / produced.records as f64
        );
        rates.push(daemon.rate());
    }
    println!(
        "   exactly once / at least once rate ratio: {:.2} (goal >= 0.80)",
        rates[0] / rates[1]
    );
    Ok(())
}

/// Records and bytes (keys and values) now in a group's changelog topics, read
/// read_committed to the end.
fn changelog_size(broker: &str, names: &Names, group: &str) -> Result<(u64, u64)> {
    let mut tpl = rdkafka::TopicPartitionList::new();
    for input in [
        &names.customer_message,
        &names.return_request,
        &names.shipment,
    ] {
        let topic = sla_timerd::kafka::topics::changelog_topic(group, input);
        for p in 0..INPUT_PARTITIONS {
            tpl.add_partition_offset(&topic, p, rdkafka::Offset::Beginning)?;
        }
    }
    read_to_end(broker, &tpl)
}

/// The default mix sized for `records` lines, moved so that its last events (about two
/// weeks past the span) are still before `now`.
fn sample_config(records: usize, now: Millis) -> SampleConfig {
    let sized = SampleConfig::sized(records);
    SampleConfig {
        start: now.minus(sized.span).minus(Span(16 * DAY.0)),
        ..sized
    }
}

/// How fast a consumer went, from the first record it saw to the last.
struct Consumed {
    /// From subscribing (or starting the daemon) to the first record seen.
    first_after: Duration,
    /// Records counted after the first look, and how long they took.
    records: usize,
    elapsed: Duration,
    /// CPU time used meanwhile, by this process and by the broker.
    cpu: CpuUse,
}

/// CPU seconds (user + system) of this process and of the local broker, from
/// `/proc/PID/stat`. On a machine of few cores, the rates above depend on how the cores
/// are shared; CPU time per record does not, and says where the work is.
#[derive(Clone, Copy, Default)]
struct CpuUse {
    this: f64,
    broker: Option<f64>,
}

impl CpuUse {
    fn now() -> CpuUse {
        let broker = std::env::var("SLA_BENCH_BROKER_PID")
            .ok()
            .and_then(|pid| cpu_seconds(pid.trim()));
        CpuUse {
            this: cpu_seconds("self").unwrap_or(f64::NAN),
            broker,
        }
    }

    fn since(self, start: CpuUse) -> CpuUse {
        CpuUse {
            this: self.this - start.this,
            broker: self.broker.zip(start.broker).map(|(b, s)| b - s),
        }
    }
}

/// utime + stime of a process, in seconds (USER_HZ is 100 on Linux).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ').skip(11);
    let (utime, stime): (f64, f64) = (fields.next()?.parse().ok()?, fields.next()?.parse().ok()?);
    Some((utime + stime) / 100.0)
}

impl Consumed {
    fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, who: &str) {
        println!(
            "   {who:<20} {:>9.0} records/s ({} records in {:.2} s after the first, seen {:.2} s after start)",
            self.rate(),
            self.records,
            self.elapsed.as_secs_f64(),
            self.first_after.as_secs_f64()
        );
        let per_record = |seconds: f64| seconds * 1e6 / self.records as f64;
        let broker = self.cpu.broker.map_or("not measured".into(), |b| {
            format!("{:.2} us", per_record(b))
        });
        println!(
            "   {:<20} CPU per record: this process {:.2} us, broker {broker} ({:.2} s on {:.2} s of wall time)",
            "",
            per_record(self.cpu.this),
            self.cpu.this + self.cpu.broker.unwrap_or(0.0),
            self.elapsed.as_secs_f64()
        );
    }
}

/// Generous: a daemon at 2,000 records/s still finishes.
fn consume_timeout(records: usize) -> Duration {
    Duration::from_secs(60 + records as u64 / 2_000)
}

async fn bare_consumer(broker: &str, names: &Names, records: usize) -> Result<Consumed> {
    let settings = settings(broker, names, &names.group("bare"), &[])?;
    let consumer: StreamConsumer = sla_timerd::kafka::consumer_config(&settings.kafka)
        .create()
        .context("cannot create the bare consumer")?;
    consumer
        .subscribe(&settings.kafka.topics.inputs())
        .context("cannot subscribe the bare consumer")?;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + consume_timeout(records);
    let (mut seen, mut first) = (0, None);
    while seen < records {
        let Ok(next) = tokio::time::timeout_at(deadline, consumer.recv()).await else {
            bail!("the bare consumer read only {seen} of {records} records before its timeout");
        };
        match next {
            Ok(m) => black_box(m.payload().map(<[u8]>::len)),
            Err(e) => {
                eprintln!("bare consumer error: {e}");
                continue;
            }
        };
        seen += 1;
        first.get_or_insert_with(|| (Instant::now(), CpuUse::now()));
    }
    let (first, cpu) = first.expect("at least one record was read");
    let cpu = CpuUse::now().since(cpu);
    Ok(Consumed {
        first_after: first - started,
        records: records - 1,
        elapsed: first.elapsed(),
        cpu,
    })
}

/// Consumes with the daemon; returns its rate and scrapes at the last record and once
/// its alert count settled.
async fn daemon_consumer(
    broker: &str,
    names: &Names,
    group: &str,
    guarantee: &str,
    records: usize,
) -> Result<(Consumed, Scrape, Scrape)> {
    let daemon = Running::start(broker, names, group, &[("KAFKA__GUARANTEE", guarantee)]).await?;
    let started = Instant::now();
    let mut first: Option<(Instant, f64, CpuUse)> = None;
    let end = loop {
        tokio::time::sleep(METRICS_POLL).await;
        let scrape = daemon.scrape().await?;
        let consumed = scrape.sum("sla_records_consumed_total");
        let at = Instant::now();
        first = first.or((consumed > 0.0).then(|| (at, consumed, CpuUse::now())));
        if consumed >= records as f64 {
            break scrape;
        }
        ensure!(
            started.elapsed() < consume_timeout(records),
            "the daemon consumed only {consumed} of {records} records"
        );
    };
    let (first_at, first_count, cpu) = first.expect("records were consumed");
    let consumed = Consumed {
        cpu: CpuUse::now().since(cpu),
        first_after: first_at - started,
        records: records - first_count as usize,
        elapsed: first_at.elapsed(),
    };
    let settled = daemon.settled_alerts().await?;
    daemon.stop().await?;
    Ok((consumed, end, settled))
}

fn print_daemon_work(end: &Scrape, settled: &Scrape) {
    let alerts = "sla_alerts_produced_total";
    println!(
        "   daemon alerts produced (acknowledged): {:.0} when the last record was consumed, {:.0} once settled",
        end.sum(alerts),
        settled.sum(alerts)
    );
    println!(
        "     by type: {}",
        settled.by_label(alerts, "type").join(", ")
    );
    println!(
        "   daemon records by outcome: {}",
        settled
            .by_label("sla_records_consumed_total", "outcome")
            .join(", ")
    );
    let dead = settled.by_label("sla_dead_letters_total", "class");
    println!(
        "   daemon dead letters by class: {}",
        if dead.is_empty() {
            "none".into()
        } else {
            dead.join(", ")
        }
    );
}

// ------------------------------------------------------------ 2. firing lateness ---

async fn lateness(broker: &str, names: &Names) -> Result<()> {
    create_topics(broker, names).await?;
    let settings = settings(broker, names, &names.group("daemon"), &[])?;
    let reply_within = customer_reply_deadline(&settings)?;
    let daemon = Running::start(broker, names, &names.group("daemon"), &[]).await?;
    daemon.wait_assigned(3 * INPUT_PARTITIONS as usize).await?;
    let wait = Duration::from_millis((FIRST_DUE.0 + DUE_SPREAD.0) as u64) + Duration::from_secs(30);
    let reader = {
        let (broker, topic, group) = (
            broker.to_string(),
            names.alerts.clone(),
            names.group("reader"),
        );
        tokio::task::spawn_blocking(move || read_alerts(&broker, &topic, &group, wait))
    };
    let now = SystemClock.now();
    let messages = (0..TIMERS).map(|i| timer_message(i, now, reply_within));
    tokio::task::block_in_place(|| produce(broker, names, messages))?;
    let read = reader.await.context("the alert reader panicked")??;
    let scrape = daemon.scrape().await?;
    daemon.stop().await?;
    println!(
        "\n2. firing lateness when caught up: {TIMERS} customer messages, breach deadlines from now+{} s to now+{} s",
        FIRST_DUE.0 / 1000,
        (FIRST_DUE.0 + DUE_SPREAD.0) / 1000
    );
    read.print();
    print_histogram(&scrape, "sla_alert_firing_lateness_seconds");
    Ok(())
}

/// The `customer_reply` deadline of the shipped rules (48h).
fn customer_reply_deadline(settings: &Settings) -> Result<Span> {
    let rule = settings
        .rules
        .rules
        .iter()
        .find(|r| &*r.name == "customer_reply")
        .context("no customer_reply rule")?;
    match &rule.deadline {
        Deadline::After(span) => Ok(*span),
        _ => bail!("customer_reply's deadline is not a duration"),
    }
}

/// Message `i`, dated so that its breach is due `FIRST_DUE + i/TIMERS x DUE_SPREAD` after `now`.
fn timer_message(i: usize, now: Millis, reply_within: Span) -> String {
    let due = now
        .plus(FIRST_DUE)
        .plus(Span(DUE_SPREAD.0 * i as i64 / TIMERS as i64));
    let time = due.minus(reply_within);
    format!(
        r#"{{"specversion":"1.0","id":"bench-{i:06}","source":"bench","type":"customer_message.received","time":"{time}","data":{{"thread_id":"BENCH-T-{i:06}","message_id":"BENCH-M-{i:06}","seller_id":"A1BENCHSELLER0","marketplace":"DE"}}}}"#
    )
}

/// What the alert topic held: breach lateness in ms, by two clocks, and other alerts.
#[derive(Default)]
struct AlertsRead {
    /// Alert record CreateTime minus `data.deadline`.
    produced_late_ms: Vec<i64>,
    /// Wall time the reader got the record minus `data.deadline`.
    read_late_ms: Vec<i64>,
    other: BTreeMap<String, usize>,
}

#[derive(Deserialize)]
struct AlertRecord<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    data: AlertData<'a>,
}

#[derive(Deserialize)]
struct AlertData<'a> {
    #[serde(borrow)]
    deadline: Option<Cow<'a, str>>,
}

/// Reads the alert topic until every breach arrived or `wait` passed.
fn read_alerts(broker: &str, topic: &str, group: &str, wait: Duration) -> Result<AlertsRead> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .context("cannot create the alert reader")?;
    consumer
        .subscribe(&[topic])
        .context("cannot subscribe to the alert topic")?;
    let deadline = Instant::now() + wait;
    let mut read = AlertsRead::default();
    while read.produced_late_ms.len() < TIMERS && Instant::now() < deadline {
        let Some(next) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = next.context("reading the alert topic")?;
        let received = SystemClock.now();
        let alert: AlertRecord = serde_json::from_slice(m.payload().unwrap_or_default())
            .context("an alert is not JSON")?;
        if alert.ty != "sla.breach" {
            *read.other.entry(alert.ty.into_owned()).or_default() += 1;
            continue;
        }
        let due = Millis::parse_rfc3339(alert.data.deadline.as_deref().unwrap_or_default())
            .context("a breach deadline")?;
        let Timestamp::CreateTime(sent) = m.timestamp() else {
            bail!("alert records carry {:?}, not CreateTime", m.timestamp())
        };
        read.produced_late_ms.push(sent - due.0);
        read.read_late_ms.push(received.0 - due.0);
    }
    Ok(read)
}

impl AlertsRead {
    fn print(mut self) {
        let n = self.produced_late_ms.len();
        println!(
            "   sla.breach alerts read: {n} of {TIMERS}; other alerts: {:?}",
            self.other
        );
        if n == 0 {
            return;
        }
        let early = self.produced_late_ms.iter().filter(|l| **l < 0).count();
        let (p50, p99, max) = percentiles(&mut self.produced_late_ms);
        println!(
            "   breach lateness (alert record CreateTime - data.deadline): p50 {p50} ms, p99 {p99} ms, max {max} ms; early: {early} (goal p99 < 10 ms, none early: {})",
            if p99 < 10 && early == 0 && n == TIMERS { "met" } else { "NOT met" }
        );
        let (p50, p99, max) = percentiles(&mut self.read_late_ms);
        println!("   breach lateness as read back by a consumer: p50 {p50} ms, p99 {p99} ms, max {max} ms");
    }
}

/// p50, p99 and max, nearest rank.
fn percentiles(values: &mut [i64]) -> (i64, i64, i64) {
    values.sort_unstable();
    let rank =
        |p: f64| values[((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    (rank(0.50), rank(0.99), values[values.len() - 1])
}

fn print_histogram(scrape: &Scrape, family: &str) {
    // Both warnings (due 24h and 4h before the breach, so about 24h and 4h ago) fire at
    // once on the wall clock as each message is consumed, and count in +Inf.
    println!("   daemon {family} (cumulative, le=count; includes the {} warnings, ~4h and ~24h late by design, in +Inf):", 2 * TIMERS);
    let buckets = scrape.by_label(&format!("{family}_bucket"), "le");
    println!("     {}", buckets.join(" "));
    println!(
        "     count {:.0}, sum {:.3} s",
        scrape.sum(&format!("{family}_count")),
        scrape.sum(&format!("{family}_sum"))
    );
}

// ------------------------------------------------------------------------ kafka ---

/// Topic and group names unique to one run.
struct Names {
    prefix: String,
    customer_message: String,
    return_request: String,
    shipment: String,
    alerts: String,
    dead_letter: String,
}

impl Names {
    fn new(run: &str) -> Names {
        let prefix = format!(
            "bench-daemon-{run}-{}-{}",
            std::process::id(),
            SystemClock.now().0
        );
        let topic = |what: &str| format!("{prefix}-{what}");
        Names {
            customer_message: topic("customer-message"),
            return_request: topic("return-request"),
            shipment: topic("shipment"),
            alerts: topic("alerts"),
            dead_letter: topic("dead-letter"),
            prefix,
        }
    }

    fn group(&self, who: &str) -> String {
        format!("{}-{who}", self.prefix)
    }

    /// The input topic an event type goes to, by its prefix (contract section 2).
    fn topic_for(&self, event_type: &str) -> &str {
        match event_type.split('.').next() {
            Some("customer_message") => &self.customer_message,
            Some("return" | "refund") => &self.return_request,
            _ => &self.shipment,
        }
    }

    fn all(&self) -> [&str; 5] {
        [
            &self.customer_message,
            &self.return_request,
            &self.shipment,
            &self.alerts,
            &self.dead_letter,
        ]
    }
}

/// The daemon's settings for this run, as environment overrides of the shipped config.
fn settings(broker: &str, names: &Names, group: &str, extra: &[(&str, &str)]) -> Result<Settings> {
    parse(
        DEFAULT_CONFIG,
        "bench",
        settings_env(broker, names, group, extra, "127.0.0.1:0").into_iter(),
    )
    .context("the bench settings")
}

/// The `SLA_TIMERD__` variables of the bench's settings.
fn settings_env(
    broker: &str,
    names: &Names,
    group: &str,
    extra: &[(&str, &str)],
    listen: &str,
) -> Vec<(String, String)> {
    let env = [
        ("KAFKA__BOOTSTRAP_SERVERS", broker),
        ("KAFKA__GROUP_ID", group),
        ("KAFKA__TOPICS__CUSTOMER_MESSAGE", &names.customer_message),
        ("KAFKA__TOPICS__RETURN_REQUEST", &names.return_request),
        ("KAFKA__TOPICS__SHIPMENT", &names.shipment),
        ("KAFKA__TOPICS__ALERTS", &names.alerts),
        ("KAFKA__TOPICS__DEAD_LETTER", &names.dead_letter),
        ("HTTP__LISTEN", listen),
    ];
    // SLA_TIMERD__* variables of the bench's own environment come last, so a setting can
    // be tried without editing anything (e.g. SLA_TIMERD__KAFKA__WORKERS=1).
    let env = env
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (format!("SLA_TIMERD__{k}"), v.to_string()));
    let mine = std::env::vars().filter(|(k, _)| k.starts_with("SLA_TIMERD__"));
    env.chain(mine).collect()
}

fn admin(broker: &str) -> Result<AdminClient<DefaultClientContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", broker)
        .create()
        .context("cannot create an admin client")
}

async fn create_topics(broker: &str, names: &Names) -> Result<()> {
    let inputs = [
        &names.customer_message,
        &names.return_request,
        &names.shipment,
    ];
    let mut topics: Vec<NewTopic> = inputs
        .iter()
        .map(|t| NewTopic::new(t, INPUT_PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    topics.push(NewTopic::new(&names.alerts, 3, TopicReplication::Fixed(1)));
    topics.push(NewTopic::new(
        &names.dead_letter,
        1,
        TopicReplication::Fixed(1),
    ));
    for result in admin(broker)?
        .create_topics(&topics, &AdminOptions::new())
        .await
        .context("creating topics")?
    {
        result.map_err(|(topic, e)| anyhow::anyhow!("cannot create topic {topic}: {e}"))?;
    }
    Ok(())
}

async fn delete_topics(broker: &str, runs: &[&Names]) {
    let mut topics: Vec<String> = runs
        .iter()
        .flat_map(|n| n.all())
        .map(str::to_string)
        .collect();
    // The daemon's changelog topics are named after its groups, which start with a run's
    // prefix.
    if let Ok(admin) = admin(broker) {
        if let Ok(metadata) = admin.inner().fetch_metadata(None, Duration::from_secs(10)) {
            topics.extend(
                metadata
                    .topics()
                    .iter()
                    .map(|t| t.name().to_string())
                    .filter(|t| t.ends_with("-changelog"))
                    .filter(|t| runs.iter().any(|n| t.starts_with(&n.prefix))),
            );
        }
    }
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let deleted = match admin(broker) {
        Ok(admin) => admin
            .delete_topics(&topics, &AdminOptions::new())
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    if let Err(e) = deleted {
        eprintln!(
            "bench daemon: could not delete the bench topics ({e}); they start with bench-daemon-"
        );
    }
}

/// Counts failed deliveries; a run with any is stopped.
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The fields a line is routed by. Lines that do not parse as this (some dead letters)
/// go to the shipment topic unkeyed.
#[derive(Deserialize)]
struct Route<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
    data: Option<RouteData<'a>>,
}

#[derive(Deserialize)]
struct RouteData<'a> {
    #[serde(borrow)]
    thread_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    order_id: Option<Cow<'a, str>>,
}

struct Produced {
    records: usize,
    /// The latest event time among the lines.
    latest: Option<Millis>,
    elapsed: Duration,
}

/// Produces `lines` to the input topics (blocking), waiting for every acknowledgement.
fn produce(broker: &str, names: &Names, lines: impl Iterator<Item = String>) -> Result<Produced> {
    let producer: BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "500000")
        .create_with_context(Deliveries::default())
        .context("cannot create the bench producer")?;
    let started = Instant::now();
    let (mut records, mut latest) = (0, None);
    for line in lines {
        let route = serde_json::from_str::<Route>(&line).ok();
        latest = latest.max(
            route
                .as_ref()
                .and_then(|r| Millis::parse_rfc3339(r.time.as_deref()?).ok()),
        );
        let topic = route
            .as_ref()
            .map_or(names.shipment.as_str(), |r| names.topic_for(&r.ty));
        let data = route.as_ref().and_then(|r| r.data.as_ref());
        let key = data.and_then(|d| d.thread_id.as_deref().or(d.order_id.as_deref()));
        let record = BaseRecord::to(topic).payload(line.as_str());
        send(
            &producer,
            if let Some(k) = key {
                record.key(k)
            } else {
                record
            },
        )?;
        records += 1;
        if records % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .context("the broker did not take every record within 2 minutes")?;
    let failed = producer.context().failed.load(Ordering::Relaxed);
    ensure!(
        failed == 0,
        "{failed} of {records} records were not delivered"
    );
    Ok(Produced {
        records,
        latest,
        elapsed: started.elapsed(),
    })
}

/// Enqueues one record, waiting while the local queue is full.
fn send(producer: &BaseProducer<Deliveries>, mut record: BaseRecord<'_, str, str>) -> Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                producer.poll(Duration::from_millis(20));
                record = back;
            }
            Err((e, _)) => bail!("cannot produce: {e}"),
        }
    }
}

// ----------------------------------------------------------------------- daemon ---

/// A daemon running in this process.
struct Running {
    stop: watch::Sender<bool>,
    addr: SocketAddr,
    handle: JoinHandle<Result<()>>,
}

impl Running {
    async fn start(
        broker: &str,
        names: &Names,
        group: &str,
        extra: &[(&str, &str)],
    ) -> Result<Running> {
        let service = Service::build(
            settings(broker, names, group, extra)?,
            Arc::new(SystemClock),
        )
        .await?;
        let addr = service.http_addr();
        let (stop, rx) = watch::channel(false);
        Ok(Running {
            stop,
            addr,
            handle: tokio::spawn(service.run(rx)),
        })
    }

    async fn scrape(&self) -> Result<Scrape> {
        ensure!(!self.handle.is_finished(), "the daemon stopped on its own");
        Scrape::get(self.addr).await
    }

    /// Waits until `sla_assigned_partitions` reaches `partitions`.
    async fn wait_assigned(&self, partitions: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.scrape().await?.sum("sla_assigned_partitions") < partitions as f64 {
            ensure!(
                Instant::now() < deadline,
                "the daemon was not assigned {partitions} partitions within 60 s"
            );
            tokio::time::sleep(METRICS_POLL).await;
        }
        Ok(())
    }

    /// Scrapes until the acknowledged alert count has not moved for 2 s (at most 60 s).
    async fn settled_alerts(&self) -> Result<Scrape> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = self.scrape().await?;
        let mut still = 0;
        while still < 4 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.scrape().await?;
            let same =
                now.sum("sla_alerts_produced_total") == last.sum("sla_alerts_produced_total");
            still = if same { still + 1 } else { 0 };
            last = now;
        }
        Ok(last)
    }

    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        self.handle
            .await
            .context("the daemon task panicked")?
            .context("the daemon failed")
    }
}

/// One scrape of `/metrics`, in the Prometheus text format.
struct Scrape(String);

impl Scrape {
    /// A plain HTTP/1.1 GET over TCP, as the integration tests do.
    async fn get(addr: SocketAddr) -> Result<Scrape> {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .context("connecting to /metrics")?;
        let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .context("an HTTP response")?;
        Ok(Scrape(body))
    }

    /// Every sample of `family`: its label text (`a="x",b="y"`) and value.
    fn samples<'a>(&'a self, family: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(move |line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
                (name == family).then(|| {
                    (
                        labels.trim_end_matches('}'),
                        value.parse().unwrap_or(f64::NAN),
                    )
                })
            })
    }

    fn sum(&self, family: &str) -> f64 {
        self.samples(family).map(|(_, v)| v).sum()
    }

    /// `value=total` per value of `label`, summed over the other labels, in order.
    fn by_label(&self, family: &str, label: &str) -> Vec<String> {
        let mut totals: Vec<(String, f64)> = Vec::new();
        for (labels, v) in self.samples(family) {
            let value = labels
                .split(',')
                .find_map(|pair| pair.strip_prefix(label)?.strip_prefix("=\""));
            let key = value.unwrap_or_default().trim_end_matches('"');
            match totals.iter_mut().find(|(k, _)| k == key) {
                Some((_, total)) => *total += v,
                None => totals.push((key.to_string(), v)),
            }
        }
        totals
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

/// The allocator the `sla-timerd` binary uses (see src/main.rs), so the daemon measured
/// here is the one shipped; the bare consumer, in the same process, gets it too.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
