use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::config::load_rules;
use crate::core::alert::Alert;
use crate::core::effect::Sink;
use crate::decode::decode;
use crate::sample::{generate, SampleConfig};

/// Alerts, and every effect recorded by a changelog writer.
struct Journal<'a> {
    rules: &'a RuleSet,
    alerts: Vec<String>,
    writer: &'a mut ChangelogWriter,
}

impl Sink for Journal<'_> {
    fn emit(&mut self, effect: Effect<'_>) {
        self.writer.record(self.rules, &effect);
        if let Effect::Alert(a) = effect {
            self.alerts.push(a.to_json());
        }
    }
}

/// A compacted topic: the latest value per key, in the order of their last write
/// (what a reader sees after compaction), or every record (before compaction).
fn compact(log: &[Record]) -> Vec<Record> {
    let mut last = HashMap::new();
    for (i, r) in log.iter().enumerate() {
        last.insert(r.key.clone(), i);
    }
    log.iter()
        .enumerate()
        .filter(|(i, r)| last[&r.key] == *i && r.value.is_some())
        .map(|(_, r)| r.clone())
        .collect()
}

fn restore(rules: &RuleSet, log: &[Record]) -> (PartitionState, ChangelogWriter, RestoreStats) {
    let mut r = Restorer::new(std::sync::Arc::new(rules.clone()));
    for record in log {
        r.apply(&record.key, record.value.as_deref())
            .expect("the changelog reads back");
    }
    r.finish()
}

/// The first place two alert lists differ as multisets (alerts due at one instant come
/// in no particular order), for a readable failure.
fn first_difference(a: &[String], b: &[String]) -> Option<String> {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    let i = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    (a.len() != b.len() || i < a.len()).then(|| {
        format!(
            "lengths {} and {}; at {i}:\n  {:?}\n  {:?}",
            a.len(),
            b.len(),
            a.get(i).map(|s| &s[..s.len().min(160)]),
            b.get(i).map(|s| &s[..s.len().min(160)])
        )
    })
}

fn stream(seed: u64, n: usize) -> Vec<String> {
    let cfg = SampleConfig {
        seed,
        ..SampleConfig::sized(n)
    };
    generate(&cfg).take(n).collect()
}

/// What the query API reads of a state: every open instance's view, sorted.
fn open_deadlines(state: &PartitionState) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    state.each_open_deadline(|d| all.push(format!("{d:?}")));
    all.sort();
    all
}

/// Runs the lines the way the daemon does (settling after each), restoring from the
/// changelog at each cut (where the restored instances must answer a query as the
/// ones restored from did); returns the alerts.
fn run_with_restores(
    rules: &RuleSet,
    lines: &[String],
    cuts: &[usize],
    compacted: bool,
) -> Vec<String> {
    let mut state = PartitionState::new();
    let mut writer = ChangelogWriter::default();
    let mut log: Vec<Record> = Vec::new();
    let mut alerts = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if cuts.contains(&i) {
            log.extend(writer.flush(state.clock(), rules.retention));
            let view = if compacted {
                compact(&log)
            } else {
                log.clone()
            };
            let before = open_deadlines(&state);
            (state, writer, _) = restore(rules, &view);
            assert_eq!(open_deadlines(&state), before, "restored at line {i}");
        }
        let Ok(input) = decode(line.as_bytes()).into_input() else {
            continue;
        };
        let mut journal = Journal {
            rules,
            alerts: Vec::new(),
            writer: &mut writer,
        };
        state.take(rules, &input, &mut journal);
        state.settle(rules, &mut journal);
        alerts.append(&mut journal.alerts);
    }
    let mut tail = Vec::new();
    state.finish(rules, None, &mut tail);
    alerts.extend(tail.iter().map(Alert::to_json));
    alerts
}

#[test]
fn a_state_restored_from_its_changelog_goes_on_exactly_as_the_uninterrupted_one() {
    let rules = load_rules(None).unwrap();
    let lines = stream(7, 6_000);
    let reference = run_with_restores(&rules, &lines, &[], false);
    assert!(
        reference.len() > 1_000,
        "the stream alerts: {}",
        reference.len()
    );
    let cuts: Vec<usize> = (1..lines.len()).step_by(397).collect();
    assert_eq!(
        first_difference(&run_with_restores(&rules, &lines, &cuts, false), &reference),
        None,
        "read before compaction"
    );
    assert_eq!(
        first_difference(&run_with_restores(&rules, &lines, &cuts, true), &reference),
        None,
        "read after compaction"
    );
}

#[test]
fn restored_instances_keep_the_override_they_opened_with() {
    let rules = crate::config::parse_rules(
        include_str!("../tests/data/marketplace.toml"),
        "marketplace.toml",
    )
    .unwrap();
    let mut lines: Vec<String> = include_str!("../tests/data/marketplace.jsonl")
        .lines()
        .map(String::from)
        .collect();
    // An instance whose override changes its texts, open across a restore.
    let event = |id: &str, t: &str, time: &str| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"t","type":"{t}","time":"{time}","data":{{"order_id":"O-US","seller_id":"A1SELLER","marketplace":"US"}}}}"#
        )
    };
    lines.push(event("r1", "refund.requested", "2027-06-07T18:00:00Z"));
    lines.push(event("x1", "order.out_of_stock", "2027-06-12T18:00:00Z"));
    let reference = run_with_restores(&rules, &lines, &[], false);
    assert!(
        reference
            .iter()
            .any(|a| a.contains("refund:O-US:r1:breach") && a.contains("Refund today")),
        "the override's breach fires"
    );
    let mut cuts: Vec<usize> = (1..lines.len()).step_by(5).collect();
    cuts.push(lines.len() - 1);
    for compacted in [false, true] {
        assert_eq!(
            first_difference(
                &run_with_restores(&rules, &lines, &cuts, compacted),
                &reference
            ),
            None,
            "compacted: {compacted}"
        );
    }
}

