//! Producing alerts and dead letters, with retries: the [`Outbox`].
//!
//! Records go to a `ThreadedProducer`; the outbox keeps each (with its [`Effect`]) in a
//! slab until acknowledged, the slab index is the delivery opaque, and librdkafka's
//! delivery callback (on the producer's poll thread) hands index and result back
//! through a channel. The daemon loop drains that channel in
//! batches, so a busy loop is woken once for many acknowledgements rather than once per
//! record (as one future per record would).
//!
//! A delivery that fails is sent again after a growing pause (the idempotent producer
//! keeps order and suppresses duplicates of its own retries); `QueueFull` at send time
//! is back-pressure and takes the same path. A fatal producer error, or a record that
//! keeps failing, stops the daemon without committing past it, so nothing is lost.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use tokio::sync::mpsc;

use crate::core::alert::Alert;

/// Attempts before a failing record stops the daemon.
pub const MAX_ATTEMPTS: u32 = 8;

/// What a produced record stands for, for bookkeeping once it is acknowledged.
#[derive(Debug, Clone)]
pub struct Effect {
    /// Index of the input partition in the daemon's table, and the record charged.
    pub partition: crate::core::engine::PartitionId,
    /// Which assignment of that partition sent it: an acknowledgement that comes back
    /// after the partition was revoked (and perhaps assigned again) is not booked.
    pub epoch: u32,
    pub offset: i64,
    pub kind: EffectKind,
}

#[derive(Debug, Clone)]
pub enum EffectKind {
    Alert { rule: Arc<str>, alert_type: &'static str },
    DeadLetter,
}

/// An owned record, kept until acknowledged so it can be sent again.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub topic: Arc<str>,
    pub body: Body,
    pub attempts: u32,
}

/// What a record carries.
#[derive(Debug, Clone)]
pub enum Body {
    /// An alert: keyed by its key, written as structured-mode CloudEvents JSON into the
    /// outbox's buffer each time it is sent (librdkafka copies it), so the only memory
    /// it holds while in flight is the alert's own.
    Alert(Alert),
    /// Bytes as they are (a dead letter: the input's key and value, reason headers).
    Raw { key: Option<Vec<u8>>, payload: Vec<u8>, headers: Vec<(&'static str, String)> },
}

/// The headers of an alert record (CloudEvents Kafka binding, structured mode).
const ALERT_HEADERS: [(&str, &str); 1] = [("content-type", "application/cloudevents+json")];

/// The end of one delivery attempt.
pub struct Delivered {
    pub effect: Effect,
    pub outgoing: Outgoing,
    pub result: Result<(), KafkaError>,
}

impl Delivered {
    /// Whether the error can never succeed by retrying.
    pub fn is_fatal(&self) -> bool {
        match &self.result {
            Ok(()) => false,
            Err(e) => {
                self.outgoing.attempts >= MAX_ATTEMPTS
                    || e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal)
                    || matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::MessageSizeTooLarge))
            }
        }
    }
}

/// A delivery report: the record's slab index and how it went.
type Ack = (usize, Result<(), KafkaError>);

/// The producer's context: delivery reports go to the outbox's channel.
pub struct DeliveryContext {
    acks: mpsc::UnboundedSender<Ack>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let result = result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone());
        // The receiver is gone only once the daemon has stopped waiting for deliveries.
        let _ = self.acks.send((index, result));
    }
}

pub type Producer = ThreadedProducer<DeliveryContext>;

/// Records sent and not yet acknowledged, and the acknowledgements coming back.
pub struct Outbox {
    producer: Arc<Producer>,
    acks: mpsc::UnboundedReceiver<Ack>,
    /// Records handed to librdkafka, by the index their delivery report names.
    sent: Vec<Option<(Effect, Outgoing)>>,
    free: Vec<usize>,
    /// Sends refused at once (queue full, bad topic...), reported like failed deliveries.
    refused: VecDeque<Delivered>,
    /// Retries waiting out their pause.
    retries: FuturesUnordered<BoxFuture<'static, (Effect, Outgoing)>>,
    /// Records handed to [`Outbox::send`] or [`Outbox::retry`] and not yet returned by
    /// [`Outbox::next`].
    in_flight: usize,
    /// Where an alert's JSON is written before librdkafka copies it.
    scratch: Vec<u8>,
}

