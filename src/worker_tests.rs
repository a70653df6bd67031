//! The worker driven through a simulated broker: partitions of records, committed
//! offsets, changelogs and an alert topic whose records become visible only when their
//! transaction commits, under random interleavings of records, commits that fail,
//! revokes, reassignments and crashes.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::config::load_rules;
use crate::core::event::Field;
use crate::core::rules::RuleSet;
use crate::decode::decode;
use crate::sample::{generate, SampleConfig};

const PARTITIONS: usize = 2;

fn pid(p: usize) -> PartitionId {
    PartitionId {
        topic: 0,
        partition: p as i32,
    }
}

/// The broker and the shell, as far as the worker can tell.
struct Sim {
    guarantee: Guarantee,
    rules: Arc<RuleSet>,
    worker: Worker,
    records: Vec<Vec<String>>,
    committed: Vec<i64>,
    changelog: Vec<Vec<Record>>,
    /// Alert ids visible to a read_committed consumer, in order.
    visible: Vec<String>,
    /// Sent in the open transaction.
    open_alerts: Vec<String>,
    /// Alert ids sent flagged as re-deliveries.
    again: Vec<String>,
    open_changelog: Vec<Vec<Record>>,
    held: Vec<bool>,
    paused: Vec<bool>,
    /// Revoked, not yet released.
    releasing: Vec<bool>,
    position: Vec<i64>,
    fail_next_commit: bool,
    now: Millis,
}

impl Sim {
    fn new(guarantee: Guarantee, records: Vec<Vec<String>>) -> Sim {
        Sim::with_rules(Arc::new(load_rules(None).unwrap()), guarantee, records)
    }

    fn with_rules(rules: Arc<RuleSet>, guarantee: Guarantee, records: Vec<Vec<String>>) -> Sim {
        let n = records.len();
        let mut sim = Sim {
            guarantee,
            worker: Sim::worker_with(rules.clone(), guarantee),
            rules,
            records,
            committed: vec![0; n],
            changelog: vec![Vec::new(); n],
            visible: Vec::new(),
            open_alerts: Vec::new(),
            again: Vec::new(),
            open_changelog: vec![Vec::new(); n],
            held: vec![false; n],
            paused: vec![false; n],
            releasing: vec![false; n],
            position: vec![0; n],
            fail_next_commit: false,
            now: Millis::parse_rfc3339("2100-01-01T00:00:00Z").unwrap(),
        };
        for p in 0..n {
            sim.assign(p);
        }
        sim
    }

    fn worker(guarantee: Guarantee) -> Worker {
        Sim::worker_with(Arc::new(load_rules(None).unwrap()), guarantee)
    }

    fn worker_with(rules: Arc<RuleSet>, guarantee: Guarantee) -> Worker {
        Worker::new(
            rules,
            WorkerConfig {
                guarantee,
                max_clock_skew: Span(300_000),
                commit_interval: Span(0),
            },
        )
    }

    fn assign(&mut self, p: usize) {
        if self.held[p] {
            return;
        }
        self.held[p] = true;
        self.position[p] = self.committed[p];
        self.worker.handle_assigned(&[pid(p)]);
        self.run();
    }

    fn revoke(&mut self, p: usize) {
        if !self.held[p] {
            return;
        }
        self.held[p] = false;
        self.releasing[p] = true;
        self.worker.handle_revoked(&[pid(p)], self.now);
        self.run();
        assert!(!self.releasing[p], "a revoked partition is released");
    }

    /// The partition is taken away without a revoke (the session expired).
    fn lose(&mut self, p: usize) {
        if !self.held[p] {
            return;
        }
        self.held[p] = false;
        self.worker.handle_lost(&[pid(p)]);
        self.run();
    }

    fn crash(&mut self) {
        self.abort();
        self.worker = Sim::worker_with(self.rules.clone(), self.guarantee);
        for p in 0..self.records.len() {
            self.held[p] = false;
            self.assign(p);
        }
    }

