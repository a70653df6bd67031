//! Producing alerts, dead letters and changelog records: the [`Sender`].
//!
//! # Ground rules
//!
//! * Under exactly once the producer is transactional: the first record after a commit
//!   begins a transaction, and [`Sender::commit`] sends the consumer's offsets into it
//!   (with the group's metadata, so a member fenced by a rebalance cannot commit) and
//!   commits. A transaction that cannot commit is aborted; a fatal error (fenced by a
//!   newer producer with the same `transactional.id`) recreates the producer. Either way
//!   the caller rewinds to the last commit.
//! * Under at least once the producer is idempotent; [`Sender::flush`] waits until every
//!   record sent is acknowledged and says whether any delivery failed since the last
//!   flush.
//! * `QueueFull` at send time is back-pressure: the worker thread waits a millisecond
//!   for the producer's background thread to make room. A record larger than the
//!   producer accepts is refused at once ([`SendError::TooLarge`]).
//! * Calls that wait on the broker are bounded by the timeout given at creation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, TopicPartitionList};

use super::client_log::ClientLog;
use crate::core::engine::PartitionId;
use crate::metrics::Metrics;
use crate::worker::AlertSource;

/// Counts failed deliveries and passes on the sources of delivered records; the
/// delivery callback runs on the producer's thread.
pub struct SenderContext {
    failures: AtomicU64,
    metrics: Arc<Metrics>,
    log: Arc<ClientLog>,
    delivered: Option<std::sync::mpsc::Sender<Source>>,
}

/// The input record an alert came from, carried through its delivery as the opaque
/// (packed into a `usize`: no allocation per record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    /// The input partition.
    pub partition: PartitionId,
    /// The record and its task's generation, as the worker named them.
    pub record: AlertSource,
}

impl Source {
    /// Whether it can be carried: up to 8 input topics, 4,096 partitions, 2^44 offsets
    /// and 16 generations (a source that cannot is not reported back).
    pub fn fits(&self) -> bool {
        usize::BITS >= 64
            && self.partition.topic < 8
            && (0..1 << 12).contains(&self.partition.partition)
            && (0..1 << 44).contains(&self.record.offset)
            && self.record.generation < 16
    }

    /// 0 for none; else bit 0 set, the topic in bits 1-3, the partition in 4-15, the
    /// generation in 16-19, the offset above.
    fn pack(source: Option<Source>) -> usize {
        let Some(Source { partition, record }) = source.filter(Source::fits) else {
            return 0;
        };
        1 | (partition.topic as usize) << 1
            | (partition.partition as usize) << 4
            | (record.generation as usize) << 16
            | (record.offset as usize) << 20
    }

    fn unpack(packed: usize) -> Option<Source> {
        (packed & 1 == 1).then_some(Source {
            partition: PartitionId {
                topic: (packed >> 1 & 0x7) as u16,
                partition: (packed >> 4 & 0xfff) as i32,
            },
            record: AlertSource {
                offset: (packed >> 20) as i64,
                generation: (packed >> 16 & 0xf) as u8,
            },
        })
    }
}

impl ClientContext for SenderContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log("producer", level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error("producer", &error, reason);
    }
}

impl ProducerContext for SenderContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, source: usize) {
        if result.is_ok() {
            if let (Some(tx), Some(source)) = (&self.delivered, Source::unpack(source)) {
                let _ = tx.send(source);
            }
        }
        if let Err((e, m)) = result {
            use rdkafka::Message as _;
            self.failures.fetch_add(1, Ordering::Relaxed);
            let kind = if e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) {
                "too_large"
            } else {
                "failed"
            };
            self.metrics.produce_error(m.topic(), kind);
        }
    }
}

pub type KafkaProducer = ThreadedProducer<SenderContext>;

/// Why a record was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the record is larger than the producer's message.max.bytes")]
    TooLarge,
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

/// The producer of one worker.
pub struct Sender {
    producer: Arc<KafkaProducer>,
    config: ClientConfig,
    transactional: bool,
    in_transaction: bool,
    failures_seen: u64,
    timeout: Duration,
    metrics: Arc<Metrics>,
    log: Arc<ClientLog>,
    delivered: Option<std::sync::mpsc::Sender<Source>>,
}

impl Sender {
    /// Creates the producer; a transactional one is initialised (which aborts what a
    /// predecessor with the same `transactional.id` left open).
    pub fn new(
        config: ClientConfig,
        transactional: bool,
        timeout: Duration,
        metrics: Arc<Metrics>,
        log: Arc<ClientLog>,
        delivered: Option<std::sync::mpsc::Sender<Source>>,
    ) -> Result<Sender> {
        let producer = create(&config, transactional, timeout, &metrics, &log, &delivered)?;
        Ok(Sender {
            producer,
            config,
            transactional,
            in_transaction: false,
            failures_seen: 0,
            timeout,
            metrics,
            log,
            delivered,
        })
    }

    pub fn producer(&self) -> &Arc<KafkaProducer> {
        &self.producer
    }

