//! The consumer-group worker's bookkeeping, as a state machine without I/O.
//!
//! One [`Worker`] holds every input partition assigned to one group member, each as a
//! [`Task`]: its engine state, its changelog writer, its position and its clock mode. The
//! Kafka shell (`crate::kafka::daemon`) feeds it what happens and carries out what it
//! asks for; tests drive it directly.
//!
//! # Inputs and outputs
//!
//! * `handle_assigned`, `handle_revoked`, `handle_lost`: the group changed the
//!   assignment.
//! * `handle_restore_record`, `handle_restored`: a partition's changelog, read from the
//!   start to its end.
//! * `handle_record(now)`: one input record, decoded (or a dead letter), at its offset.
//! * `handle_position`: how far the consumer has read a partition and where its end
//!   was, which decides the clock mode.
//! * `handle_delivered`, `handle_batch_done` (at least once): an alert was delivered;
//!   a batch of records was handed over (the time to write marks, below).
//! * `handle_timeout(now)`: the wall clock reached [`Worker::poll_timeout`].
//! * `handle_commit(outcome)`: the commit that [`Action::Commit`] asked for succeeded or
//!   failed (a failed transaction is aborted by the shell).
//! * [`Worker::poll_action`] yields, in order, what the shell must do; call it until it
//!   returns `None` after every input.
//!
//! # Ground rules
//!
//! * A partition's records are taken only once its state is restored; a record before
//!   the position already taken is a repeat and is ignored, so nothing is applied twice.
//! * A commit covers everything taken so far: the changelog records of every partition
//!   whose state changed (sent before the commit), and the next offset to read of every
//!   partition that took a record. Under exactly once, the shell commits alerts,
//!   changelog and offsets in one transaction; under at least once, it waits for every
//!   record sent to be acknowledged and then commits the offsets.
//! * When a commit fails (a transaction is aborted), every partition goes back to its
//!   last committed state: it is restored from its changelog again and read again from
//!   its committed offset. Under at least once the alerts sent since are sent again,
//!   flagged as re-deliveries; so are those of records whose alerts an earlier run had
//!   delivered, as far as its marks in the changelog tell: after each batch, a mark of
//!   the offset before which every record's alerts are delivered, sent at once (the
//!   deliveries since a crashed run's last mark go uncounted).
//! * A revoked partition's work is committed before it is given back (contract 9.2), so
//!   its next owner starts where it ended. A partition lost without a revoke (the
//!   session expired, the member was fenced) takes its uncommitted work with it under
//!   exactly once: the open transaction is aborted (the next owner does that work again
//!   from the last commit) and the partitions still held go back to their last commit
//!   as above.
//! * Per partition, points fire on event time while the partition is behind and on the
//!   wall clock once it is caught up (contract section 7); before the changelog is
//!   written, points left before the clock fire ([`PartitionState::settle`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::changelog::{ChangelogError, ChangelogWriter, Record, RestoreStats, Restorer};
use crate::core::alert::Alert;
use crate::core::effect::{Effect, Sink};
use crate::core::engine::PartitionId;
use crate::core::event::Input;
use crate::core::partition::{PartitionState, Taken};
use crate::core::rules::RuleSet;
use crate::core::time::{Millis, Span};
use crate::decode::DeadLetter;

/// How alerts are delivered (`kafka.guarantee`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guarantee {
    ExactlyOnce,
    AtLeastOnce,
}

/// The worker's settings.
#[derive(Clone, Copy, Debug)]
pub struct WorkerConfig {
    pub guarantee: Guarantee,
    /// How far ahead of the wall clock an event may be before it is dead-lettered.
    pub max_clock_skew: Span,
    /// Work is committed at least this often while there is some.
    pub commit_interval: Span,
}