    fn deliver(&mut self, p: usize) {
        if !self.held[p] || self.paused[p] || self.position[p] as usize >= self.records[p].len() {
            return;
        }
        let offset = self.position[p];
        self.position[p] += 1;
        let line = &self.records[p][offset as usize];
        let decoded = decode(line.as_bytes()).into_input();
        let outcome = self.worker.handle_record(pid(p), offset, decoded, self.now);
        assert_ne!(
            outcome,
            Outcome::Ignored,
            "a record read from the resumed position is taken"
        );
        self.run();
        // The alerts just sent are delivered (in `run`) before the next batch is done.
        self.worker.handle_batch_done();
        self.run();
    }

    fn tick(&mut self) {
        self.worker.handle_timeout(self.now);
        self.run();
    }

    fn abort(&mut self) {
        if self.guarantee == Guarantee::ExactlyOnce {
            self.open_alerts.clear();
        }
        self.open_changelog.iter_mut().for_each(Vec::clear);
    }

    /// Carries out the worker's actions, as the shell does.
    fn run(&mut self) {
        while let Some(action) = self.worker.poll_action() {
            match action {
                Action::Pause(id) => self.paused[id.partition as usize] = true,
                Action::Restore(id) => {
                    let p = id.partition as usize;
                    for r in self.changelog[p].clone() {
                        self.worker
                            .handle_restore_record(id, &r.key, r.value.as_deref())
                            .unwrap();
                    }
                    self.worker
                        .handle_restored(id)
                        .expect("the partition was restoring");
                }
                Action::Resume { partition, rewind } => {
                    let p = partition.partition as usize;
                    self.paused[p] = false;
                    if rewind {
                        self.position[p] = self.committed[p];
                    }
                }
                Action::Alert {
                    alert,
                    again,
                    source,
                    partition,
                } => {
                    let id = alert.id().to_string();
                    if again {
                        self.again.push(id.clone());
                    }
                    if let Some(source) = source {
                        // Delivered as soon as sent, as far as the worker can tell.
                        self.worker.handle_delivered(partition, source);
                    }
                    match self.guarantee {
                        Guarantee::ExactlyOnce => self.open_alerts.push(id),
                        Guarantee::AtLeastOnce => self.visible.push(id),
                    }
                }
                Action::Changelog { partition, record } => {
                    self.open_changelog[partition.partition as usize].push(record)
                }
                Action::Mark { partition, record } => {
                    assert_eq!(
                        self.guarantee,
                        Guarantee::AtLeastOnce,
                        "marks only under at least once"
                    );
                    self.changelog[partition.partition as usize].push(record)
                }
                Action::Commit(offsets) => {
                    if std::mem::take(&mut self.fail_next_commit) {
                        self.abort();
                        self.worker.handle_commit(false);
                        continue;
                    }
                    self.visible.append(&mut self.open_alerts);
                    for (p, records) in self.open_changelog.iter_mut().enumerate() {
                        self.changelog[p].append(records);
                    }
                    for (id, next) in offsets {
                        self.committed[id.partition as usize] = next;
                    }
                    self.worker.handle_commit(true);
                }
                Action::Abort => self.abort(),
                Action::Release(ids) => {
                    for id in ids {
                        let p = id.partition as usize;
                        assert!(self.releasing[p], "only revoked partitions are released");
                        self.releasing[p] = false;
                    }
                }
            }
        }
    }

    /// Reads everything left and commits it.
    fn drain(&mut self) {
        for p in 0..self.records.len() {
            self.assign(p);
        }
        for _ in 0..10 {
            for p in 0..self.records.len() {
                while (self.position[p] as usize) < self.records[p].len() && !self.paused[p] {
                    self.deliver(p);
                }
            }
            self.fail_next_commit = false;
            self.tick();
        }
    }
}