#[test]
fn settling_after_each_input_changes_no_alert_of_a_replay() {
    let rules = load_rules(None).unwrap();
    let lines = stream(11, 4_000);
    let mut state = PartitionState::new();
    let mut plain = Vec::new();
    for line in &lines {
        if let Ok(input) = decode(line.as_bytes()).into_input() {
            state.take(&rules, &input, &mut plain);
        }
    }
    state.finish(&rules, None, &mut plain);
    let plain: Vec<String> = plain.iter().map(Alert::to_json).collect();
    assert_eq!(
        first_difference(&run_with_restores(&rules, &lines, &[], false), &plain),
        None
    );
}

#[test]
fn an_instance_of_a_rule_no_longer_configured_is_dropped_and_counted() {
    let rules = load_rules(None).unwrap();
    let lines = stream(3, 2_000);
    let mut state = PartitionState::new();
    let mut writer = ChangelogWriter::default();
    for line in &lines {
        if let Ok(input) = decode(line.as_bytes()).into_input() {
            let mut journal = Journal {
                rules: &rules,
                alerts: Vec::new(),
                writer: &mut writer,
            };
            state.take(&rules, &input, &mut journal);
            state.settle(&rules, &mut journal);
        }
    }
    let log = writer.flush(state.clock(), rules.retention);
    let open_replies = state.open_by_rule()[0];
    assert!(open_replies > 0);
    let mut fewer = rules.clone();
    fewer.rules[0].name = "renamed".into();
    let (restored, _, stats) = restore(&fewer, &log);
    assert_eq!(
        stats.dropped.get(&*rules.rules[0].name).copied(),
        Some(open_replies)
    );
    assert_eq!(
        restored.open_instances(),
        state.open_instances() - open_replies
    );
}

#[test]
fn a_value_of_another_format_version_is_refused_with_the_key() {
    let rules = load_rules(None).unwrap();
    let mut r = Restorer::new(std::sync::Arc::new(rules));
    let e = r.apply(b"C", Some(&[9, 0, 0])).unwrap_err();
    assert!(e.to_string().contains("format version 9"), "{e}");
    assert!(r.apply(b"Zzz", Some(&[VERSION])).is_err());
    assert!(r
        .apply(b"C", Some(&[VERSION, 1, 2]))
        .unwrap_err()
        .to_string()
        .contains("cut short"));
}

#[test]
fn changelog_bytes_stay_a_small_fraction_of_the_input() {
    let rules = load_rules(None).unwrap();
    let lines = stream(5, 20_000);
    let input_bytes: usize = lines.iter().map(String::len).sum();
    let mut state = PartitionState::new();
    let mut writer = ChangelogWriter::default();
    let mut written = 0;
    for (i, line) in lines.iter().enumerate() {
        if let Ok(input) = decode(line.as_bytes()).into_input() {
            let mut journal = Journal {
                rules: &rules,
                alerts: Vec::new(),
                writer: &mut writer,
            };
            state.take(&rules, &input, &mut journal);
            state.settle(&rules, &mut journal);
        }
        if i % 100 == 99 {
            let records = writer.flush(state.clock(), rules.retention);
            written += records
                .iter()
                .map(|r| r.key.len() + r.value.as_ref().map_or(0, Vec::len))
                .sum::<usize>();
        }
    }
    let ratio = written as f64 / input_bytes as f64;
    assert!(ratio < 0.5, "changelog bytes per input byte: {ratio:.3}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn restores_at_any_moments_change_nothing(seed in 0u64..1_000, cuts in proptest::collection::vec(1usize..1_500, 0..6), compacted: bool) {
        let rules = load_rules(None).unwrap();
        let lines = stream(seed, 1_500);
        let reference = run_with_restores(&rules, &lines, &[], false);
        prop_assert_eq!(first_difference(&run_with_restores(&rules, &lines, &cuts, compacted), &reference), None);
    }
}

/// How long restoring a million open instances takes in process, without Kafka:
/// `cargo test --release --lib restore_speed -- --ignored --nocapture`.
#[test]
#[ignore]
#[allow(clippy::disallowed_methods)] // a stopwatch, not the daemon's clock
fn restore_speed() {
    let rules = load_rules(None).unwrap();
    let mut state = PartitionState::new();
    let mut writer = ChangelogWriter::default();
    let n = 1_000_000;
    for i in 0..n {
        let line = format!(
            r#"{{"specversion":"1.0","id":"open-{i:07}","source":"bench","type":"customer_message.received","time":"2026-11-30T10:00:00Z","data":{{"thread_id":"OPEN-T-{i:07}","seller_id":"A1","marketplace":"DE"}}}}"#
        );
        let input = decode(line.as_bytes()).into_input().unwrap();
        let mut journal = Journal {
            rules: &rules,
            alerts: Vec::new(),
            writer: &mut writer,
        };
        state.take(&rules, &input, &mut journal);
    }
    let log = writer.flush(state.clock(), rules.retention);
    let bytes: usize = log
        .iter()
        .map(|r| r.key.len() + r.value.as_ref().map_or(0, Vec::len))
        .sum();
    let t = std::time::Instant::now();
    let (restored, _, stats) = restore(&rules, &log);
    let took = t.elapsed();
    eprintln!(
        "{} records, {bytes} bytes, {} instances restored in {took:?} ({:.2} us per record)",
        log.len(),
        stats.instances,
        took.as_secs_f64() * 1e6 / log.len() as f64
    );
    assert_eq!(restored.open_by_rule().iter().sum::<u64>(), n as u64);
}
