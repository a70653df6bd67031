//! The consumer's rdkafka context: rebalance and error callbacks.
//!
//! Callbacks run on librdkafka's poll path and return quickly: they hand the change of
//! assignment to the worker loop as a [`Notice`]. Two things are done in place: newly
//! assigned partitions are paused before librdkafka fetches anything from them (their
//! state is restored from the changelog first, and the worker resumes them); and a
//! revoke is *not* completed in the callback while the loop runs: the loop commits the
//! revoked partitions' work first and then gives them back
//! ([`DaemonContext::release_pending`]), as librdkafka allows (the application calls
//! unassign after the callback, within the rebalance timeout). A lost assignment (the
//! session expired) and a revoke while the consumer closes are completed at once, and a
//! revoke still pending when the loop ends is completed then ([`LoopRuns`]): librdkafka's
//! close waits for it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};
use tokio::sync::mpsc::UnboundedSender;

use super::client_log::ClientLog;
use crate::http::Health;

/// A change of assignment, for the worker loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Assigned(Vec<(String, i32)>),
    /// Revoked: commit their work, then give them back
    /// ([`DaemonContext::release_pending`]).
    Revoked(Vec<(String, i32)>),
    /// Taken away without a revoke (the session expired, the member was fenced):
    /// already given back, and nothing of theirs can be committed.
    Lost(Vec<(String, i32)>),
    /// The consumer is in a fatal state (fenced by a newer member with the same
    /// `group.instance.id`, say): it will not consume again.
    Fatal(String),
}

/// The consumer context.
pub struct DaemonContext {
    pub notices: UnboundedSender<Notice>,
    pub health: Arc<Health>,
    pub log: Arc<ClientLog>,
    /// The loop runs and will give revoked partitions back itself; cleared before the
    /// consumer closes ([`LoopRuns`]).
    pub deferring: AtomicBool,
    /// A revoke the callback left to the loop, until [`DaemonContext::release_pending`].
    pending: Mutex<Option<TopicPartitionList>>,
}

impl DaemonContext {
    pub fn new(notices: UnboundedSender<Notice>, health: Arc<Health>, log: Arc<ClientLog>) -> Self {
        DaemonContext {
            notices,
            health,
            log,
            deferring: AtomicBool::new(false),
            pending: Mutex::new(None),
        }
    }

    /// Gives back the partitions of a revoke left to the loop, if one is pending: after
    /// their work is committed, or when the loop ends without getting to it (whatever
    /// stopped it, the consumer can then close: librdkafka waits for this call).
    pub fn release_pending<C: Consumer<X>, X: ConsumerContext>(&self, consumer: &C) -> usize {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(tpl) = pending else { return 0 };
        if let Err(e) = release(consumer, &tpl) {
            tracing::error!(error = %e, "cannot give revoked partitions back");
        }
        tpl.count()
    }
}

/// Marks the loop as running for the life of the value: revokes wait for the loop.
/// Dropped (the loop ended, however), it gives back a revoke still pending, so that the
/// consumer's close does not wait for it forever.
pub struct LoopRuns(Arc<StreamConsumer<DaemonContext>>);

impl LoopRuns {
    pub fn new(consumer: Arc<StreamConsumer<DaemonContext>>) -> LoopRuns {
        consumer.context().deferring.store(true, Ordering::SeqCst);
        LoopRuns(consumer)
    }
}

impl Drop for LoopRuns {
    fn drop(&mut self) {
        let context = self.0.context();
        context.deferring.store(false, Ordering::SeqCst);
        let n = context.release_pending(&*self.0);
        if n > 0 {
            tracing::info!(
                partitions = n,
                "revoked partitions given back as the loop ends"
            );
        }
    }
}

/// Gives revoked partitions back to the group, as the rebalance callback would have.
fn release<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    revoked: &TopicPartitionList,
) -> rdkafka::error::KafkaResult<()> {
    match consumer.rebalance_protocol() {
        RebalanceProtocol::Cooperative => consumer.incremental_unassign(revoked),
        _ => consumer.unassign(),
    }
}

/// The context of the worker's other clients (the changelog reader, the admin client):
/// their logs and errors go to the worker's [`ClientLog`].
pub struct LoggedContext {
    pub client: &'static str,
    pub log: Arc<ClientLog>,
}

impl ClientContext for LoggedContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(self.client, level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(self.client, &error, reason);
    }
}

impl ConsumerContext for LoggedContext {}

fn partitions(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

impl ClientContext for DaemonContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.health.broker_reachable.store(false, Ordering::Relaxed);
        }
        self.log.error("consumer", &error, reason);
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Fatal | RDKafkaErrorCode::FencedInstanceId)
        ) {
            let _ = self
                .notices
                .send(Notice::Fatal(format!("{error}: {reason}")));
        }
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log("consumer", level, fac, message);
    }
}

impl ConsumerContext for DaemonContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let revoked = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS;
        if !revoked || consumer.assignment_lost() || !self.deferring.load(Ordering::SeqCst) {
            return self.rebalance_now(consumer, err, tpl);
        }
        let revoked = partitions(tpl);
        tracing::debug!(?revoked, "revoke callback: the loop commits, then releases");
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            match pending.as_mut() {
                // Not released yet (librdkafka asks again only after the release; but
                // should it): both are given back together.
                Some(earlier) => {
                    for e in tpl.elements() {
                        earlier.add_partition(e.topic(), e.partition());
                    }
                }
                None => *pending = Some(tpl.clone()),
            }
        }
        if self.notices.send(Notice::Revoked(revoked)).is_err() {
            // No loop to hand it to.
            self.release_pending(consumer);
        }
    }
}

impl DaemonContext {
    /// What rdkafka's default rebalance does, with the assigned partitions paused and
    /// every change told to the loop.
    fn rebalance_now(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let assigned = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = assigned {
                    tracing::error!(error = %e, "cannot take the assigned partitions");
                }
                if let Err(e) = consumer.pause(tpl) {
                    tracing::error!(error = %e, "cannot pause newly assigned partitions");
                }
                let assigned = partitions(tpl);
                tracing::debug!(?assigned, "assign callback");
                let _ = self.notices.send(Notice::Assigned(assigned));
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = partitions(tpl);
                tracing::debug!(?lost, "revoke callback: given back at once");
                if let Err(e) = release(consumer, tpl) {
                    tracing::error!(error = %e, "cannot give revoked partitions back");
                }
                let _ = self.notices.send(Notice::Lost(lost));
            }
            other => {
                let error = KafkaError::Rebalance(other.into());
                tracing::error!(error = %error, "rebalance error");
                // As rdkafka does: an error leaves the consumer without those partitions.
                let _ = release(consumer, tpl);
                let _ = self.notices.send(Notice::Lost(partitions(tpl)));
            }
        }
    }
}