/// The alert ids of each partition's records replayed as the daemon takes them.
fn expected(records: &[Vec<String>]) -> Vec<String> {
    expected_with(&load_rules(None).unwrap(), records)
}

fn expected_with(rules: &RuleSet, records: &[Vec<String>]) -> Vec<String> {
    let mut ids = Vec::new();
    for lines in records {
        let mut state = PartitionState::new();
        let mut alerts = Vec::new();
        for line in lines {
            if let Ok(input) = decode(line.as_bytes()).into_input() {
                state.take(rules, &input, &mut alerts);
                state.settle(rules, &mut alerts);
            }
        }
        ids.extend(alerts.iter().map(|a| a.id().to_string()));
    }
    ids
}

fn partitions(seed: u64, n: usize) -> Vec<Vec<String>> {
    let lines: Vec<String> = generate(&SampleConfig {
        seed,
        ..SampleConfig::sized(n)
    })
    .take(n)
    .collect();
    partitioned(lines)
}

fn partitioned(lines: Vec<String>) -> Vec<Vec<String>> {
    let mut parts = vec![Vec::new(); PARTITIONS];
    for line in lines {
        // As Kafka keys them: by thread id on the message topic, by order id elsewhere.
        let key = match decode(line.as_bytes()).into_input() {
            Ok(Input::Known(e)) => e
                .data
                .text(Field::ThreadId)
                .or(e.data.text(Field::OrderId))
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        };
        let p = crate::core::retained::fingerprint(&[&key]) as usize % PARTITIONS;
        parts[p].push(line);
    }
    parts
}

#[derive(Clone, Debug)]
enum Op {
    Deliver(usize, usize),
    Tick,
    FailNextCommit,
    Revoke(usize),
    Lose(usize),
    Assign(usize),
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..PARTITIONS, 1usize..60).prop_map(|(p, n)| Op::Deliver(p, n)),
        4 => Just(Op::Tick),
        1 => Just(Op::FailNextCommit),
        1 => (0..PARTITIONS).prop_map(Op::Revoke),
        1 => (0..PARTITIONS).prop_map(Op::Lose),
        2 => (0..PARTITIONS).prop_map(Op::Assign),
        1 => Just(Op::Crash),
    ]
}

fn play(sim: &mut Sim, ops: &[Op]) {
    for op in ops {
        match *op {
            Op::Deliver(p, n) => (0..n).for_each(|_| sim.deliver(p)),
            Op::Tick => sim.tick(),
            Op::FailNextCommit => sim.fail_next_commit = true,
            Op::Revoke(p) => sim.revoke(p),
            Op::Lose(p) => sim.lose(p),
            Op::Assign(p) => sim.assign(p),
            Op::Crash => sim.crash(),
        }
    }
    sim.drain();
}

fn counts(ids: &[String]) -> BTreeMap<&str, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id.as_str()).or_default() += 1;
    }
    m
}

#[test]
fn an_uninterrupted_run_commits_each_alert_of_the_replay_once() {
    let records = partitions(1, 3_000);
    let mut sim = Sim::new(Guarantee::ExactlyOnce, records.clone());
    play(&mut sim, &[]);
    let reference = expected(&records);
    let want = counts(&reference)
        .into_keys()
        .map(|k| (k, 1))
        .collect::<BTreeMap<_, _>>();
    assert!(want.len() > 500);
    let got = counts(&sim.visible);
    assert!(
        got == want,
        "{} alerts visible, {} expected",
        got.len(),
        want.len()
    );
}