/// What the shell must do.
#[derive(Debug)]
pub enum Action {
    /// Read the partition's changelog from the start and hand every record to
    /// [`Worker::handle_restore_record`], then call [`Worker::handle_restored`].
    Restore(PartitionId),
    /// Start (or go on) reading the partition; from its committed offset when `rewind`.
    Resume {
        partition: PartitionId,
        rewind: bool,
    },
    /// Stop reading the partition until it is resumed.
    Pause(PartitionId),
    /// Send an alert. `again` under at least once: its record was taken before (by this
    /// process before a rewind, or by an earlier run whose mark is in the changelog), so
    /// the alert may have been delivered already (a re-delivery, counted).
    Alert {
        partition: PartitionId,
        alert: Alert,
        again: bool,
        /// Under at least once, the record it came from (none for an alert the wall
        /// clock fired between records): answer its delivery with
        /// [`Worker::handle_delivered`].
        source: Option<AlertSource>,
    },
    /// Send a changelog record of the partition.
    Changelog {
        partition: PartitionId,
        record: Record,
    },
    /// Under at least once, send this changelog record now, without waiting for the
    /// commit: the mark of the alerts delivered ([`crate::changelog::delivered_mark`]).
    Mark {
        partition: PartitionId,
        record: Record,
    },
    /// Commit: the next offset to read of each partition listed (and under exactly
    /// once, the open transaction). Every running partition whose position is known is
    /// listed, changed or not, so that the group fences every transaction. Answer with
    /// [`Worker::handle_commit`].
    Commit(Vec<(PartitionId, i64)>),
    /// Abort the open transaction (exactly once); the partitions still held rewind.
    Abort,
    /// Give the revoked partitions back to the group: their work is committed (or
    /// given up) and their state dropped.
    Release(Vec<PartitionId>),
}

/// The record an alert came from: its offset, and the generation of the partition's
/// task that took it (a rewind or a new assignment starts another, so a late delivery
/// of an alert sent before it is not mistaken for one sent after).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertSource {
    pub offset: i64,
    /// 0 to [`GENERATIONS`] - 1, counting round.
    pub generation: u8,
}

/// Task generations, counted round: a delivery from 16 rewinds ago would be taken for
/// a current one.
pub const GENERATIONS: u8 = 16;

/// What happened to one record.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Applied,
    Skipped,
    Duplicate,
    /// The shell writes the dead letter.
    DeadLettered(DeadLetter),
    /// A record without a value: skipped and counted, not dead-lettered.
    Tombstone,
    /// The partition is not held, still restoring, or the record was taken before.
    Ignored,
}

/// A partition's phase.
enum Phase {
    Restoring(Box<Restorer>),
    Running,
}

/// One assigned input partition.
pub struct Task {
    phase: Phase,
    state: PartitionState,
    changelog: ChangelogWriter,
    /// The next offset to read, once a record was taken.
    next_offset: Option<i64>,
    /// The consumer has read up to the end of the partition: fire on the wall clock.
    caught_up: bool,
    /// A rewind is waiting for the restore: resume from the committed offset.
    rewinding: bool,
    /// Offsets taken since the last commit.
    uncommitted: bool,
    /// Under at least once, the alerts of records before this offset were sent before:
    /// by this process before a rewind, or delivered by an earlier run (its mark). See
    /// [`Action::Alert`].
    sent_before: Option<i64>,
    /// Under at least once, the offset of the last mark sent.
    marked: Option<i64>,
    /// Under at least once, alerts sent and not yet delivered: (offset of the record
    /// they came from, how many), in offset order.
    in_flight: VecDeque<(i64, u32)>,
    /// A delivery was reported since the last mark.
    delivered: bool,
    /// See [`AlertSource::generation`].
    generation: u8,
}

impl Task {
    fn restoring(rules: &Arc<RuleSet>, rewinding: bool, generation: u8) -> Task {
        Task {
            phase: Phase::Restoring(Box::new(Restorer::new(rules.clone()))),
            state: PartitionState::new(),
            changelog: ChangelogWriter::default(),
            next_offset: None,
            caught_up: false,
            rewinding,
            uncommitted: false,
            sent_before: None,
            marked: None,
            in_flight: VecDeque::new(),
            delivered: false,
            generation,
        }
    }

