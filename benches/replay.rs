//! Replay throughput, in events per second, against the cost of only decoding the same
//! lines.
//!
//! # What is measured
//!
//! One stream of `N` generated lines ([`sla_timerd::sample`], the default realistic mix
//! with its duplicates, unknown types and dead letters) is built once, outside the timed
//! part, as one buffer of JSON Lines. Three variants read it: the first two through one
//! reused line buffer filled by `BufRead::read_until`, the third as the replay command
//! reads (a batch ahead, on a second thread when there is a second CPU):
//!
//! * `serde_envelope`: the baseline of the goal. What a consumer would write first: a
//!   `#[derive(Deserialize)]` envelope per line, text borrowed where serde can, and
//!   `data` as a `serde_json::Value` because its shape depends on the type. It checks
//!   nothing and produces nothing, so it is the floor for "reading these events at all".
//! * `decode`: our decoder ([`sla_timerd::decode::decode`]) alone: envelope, schema,
//!   timestamps, amounts, dead-letter reasons; no engine.
//! * `replay`: the replay command's path ([`sla_timerd::replay::replay`]): read-ahead,
//!   decode, engine (a fresh one per iteration, built outside the timed part and dropped
//!   outside it), alerts serialised to `io::sink()`.
//!
//! Goal: `replay` takes at most twice the time of `serde_envelope`. After criterion's
//! report, the ratio is measured again in the same process (a few interleaved timed
//! repetitions of each) and printed on one line.
//!
//! # Stream profiles
//!
//! * `sample`: the realistic mix of [`sla_timerd::sample`] (about 0.45 alerts per event).
//! * `many_keys`: customer-message threads with a distinct key each, 40% never answered
//!   (two warnings and a breach), 30% answered late (the same and a resolution), 30%
//!   answered within the hour: about 1.5 alerts per input event, the alerts about three
//!   times the input's size, tens of thousands of instances open at once. This is the
//!   shape on which alert writing and the retained-id sets dominate.
//!
//! Both are measured, and the ratio printed for each.
//!
//! # Whole processes
//!
//! The in-process figures leave out what a user's run also pays: reading the file,
//! writing the output through the operating system, the process's start. So the stream
//! is also written to a temporary file and three processes read it, each timed from
//! spawn to exit (a few interleaved runs each):
//!
//! * the serde baseline: this bench's binary again (`SLA_BENCH_SERDE_FILE`), reading
//!   the file through a `BufReader` the same way and decoding each line into
//!   [`Envelope`];
//! * `sla-timerd replay FILE`, alerts to `/dev/null`;
//! * `sla-timerd report FILE --format json`, to `/dev/null`.
//!
//! Goals: replay at most 2.0x the baseline, report at most 1.2x replay.
//!
//! Every ratio is printed as the ratio of medians, and of the best runs: the variants
//! run in turn, round after round, so a slow spell of a shared machine falls on all of
//! them alike, and the best runs show the work without the spells.
//!
//! # Size
//!
//! `SLA_BENCH_EVENTS` sets `N` (default 1,000,000; 20,000 under `--test`), per profile;
//! `SLA_BENCH_PROFILE=sample` or `many_keys` runs one; `SLA_BENCH_RATIOS_ONLY=1` skips
//! criterion's part and prints only the ratios; `SLA_BENCH_KEEP=1` keeps the temporary
//! files (for a profiler) and prints where they are. The default run takes about four
//! minutes on two cores.

// `Instant::now` is this bench's stopwatch, not a reading of the clock the engine runs on
// (src/clock.rs is the only place that reads wall time for the daemon).
#![allow(clippy::disallowed_methods)]

use std::borrow::Cow;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use serde::Deserialize;

use sla_timerd::config::load_rules;
use sla_timerd::core::engine::Engine;
use sla_timerd::core::rules::RuleSet;
use sla_timerd::core::time::Millis;
use sla_timerd::decode::{decode, Decoded};
use sla_timerd::replay::{replay, Sinks};
use sla_timerd::sample::{generate, SampleConfig};

