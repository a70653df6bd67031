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

/// What to commit for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// The offset safe to commit: the next one to read after a restart.
    pub offset: i64,
    /// Records below this had every effect acknowledged (committed as metadata).
    pub acked_through: i64,
}

/// The commit metadata prefix; the value is [`Commit::acked_through`].
const ACKED_THROUGH: &str = "acked_through=";

/// Reads [`Commit::acked_through`] back from commit metadata.
pub fn parse_acked_through(metadata: &str) -> Option<i64> {
    metadata.strip_prefix(ACKED_THROUGH)?.parse().ok()
}

/// The list to commit for `keys` (all partitions in `safe` when `None`).
pub fn commit_list(safe: &HashMap<(String, i32), Commit>, keys: Option<&[(String, i32)]>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    let mut add = |(topic, partition): &(String, i32), c: &Commit| {
        if tpl.add_partition_offset(topic, *partition, Offset::Offset(c.offset)).is_ok() {
            if let Some(mut e) = tpl.find_partition(topic, *partition) {
                e.set_metadata(format!("{ACKED_THROUGH}{}", c.acked_through));
            }
        }
    };
    match keys {
        None => safe.iter().for_each(|(k, c)| add(k, c)),
        Some(keys) => keys.iter().for_each(|k| if let Some(c) = safe.get(k) { add(k, c) }),
    }
    tpl
}

/// State the callbacks share with the daemon loop.
pub struct Shared {
    /// Per (topic, partition): what is safe to commit.
    pub committable: Mutex<HashMap<(String, i32), Commit>>,
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
        let commit = commit_list(&self.shared.committable.lock().expect("the lock is never poisoned"), Some(&revoked));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_carries_the_acknowledged_position_as_metadata() {
        let mut safe = HashMap::new();
        safe.insert(("shipment".to_string(), 2), Commit { offset: 40, acked_through: 57 });
        safe.insert(("shipment".to_string(), 0), Commit { offset: 1, acked_through: 1 });
        let tpl = commit_list(&safe, Some(&[("shipment".to_string(), 2)]));
        assert_eq!(tpl.count(), 1);
        let e = tpl.find_partition("shipment", 2).unwrap();
        assert_eq!(e.offset(), Offset::Offset(40));
        assert_eq!(parse_acked_through(e.metadata()), Some(57));
        assert_eq!(commit_list(&safe, None).count(), 2);
        assert_eq!(parse_acked_through("something else"), None);
    }
}
