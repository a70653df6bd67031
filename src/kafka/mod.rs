//! The live daemon's Kafka shell: client configuration, the consume-fire-produce loop,
//! the changelog topics, rebalances.
//!
//! # Ground rules
//!
//! * The bookkeeping is [`crate::worker::Worker`]'s, a pure state machine; this module
//!   only carries out its actions (see [`daemon`]).
//! * Under exactly once, alerts, dead letters, changelog records and input offsets go in
//!   one transaction; under at least once, offsets are committed once the alerts and the
//!   changelog records before them are acknowledged.
//! * The producer is idempotent and uses `murmur2_random`, so keys land on the
//!   partitions Java clients would choose.
//! * Per partition, points fire on event time while the partition lags and on the wall
//!   clock once it is caught up (contract section 7).

pub mod client_log;
pub mod context;
pub mod daemon;
pub mod produce;
pub mod record;
pub mod topics;

use rdkafka::ClientConfig;

use crate::config::KafkaSettings;

/// The consumer's configuration: manual offset storage and commits, earliest reset.
pub fn consumer_config(settings: &KafkaSettings) -> ClientConfig {
    let mut c = base_config(settings);
    c.set("group.id", &settings.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("isolation.level", "read_committed");
    if !settings.properties.contains_key("auto.offset.reset") {
        c.set("auto.offset.reset", "earliest");
    }
    // While catching up the daemon is slower than fetching, so a partition's prefetch
    // queue fills up; librdkafka then pauses that partition's fetches for this long
    // (default 1 s), long enough for the queue to run dry and the daemon to sit idle.
    if !settings.properties.contains_key("fetch.queue.backoff.ms") {
        c.set("fetch.queue.backoff.ms", "20");
    }
    // An input topic created after start-up (or given more partitions) joins the
    // assignment within seconds, not after librdkafka's default 5 minutes.
    if !settings
        .properties
        .contains_key("topic.metadata.refresh.interval.ms")
    {
        c.set("topic.metadata.refresh.interval.ms", "5000");
    }
    // Each input partition is an engine state of its own (no state joins topics), so
    // partitions need not be co-assigned by number as `range` does; `roundrobin` spreads
    // 3 topics x 3 partitions over 2 workers as 5 + 4 rather than 6 + 3.
    // (The next-generation protocol, group.protocol=consumer, assigns on the broker and
    // refuses the setting.)
    let broker_assigns = settings
        .properties
        .get("group.protocol")
        .is_some_and(|p| p == "consumer");
    if !settings
        .properties
        .contains_key("partition.assignment.strategy")
        && !broker_assigns
    {
        c.set("partition.assignment.strategy", "roundrobin");
    }
    c
}

/// The changelog reader's configuration: read_committed, from the start, told the end.
pub fn restore_config(settings: &KafkaSettings) -> ClientConfig {
    let mut c = base_config(settings);
    c.set("group.id", format!("{}-restore", settings.group_id))
        .set("client.id", format!("{}-restore", settings.client_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // The end is known only from the partition-EOF event (the last offset is often a
        // transaction marker, never delivered), which comes with the first fetch that
        // returns nothing: ask the broker not to hold such a fetch for the default 500 ms.
        .set("fetch.wait.max.ms", "10")
        .set("fetch.error.backoff.ms", "10");
    let defaults = [
        // The changelog of an input topic created after start-up is created then too;
        // the reader must learn of it within seconds to restore its partitions.
        ("topic.metadata.refresh.interval.ms", "5000"),
        // A restore reads as fast as it can apply: once a partition's prefetch queue
        // holds queued.min.messages, librdkafka waits fetch.queue.backoff.ms (1 s by
        // default) before it fetches that partition again, which held a restore of 1M
        // records to 150k a second while both processes sat idle.
        ("fetch.queue.backoff.ms", "5"),
    ];
    for (key, value) in defaults {
        if !settings.properties.contains_key(key) {
            c.set(key, value);
        }
    }
    c.remove("group.instance.id");
    c.remove("partition.assignment.strategy");
    c.remove("group.protocol");
    c
}

/// The transactional id of a worker.
///
/// A static member (`group.instance.id`) gets one that is stable across restarts, so a
/// restarted member fences its predecessor and aborts what it left open at once. A
/// dynamic member gets one of its own host and process: two members must never share a
/// transactional id (each would fence the other at every start), and since zombies are
/// fenced by the group generation (KIP-447), being unique is all that is needed. The
/// price is that a crashed dynamic member's open transaction holds read_committed readers
/// back until `transaction.timeout.ms` expires it.
pub fn transactional_id(settings: &KafkaSettings) -> String {
    match settings.properties.get("group.instance.id") {
        Some(member) => format!("{}-{member}", settings.group_id),
        None => format!(
            "{}-{}-{}-{}",
            settings.group_id,
            settings.client_id,
            host_name(),
            std::process::id()
        ),
    }
}

/// This machine's name (a pod's name on Kubernetes), or `host` when it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_string())
}

/// The producer's configuration: idempotent, Java-compatible partitioning, and under
/// exactly once transactional.
pub fn producer_config(settings: &KafkaSettings) -> ClientConfig {
    let mut c = base_config(settings);
    c.set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random");
    for consumer_only in CONSUMER_ONLY {
        c.remove(consumer_only);
    }
    if settings.guarantee == crate::worker::Guarantee::ExactlyOnce {
        c.set("transactional.id", transactional_id(settings));
        if !settings.properties.contains_key("transaction.timeout.ms") {
            c.set("transaction.timeout.ms", "10000");
        }
        // A transaction's first send waits until the broker has finished the previous
        // one's markers; until then it answers CONCURRENT_TRANSACTIONS and librdkafka
        // retries after retry.backoff.ms (100 ms by default), so every commit took about
        // 100 ms and held the worker's loop that long.
        if !settings.properties.contains_key("retry.backoff.ms") {
            c.set("retry.backoff.ms", "5");
        }
    }
    if !settings.properties.contains_key("linger.ms") {
        c.set("linger.ms", "5");
    }
    c
}

/// Consumer properties that the producer and the admin client must not be given.
const CONSUMER_ONLY: [&str; 8] = [
    "group.instance.id",
    "partition.assignment.strategy",
    "group.protocol",
    "auto.offset.reset",
    "fetch.queue.backoff.ms",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
];

/// The admin client's configuration: the connection settings only.
pub fn admin_config(settings: &KafkaSettings) -> ClientConfig {
    let mut c = base_config(settings);
    for consumer_only in CONSUMER_ONLY.iter().chain(&["linger.ms"]) {
        c.remove(consumer_only);
    }
    c
}

fn base_config(settings: &KafkaSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &settings.bootstrap_servers)
        .set("client.id", &settings.client_id);
    for (k, v) in &settings.properties {
        c.set(k, v);
    }
    c
}
