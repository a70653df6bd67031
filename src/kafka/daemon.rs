//! `sla-timerd run`: the consume, fire, produce, commit loop.
//!
//! One task owns the engine and the consumer and reacts to five things: a record, a
//! delivery acknowledgement, the wall clock reaching the next due point, the commit
//! interval, and shutdown. One sleep is armed, until the earliest due point of the
//! caught-up partitions; nothing polls.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use futures_util::stream::StreamExt;
use futures_util::FutureExt;
use prometheus::IntCounter;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::Producer as _;
use rdkafka::TopicPartitionList;
use tokio::sync::{mpsc, watch};

use super::context::{commit_list, parse_acked_through, Commit, DaemonContext, Notice, Shared};
use super::offsets::{OffsetTracker, Settled};
use super::produce::{Body, Delivered, Effect, EffectKind, Outbox, Outgoing, Producer};
use super::record::{binary_to_structured, dead_letter_headers, may_be_binary_mode};
use crate::clock::Clock;
use crate::config::Settings;
use crate::core::alert::Alert;
use crate::core::engine::{Engine, PartitionId};
use crate::core::partition::Taken;
use crate::core::time::Millis;
use crate::decode::{decode, DeadLetter};
use crate::http::Health;
use crate::metrics::{GaugePart, Metrics};

/// Records taken from librdkafka's queue, when it has them, before the loop looks at
/// acknowledgements, timers and shutdown again.
const BATCH: usize = 512;

/// Outcomes of a record, indexing the daemon's cached counters.
#[derive(Clone, Copy)]
enum Outcome {
    Applied,
    Skipped,
    Duplicate,
    DeadLettered,
}

const OUTCOMES: [&str; 4] = ["applied", "skipped", "duplicate", "dead_lettered"];


/// One assigned input partition.
struct Assigned {
    topic: Arc<str>,
    partition: i32,
    tracker: OffsetTracker,
    /// Position reached the high watermark at the last look: fire on the wall clock.
    caught_up: bool,
    /// Records below this were processed, with every alert acknowledged, before the
    /// last commit: alerts they cause now are re-emissions.
    reemit_below: Option<i64>,
    /// The engine's count of suppressed alert ids already added to the metric.
    suppressed_reported: u64,
    /// Tells this assignment's effects from those of an earlier one, still in flight.
    epoch: u32,
}

impl Assigned {
    fn new(topic: &str, partition: i32, reemit_below: Option<i64>, epoch: u32) -> Assigned {
        Assigned {
            topic: topic.into(),
            partition,
            tracker: OffsetTracker::default(),
            caught_up: true,
            reemit_below,
            suppressed_reported: 0,
            epoch,
        }
    }
}

/// One worker of the daemon, built and ready to run: a consumer-group member with its own
/// engine and producer. A process runs `kafka.workers` of them side by side.
pub struct Daemon {
    /// Which worker this is, from 0; worker 0 also probes the broker for `/readyz`.
    worker: usize,
    settings: Settings,
    engine: Engine,
    consumer: Arc<StreamConsumer<DaemonContext>>,
    notices: mpsc::UnboundedReceiver<Notice>,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    assigned: HashMap<PartitionId, Assigned>,
    alerts: Vec<Alert>,
    /// Taken by [`Daemon::run`], which lends it to the handlers.
    outbox: Option<Outbox>,
    alert_topic: Arc<str>,
    dead_letter_topic: Arc<str>,
    /// `sla_records_consumed_total` by input topic index and [`Outcome`], looked up once.
    record_counters: Vec<[IntCounter; 4]>,
    /// This worker's shares of the process-wide gauges.
    gauges: WorkerGauges,
    /// Assignments made so far, numbering each [`Assigned::epoch`].
    epochs: u32,
}

/// A worker's shares of the gauges that sum over workers.
struct WorkerGauges {
    open_by_rule: Vec<GaugePart>,
    pending_points: GaugePart,
    assigned: GaugePart,
}