/// The naive consumer's envelope: borrowed text where possible, `data` as a generic
/// JSON value.
#[derive(Deserialize)]
#[allow(dead_code)] // Read only by serde; the fields are what a consumer would keep.
struct Envelope<'a> {
    specversion: &'a str,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    ty: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
    data: serde_json::Value,
}

/// The generated stream and what every variant needs.
struct Input {
    buf: Vec<u8>,
    events: u64,
    rules: Arc<RuleSet>,
}

/// The `many_keys` profile: about `events` lines, in time order.
fn many_keys(events: usize) -> impl Iterator<Item = String> {
    const START: i64 = 1_793_577_600_000; // 2026-11-02T00:00:00Z
    const HOUR: i64 = 3_600_000;
    let threads = events * 10 / 16;
    let mut timed: Vec<(i64, String)> = Vec::with_capacity(events + 16);
    let line = |id: String, ty: &str, t: i64, thread: usize| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"helpdesk","type":"{ty}","time":"{}","datacontenttype":"application/json","data":{{"thread_id":"T{thread:09}","message_id":"M{thread:09}","order_id":"{:03}-{:07}-{:07}","seller_id":"A{:012}","marketplace":"{}"}}}}"#,
            Millis(t),
            thread % 1000,
            thread % 9_999_991,
            thread.wrapping_mul(2_654_435_761) % 10_000_000,
            thread % 97,
            ["NL", "DE", "FR", "UK", "US"][thread % 5]
        )
    };
    for thread in 0..threads {
        let t = START + thread as i64 * 7_000;
        timed.push((
            t,
            line(
                format!("rcv-{thread}"),
                "customer_message.received",
                t,
                thread,
            ),
        ));
        let answer = match thread % 10 {
            0..=3 => None,
            4..=6 => Some(t + 50 * HOUR),
            _ => Some(t + HOUR),
        };
        if let Some(at) = answer {
            timed.push((
                at,
                line(
                    format!("rpl-{thread}"),
                    "customer_message.replied",
                    at,
                    thread,
                ),
            ));
        }
    }
    timed.sort_by_key(|(t, _)| *t);
    timed.into_iter().map(|(_, l)| l)
}

/// Which stream a run reads.
#[derive(Clone, Copy, Debug)]
enum Profile {
    Sample,
    ManyKeys,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Sample => "sample",
            Profile::ManyKeys => "many_keys",
        }
    }
}

impl Input {
    fn generate(events: usize, profile: Profile) -> Input {
        let started = Instant::now();
        let mut buf = Vec::with_capacity(events * 320);
        let lines: Box<dyn Iterator<Item = String>> = match profile {
            Profile::Sample => Box::new(generate(&SampleConfig::sized(events)).take(events)),
            Profile::ManyKeys => Box::new(many_keys(events)),
        };
        let mut count = 0;
        for line in lines {
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            count += 1;
        }
        let events = count;
        eprintln!(
            "{}: generated {events} lines ({:.1} MiB) in {:.2?}",
            profile.name(),
            buf.len() as f64 / (1 << 20) as f64,
            started.elapsed()
        );
        let rules = Arc::new(load_rules(None).expect("the shipped rules load"));
        Input {
            buf,
            events: events as u64,
            rules,
        }
    }
}

/// Calls `f` on each line, read the way the replay command reads.
fn for_each_line(mut input: &[u8], mut f: impl FnMut(&[u8])) {
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => f(line.strip_suffix(b"\n").unwrap_or(&line)),
            Err(e) => panic!("reading from memory cannot fail: {e}"),
        }
    }
}

/// Decodes every line into [`Envelope`]; returns how many decoded.
fn serde_envelope(buf: &[u8]) -> u64 {
    let mut ok = 0;
    for_each_line(buf, |line| {
        if let Ok(env) = serde_json::from_slice::<Envelope>(line) {
            black_box(&env);
            ok += 1;
        }
    });
    ok
}

