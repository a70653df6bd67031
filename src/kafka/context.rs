//! The consumer's rdkafka context: rebalance and error callbacks.
//!
//! Callbacks run on librdkafka's poll path and return quickly: they hand the change of
//! assignment to the worker loop as a [`Notice`]. The one thing done in place is pausing
//! newly assigned partitions, before librdkafka fetches anything from them: their state
//! is restored from the changelog first, and the worker resumes them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, TopicPartitionList};
use tokio::sync::mpsc::UnboundedSender;

use super::client_log::ClientLog;
use crate::http::Health;

/// A change of assignment, for the worker loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Assigned(Vec<(String, i32)>),
    Revoked(Vec<(String, i32)>),
    /// The consumer is in a fatal state (fenced by a newer member with the same
    /// `group.instance.id`, say): it will not consume again.
    Fatal(String),
}

/// The consumer context.
pub struct DaemonContext {
    pub notices: UnboundedSender<Notice>,
    pub health: Arc<Health>,
    pub log: Arc<ClientLog>,
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
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let revoked = partitions(tpl);
            tracing::debug!(?revoked, "revoke callback");
            let _ = self.notices.send(Notice::Revoked(revoked));
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                if let Err(e) = consumer.pause(tpl) {
                    tracing::error!(error = %e, "cannot pause newly assigned partitions");
                }
                let assigned = partitions(tpl);
                tracing::debug!(?assigned, "assign callback");
                let _ = self.notices.send(Notice::Assigned(assigned));
            }
            Rebalance::Error(e) => tracing::error!(error = %e, "rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }
}
