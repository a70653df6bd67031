//! The consumer's rdkafka context: rebalance and error callbacks.
//!
//! Callbacks run on librdkafka's poll path and return quickly. The one piece of work
//! done in place is the synchronous commit of revoked partitions, which must happen
//! before the partitions move to another instance: it commits the offsets the daemon
//! last published as safe ([`Shared::committable`]), nothing further. Everything else is
//! handed to the async side as a [`Notice`].

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc::UnboundedSender;

use crate::http::Health;
use crate::metrics::Metrics;

/// A change of assignment, for the async side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Assigned(Vec<(String, i32)>),
    Revoked(Vec<(String, i32)>),
}

/// State the callbacks share with the daemon loop.
pub struct Shared {
    /// Per (topic, partition): the offset that is safe to commit.
    pub committable: Mutex<HashMap<(String, i32), i64>>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
}

/// The consumer context.
pub struct DaemonContext {
    pub shared: Arc<Shared>,
    pub notices: UnboundedSender<Notice>,
}

fn partitions(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect()
}

impl ClientContext for DaemonContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.shared.health.broker_reachable.store(false, Ordering::Relaxed);
        }
        tracing::error!(error = %error, reason, "kafka client error");
    }
}

impl ConsumerContext for DaemonContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else { return };
        let revoked = partitions(tpl);
        let mut commit = TopicPartitionList::new();
        {
            let safe = self.shared.committable.lock().expect("the lock is never poisoned");
            for key in &revoked {
                if let Some(offset) = safe.get(key) {
                    let _ = commit.add_partition_offset(&key.0, key.1, Offset::Offset(*offset));
                }
            }
        }
        if commit.count() > 0 {
            let result = consumer.commit(&commit, CommitMode::Sync);
            self.shared.metrics.commit(result.is_ok());
            match result {
                Ok(()) => tracing::info!(partitions = commit.count(), "committed revoked partitions"),
                Err(e) => tracing::warn!(error = %e, "commit on revoke failed; the next owner re-reads from the last commit"),
            }
        }
        tracing::info!(?revoked, "partitions revoked");
        let _ = self.notices.send(Notice::Revoked(revoked));
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let assigned = partitions(tpl);
                tracing::info!(?assigned, "partitions assigned");
                let _ = self.notices.send(Notice::Assigned(assigned));
            }
            Rebalance::Error(e) => tracing::error!(error = %e, "rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }
}
