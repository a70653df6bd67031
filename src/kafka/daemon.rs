//! `sla-timerd run`: the thin async shell around one [`Worker`].
//!
//! The loop waits for one of: an assignment notice (always taken first, so no record
//! of a partition is handed over before the notice it follows), a changelog record
//! while partitions restore, a batch of input records, the worker's next timeout, a
//! gauge tick, a question of the query API (answered between two batches), or shutdown. After each it carries out the worker's actions in order
//! ([`Daemon::carry_out`]): pause, restore, resume, send, commit, abort. All
//! bookkeeping is the worker's; this module only talks to librdkafka.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures_util::stream::StreamExt;
use futures_util::FutureExt;
use prometheus::IntCounter;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

use super::client_log::ClientLog;
use super::context::{DaemonContext, LoggedContext, LoopRuns, Notice};
use super::produce::{SendError, Sender, Source};
use super::record::{binary_to_structured, dead_letter_headers, may_be_binary_mode};
use super::topics::changelog_topic;
use crate::clock::Clock;
use crate::config::Settings;
use crate::core::engine::PartitionId;
use crate::core::time::Millis;
use crate::decode::{decode, DeadLetter};
use crate::http::Health;
use crate::metrics::{GaugePart, Metrics};
use crate::query::ask::Questions;
use crate::worker::{Action, Guarantee, Outcome, Worker, WorkerConfig};

/// Records taken from librdkafka's queue, when it has them, before the loop looks at
/// notices, timers and shutdown again.
const BATCH: usize = 512;

const OUTCOMES: [&str; 5] = [
    "applied",
    "skipped",
    "duplicate",
    "dead_lettered",
    "tombstone",
];

/// One worker of the daemon, built and ready to run.
pub struct Daemon {
    worker_index: usize,
    settings: Settings,
    worker: Worker,
    consumer: Arc<StreamConsumer<DaemonContext>>,
    restore: Arc<StreamConsumer<LoggedContext>>,
    log: Arc<ClientLog>,
    sender: Sender,
    notices: mpsc::UnboundedReceiver<Notice>,
    /// The query API's questions (`crate::query::ask`).
    questions: Questions,
    health: Arc<Health>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    inputs: Vec<String>,
    changelogs: Vec<String>,
    /// Partitions restoring: when they started, and the changelog's end.
    restoring: HashMap<PartitionId, (Millis, i64)>,
    /// At least once: changelog records wait until the alerts before them are delivered.
    held_changelog: Vec<(PartitionId, crate::changelog::Record)>,
    record_counters: Vec<[IntCounter; 5]>,
    gauges: WorkerGauges,
    scratch: Vec<u8>,
    /// Restores and rewinds to try again; dropped when their partition moves.
    postponed: Vec<Postponed>,
    /// Whether the last commit succeeded.
    last_commit_ok: bool,
    /// Under at least once, the sources of the alerts delivered (none under exactly once).
    delivered: std::sync::mpsc::Receiver<Source>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Postponed {
    Restore(PartitionId),
    Rewind(PartitionId),
}

struct WorkerGauges {
    open_by_rule: Vec<GaugePart>,
    pending_points: GaugePart,
    assigned: GaugePart,
    restoring: GaugePart,
}

impl Daemon {
    /// Creates worker `worker`'s clients and subscribes; nothing is read until
    /// [`Daemon::run`].
    pub fn build(
        worker: usize,
        mut settings: Settings,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        questions: Questions,
    ) -> Result<Daemon> {
        if settings.kafka.workers > 1 {
            settings.kafka.client_id = format!("{}-{worker}", settings.kafka.client_id);
            if let Some(id) = settings.kafka.properties.get_mut("group.instance.id") {
                *id = format!("{id}-{worker}");
            }
        }
        let k = &settings.kafka;
        let (tx, notices) = mpsc::unbounded_channel();
        let log = ClientLog::new(settings.kafka.redactor(), clock.clone());
        let context = DaemonContext::new(tx, health.clone(), log.clone());
        let consumer: StreamConsumer<DaemonContext> = super::consumer_config(k)
            .create_with_context(context)
            .context("cannot create the Kafka consumer; check kafka.properties")?;
        let restore: StreamConsumer<LoggedContext> = super::restore_config(k)
            .create_with_context(LoggedContext {
                client: "changelog reader",
                log: log.clone(),
            })
            .context("cannot create the changelog consumer")?;
        let eos = k.guarantee == Guarantee::ExactlyOnce;
        let timeout = Duration::from_millis(k.shutdown_timeout.as_millis().max(1) as u64);
        // Under at least once, deliveries are told to the worker (its marks, below).
        let (delivered_tx, delivered) = std::sync::mpsc::channel();
        let sender = Sender::new(
            super::producer_config(k),
            eos,
            timeout,
            metrics.clone(),
            log.clone(),
            (!eos).then_some(delivered_tx),
        )?;
        let inputs: Vec<String> = k.topics.inputs().iter().map(|t| t.to_string()).collect();
        consumer
            .subscribe(&k.topics.inputs())
            .context("cannot subscribe to the input topics")?;
        let changelogs = inputs
            .iter()
            .map(|t| changelog_topic(&k.group_id, t))
            .collect();
        tracing::info!(
            worker,
            bootstrap_servers = %k.bootstrap_servers,
            group_id = %k.group_id,
            guarantee = ?k.guarantee,
            topics = ?inputs,
            properties = ?k.redacted_properties(),
            "subscribed"
        );
        let record_counters = inputs
            .iter()
            .map(|topic| OUTCOMES.map(|o| metrics.record_counter(topic, o)))
            .collect();
        let gauges = WorkerGauges {
            open_by_rule: settings
                .rules
                .rules
                .iter()
                .map(|r| GaugePart::new(metrics.open_instances(&r.name)))
                .collect(),
            pending_points: GaugePart::new(metrics.pending_points()),
            assigned: GaugePart::new(metrics.assigned_partitions()),
            restoring: GaugePart::new(metrics.restoring_partitions()),
        };
        let config = WorkerConfig {
            guarantee: k.guarantee,
            max_clock_skew: k.max_clock_skew,
            commit_interval: k.commit_interval,
        };
        let worker_state = Worker::new(Arc::new(settings.rules.clone()), config);
        Ok(Daemon {
            worker_index: worker,
            settings,
            worker: worker_state,
            consumer: Arc::new(consumer),
            restore: Arc::new(restore),
            log,
            sender,
            notices,
            questions,
            health,
            clock,
            metrics,
            inputs,
            changelogs,
            restoring: HashMap::new(),
            held_changelog: Vec::new(),
            record_counters,
            gauges,
            scratch: Vec::new(),
            postponed: Vec::new(),
            last_commit_ok: true,
            delivered,
        })
    }