    /// Whether records were sent since the last commit or abort.
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// Sends one record (beginning a transaction when none is open).
    pub fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
    ) -> Result<(), SendError> {
        self.send_from(None, topic, partition, key, payload, headers)
    }

    /// [`Self::send`], telling the channel given at creation once the record is
    /// delivered that it came from `source`.
    pub fn send_from(
        &mut self,
        source: Option<Source>,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
    ) -> Result<(), SendError> {
        self.begin()?;
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(topic, Source::pack(source));
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = payload {
            record = record.payload(v);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                    return Err(SendError::TooLarge)
                }
                Err((e, _)) => return Err(SendError::Kafka(e)),
            }
        }
    }

    fn begin(&mut self) -> Result<(), KafkaError> {
        if self.transactional && !self.in_transaction {
            self.producer.begin_transaction()?;
        }
        self.in_transaction = true;
        Ok(())
    }

    /// Exactly once: commits the open transaction with the consumer's offsets. False
    /// when it was aborted instead (the caller rewinds); an error only when the producer
    /// cannot be recreated.
    pub fn commit(
        &mut self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> Result<bool> {
        if let Err(e) = self.begin() {
            return self.failed(e);
        }
        let mut result = Ok(());
        if offsets.count() > 0 {
            result = self
                .producer
                .send_offsets_to_transaction(offsets, group, self.timeout);
        }
        if result.is_ok() {
            self.drain();
            result = self.producer.commit_transaction(self.timeout);
        }
        match result {
            Ok(()) => {
                self.in_transaction = false;
                self.metrics.transaction("committed");
                Ok(true)
            }
            Err(e) => self.failed(e),
        }
    }

    /// Aborts the open transaction, if any.
    pub fn abort(&mut self) -> Result<()> {
        if !self.transactional || !self.in_transaction {
            self.in_transaction = false;
            return Ok(());
        }
        self.in_transaction = false;
        self.metrics.transaction("aborted");
        if let Err(e) = self.producer.abort_transaction(self.timeout) {
            tracing::warn!(error = %e, "cannot abort the transaction; recreating the producer");
            self.recreate()?;
        }
        Ok(())
    }

    /// A send failed: the transaction is aborted (the producer recreated if it must be);
    /// the caller rewinds to the last commit.
    pub fn send_failed(&mut self, e: KafkaError) -> Result<()> {
        self.failed(e).map(|_| ())
    }

    fn failed(&mut self, e: KafkaError) -> Result<bool> {
        let fatal = match &e {
            KafkaError::Transaction(t) => t.is_fatal() || !t.txn_requires_abort(),
            _ => true,
        };
        tracing::warn!(error = %e, fatal, "the transaction failed; its work is done again from the last commit");
        if fatal {
            self.in_transaction = false;
            self.metrics.transaction("aborted");
            self.recreate()?;
        } else {
            self.abort()?;
        }
        Ok(false)
    }

    fn recreate(&mut self) -> Result<()> {
        self.producer = create(
            &self.config,
            self.transactional,
            self.timeout,
            &self.metrics,
            &self.log,
            &self.delivered,
        )?;
        self.in_transaction = false;
        Ok(())
    }

    /// Waits (within the timeout) until librdkafka holds nothing more to send or to
    /// report. rdkafka's `flush`, which `commit_transaction` calls first, waits in steps
    /// of a whole 100 ms poll whenever anything is still outstanding, so every commit
    /// took at least 100 ms; after this its first check finds the queue empty.
    fn drain(&self) {
        let mut waited = Duration::ZERO;
        while self.producer.in_flight_count() > 0 && waited < self.timeout {
            std::thread::sleep(Duration::from_micros(500));
            waited += Duration::from_micros(500);
        }
    }

    /// At least once: waits until everything sent is acknowledged. True when nothing
    /// failed since the last flush.
    pub fn flush(&mut self) -> bool {
        self.drain();
        let flushed = self.producer.flush(self.timeout).is_ok();
        let failures = self.producer.context().failures.load(Ordering::Relaxed);
        let ok = flushed && failures == self.failures_seen;
        self.failures_seen = failures;
        self.in_transaction = !ok && self.in_transaction;
        if ok {
            self.in_transaction = false;
        }
        ok
    }
}

fn create(
    config: &ClientConfig,
    transactional: bool,
    timeout: Duration,
    metrics: &Arc<Metrics>,
    log: &Arc<ClientLog>,
    delivered: &Option<std::sync::mpsc::Sender<Source>>,
) -> Result<Arc<KafkaProducer>> {
    let context = SenderContext {
        failures: AtomicU64::new(0),
        metrics: metrics.clone(),
        log: log.clone(),
        delivered: delivered.clone(),
    };
    let producer: KafkaProducer = config
        .create_with_context(context)
        .context("cannot create the Kafka producer")?;
    if transactional {
        producer
            .init_transactions(timeout)
            .context("cannot initialise the producer's transactions")?;
    }
    Ok(Arc::new(producer))
}

#[cfg(test)]
mod tests {
    use super::Source;
    use crate::core::engine::PartitionId;
    use crate::worker::AlertSource;

    #[test]
    fn a_source_survives_the_opaque_and_one_that_does_not_fit_is_none() {
        let source = |topic, partition, offset, generation| Source {
            partition: PartitionId { topic, partition },
            record: AlertSource { offset, generation },
        };
        for s in [
            source(0, 0, 0, 0),
            source(2, 4_095, (1 << 44) - 1, 15),
            source(7, 12, 1_234_567_890, 3),
        ] {
            assert!(s.fits());
            assert_eq!(Source::unpack(Source::pack(Some(s))), Some(s));
        }
        assert_eq!(Source::unpack(Source::pack(None)), None);
        for far in [
            source(0, 0, 1 << 44, 0),
            source(0, 4_096, 0, 0),
            source(8, 0, 0, 0),
        ] {
            assert!(!far.fits());
            assert_eq!(Source::unpack(Source::pack(Some(far))), None);
        }
    }
}