    pub fn state(&self) -> &PartitionState {
        &self.state
    }

    pub fn is_restoring(&self) -> bool {
        matches!(self.phase, Phase::Restoring(_))
    }

    pub fn is_caught_up(&self) -> bool {
        self.caught_up
    }

    pub fn next_offset(&self) -> Option<i64> {
        self.next_offset
    }

    /// Under at least once, the offset before which every record taken has had its
    /// alerts delivered.
    fn delivered_before(&self) -> Option<i64> {
        match self.in_flight.front() {
            Some(&(offset, _)) => Some(offset),
            None => self.next_offset,
        }
    }
}

/// The state machine over all partitions of one worker.
pub struct Worker {
    rules: Arc<RuleSet>,
    config: WorkerConfig,
    tasks: BTreeMap<PartitionId, Task>,
    actions: VecDeque<Action>,
    /// A commit was asked for and not yet answered.
    committing: bool,
    /// When the last commit was asked for.
    last_commit: Option<Millis>,
    /// Something was sent or taken since the last commit.
    dirty: bool,
    /// The generation the next task gets ([`AlertSource::generation`]).
    generation: u8,
}

/// Pushes a partition's effects: alerts to the actions, facts to its changelog.
struct TaskSink<'a> {
    rules: &'a RuleSet,
    partition: PartitionId,
    changelog: &'a mut ChangelogWriter,
    actions: &'a mut VecDeque<Action>,
    alerts: u32,
    again: bool,
    source: Option<AlertSource>,
}

impl Sink for TaskSink<'_> {
    fn emit(&mut self, effect: Effect<'_>) {
        match effect {
            Effect::Alert(alert) => {
                self.alerts += 1;
                self.actions.push_back(Action::Alert {
                    partition: self.partition,
                    alert: alert.to_alert(),
                    again: self.again,
                    source: self.source,
                });
            }
            other => self.changelog.record(self.rules, &other),
        }
    }
}

impl Worker {
    pub fn new(rules: Arc<RuleSet>, config: WorkerConfig) -> Worker {
        Worker {
            rules,
            config,
            tasks: BTreeMap::new(),
            actions: VecDeque::new(),
            committing: false,
            last_commit: None,
            dirty: false,
            generation: 0,
        }
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    pub fn tasks(&self) -> impl Iterator<Item = (&PartitionId, &Task)> {
        self.tasks.iter()
    }

    pub fn task(&self, id: PartitionId) -> Option<&Task> {
        self.tasks.get(&id)
    }

    /// Partitions still restoring their state.
    pub fn restoring(&self) -> usize {
        self.tasks.values().filter(|t| t.is_restoring()).count()
    }

    /// The next action for the shell.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When the worker wants [`Self::handle_timeout`] next: the earliest due point of a
    /// caught-up partition, or the next commit when there is work to commit.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let due = self
            .tasks
            .values()
            .filter(|t| t.caught_up && !t.is_restoring())
            .filter_map(|t| t.state.next_due().map(Millis::succ))
            .min();
        let commit = (self.dirty && !self.committing).then(|| self.next_commit());
        due.into_iter().chain(commit).min()
    }

    fn next_generation(&mut self) -> u8 {
        let g = self.generation;
        self.generation = (g + 1) % GENERATIONS;
        g
    }

    fn next_commit(&self) -> Millis {
        self.last_commit
            .map_or(Millis::MIN, |c| c.plus(self.config.commit_interval))
    }

    pub fn handle_assigned(&mut self, partitions: &[PartitionId]) {
        for &id in partitions {
            if self.tasks.contains_key(&id) {
                continue;
            }
            let generation = self.next_generation();
            self.tasks
                .insert(id, Task::restoring(&self.rules, false, generation));
            self.actions.push_back(Action::Pause(id));
            self.actions.push_back(Action::Restore(id));
        }
    }