/// Decodes every line with our decoder; returns how many were well-formed.
fn decode_only(buf: &[u8]) -> u64 {
    let mut ok = 0;
    for_each_line(buf, |line| {
        let decoded = decode(line);
        ok += u64::from(!matches!(decoded, Decoded::Dead(_)));
        black_box(&decoded);
    });
    ok
}

/// Replays every line into `engine`; returns the alert count.
fn replay_all(engine: &mut Engine, buf: &[u8]) -> u64 {
    let mut sinks = Sinks {
        alerts: std::io::sink(),
        dead_letters: None::<std::io::Sink>,
    };
    let summary = replay(engine, buf, &mut sinks, None).expect("replaying from memory cannot fail");
    summary.alerts()
}

fn bench_throughput(c: &mut Criterion, input: &Input, profile: Profile) {
    let mut group = c.benchmark_group(format!("throughput/{}", profile.name()));
    group.throughput(Throughput::Elements(input.events));
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("serde_envelope", |b| {
        b.iter(|| serde_envelope(black_box(&input.buf)))
    });
    group.bench_function("decode", |b| b.iter(|| decode_only(black_box(&input.buf))));
    group.bench_function("replay", |b| {
        b.iter_batched(
            || Engine::new(Arc::clone(&input.rules)),
            |mut engine| {
                black_box(replay_all(&mut engine, black_box(&input.buf)));
                engine // dropped outside the timed part
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Wall times of `reps` rounds, each round running every variant once in turn, so that
/// a slow spell of a shared machine falls on all of them alike.
fn interleaved<const N: usize>(reps: usize, mut variants: [&mut dyn FnMut(); N]) -> [Times; N] {
    let mut times: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::with_capacity(reps));
    for _ in 0..reps {
        for (variant, times) in variants.iter_mut().zip(&mut times) {
            let started = Instant::now();
            variant();
            times.push(started.elapsed());
        }
    }
    times.map(Times::new)
}

/// The times of one variant: median and best.
#[derive(Clone, Copy)]
struct Times {
    median: Duration,
    best: Duration,
}

impl Times {
    fn new(mut times: Vec<Duration>) -> Times {
        times.sort();
        Times {
            median: times[times.len() / 2],
            best: times[0],
        }
    }

    /// "median (best)" of `self / base`.
    fn ratio(self, base: Times) -> String {
        let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        format!(
            "{:.2} (best runs: {:.2})",
            r(self.median, base.median),
            r(self.best, base.best)
        )
    }
}

/// The goal's figure, measured in this process: replay time over the serde envelope decode time.
fn print_ratio(input: &Input, reps: usize, profile: Profile) {
    let mut engines: Vec<Engine> = (0..reps)
        .map(|_| Engine::new(Arc::clone(&input.rules)))
        .collect();
    let mut spent = Vec::new();
    let [serde, ours, replayed] = interleaved(
        reps,
        [
            &mut || {
                black_box(serde_envelope(&input.buf));
            },
            &mut || {
                black_box(decode_only(&input.buf));
            },
            &mut || {
                let mut engine = engines.pop().expect("one engine per repetition");
                black_box(replay_all(&mut engine, &input.buf));
                spent.push(engine); // dropped after the timing
            },
        ],
    );
    drop(spent);
    let rate = |t: Times| input.events as f64 / t.median.as_secs_f64();
    let mut probe = Engine::new(Arc::clone(&input.rules));
    let alerts = replay_all(&mut probe, &input.buf);
    println!(
        "{}: {} alerts per input event",
        profile.name(),
        alerts as f64 / input.events as f64
    );
    println!(
        "{}: median of {reps} interleaved runs over {} events: serde_envelope {:.0} events/s, decode {:.0} events/s, replay {:.0} events/s",
        profile.name(),
        input.events,
        rate(serde),
        rate(ours),
        rate(replayed)
    );
    println!(
        "{}: replay/serde time ratio: {} (goal <= 2.0)",
        profile.name(),
        replayed.ratio(serde)
    );
    println!(
        "{}: our decode/serde time ratio: {}",
        profile.name(),
        ours.ratio(serde)
    );
}

/// The whole-process serde baseline: decodes the file `path` names and prints how many
/// lines decoded.
fn serde_process(path: &str) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    let mut input = BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::with_capacity(4096);
    let mut ok = 0u64;
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                let record = line.strip_suffix(b"\n").unwrap_or(&line);
                if let Ok(env) = serde_json::from_slice::<Envelope>(record) {
                    black_box(&env);
                    ok += 1;
                }
            }
            Err(e) => panic!("cannot read {path}: {e}"),
        }
    }
    println!("{ok}");
}