    /// Runs until `shutdown` turns true, then commits what was done and returns. An
    /// error means a fatal Kafka problem; nothing past the last commit counts.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        if self.worker_index == 0 {
            self.spawn_broker_probe(shutdown.clone());
        }
        let consumer = self.consumer.clone();
        let mut records = consumer.stream();
        let restore = self.restore.clone();
        let mut changelog = restore.stream();
        // Declared after the clients, so dropped before them: once the loop ends, a
        // revoke (the consumer's close leaving the group) is completed in the callback.
        let _loop_runs = LoopRuns::new(self.consumer.clone());
        let mut gauges_tick = tokio::time::interval(Duration::from_secs(1));
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        let mut armed_for = None;
        loop {
            self.health.turned(self.worker_index, self.clock.now());
            let due = self.worker.poll_timeout();
            if due != armed_for {
                if let Some(due) = due {
                    sleep
                        .as_mut()
                        .reset(tokio::time::Instant::now() + self.clock.real_until(due));
                }
                armed_for = due;
            }
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Some(notice) = self.notices.recv() => self.on_notice(notice)?,
                Some(message) = changelog.next(), if !self.restoring.is_empty() => {
                    // A batch at a time, as records: one turn of the loop per record
                    // costs more than applying it.
                    self.on_changelog(message);
                    for _ in 1..BATCH {
                        if self.restoring.is_empty() {
                            break;
                        }
                        let Some(Some(message)) = changelog.next().now_or_never() else { break };
                        self.on_changelog(message);
                    }
                }
                // Timers and the gauges before records: while catching up records are
                // always ready, and neither commits nor gauges may wait for the end.
                _ = &mut sleep, if armed_for.is_some() => {
                    armed_for = None;
                    self.worker.handle_timeout(self.clock.now());
                }
                _ = gauges_tick.tick() => {
                    self.retry_postponed();
                    // The last batch's deliveries too, once the input goes quiet.
                    self.take_deliveries();
                    self.worker.handle_batch_done();
                    let held: Vec<PartitionId> = self.worker.tasks().map(|(id, _)| *id).collect();
                    self.refresh_positions(&held);
                    self.update_gauges();
                }
                // Before records, so that a busy worker answers between two batches.
                Some(request) = self.questions.recv() => {
                    let answer = request.question.answer(&self.worker, &self.inputs);
                    let _ = request.reply.send(answer);
                }
                Some(message) = records.next() => {
                    let now = self.clock.now();
                    let mut touched = Vec::new();
                    self.on_message(message, now, &mut touched)?;
                    for _ in 1..BATCH {
                        if let Ok(notice) = self.notices.try_recv() {
                            self.on_notice(notice)?;
                            self.carry_out()?;
                        }
                        let Some(Some(message)) = records.next().now_or_never() else { break };
                        self.on_message(message, now, &mut touched)?;
                    }
                    self.refresh_positions(&touched);
                    self.take_deliveries();
                    self.worker.handle_batch_done();
                    self.carry_out()?;
                    // While records keep coming the stream is always ready and this
                    // task never waits, so the runtime would never turn its timer
                    // driver: no commit timer, no gauges tick until the backlog ends.
                    // Yielding once per batch lets it.
                    tokio::task::yield_now().await;
                }
            }
            self.carry_out()?;
        }
        drop(records);
        drop(changelog);
        self.shut_down()
    }

    fn partition_id(&self, topic: &str, partition: i32) -> Option<PartitionId> {
        let index = self.inputs.iter().position(|t| t == topic)?;
        Some(PartitionId {
            topic: index as u16,
            partition,
        })
    }

    fn on_notice(&mut self, notice: Notice) -> Result<()> {
        // "topic[0,2] other[1]": one log line per rebalance, readable.
        fn describe(list: &[(String, i32)]) -> String {
            let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = Default::default();
            for (t, p) in list {
                by_topic.entry(t).or_default().push(*p);
            }
            by_topic
                .into_iter()
                .map(|(t, mut ps)| {
                    ps.sort_unstable();
                    let ps: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
                    format!("{t}[{}]", ps.join(","))
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
        let lost = matches!(notice, Notice::Lost(_));
        match notice {
            Notice::Assigned(list) => {
                let ids: Vec<PartitionId> = list
                    .iter()
                    .filter_map(|(t, p)| self.partition_id(t, *p))
                    .collect();
                tracing::info!(partitions = %describe(&list), "partitions assigned");
                self.postponed
                    .retain(|&(Postponed::Restore(p) | Postponed::Rewind(p))| !ids.contains(&p));
                self.worker.handle_assigned(&ids);
            }
            Notice::Fatal(why) => anyhow::bail!(
                "the Kafka consumer stopped for good ({}); restart the process to rejoin the group",
                self.log.redact(&why)
            ),
            Notice::Revoked(list) | Notice::Lost(list) => {
                let ids: Vec<PartitionId> = list
                    .iter()
                    .filter_map(|(t, p)| self.partition_id(t, *p))
                    .collect();
                if lost {
                    tracing::warn!(partitions = %describe(&list), "partitions lost (the session expired or the member was fenced): their work since the last commit is given up");
                } else {
                    tracing::info!(partitions = %describe(&list), "partitions revoked: committing their work, then giving them back");
                }
                self.postponed
                    .retain(|&(Postponed::Restore(p) | Postponed::Rewind(p))| !ids.contains(&p));
                if lost {
                    self.worker.handle_lost(&ids);
                } else {
                    self.worker.handle_revoked(&ids, self.clock.now());
                }
                for id in &ids {
                    self.stop_restoring(*id);
                    self.metrics
                        .partition_revoked(&self.inputs[id.topic as usize], id.partition);
                }
            }
        }
        self.gauges.assigned.set(self.worker.tasks().count() as i64);
        Ok(())
    }

    /// One record of a changelog being restored, or the end of one.
    fn on_changelog(&mut self, message: Result<BorrowedMessage<'_>, KafkaError>) {
        match message {
            Ok(m) => {
                let Some(index) = self.changelogs.iter().position(|t| t == m.topic()) else {
                    return;
                };
                let id = PartitionId {
                    topic: index as u16,
                    partition: m.partition(),
                };
                if let Err(e) =
                    self.worker
                        .handle_restore_record(id, m.key().unwrap_or_default(), m.payload())
                {
                    tracing::error!(topic = m.topic(), partition = m.partition(), offset = m.offset(), error = %e, "changelog record skipped");
                }
                if self
                    .restoring
                    .get(&id)
                    .is_some_and(|&(_, end)| m.offset() + 1 >= end)
                {
                    self.finish_restore(id);
                }
            }
            Err(KafkaError::PartitionEOF(partition)) => {
                let ids: Vec<PartitionId> = self
                    .restoring
                    .keys()
                    .filter(|id| id.partition == partition)
                    .copied()
                    .collect();
                for id in ids {
                    if self
                        .changelog_position(id)
                        .is_some_and(|p| p >= self.restoring[&id].1)
                    {
                        self.finish_restore(id);
                    }
                }
            }
            Err(e) => self
                .log
                .error("changelog reader", &e, "reading a changelog"),
        }
    }

    fn changelog_position(&self, id: PartitionId) -> Option<i64> {
        let topic = &self.changelogs[id.topic as usize];
        let positions = self.restore.position().ok()?;
        positions
            .find_partition(topic, id.partition)?
            .offset()
            .to_raw()
    }

    fn start_restore(&mut self, id: PartitionId) -> Result<()> {
        let topic = self.changelogs[id.topic as usize].clone();
        let timeout = Duration::from_secs(10);
        let (low, high) = self
            .restore
            .fetch_watermarks(&topic, id.partition, timeout)
            .with_context(|| {
                format!(
                    "cannot read the end of changelog {topic} partition {}",
                    id.partition
                )
            })?;
        self.gauges.restoring.set(self.worker.restoring() as i64);
        if high <= low {
            self.worker.handle_restored(id);
            self.metrics.restored(0.0, 0);
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, id.partition, Offset::Beginning)?;
        self.restore
            .incremental_assign(&tpl)
            .context("cannot read the changelog")?;
        self.restoring.insert(id, (self.clock.now(), high));
        tracing::info!(topic = %topic, partition = id.partition, records = high - low, "restoring state");
        Ok(())
    }

    fn finish_restore(&mut self, id: PartitionId) {
        let Some((started, _)) = self.restoring.get(&id).copied() else {
            return;
        };
        self.stop_restoring(id);
        if let Some(stats) = self.worker.handle_restored(id) {
            let seconds = (self.clock.now().0 - started.0).max(0) as f64 / 1000.0;
            self.metrics.restored(seconds, stats.records);
            for (rule, n) in &stats.dropped {
                tracing::warn!(rule = %rule, instances = n, "restored instances dropped: the rule is no longer configured");
                self.metrics.instances_dropped(rule, *n);
            }
            tracing::info!(
                topic = %self.inputs[id.topic as usize], partition = id.partition, seconds,
                records = stats.records, bytes = stats.bytes, open_instances = stats.instances, "state restored"
            );
        }
        self.gauges.restoring.set(self.worker.restoring() as i64);
    }

    fn stop_restoring(&mut self, id: PartitionId) {
        if self.restoring.remove(&id).is_some() {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&self.changelogs[id.topic as usize], id.partition);
            if let Err(e) = self.restore.incremental_unassign(&tpl) {
                tracing::warn!(error = %e, "cannot stop reading a changelog");
            }
        }
    }

    fn on_message(
        &mut self,
        message: Result<BorrowedMessage<'_>, KafkaError>,
        now: Millis,
        touched: &mut Vec<PartitionId>,
    ) -> Result<()> {
        let m = match message {
            Ok(m) => m,
            Err(e) => {
                self.log.error("consumer", &e, "reading the input");
                return Ok(());
            }
        };
        let Some(id) = self.partition_id(m.topic(), m.partition()) else {
            return Ok(());
        };
        if !touched.contains(&id) {
            touched.push(id);
        }
        let Some(value) = m.payload() else {
            // A tombstone: nothing to decode. The worker still takes its offset.
            if self.worker.handle_tombstone(id, m.offset()) == Outcome::Tombstone {
                self.record_counters[id.topic as usize][4].inc();
            }
            return Ok(());
        };
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
        let outcome = self
            .worker
            .handle_record(id, m.offset(), decoded.into_input(), now);
        let index = match outcome {
            Outcome::Applied => 0,
            Outcome::Skipped => 1,
            Outcome::Duplicate => 2,
            Outcome::DeadLettered(dead) => {
                tracing::info!(topic = m.topic(), partition = m.partition(), offset = m.offset(), reason = %dead, "dead-lettered");
                self.metrics.dead_letter(dead.class());
                self.dead_letter(&m, &dead)?;
                3
            }
            Outcome::Ignored | Outcome::Tombstone => return Ok(()),
        };
        self.record_counters[id.topic as usize][index].inc();
        self.carry_out()
    }

    /// The original record (key, value, every header) with the reason added as
    /// headers; by reference (no value) when the dead-letter topic would refuse it.
    fn dead_letter(&mut self, m: &BorrowedMessage<'_>, dead: &DeadLetter) -> Result<()> {
        let ours = dead_letter_headers(
            &dead.to_string(),
            dead.class(),
            m.topic(),
            m.partition(),
            m.offset(),
        );
        let build = |by_reference: Option<usize>| {
            let mut headers = OwnedHeaders::new();
            if let Some(h) = m.headers() {
                for h in h.iter() {
                    headers = headers.insert(Header {
                        key: h.key,
                        value: h.value,
                    });
                }
            }
            for (k, v) in &ours {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            if let Some(size) = by_reference {
                let size = size.to_string();
                headers = headers.insert(Header {
                    key: "sla_dead_letter_value_omitted_bytes",
                    value: Some(size.as_bytes()),
                });
            }
            headers
        };
        let topic = self.settings.kafka.topics.dead_letter.clone();
        match self
            .sender
            .send(&topic, None, m.key(), m.payload(), Some(build(None)))
        {
            Ok(()) => Ok(()),
            Err(SendError::TooLarge) => {
                let size = m.payload().map_or(0, <[u8]>::len);
                tracing::warn!(
                    topic = m.topic(),
                    partition = m.partition(),
                    offset = m.offset(),
                    bytes = size,
                    "dead letter too large: written by reference"
                );
                self.metrics.dead_letter("by_reference");
                self.sender
                    .send(&topic, None, m.key(), None, Some(build(Some(size))))
                    .context("cannot write a dead letter")
            }
            Err(SendError::Kafka(e)) => self.send_failed(e),
        }
    }

    /// Tells the worker how far each partition has been read, so it knows which are
    /// caught up (they fire on the wall clock).
    fn refresh_positions(&mut self, ids: &[PartitionId]) {
        let now = self.clock.now();
        let positions = self.consumer.position().ok();
        for &id in ids {
            let topic = &self.inputs[id.topic as usize];
            let Some(high) = cached_high_watermark(&self.consumer, topic, id.partition) else {
                continue;
            };
            let from_consumer = positions
                .as_ref()
                .and_then(|p| p.find_partition(topic, id.partition)?.offset().to_raw());
            let next = self.worker.task(id).and_then(|t| t.next_offset());
            let Some(position) = next.max(from_consumer) else {
                continue;
            };
            self.worker.handle_position(id, position, high, now);
        }
    }

    /// A restore or a rewind that the broker did not answer in time (a broker restart, a
    /// stalled process): the partition stays paused and it is tried again each second.
    fn postpone(&mut self, what: Postponed, error: &anyhow::Error) {
        let id = match what {
            Postponed::Restore(id) | Postponed::Rewind(id) => id,
        };
        self.log.problem(
            "postponed",
            &format!(
                "{error:#}; partition {} of {} stays paused and is tried again",
                id.partition, self.inputs[id.topic as usize]
            ),
        );
        self.postponed.push(what);
    }

    /// Tries the postponed restores and rewinds again.
    fn retry_postponed(&mut self) {
        for what in std::mem::take(&mut self.postponed) {
            let outcome = match what {
                Postponed::Restore(id) => {
                    // Ask for the changelog's metadata first: the reader may hold it
                    // as unknown (a changelog created after start-up) for minutes.
                    let topic = &self.changelogs[id.topic as usize];
                    let _ = self
                        .restore
                        .fetch_metadata(Some(topic), Duration::from_secs(2));
                    self.start_restore(id)
                }
                Postponed::Rewind(id) => self.seek_to_committed(id).map(|committed| {
                    if let Some(offset) = committed {
                        self.worker.handle_committed(id, offset);
                    }
                    self.pause(id, false)
                }),
            };
            if let Err(e) = outcome {
                self.postpone(what, &e);
            }
        }
    }

    /// A record could not be sent: abort (or recreate the producer) and rewind every
    /// partition to its last commit; the work is done again from there.
    fn send_failed(&mut self, e: KafkaError) -> Result<()> {
        self.held_changelog.clear();
        self.sender.send_failed(e)?;
        self.worker.handle_send_failed();
        Ok(())
    }

    /// Under at least once, hands the deliveries reported since to the worker.
    fn take_deliveries(&mut self) {
        while let Ok(s) = self.delivered.try_recv() {
            self.worker.handle_delivered(s.partition, s.record);
        }
    }

    /// Carries out what the worker asks for, in order.
    fn carry_out(&mut self) -> Result<()> {
        while let Some(action) = self.worker.poll_action() {
            match action {
                Action::Pause(id) => self.pause(id, true),
                Action::Restore(id) => {
                    if let Err(e) = self.start_restore(id) {
                        self.postpone(Postponed::Restore(id), &e);
                    }
                }
                Action::Resume { partition, rewind } => {
                    let committed = if rewind {
                        match self.seek_to_committed(partition) {
                            Ok(committed) => committed,
                            Err(e) => {
                                // Paused it stays, until the rewind succeeds.
                                self.postpone(Postponed::Rewind(partition), &e);
                                continue;
                            }
                        }
                    } else {
                        // Known, every commit carries it: see `Worker::handle_committed`.
                        self.committed_offset(partition).unwrap_or_else(|e| {
                            tracing::debug!(error = %e, "committed offset unknown");
                            None
                        })
                    };
                    if let Some(offset) = committed {
                        self.worker.handle_committed(partition, offset);
                    }
                    self.pause(partition, false);
                }
                Action::Alert {
                    alert,
                    partition,
                    again,
                    source,
                } => {
                    if again {
                        self.metrics.alert_reemitted();
                    }
                    let live = self
                        .worker
                        .task(partition)
                        .is_some_and(|t| t.is_caught_up());
                    self.scratch.clear();
                    alert.write_json(&mut self.scratch);
                    let topic = self.settings.kafka.topics.alerts.clone();
                    let now = self.clock.now();
                    self.metrics
                        .fired_late_by(live, (now.0 - alert.time.0).max(0) as f64 / 1000.0);
                    let scratch = std::mem::take(&mut self.scratch);
                    let source = source.map(|record| Source { partition, record });
                    let sent = self.sender.send_from(
                        source,
                        &topic,
                        None,
                        Some(alert.key().as_bytes()),
                        Some(&scratch),
                        None,
                    );
                    self.scratch = scratch;
                    if let (Ok(()), Some(s)) = (&sent, source.filter(|s| !s.fits())) {
                        // Its delivery will not be reported: taken as delivered, so the
                        // partition's marks go on.
                        self.worker.handle_delivered(partition, s.record);
                    }
                    match sent {
                        Ok(()) => self.metrics.alert_produced(&alert.name, alert.event_type()),
                        Err(SendError::Kafka(e)) => self.send_failed(e)?,
                        Err(SendError::TooLarge) => {
                            anyhow::bail!(
                                "an alert is larger than the producer's message.max.bytes"
                            )
                        }
                    }
                }
                Action::Mark { partition, record } => {
                    self.send_changelog(partition, &record)?;
                }
                Action::Changelog { partition, record } => {
                    if self.settings.kafka.guarantee == Guarantee::AtLeastOnce {
                        self.held_changelog.push((partition, record));
                    } else {
                        self.send_changelog(partition, &record)?;
                    }
                }
                Action::Commit(offsets) => {
                    let began = self.clock.now();
                    let ok = self.commit(&offsets)?;
                    self.metrics
                        .commit_took((self.clock.now().0 - began.0).max(0) as f64 / 1000.0);
                    self.last_commit_ok = ok;
                    self.metrics.commit(ok);
                    // Under at least once the commit waited for every delivery report:
                    // the worker learns them before it rewinds on a failure.
                    self.take_deliveries();
                    self.worker.handle_commit(ok);
                }
                Action::Abort => {
                    self.held_changelog.clear();
                    self.sender.abort()?;
                }
                Action::Release(_) => {
                    // The partitions librdkafka revoked, as it listed them.
                    let n = self.consumer.context().release_pending(&*self.consumer);
                    tracing::info!(partitions = n, "revoked partitions given back");
                }
            }
        }
        Ok(())
    }

    /// Sends a changelog record; false when it could not be sent and every partition
    /// was rewound to its last commit.
    fn send_changelog(
        &mut self,
        id: PartitionId,
        record: &crate::changelog::Record,
    ) -> Result<bool> {
        let topic = self.changelogs[id.topic as usize].clone();
        match self.sender.send(
            &topic,
            Some(id.partition),
            Some(&record.key),
            record.value.as_deref(),
            None,
        ) {
            Ok(()) => Ok(true),
            Err(SendError::Kafka(e)) => self.send_failed(e).map(|()| false),
            Err(SendError::TooLarge) => anyhow::bail!(
                "a changelog record of {topic} is larger than the producer's message.max.bytes"
            ),
        }
    }

    fn commit(&mut self, offsets: &[(PartitionId, i64)]) -> Result<bool> {
        let mut tpl = TopicPartitionList::new();
        for (id, next) in offsets {
            tpl.add_partition_offset(
                &self.inputs[id.topic as usize],
                id.partition,
                Offset::Offset(*next),
            )?;
        }
        match self.settings.kafka.guarantee {
            Guarantee::ExactlyOnce => {
                // A member that has lost its place in the group must not commit: once
                // its session expired librdkafka forgets its member id, and offsets sent
                // with none are not fenced by the coordinator, so a zombie's work (a
                // process that was stalled, say) would be committed over that of its
                // partitions' new owner. Its transaction is aborted; the partitions it
                // still believes it holds go back to their last commit, and the loss
                // notice that follows drops them.
                // The metadata first, then the check: metadata taken while the member
                // id was being cleared would carry no generation, and not be fenced.
                let group = self.consumer.group_metadata();
                let group = group.filter(|_| is_group_member(&self.consumer));
                let Some(group) = group else {
                    self.log.problem(
                        "no group membership",
                        "not a member of the consumer group now (its session expired?): the open transaction is aborted, not committed",
                    );
                    self.sender.abort()?;
                    return Ok(false);
                };
                self.sender.commit(&tpl, &group)
            }
            Guarantee::AtLeastOnce => {
                if !self.sender.flush() {
                    self.held_changelog.clear();
                    return Ok(false);
                }
                for (id, record) in std::mem::take(&mut self.held_changelog) {
                    if !self.send_changelog(id, &record)? {
                        return Ok(false);
                    }
                }
                if !self.sender.flush() {
                    return Ok(false);
                }
                if tpl.count() == 0 {
                    return Ok(true);
                }
                match self.consumer.commit(&tpl, CommitMode::Sync) {
                    Ok(()) => Ok(true),
                    Err(e) => {
                        tracing::warn!(error = %e, "offset commit failed; the work since the last commit is done again");
                        Ok(false)
                    }
                }
            }
        }
    }

    fn pause(&self, id: PartitionId, pause: bool) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.inputs[id.topic as usize], id.partition);
        let result = if pause {
            self.consumer.pause(&tpl)
        } else {
            self.consumer.resume(&tpl)
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, pause, "cannot pause or resume a partition");
        }
    }

    /// The partition's committed offset, if it has one.
    fn committed_offset(&self, id: PartitionId) -> Result<Option<i64>> {
        let topic = &self.inputs[id.topic as usize];
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, id.partition);
        let committed = self
            .consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .context("cannot read the committed offsets")?;
        Ok(
            match committed
                .find_partition(topic, id.partition)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(n)) => Some(n),
                _ => None,
            },
        )
    }

    /// Moves the partition back to its committed offset (the start when it has none),
    /// and returns that offset.
    fn seek_to_committed(&self, id: PartitionId) -> Result<Option<i64>> {
        let committed = self.committed_offset(id)?;
        let offset = committed.map_or(Offset::Beginning, Offset::Offset);
        self.consumer
            .seek(
                &self.inputs[id.topic as usize],
                id.partition,
                offset,
                Duration::from_secs(10),
            )
            .context("cannot rewind a partition")?;
        Ok(committed)
    }

    fn update_gauges(&mut self) {
        let now = self.clock.now();
        let mut open = vec![0u64; self.settings.rules.rules.len()];
        let mut points = 0;
        for (id, task) in self.worker.tasks() {
            let state = task.state();
            for (total, n) in open.iter_mut().zip(state.open_by_rule()) {
                *total += n;
            }
            points += state.pending_points();
            let topic = &self.inputs[id.topic as usize];
            let high = cached_high_watermark(&self.consumer, topic, id.partition);
            let lag = match (high, task.next_offset()) {
                (Some(h), Some(n)) => (h - n).max(0),
                _ => 0,
            };
            let behind = if task.is_caught_up() {
                0.0
            } else {
                state
                    .clock()
                    .map_or(0.0, |c| (now.0 - c.0).max(0) as f64 / 1000.0)
            };
            self.metrics
                .partition_position(topic, id.partition, lag, behind);
        }
        for (part, n) in self.gauges.open_by_rule.iter_mut().zip(open) {
            part.set(n as i64);
        }
        self.gauges.pending_points.set(points as i64);
        self.gauges.assigned.set(self.worker.tasks().count() as i64);
        self.gauges.restoring.set(self.worker.restoring() as i64);
    }

    /// Keeps `/readyz` honest: asks the cluster for metadata every few seconds.
    fn spawn_broker_probe(&self, mut shutdown: watch::Receiver<bool>) {
        let health = self.health.clone();
        let producer = self.sender.producer().clone();
        let inputs = self.inputs.clone();
        let admin = super::admin_config(&self.settings.kafka);
        let group_id = self.settings.kafka.group_id.clone();
        let log = self.log.clone();
        tokio::spawn(async move {
            let mut reported_down = false;
            let mut reported_missing = Vec::new();
            loop {
                let p = producer.clone();
                let listed = tokio::task::spawn_blocking(move || {
                    use rdkafka::producer::Producer as _;
                    p.client()
                        .fetch_metadata(None, Duration::from_secs(5))
                        .ok()
                        .map(|m| {
                            m.topics()
                                .iter()
                                .filter(|t| t.error().is_none())
                                .map(|t| t.name().to_string())
                                .collect::<std::collections::HashSet<_>>()
                        })
                })
                .await
                .ok()
                .flatten();
                let ok = listed.is_some();
                if let Some(listed) = listed {
                    let missing: Vec<String> = inputs
                        .iter()
                        .filter(|t| !listed.contains(*t))
                        .cloned()
                        .collect();
                    // An input topic without its changelog (one created after start-up)
                    // gets it here; its partitions' restores retry until it exists.
                    let unlogged: Vec<&str> = inputs
                        .iter()
                        .filter(|t| listed.contains(*t))
                        .filter(|t| !listed.contains(&super::topics::changelog_topic(&group_id, t)))
                        .map(String::as_str)
                        .collect();
                    if !unlogged.is_empty() {
                        if let Err(e) = super::topics::ensure_changelogs(
                            &admin,
                            &group_id,
                            &unlogged,
                            log.clone(),
                        )
                        .await
                        {
                            log.problem(
                                "new changelog",
                                &format!(
                                    "cannot create the changelog topics of new input topics: {e:#}"
                                ),
                            );
                        }
                    }
                    if missing != reported_missing {
                        if missing.is_empty() {
                            tracing::info!("every input topic exists");
                        } else {
                            tracing::warn!(topics = ?missing, "input topics missing; /readyz says not ready until they exist");
                        }
                        reported_missing = missing.clone();
                    }
                    if let Ok(mut m) = health.missing_topics.lock() {
                        *m = missing;
                    }
                }
                health
                    .broker_reachable
                    .store(ok, std::sync::atomic::Ordering::Relaxed);
                if ok == reported_down {
                    reported_down = !ok;
                    if ok {
                        tracing::info!("the Kafka cluster answers again");
                    } else {
                        tracing::warn!("the Kafka cluster does not answer; /readyz says not ready until it does");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        });
    }

    /// Commits what was done, within `kafka.shutdown_timeout` (the producer's calls are
    /// bounded by it). Work that cannot be committed is aborted: the next owner does it.
    fn shut_down(mut self) -> Result<()> {
        tracing::info!("shutting down: committing what was done");
        // From here on a revoke is completed in the callback, and one still pending is
        // given back as the loop ends (`LoopRuns`).
        self.consumer
            .context()
            .deferring
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.last_commit_ok = true;
        if self.worker.commit_now(self.clock.now()) {
            self.carry_out()?;
        }
        self.sender.abort()?;
        anyhow::ensure!(
            self.last_commit_ok,
            "shutdown: the work since the last commit could not be committed (is the broker reachable?); \
             it is aborted, and the partitions' next owner does it again"
        );
        tracing::info!("committed; bye");
        Ok(())
    }
}

/// Whether the consumer is a member of its group now: it has a member id (librdkafka
/// clears it when the session expires, until the member rejoins).
fn is_group_member(consumer: &StreamConsumer<DaemonContext>) -> bool {
    let rk = consumer.client().native_ptr();
    // SAFETY: the client handle is valid while `consumer` lives; librdkafka returns a
    // NUL-terminated string it allocated (or null), which is freed with its allocator.
    unsafe {
        let id = rdkafka::bindings::rd_kafka_memberid(rk);
        if id.is_null() {
            return false;
        }
        let member = !std::ffi::CStr::from_ptr(id).to_bytes().is_empty();
        rdkafka::bindings::rd_kafka_mem_free(rk, id.cast());
        member
    }
}

/// The high watermark librdkafka cached from its last fetch; no broker round trip.
fn cached_high_watermark(
    consumer: &StreamConsumer<DaemonContext>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
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
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}