    /// The group takes the partitions back: the work done on them is committed first
    /// (under exactly once with everything else in the open transaction), then their
    /// state is dropped and [`Action::Release`] gives them back. When a commit is already
    /// on its way and unanswered, the work after it cannot wait for it: it is given up as
    /// when the partitions are lost (the daemon answers each commit before it takes the
    /// next notice, so only a shell that commits asynchronously gets there).
    pub fn handle_revoked(&mut self, partitions: &[PartitionId], now: Millis) {
        let unfinished = partitions
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .any(|t| t.uncommitted || t.changelog.is_dirty());
        if unfinished && self.committing {
            self.handle_lost(partitions);
        } else {
            if unfinished {
                self.commit(now);
            }
            for id in partitions {
                self.tasks.remove(id);
            }
        }
        self.actions.push_back(Action::Release(partitions.to_vec()));
    }

    /// The partitions were taken away without a revoke (the member was thrown out of
    /// the group: its session expired, or it was fenced), so another member may own them
    /// already and nothing of theirs can be committed. Under exactly once their
    /// uncommitted work is aborted and the partitions still held go back to their last
    /// commit.
    pub fn handle_lost(&mut self, partitions: &[PartitionId]) {
        let mut lost_work = false;
        for id in partitions {
            if let Some(task) = self.tasks.remove(id) {
                lost_work |= task.uncommitted || task.changelog.is_dirty();
            }
        }
        if self.config.guarantee == Guarantee::ExactlyOnce && lost_work {
            self.actions.push_back(Action::Abort);
            self.rewind();
        }
    }

    /// A record could not be sent (the transaction broke: its producer was fenced, or
    /// its messages timed out while the process stalled). The shell has aborted it; every
    /// partition goes back to its last commit, as after a failed commit.
    pub fn handle_send_failed(&mut self) {
        self.rewind();
    }

    /// Every partition goes back to its last committed state: restored again, then read
    /// from its committed offset.
    fn rewind(&mut self) {
        self.dirty = false;
        self.committing = false;
        // Actions not yet carried out belong to the aborted work.
        self.actions.retain(|a| {
            !matches!(
                a,
                Action::Alert { .. } | Action::Changelog { .. } | Action::Commit(_)
            )
        });
        let ids: Vec<PartitionId> = self.tasks.keys().copied().collect();
        let at_least_once = self.config.guarantee == Guarantee::AtLeastOnce;
        for id in ids {
            let generation = self.next_generation();
            let mut task = Task::restoring(&self.rules, true, generation);
            if let Some(old) = self.tasks.get(&id).filter(|_| at_least_once) {
                // What was delivered from the records taken is out: read again, it is
                // sent again.
                task.sent_before = old.sent_before.max(old.delivered_before());
                task.marked = old.marked;
            }
            self.tasks.insert(id, task);
            self.actions.push_back(Action::Pause(id));
            self.actions.push_back(Action::Restore(id));
        }
    }

    pub fn handle_restore_record(
        &mut self,
        id: PartitionId,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), ChangelogError> {
        match self.tasks.get_mut(&id).map(|t| &mut t.phase) {
            Some(Phase::Restoring(r)) => r.apply(key, value),
            _ => Ok(()),
        }
    }

    /// The partition's changelog was read to its end: it runs from now on. Returns what
    /// the restore read, or `None` when the partition was not restoring.
    pub fn handle_restored(&mut self, id: PartitionId) -> Option<RestoreStats> {
        let task = self.tasks.get_mut(&id)?;
        let Phase::Restoring(_) = task.phase else {
            return None;
        };
        let Phase::Restoring(restorer) = std::mem::replace(&mut task.phase, Phase::Running) else {
            unreachable!()
        };
        let (state, changelog, stats) = restorer.finish();
        task.state = state;
        task.changelog = changelog;
        if self.config.guarantee == Guarantee::AtLeastOnce {
            task.sent_before = task.sent_before.max(stats.delivered_before);
            task.marked = task.marked.max(stats.delivered_before);
        }
        self.actions.push_back(Action::Resume {
            partition: id,
            rewind: task.rewinding,
        });
        task.rewinding = false;
        Some(stats)
    }