impl Daemon {
    /// Creates worker `worker`'s clients and subscribes; nothing is read until
    /// [`Daemon::run`]. With several workers, each gets its own client id
    /// (`{kafka.client_id}-{worker}`).
    pub fn build(
        worker: usize,
        mut settings: Settings,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Result<Daemon> {
        if settings.kafka.workers > 1 {
            // Each worker is a member of its own: a static member id (group.instance.id)
            // shared by two would fence one of them.
            settings.kafka.client_id = format!("{}-{worker}", settings.kafka.client_id);
            if let Some(id) = settings.kafka.properties.get_mut("group.instance.id") {
                *id = format!("{id}-{worker}");
            }
        }
        let (tx, notices) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared { committable: Default::default(), health, metrics: metrics.clone() });
        let context = DaemonContext { shared: shared.clone(), notices: tx };
        let consumer: StreamConsumer<DaemonContext> = super::consumer_config(&settings.kafka)
            .create_with_context(context)
            .context("cannot create the Kafka consumer; check kafka.properties")?;
        let outbox = Outbox::new(&super::producer_config(&settings.kafka)).context("cannot create the Kafka producer")?;
        consumer.subscribe(&settings.kafka.topics.inputs()).context("cannot subscribe to the input topics")?;
        let consumer = Arc::new(consumer);
        let engine = Engine::new(Arc::new(settings.rules.clone()));
        tracing::info!(
            worker,
            bootstrap_servers = %settings.kafka.bootstrap_servers,
            group_id = %settings.kafka.group_id,
            topics = ?settings.kafka.topics.inputs(),
            properties = ?settings.kafka.redacted_properties(),
            "subscribed"
        );
        let settings_topics = (Arc::from(&*settings.kafka.topics.alerts), Arc::from(&*settings.kafka.topics.dead_letter));
        let record_counters = settings
            .kafka
            .topics
            .inputs()
            .iter()
            .map(|topic| OUTCOMES.map(|outcome| metrics.record_counter(topic, outcome)))
            .collect();
        let gauges = WorkerGauges {
            open_by_rule: settings.rules.rules.iter().map(|r| GaugePart::new(metrics.open_instances(&r.name))).collect(),
            pending_points: GaugePart::new(metrics.pending_points()),
            assigned: GaugePart::new(metrics.assigned_partitions()),
        };
        Ok(Daemon {
            worker, gauges, settings, epochs: 0, engine, consumer, notices, shared, clock, metrics,
            assigned: HashMap::new(), alerts: Vec::new(), outbox: Some(outbox), record_counters,
            alert_topic: settings_topics.0, dead_letter_topic: settings_topics.1,
        })
    }

