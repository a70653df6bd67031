//! The live daemon's Kafka shell: client configuration, the consume-fire-produce loop,
//! offsets, rebalances.
//!
//! # Ground rules
//!
//! * At least once: an offset is committed only once every alert and dead letter caused
//!   by the records before it is acknowledged by the broker, and never past the record
//!   that opened an instance still open ([`offsets`]). After a crash or a rebalance,
//!   re-reading from the commit rebuilds the state; alerts produced again carry the same
//!   ids, and are counted (`sla_alerts_reemitted_total`).
//! * The producer is idempotent and uses `murmur2_random`, so keys land on the
//!   partitions Java clients would choose.
//! * Per partition, points fire on event time while the partition lags and on the wall
//!   clock once it is caught up (contract section 7).

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
        .set("isolation.level", "read_committed");
    c.remove("group.instance.id");
    c.remove("partition.assignment.strategy");
    c.remove("group.protocol");
    c
}

/// The transactional id of a worker: stable across restarts of the same member, so a
/// restarted member fences its predecessor and aborts what it left open at once.
pub fn transactional_id(settings: &KafkaSettings) -> String {
    let member = settings
        .properties
        .get("group.instance.id")
        .unwrap_or(&settings.client_id);
    format!("{}-{member}", settings.group_id)
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