    /// The partition's committed offset, read when it resumed: the position it starts
    /// from until it takes a record, sent with every commit (see [`Action::Commit`]).
    pub fn handle_committed(&mut self, id: PartitionId, offset: i64) {
        if let Some(task) = self.tasks.get_mut(&id).filter(|t| !t.is_restoring()) {
            task.next_offset.get_or_insert(offset);
        }
    }

    /// Takes one record of a running partition.
    pub fn handle_record(
        &mut self,
        id: PartitionId,
        offset: i64,
        decoded: Result<Input<'_>, DeadLetter>,
        now: Millis,
    ) -> Outcome {
        if !self.accept(id, offset) {
            return Outcome::Ignored;
        }
        let task = self.tasks.get_mut(&id).expect("accepted");
        let skew = self.config.max_clock_skew;
        let input = decoded.and_then(|input| {
            let ahead = input.time().0.saturating_sub(now.0);
            if ahead > skew.0 {
                let time = input.time().to_rfc3339();
                return Err(DeadLetter::FromTheFuture {
                    time,
                    ahead_secs: ahead / 1000,
                    skew_secs: skew.0 / 1000,
                });
            }
            Ok(input)
        });
        let input = match input {
            Ok(input) => input,
            Err(dead) => return Outcome::DeadLettered(dead),
        };
        let mut sink = TaskSink {
            rules: &self.rules,
            partition: id,
            changelog: &mut task.changelog,
            actions: &mut self.actions,
            alerts: 0,
            again: task.sent_before.is_some_and(|t| offset < t),
            source: (self.config.guarantee == Guarantee::AtLeastOnce).then_some(AlertSource {
                offset,
                generation: task.generation,
            }),
        };
        let taken = task.state.take(&self.rules, &input, &mut sink);
        task.state.settle(&self.rules, &mut sink);
        if task.caught_up {
            task.state.advance(&self.rules, now, &mut sink);
        }
        if sink.alerts > 0 && self.config.guarantee == Guarantee::AtLeastOnce {
            task.in_flight.push_back((offset, sink.alerts));
        }
        match taken {
            Taken::Applied => Outcome::Applied,
            Taken::Skipped => Outcome::Skipped,
            Taken::Duplicate => Outcome::Duplicate,
        }
    }