/// The stream written to a temporary file, removed when dropped.
struct TempInput(PathBuf);

impl TempInput {
    fn write(input: &Input, profile: Profile) -> TempInput {
        let path = std::env::temp_dir().join(format!(
            "sla-timerd-replay-bench-{}-{}.jsonl",
            std::process::id(),
            profile.name()
        ));
        std::fs::write(&path, &input.buf)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        TempInput(path)
    }
}

impl Drop for TempInput {
    fn drop(&mut self) {
        if std::env::var_os("SLA_BENCH_KEEP").is_some() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Runs `command` to its end, its standard output to `/dev/null`; panics unless it
/// succeeds.
fn time_process(command: &mut Command) {
    let null = std::fs::File::create("/dev/null").expect("/dev/null opens");
    let output = command
        .stdout(null)
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The whole-process figures: serde baseline, replay and report on the same file.
fn print_process_ratios(input: &Input, reps: usize, profile: Profile) {
    let file = TempInput::write(input, profile);
    let binary = env!("CARGO_BIN_EXE_sla-timerd");
    let path: &Path = &file.0;
    let me = std::env::current_exe().expect("the bench knows its own path");
    let run = |command: &mut Command| {
        time_process(command);
    };
    let [serde, replay, report] = interleaved(
        reps,
        [
            &mut || run(Command::new(&me).env("SLA_BENCH_SERDE_FILE", path)),
            &mut || run(Command::new(binary).arg("replay").arg(path)),
            &mut || {
                run(Command::new(binary)
                    .args(["report", "--format", "json"])
                    .arg(path))
            },
        ],
    );
    let secs = |t: Times| t.median.as_secs_f64();
    println!(
        "{}: whole processes, median of {reps} interleaved runs over {} events: serde baseline {:.2} s, replay {:.2} s, report {:.2} s",
        profile.name(),
        input.events,
        secs(serde),
        secs(replay),
        secs(report)
    );
    println!(
        "{}: whole process replay/serde time ratio: {} (goal <= 2.0)",
        profile.name(),
        replay.ratio(serde)
    );
    println!(
        "{}: whole process report/replay time ratio: {} (goal <= 1.2)",
        profile.name(),
        report.ratio(replay)
    );
}

fn main() {
    if let Ok(path) = std::env::var("SLA_BENCH_SERDE_FILE") {
        return serde_process(&path);
    }
    let test_mode = std::env::args().any(|a| a == "--test");
    let events = std::env::var("SLA_BENCH_EVENTS")
        .ok()
        .map(|v| {
            v.replace('_', "")
                .parse()
                .expect("SLA_BENCH_EVENTS is a number of events")
        })
        .unwrap_or(if test_mode { 20_000 } else { 1_000_000 });
    let only = std::env::var("SLA_BENCH_PROFILE").ok();
    let only_ratios = std::env::var_os("SLA_BENCH_RATIOS_ONLY").is_some();
    let mut criterion = Criterion::default().configure_from_args();
    for profile in [Profile::Sample, Profile::ManyKeys] {
        if only.as_deref().is_some_and(|o| o != profile.name()) {
            continue;
        }
        let input = Input::generate(events, profile);
        if !only_ratios {
            bench_throughput(&mut criterion, &input, profile);
        }
        let reps = if test_mode { 1 } else { 5 };
        print_ratio(&input, reps, profile);
        print_process_ratios(&input, reps, profile);
    }
    criterion.final_summary();
}

/// The allocator the `sla-timerd` binary uses (see src/main.rs), so the replay measured
/// here is the one shipped.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