    /// Runs until `shutdown` turns true, then finishes in-flight alerts, commits and
    /// returns. An error means a fatal Kafka problem; nothing was committed past it.
    ///
    /// Records are taken in batches: after one arrives, those librdkafka has already
    /// fetched are processed too (up to [`BATCH`]) before the loop looks at anything
    /// else, and the per-partition bookkeeping (high watermark, wall-clock firing, the
    /// committable offset) is done once per batch.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let mut commit_tick = tokio::time::interval(Duration::from_millis(self.settings.kafka.commit_interval.as_millis() as u64));
        let mut gauges_tick = tokio::time::interval(Duration::from_secs(1));
        let mut outbox = self.outbox.take().expect("run is called once");
        if self.worker == 0 {
            self.spawn_broker_probe(outbox.producer().clone(), shutdown.clone());
        }
        let consumer = self.consumer.clone();
        let mut records = consumer.stream();
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        let mut armed_for = None;
        let max_in_flight = self.settings.kafka.max_in_flight;
        let mut touched = Vec::new();
        loop {
            let due = self.next_due();
            if due != armed_for {
                if let Some(due) = due {
                    sleep.as_mut().reset(tokio::time::Instant::now() + self.clock.real_until(due.succ()));
                }
                armed_for = due;
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                Some(notice) = self.notices.recv() => self.on_notice(notice),
                Some(done) = outbox.next(), if !outbox.is_empty() => {
                    self.on_delivered(done, &mut outbox, &mut touched)?;
                    while let Some(done) = outbox.try_next() {
                        self.on_delivered(done, &mut outbox, &mut touched)?;
                    }
                    for id in touched.drain(..) {
                        self.publish_committable(id);
                    }
                }
                Some(message) = records.next(), if outbox.len() < max_in_flight => {
                    // One clock reading per batch: it dates the batch's records (skew
                    // check, processing latency), which take a few milliseconds at most.
                    let now = self.clock.now();
                    self.on_message(message, now, &mut outbox, &mut touched);
                    // Checked before polling: a polled message must be processed.
                    for _ in 1..BATCH {
                        if outbox.len() >= max_in_flight {
                            break;
                        }
                        let Some(Some(message)) = records.next().now_or_never() else { break };
                        self.on_message(message, now, &mut outbox, &mut touched);
                    }
                    self.after_batch(&mut touched, &mut outbox);
                }
                _ = &mut sleep, if armed_for.is_some() => {
                    armed_for = None;
                    self.on_wall_clock(&mut outbox);
                }
                _ = commit_tick.tick() => self.commit(CommitMode::Async),
                _ = gauges_tick.tick() => self.update_gauges(),
            }
        }
        drop(records);
        self.shut_down(outbox).await
    }

    fn on_message(
        &mut self,
        message: Result<BorrowedMessage<'_>, KafkaError>,
        now: Millis,
        outbox: &mut Outbox,
        touched: &mut Vec<PartitionId>,
    ) {
        match message {
            Ok(m) => {
                if let Some(id) = self.on_record(&m, now, outbox) {
                    touch(touched, id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "consumer error"),
        }
    }

    /// Once per batch, for each partition it touched: is it caught up now, fire it on
    /// the wall clock if so, and publish its committable offset.
    fn after_batch(&mut self, touched: &mut Vec<PartitionId>, outbox: &mut Outbox) {
        for id in touched.drain(..) {
            self.refresh_caught_up(id);
            if self.assigned.get(&id).is_some_and(|a| a.caught_up) {
                self.fire_caught_up(id, self.clock.now(), outbox);
            }
            self.publish_committable(id);
        }
    }

    fn partition_id(&self, topic: &str, partition: i32) -> Option<PartitionId> {
        let index = self.settings.kafka.topics.inputs().iter().position(|t| *t == topic)?;
        Some(PartitionId { topic: index as u16, partition })
    }

    fn on_notice(&mut self, notice: Notice) {
        match notice {
            Notice::Assigned(list) => {
                let acked = self.committed_acked_through(&list);
                for (topic, partition) in list {
                    let Some(id) = self.partition_id(&topic, partition) else { continue };
                    let reemit_below = acked.get(&(topic.clone(), partition)).copied();
                    self.track(id, &topic, partition, reemit_below);
                    self.engine.remove_partition(id);
                }
            }
            Notice::Revoked(list) => {
                for (topic, partition) in list {
                    let Some(id) = self.partition_id(&topic, partition) else { continue };
                    self.assigned.remove(&id);
                    self.engine.remove_partition(id);
                    self.shared.committable.lock().expect("never poisoned").remove(&(topic.clone(), partition));
                    self.metrics.partition_revoked(&topic, partition);
                }
            }
        }
        self.gauges.assigned.set(self.assigned.len() as i64);
    }

    /// Starts the bookkeeping of a partition, under a new assignment epoch.
    fn track(&mut self, id: PartitionId, topic: &str, partition: i32, reemit_below: Option<i64>) {
        self.epochs = self.epochs.wrapping_add(1);
        self.assigned.insert(id, Assigned::new(topic, partition, reemit_below, self.epochs));
    }

    /// Decodes and applies one record; its alerts and dead letter go out. Returns the
    /// partition it belongs to.
    fn on_record(&mut self, m: &impl Message, now: Millis, outbox: &mut Outbox) -> Option<PartitionId> {
        let id = self.partition_id(m.topic(), m.partition())?;
        let span = tracing::debug_span!("record", topic = m.topic(), partition = m.partition(), offset = m.offset());
        let _guard = span.enter();
        if !self.assigned.contains_key(&id) {
            self.track(id, m.topic(), m.partition(), None);
        }
        let value = m.payload().unwrap_or_default();
        // Structured mode first: headers are looked at only when the value is not a
        // structured event (librdkafka parses them, with an allocation, on first look).
        let mut structured = None;
        let mut decoded = decode(value);
        if may_be_binary_mode(&decoded) {
            if let Some(h) = m.headers() {
                structured = binary_to_structured(h.iter().map(|h| (h.key, h.value)), value);
            }
            if let Some(event) = &structured {
                decoded = decode(event);
            }
        }
        let mut dead_letter = None;
        let decoded = decoded.into_input().and_then(|input| {
            let ahead = input.time().0 - now.0;
            let skew = self.settings.kafka.max_clock_skew.as_millis();
            if ahead > skew {
                return Err(DeadLetter::FromTheFuture { time: input.time().to_rfc3339(), ahead_secs: ahead / 1000, skew_secs: skew / 1000 });
            }
            Ok(input)
        });
        let outcome = match decoded {
            Ok(input) => match self.engine.take(id, &input, &mut self.alerts) {
                Taken::Applied => Outcome::Applied,
                Taken::Skipped => Outcome::Skipped,
                Taken::Duplicate => Outcome::Duplicate,
            },
            Err(dead) => {
                tracing::info!(reason = %dead, "dead-lettered");
                self.metrics.dead_letter(dead.class());
                dead_letter = Some(self.dead_letter(m, &dead, id));
                Outcome::DeadLettered
            }
        };
        self.record_counters[id.topic as usize][outcome as usize].inc();
        let assigned = self.assigned.get_mut(&id).expect("inserted above");
        if assigned.reemit_below.is_some_and(|below| m.offset() < below) {
            self.alerts.iter().for_each(|_| self.metrics.alert_reemitted());
        }
        let effects = self.alerts.len() as u32 + u32::from(dead_letter.is_some());
        if let Some(settled) = assigned.tracker.consumed(m.offset(), effects, m.timestamp().to_millis()) {
            observe_latency(&self.metrics, now.0, settled);
        }
        if let Some((effect, out)) = dead_letter {
            outbox.send(effect, out);
        }
        for alert in self.alerts.drain(..) {
            let (effect, out) = alert_record(&self.alert_topic, alert, id, assigned.epoch, m.offset());
            outbox.send(effect, out);
        }
        Some(id)
    }

    fn dead_letter(&self, m: &impl Message, dead: &DeadLetter, id: PartitionId) -> (Effect, Outgoing) {
        let headers = dead_letter_headers(&dead.to_string(), dead.class(), m.topic(), m.partition(), m.offset());
        let out = Outgoing {
            topic: self.dead_letter_topic.clone(),
            body: Body::Raw {
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers: headers.into_iter().collect(),
            },
            attempts: 0,
        };
        let epoch = self.assigned.get(&id).map_or(0, |a| a.epoch);
        (Effect { partition: id, epoch, offset: m.offset(), kind: EffectKind::DeadLetter }, out)
    }

    /// Looks at the cached high watermark: caught up when the next offset reached it.
    fn refresh_caught_up(&mut self, id: PartitionId) {
        let Some(assigned) = self.assigned.get(&id) else { return };
        let Some(position) = assigned.tracker.next() else { return };
        let high = cached_high_watermark(&self.consumer, &assigned.topic, assigned.partition);
        let caught_up = high.is_none_or(|h| position >= h);
        self.assigned.get_mut(&id).expect("present").caught_up = caught_up;
    }

    /// The earliest point due in a caught-up partition: the loop sleeps until just after.
    fn next_due(&self) -> Option<Millis> {
        self.assigned
            .iter()
            .filter(|(_, a)| a.caught_up)
            .filter_map(|(id, _)| self.engine.partition(*id)?.next_due())
            .min()
    }

    fn on_wall_clock(&mut self, outbox: &mut Outbox) {
        let now = self.clock.now();
        let ids: Vec<PartitionId> = self.assigned.iter().filter(|(_, a)| a.caught_up).map(|(id, _)| *id).collect();
        for id in ids {
            self.fire_caught_up(id, now, outbox);
            self.publish_committable(id);
        }
    }

    /// Advances a caught-up partition to the wall clock, recording how late points fire,
    /// and sends what fired, charged to the last record consumed.
    fn fire_caught_up(&mut self, id: PartitionId, now: Millis, outbox: &mut Outbox) {
        self.engine.advance(id, now, &mut self.alerts);
        if self.alerts.is_empty() {
            return;
        }
        for a in &self.alerts {
            self.metrics.fired_late_by((now.0 - a.time.0) as f64 / 1000.0);
        }
        let assigned = self.assigned.get_mut(&id).expect("caught-up partitions are assigned");
        let Some(offset) = assigned.tracker.charge_last(self.alerts.len() as u32) else {
            tracing::warn!("alerts fired on a partition with nothing consumed");
            self.alerts.clear();
            return;
        };
        let (topic, epoch) = (&self.alert_topic, assigned.epoch);
        for alert in self.alerts.drain(..) {
            let (effect, out) = alert_record(topic, alert, id, epoch, offset);
            outbox.send(effect, out);
        }
    }

    /// Books one acknowledgement; the partition goes into `touched`, whose committable
    /// offsets the caller publishes once for the whole batch of acknowledgements.
    fn on_delivered(&mut self, done: Delivered, outbox: &mut Outbox, touched: &mut Vec<PartitionId>) -> Result<()> {
        if let Err(e) = &done.result {
            let fatal = done.is_fatal();
            self.metrics.produce_error(&done.outgoing.topic, if fatal { "fatal" } else { "retriable" });
            if fatal {
                bail!("cannot produce to {} after {} attempts: {e}", done.outgoing.topic, done.outgoing.attempts);
            }
            tracing::warn!(error = %e, topic = %done.outgoing.topic, attempt = done.outgoing.attempts, "produce failed; retrying");
            outbox.retry(done.effect, done.outgoing);
            return Ok(());
        }
        if let EffectKind::Alert { rule, alert_type } = &done.effect.kind {
            self.metrics.alert_produced(rule, alert_type);
        }
        let id = done.effect.partition;
        let Some(assigned) = self.assigned.get_mut(&id).filter(|a| a.epoch == done.effect.epoch) else { return Ok(()) };
        if let Some(settled) = assigned.tracker.settle(done.effect.offset) {
            observe_latency(&self.metrics, self.clock.now().0, settled);
        }
        touch(touched, id);
        Ok(())
    }

    /// Publishes the partition's safe offset for commits (periodic and on revoke).
    fn publish_committable(&mut self, id: PartitionId) {
        let Some(assigned) = self.assigned.get(&id) else { return };
        let oldest_open = None;
        let commit = assigned.tracker.committable(oldest_open).zip(assigned.tracker.acked_through());
        if let Some((offset, acked_through)) = commit {
            let key = (assigned.topic.to_string(), assigned.partition);
            self.shared.committable.lock().expect("never poisoned").insert(key, Commit { offset, acked_through });
        }
    }

    /// The `acked_through` metadata of the last commit, per assigned partition.
    fn committed_acked_through(&self, list: &[(String, i32)]) -> HashMap<(String, i32), i64> {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in list {
            tpl.add_partition(topic, *partition);
        }
        let committed = match self.consumer.committed_offsets(tpl, Duration::from_secs(5)) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read committed offsets; re-emitted alerts will not be counted");
                return HashMap::new();
            }
        };
        committed
            .elements()
            .iter()
            .filter_map(|e| Some(((e.topic().to_string(), e.partition()), parse_acked_through(e.metadata())?)))
            .collect()
    }

    fn commit(&self, mode: CommitMode) {
        let tpl = commit_list(&self.shared.committable.lock().expect("never poisoned"), None);
        if tpl.count() == 0 {
            return;
        }
        let result = self.consumer.commit(&tpl, mode);
        self.metrics.commit(result.is_ok());
        if let Err(e) = result {
            tracing::warn!(error = %e, "offset commit failed; it is retried at the next interval");
        }
    }

    fn update_gauges(&mut self) {
        let now = self.clock.now();
        let mut open = vec![0u64; self.settings.rules.rules.len()];
        let mut points = 0;
        for (id, a) in &mut self.assigned {
            let Some(state) = self.engine.partition(*id) else { continue };
            for (total, n) in open.iter_mut().zip(state.open_by_rule()) {
                *total += n;
            }
            points += state.pending_points();
            let suppressed = state.tally().alert_ids_suppressed;
            self.metrics.alert_ids_suppressed(suppressed.saturating_sub(a.suppressed_reported));
            a.suppressed_reported = suppressed;
            let high = cached_high_watermark(&self.consumer, &a.topic, a.partition);
            let lag = match (high, a.tracker.next()) {
                (Some(h), Some(n)) => (h - n).max(0),
                _ => 0,
            };
            let behind = state.clock().map_or(0.0, |c| (now.0 - c.0).max(0) as f64 / 1000.0);
            self.metrics.partition_position(&a.topic, a.partition, lag, behind);
        }
        for (part, n) in self.gauges.open_by_rule.iter_mut().zip(open) {
            part.set(n as i64);
        }
        self.gauges.pending_points.set(points as i64);
    }

    /// Keeps `/readyz` honest: asks the cluster for metadata every few seconds.
    fn spawn_broker_probe(&self, producer: Arc<Producer>, mut shutdown: watch::Receiver<bool>) {
        let health = self.shared.health.clone();
        tokio::spawn(async move {
            loop {
                let p = producer.clone();
                let ok = tokio::task::spawn_blocking(move || p.client().fetch_metadata(None, Duration::from_secs(5)).is_ok())
                    .await
                    .unwrap_or(false);
                health.broker_reachable.store(ok, std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        });
    }

    async fn shut_down(mut self, mut outbox: Outbox) -> Result<()> {
        let limit = Duration::from_millis(self.settings.kafka.shutdown_timeout.as_millis() as u64);
        tracing::info!(in_flight = outbox.len(), "shutting down: finishing in-flight alerts");
        let drained = tokio::time::timeout(limit, async {
            let mut touched = Vec::new();
            while let Some(done) = outbox.next().await {
                self.on_delivered(done, &mut outbox, &mut touched)?;
                touched.drain(..).for_each(|id| self.publish_committable(id));
            }
            Ok::<_, anyhow::Error>(())
        })
        .await;
        match drained {
            Ok(result) => result?,
            Err(_) => tracing::warn!(left = outbox.len(), "shutdown timeout: committing only what was acknowledged"),
        }
        self.commit(CommitMode::Sync);
        tracing::info!("offsets committed; bye");
        Ok(())
    }
}

fn alert_record(topic: &Arc<str>, alert: Alert, partition: PartitionId, epoch: u32, offset: i64) -> (Effect, Outgoing) {
    let kind = EffectKind::Alert { rule: alert.name.clone(), alert_type: alert.event_type() };
    let out = Outgoing { topic: topic.clone(), body: Body::Alert(alert), attempts: 0 };
    (Effect { partition, epoch, offset, kind }, out)
}

/// Adds a partition to a batch's short list of partitions to look at afterwards.
fn touch(touched: &mut Vec<PartitionId>, id: PartitionId) {
    if !touched.contains(&id) {
        touched.push(id);
    }
}

fn observe_latency(metrics: &Metrics, now_ms: i64, settled: Settled) {
    if let Some(ts) = settled.timestamp {
        metrics.processed_in((now_ms - ts) as f64 / 1000.0);
    }
}

/// The high watermark librdkafka cached from its last fetch; no broker round trip.
fn cached_high_watermark(consumer: &StreamConsumer<DaemonContext>, topic: &str, partition: i32) -> Option<i64> {
    let topic = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client handle is valid while `consumer` lives; librdkafka reads the
    // NUL-terminated topic name and writes the two out-parameters, nothing else.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}