    /// Under at least once, an alert that came from `source` in the partition was
    /// delivered.
    pub fn handle_delivered(&mut self, id: PartitionId, source: AlertSource) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        // Sent before a rewind or by an earlier assignment: nothing here to match.
        if task.generation != source.generation {
            return;
        }
        let Ok(at) = task
            .in_flight
            .binary_search_by_key(&source.offset, |&(o, _)| o)
        else {
            return;
        };
        let Some(left) = task.in_flight[at].1.checked_sub(1) else {
            return;
        };
        task.in_flight[at].1 = left;
        task.delivered = true;
        while task.in_flight.front().is_some_and(|&(_, n)| n == 0) {
            task.in_flight.pop_front();
        }
    }

    /// The shell has handed over a batch of records: under at least once, each partition
    /// whose alerts were delivered since its last mark gets a new mark, sent at once: the
    /// offset before which every record's alerts are delivered. A run after a crash
    /// counts the alerts of records before it as re-deliveries.
    pub fn handle_batch_done(&mut self) {
        if self.config.guarantee != Guarantee::AtLeastOnce {
            return;
        }
        for (&id, task) in &mut self.tasks {
            if !std::mem::take(&mut task.delivered) {
                continue;
            }
            if let Some(upto) = task.delivered_before().filter(|&u| task.marked < Some(u)) {
                task.marked = Some(upto);
                self.actions.push_back(Action::Mark {
                    partition: id,
                    record: crate::changelog::delivered_mark(upto),
                });
            }
        }
    }

    /// Takes a record without a value (a tombstone): its offset counts as done.
    pub fn handle_tombstone(&mut self, id: PartitionId, offset: i64) -> Outcome {
        if self.accept(id, offset) {
            Outcome::Tombstone
        } else {
            Outcome::Ignored
        }
    }

    /// Whether a record at `offset` of `id` is new work, and if so marks it taken.
    fn accept(&mut self, id: PartitionId, offset: i64) -> bool {
        let Some(task) = self.tasks.get_mut(&id) else {
            return false;
        };
        if task.is_restoring() || task.next_offset.is_some_and(|next| offset < next) {
            return false;
        }
        task.next_offset = Some(offset + 1);
        task.uncommitted = true;
        self.dirty = true;
        true
    }

    /// How far the consumer has read the partition (`position`, the next offset it will
    /// hand over) and its end (`end`, the high watermark or last stable offset).
    pub fn handle_position(&mut self, id: PartitionId, position: i64, end: i64, now: Millis) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        if task.is_restoring() {
            return;
        }
        let caught_up = position >= end;
        if caught_up && !task.caught_up {
            task.caught_up = true;
            self.fire(id, now);
        } else {
            task.caught_up = caught_up;
        }
    }

    /// The wall clock reached `now`: caught-up partitions fire what is due, and the work
    /// done since the last commit is committed when the interval has passed.
    pub fn handle_timeout(&mut self, now: Millis) {
        let ids: Vec<PartitionId> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.caught_up && !t.is_restoring())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.fire(id, now);
        }
        if self.dirty && !self.committing && now >= self.next_commit() {
            self.commit(now);
        }
    }

    /// Commits now whatever is uncommitted (shutdown).
    /// False when there was nothing to commit.
    pub fn commit_now(&mut self, now: Millis) -> bool {
        if !self.dirty || self.committing {
            return false;
        }
        self.commit(now);
        true
    }

    fn fire(&mut self, id: PartitionId, now: Millis) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        let mut sink = TaskSink {
            rules: &self.rules,
            partition: id,
            changelog: &mut task.changelog,
            actions: &mut self.actions,
            alerts: 0,
            again: false,
            source: None,
        };
        task.state.advance(&self.rules, now, &mut sink);
        if sink.alerts > 0 {
            self.dirty = true;
        }
    }

    fn commit(&mut self, now: Millis) {
        let retention = self.rules.retention;
        let mut offsets = Vec::new();
        for (&id, task) in &mut self.tasks {
            if task.is_restoring() {
                continue;
            }
            for record in task.changelog.flush(task.state.clock(), retention) {
                self.actions.push_back(Action::Changelog {
                    partition: id,
                    record,
                });
            }
            // Every partition with a known position, taken from or not: a transaction
            // is fenced by the group only through its offsets, so one that holds alerts
            // fired by the wall clock and no new offset must still carry some (else a
            // member that has lost its partitions could commit such alerts unfenced).
            if let Some(next) = task.next_offset {
                offsets.push((id, next));
            }
        }
        self.actions.push_back(Action::Commit(offsets));
        self.committing = true;
        self.last_commit = Some(now);
    }

    /// The answer to [`Action::Commit`]: on success the work is committed; on failure
    /// (the shell aborted the transaction, or could not deliver) every partition goes
    /// back to its last commit.
    pub fn handle_commit(&mut self, committed: bool) {
        if !self.committing {
            return;
        }
        self.committing = false;
        if committed {
            self.dirty = false;
            for task in self.tasks.values_mut() {
                task.uncommitted = false;
            }
        } else {
            self.rewind();
        }
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
