//! The engine: the validated rules and one [`PartitionState`] per input partition.
//!
//! # Ground rules
//!
//! * State is grouped by input partition from the start: every event of one SLA
//!   instance arrives on one partition (records are keyed by order or thread id), so a
//!   partition's state is self-contained. Moving a partition to another instance
//!   (rebalance) or restoring it after a crash moves one [`PartitionState`] value.
//! * Replay uses a single partition, [`PartitionId::REPLAY`].

use std::collections::BTreeMap;
use std::sync::Arc;

use super::effect::Sink;
use super::event::Input;
use super::partition::{PartitionState, Taken};
use super::rules::RuleSet;
use super::time::Millis;

/// An input partition: the topic's index among the input topics, and the partition.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PartitionId {
    pub topic: u16,
    pub partition: i32,
}

impl PartitionId {
    /// The one partition of a replay.
    pub const REPLAY: PartitionId = PartitionId {
        topic: 0,
        partition: 0,
    };
}

/// Rules plus per-partition state.
#[derive(Debug)]
pub struct Engine {
    rules: Arc<RuleSet>,
    partitions: BTreeMap<PartitionId, PartitionState>,
}

impl Engine {
    pub fn new(rules: Arc<RuleSet>) -> Engine {
        Engine {
            rules,
            partitions: BTreeMap::new(),
        }
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Takes one well-formed input on a partition, pushing what it causes into `out`.
    pub fn take<S: Sink>(
        &mut self,
        partition: PartitionId,
        input: &Input<'_>,
        out: &mut S,
    ) -> Taken {
        let state = self.partitions.entry(partition).or_default();
        state.take(&self.rules, input, out)
    }

    /// Moves a partition's clock to `now` (never backwards), firing what is due.
    pub fn advance<S: Sink>(&mut self, partition: PartitionId, now: Millis, out: &mut S) {
        let state = self.partitions.entry(partition).or_default();
        state.advance(&self.rules, now, out);
    }

    /// End of input on a partition: fires the points at or before `until`.
    pub fn finish<S: Sink>(&mut self, partition: PartitionId, until: Option<Millis>, out: &mut S) {
        if let Some(state) = self.partitions.get_mut(&partition) {
            state.finish(&self.rules, until, out);
        }
    }

    pub fn partition(&self, partition: PartitionId) -> Option<&PartitionState> {
        self.partitions.get(&partition)
    }

    /// Hands a partition's state over (on revoke), leaving none behind.
    pub fn remove_partition(&mut self, partition: PartitionId) -> Option<PartitionState> {
        self.partitions.remove(&partition)
    }

    /// Installs a partition's state (on assign, from a snapshot or another instance).
    pub fn insert_partition(&mut self, partition: PartitionId, state: PartitionState) {
        self.partitions.insert(partition, state);
    }

    pub fn partitions(&self) -> impl Iterator<Item = (&PartitionId, &PartitionState)> {
        self.partitions.iter()
    }
}