impl Outbox {
    pub fn new(config: &ClientConfig) -> KafkaResult<Outbox> {
        let (tx, acks) = mpsc::unbounded_channel();
        let producer = config.create_with_context(DeliveryContext { acks: tx })?;
        Ok(Outbox {
            producer: Arc::new(producer),
            acks,
            sent: Vec::new(),
            free: Vec::new(),
            refused: VecDeque::new(),
            retries: FuturesUnordered::new(),
            in_flight: 0,
            scratch: Vec::new(),
        })
    }

    /// The producer, for metadata requests and the final flush.
    pub fn producer(&self) -> &Arc<Producer> {
        &self.producer
    }

    pub fn len(&self) -> usize {
        self.in_flight
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight == 0
    }

    /// Sends a record; its [`Delivered`] comes back from [`Outbox::next`].
    pub fn send(&mut self, effect: Effect, outgoing: Outgoing) {
        self.in_flight += 1;
        self.enqueue(effect, outgoing);
    }

    /// Sends a record again after a pause that grows with its attempts.
    pub fn retry(&mut self, effect: Effect, outgoing: Outgoing) {
        self.in_flight += 1;
        let pause = Duration::from_millis(100 << outgoing.attempts.min(6));
        self.retries.push(Box::pin(async move {
            tokio::time::sleep(pause).await;
            (effect, outgoing)
        }));
    }

    /// The next acknowledgement (or failure). Cancel-safe: a retry whose pause is over
    /// is re-sent inside the poll, and nothing is taken from the channel unless returned.
    pub async fn next(&mut self) -> Option<Delivered> {
        loop {
            if let Some(done) = self.try_next() {
                return Some(done);
            }
            if self.in_flight == 0 {
                return None;
            }
            tokio::select! {
                Some((index, result)) = self.acks.recv() => return Some(self.acknowledged(index, result)),
                Some((effect, outgoing)) = self.retries.next(), if !self.retries.is_empty() => {
                    self.enqueue(effect, outgoing);
                }
            }
        }
    }

    /// An acknowledgement (or failure) already received, without waiting.
    pub fn try_next(&mut self) -> Option<Delivered> {
        if let Some(done) = self.refused.pop_front() {
            self.in_flight -= 1;
            return Some(done);
        }
        let (index, result) = self.acks.try_recv().ok()?;
        Some(self.acknowledged(index, result))
    }

    fn acknowledged(&mut self, index: usize, result: Result<(), KafkaError>) -> Delivered {
        self.in_flight -= 1;
        let (effect, outgoing) = self.sent[index].take().expect("one report per record sent");
        self.free.push(index);
        Delivered { effect, outgoing, result }
    }

    fn enqueue(&mut self, effect: Effect, mut outgoing: Outgoing) {
        outgoing.attempts += 1;
        let index = self.free.pop().unwrap_or_else(|| {
            self.sent.push(None);
            self.sent.len() - 1
        });
        let record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(&outgoing.topic, index);
        let record = match &outgoing.body {
            Body::Alert(alert) => {
                self.scratch.clear();
                alert.write_json(&mut self.scratch);
                let headers = ALERT_HEADERS.iter().map(|(k, v)| (*k, v.as_bytes()));
                record.key(alert.key().as_bytes()).payload(&self.scratch).headers(owned_headers(headers))
            }
            Body::Raw { key, payload, headers } => {
                let record = record.payload(payload).headers(owned_headers(headers.iter().map(|(k, v)| (*k, v.as_bytes()))));
                match key {
                    Some(key) => record.key(key),
                    None => record,
                }
            }
        };
        let sent = self.producer.send(record).map_err(|(error, _)| error);
        match sent {
            Ok(()) => self.sent[index] = Some((effect, outgoing)),
            Err(error) => {
                self.free.push(index);
                self.refused.push_back(Delivered { effect, outgoing, result: Err(error) });
            }
        }
    }
}

fn owned_headers<'a>(headers: impl ExactSizeIterator<Item = (&'a str, &'a [u8])>) -> OwnedHeaders {
    let mut owned = OwnedHeaders::new_with_capacity(headers.len());
    for (key, value) in headers {
        owned = owned.insert(Header { key, value: Some(value) });
    }
    owned
}
