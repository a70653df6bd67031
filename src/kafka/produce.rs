//! Producing alerts and dead letters, with retries, as futures the daemon loop polls.
//!
//! `QueueFull` is back-pressure: wait briefly and enqueue again. A delivery that fails
//! is retried with a growing pause (the idempotent producer keeps order and suppresses
//! duplicates of its own retries); a fatal producer error, or a record that keeps
//! failing, stops the daemon without committing past it, so nothing is lost.

use std::time::Duration;

use futures_util::future::BoxFuture;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Attempts before a failing record stops the daemon.
pub const MAX_ATTEMPTS: u32 = 8;

/// What a produced record stands for, for bookkeeping once it is acknowledged.
#[derive(Debug, Clone)]
pub struct Effect {
    /// Index of the input partition in the daemon's table, and the record charged.
    pub partition: crate::core::engine::PartitionId,
    pub offset: i64,
    pub kind: EffectKind,
}

#[derive(Debug, Clone)]
pub enum EffectKind {
    Alert { rule: std::sync::Arc<str>, alert_type: &'static str },
    DeadLetter,
}

/// An owned record, kept until acknowledged so it can be sent again.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    pub attempts: u32,
}

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

/// Sends `outgoing`, after a back-off when it is a retry.
pub fn deliver(producer: FutureProducer, effect: Effect, mut outgoing: Outgoing) -> BoxFuture<'static, Delivered> {
    Box::pin(async move {
        if outgoing.attempts > 0 {
            tokio::time::sleep(Duration::from_millis(100 << outgoing.attempts.min(6))).await;
        }
        outgoing.attempts += 1;
        let result = send(&producer, &outgoing).await;
        Delivered { effect, outgoing, result }
    })
}

async fn send(producer: &FutureProducer, out: &Outgoing) -> Result<(), KafkaError> {
    loop {
        let mut headers = OwnedHeaders::new_with_capacity(out.headers.len());
        for (key, value) in &out.headers {
            headers = headers.insert(Header { key, value: Some(value.as_bytes()) });
        }
        let mut record = FutureRecord::to(&out.topic).payload(&out.payload).headers(headers);
        if let Some(key) = &out.key {
            record = record.key(key);
        }
        match producer.send_result(record) {
            Ok(delivery) => {
                return match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(e),
                    Err(_) => Err(KafkaError::Canceled),
                }
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}