#[test]
fn the_live_worker_applies_overrides_and_calendars_across_crashes_and_rebalances() {
    let rules = Arc::new(
        crate::config::parse_rules(
            include_str!("../tests/data/marketplace.toml"),
            "marketplace.toml",
        )
        .unwrap(),
    );
    let lines = include_str!("../tests/data/marketplace.jsonl")
        .lines()
        .map(String::from)
        .collect();
    let records = partitioned(lines);
    let reference = expected_with(&rules, &records);
    let default_rules = expected(&records);
    assert_ne!(
        counts(&reference),
        counts(&default_rules),
        "the pack's overrides change the alerts"
    );
    let ops = [
        Op::Deliver(0, 20),
        Op::Crash,
        Op::Deliver(1, 30),
        Op::Revoke(1),
        Op::Assign(1),
        Op::Deliver(0, 15),
        Op::FailNextCommit,
        Op::Tick,
        Op::Deliver(0, 40),
    ];
    let mut sim = Sim::with_rules(rules, Guarantee::ExactlyOnce, records);
    play(&mut sim, &ops);
    let want: BTreeMap<&str, usize> = counts(&reference).into_keys().map(|k| (k, 1)).collect();
    assert_eq!(counts(&sim.visible), want);
}

#[test]
fn a_revoked_partitions_work_is_committed_before_it_is_given_back() {
    for guarantee in [Guarantee::ExactlyOnce, Guarantee::AtLeastOnce] {
        let records = partitions(7, 600);
        let mut sim = Sim::new(guarantee, records.clone());
        sim.worker.config.commit_interval = Span(3_600_000);
        sim.tick();
        for _ in 0..40 {
            sim.deliver(0);
            sim.deliver(1);
        }
        let committed_before = sim.committed.clone();
        sim.revoke(0);
        assert_eq!(
            sim.committed[0], 40,
            "{guarantee:?}: the revoked partition's offset"
        );
        assert_eq!(
            sim.committed[1], 40,
            "{guarantee:?}: the commit covers what is held too"
        );
        assert_ne!(committed_before, sim.committed);
        assert!(
            sim.open_alerts.is_empty(),
            "{guarantee:?}: nothing left open"
        );
        assert!(sim.worker.task(pid(0)).is_none(), "its state is dropped");
        // The next owner (here the same worker, after a reassignment) goes on from there.
        sim.assign(0);
        assert_eq!(sim.position[0], 40);
        sim.worker.config.commit_interval = Span(0);
        sim.drain();
        let reference = expected(&records);
        let want: BTreeMap<&str, usize> = counts(&reference).into_keys().map(|k| (k, 1)).collect();
        if guarantee == Guarantee::ExactlyOnce {
            assert_eq!(counts(&sim.visible), want);
        } else {
            assert_eq!(
                counts(&sim.visible).keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn under_at_least_once_alerts_sent_again_after_a_crash_are_counted_as_re_deliveries() {
    let records = partitions(7, 600);
    let mut sim = Sim::new(Guarantee::AtLeastOnce, records);
    sim.worker.config.commit_interval = Span(3_600_000);
    sim.tick();
    for _ in 0..150 {
        sim.deliver(0);
    }
    let sent = sim.visible.clone();
    assert!(
        !sent.is_empty() && sim.committed[0] == 0,
        "alerts out, nothing committed"
    );
    sim.crash();
    sim.worker.config.commit_interval = Span(0);
    for _ in 0..150 {
        sim.deliver(0);
    }
    assert_eq!(sim.again, sent, "each alert sent again is flagged, once");
    sim.deliver(0);
    sim.drain();
    assert_eq!(
        sim.again, sent,
        "alerts of records not taken before are not flagged"
    );
}

#[test]
fn a_lost_partitions_uncommitted_work_is_aborted_under_exactly_once() {
    let records = partitions(7, 600);
    let mut sim = Sim::new(Guarantee::ExactlyOnce, records.clone());
    sim.worker.config.commit_interval = Span(3_600_000);
    sim.tick();
    for _ in 0..40 {
        sim.deliver(0);
        sim.deliver(1);
    }
    sim.lose(0);
    assert_eq!(
        sim.committed,
        vec![0; sim.committed.len()],
        "nothing committed"
    );
    assert_eq!(
        sim.position[1], 0,
        "the partition still held rewinds to its last commit"
    );
    sim.worker.config.commit_interval = Span(0);
    sim.drain();
    let reference = expected(&records);
    let want: BTreeMap<&str, usize> = counts(&reference).into_keys().map(|k| (k, 1)).collect();
    assert_eq!(counts(&sim.visible), want);
}

#[test]
fn records_of_a_partition_still_restoring_are_ignored() {
    let mut w = Sim::worker(Guarantee::ExactlyOnce);
    w.handle_assigned(&[pid(0)]);
    let line = &partitions(2, 10)[0][0];
    assert_eq!(
        w.handle_record(pid(0), 0, decode(line.as_bytes()).into_input(), Millis(0)),
        Outcome::Ignored
    );
    assert!(matches!(w.poll_action(), Some(Action::Pause(_))));
    assert!(matches!(w.poll_action(), Some(Action::Restore(_))));
    w.handle_restored(pid(0));
    assert!(matches!(
        w.poll_action(),
        Some(Action::Resume { rewind: false, .. })
    ));
    let now = Millis::parse_rfc3339("2100-01-01T00:00:00Z").unwrap();
    assert_ne!(
        w.handle_record(pid(0), 5, decode(line.as_bytes()).into_input(), now),
        Outcome::Ignored
    );
    assert_eq!(
        w.handle_record(pid(0), 5, decode(line.as_bytes()).into_input(), now),
        Outcome::Ignored,
        "a repeat"
    );
}

#[test]
fn an_event_too_far_ahead_of_the_wall_clock_is_a_dead_letter() {
    let mut w = Sim::worker(Guarantee::ExactlyOnce);
    w.handle_assigned(&[pid(0)]);
    w.handle_restored(pid(0));
    let line = &partitions(2, 10)[0][0];
    let outcome = w.handle_record(pid(0), 0, decode(line.as_bytes()).into_input(), Millis(0));
    assert!(
        matches!(
            outcome,
            Outcome::DeadLettered(DeadLetter::FromTheFuture { .. })
        ),
        "{outcome:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn under_exactly_once_every_alert_is_visible_once_whatever_happens(seed in 0u64..500, ops in proptest::collection::vec(op(), 0..60)) {
        let records = partitions(seed, 1_200);
        let mut sim = Sim::new(Guarantee::ExactlyOnce, records.clone());
        play(&mut sim, &ops);
        let reference = expected(&records);
        let want: BTreeMap<&str, usize> = counts(&reference).into_keys().map(|k| (k, 1)).collect();
        let got = counts(&sim.visible);
        let extra: Vec<_> = got.iter().filter(|(k, n)| want.get(*k) != Some(n)).take(3).collect();
        let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(3).collect();
        prop_assert!(extra.is_empty() && missing.is_empty(), "extra or duplicated {:?}, missing {:?}", extra, missing);
    }

    #[test]
    fn under_at_least_once_every_alert_is_visible_and_nothing_else(seed in 0u64..500, ops in proptest::collection::vec(op(), 0..60)) {
        let records = partitions(seed, 1_200);
        let mut sim = Sim::new(Guarantee::AtLeastOnce, records.clone());
        play(&mut sim, &ops);
        let reference = expected(&records);
        let want = counts(&reference);
        let got = counts(&sim.visible);
        let unexpected: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).take(3).collect();
        let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(3).collect();
        prop_assert!(unexpected.is_empty() && missing.is_empty(), "unexpected {:?}, missing {:?}", unexpected, missing);
        // Every re-delivery is flagged, and nothing else is.
        let again = counts(&sim.again);
        let miscounted: Vec<_> = got
            .iter()
            .filter(|(id, n)| again.get(*id).copied().unwrap_or(0) != *n - 1)
            .take(3)
            .collect();
        prop_assert!(miscounted.is_empty(), "re-deliveries not counted as such: {:?}", miscounted);
    }
}
