//! Pending-deadline structures side by side: our `TimerWheel<u32>`, tokio-util's
//! `DelayQueue<u32>` (on a paused clock) and a `BinaryHeap<Reverse<(i64, u32)>>` with lazy
//! deletion (a cancel sets a tombstone in a `Vec<bool>`, a pop skips tombstones).
//!
//! For N = 1M and 10M timers with deadlines spread uniformly over 48 hours (in ms):
//!
//! * `insert/N`: N inserts into an empty structure whose clock reads `T0`.
//! * `cancel/N`: N/10 cancels of distinct pending timers picked at random.
//! * `fire/N`:   the clock advances from `T0` a minute at a time through the first 12 of
//!   the 48 hours, and every timer that comes due is popped: about N/4 pops, while the
//!   other timers stay pending, so the structure stays near N.
//!
//! Setup (generating the deadlines, filling the structure for `cancel` and `fire`,
//! dropping it) is outside the timed part: each criterion iteration builds a fresh
//! structure and times only the operations (`iter_custom`). Criterion's throughput is in
//! operations; at the end a table gives the mean ns per operation over every timed
//! iteration.
//!
//! Bytes per timer are measured first, each structure in a child process of its own so
//! that memory freed by one cannot flatter the next: "computed" is the structure's own
//! count (wheel: `heap_bytes()`; heap: capacity * 16 + tombstones), "RSS delta" the growth
//! of the process's resident set (`/proc/self/statm`, 4 KiB pages) while it is filled.
//!
//! ```text
//! cargo bench --bench wheel                  # 1M and 10M, about 5 minutes on 2 cores
//! cargo bench --bench wheel -- --test        # CI smoke: every bench once, 1M only
//! WHEEL_BENCH_FULL=1 cargo bench --bench wheel -- --test    # the smoke test at 10M too
//! ```

// A bench times itself: reading the clock is its point (clippy.toml keeps it out of src/).
#![allow(clippy::disallowed_methods)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::future::poll_fn;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use sla_timerd::core::wheel::{TimerKey, TimerWheel};
use tokio::runtime::Runtime;
use tokio_util::time::{delay_queue, DelayQueue};

/// The clock at the start of every bench, ms since the epoch (2026-09-21T...Z).
const T0: i64 = 1_790_000_000_000;
/// Deadlines fall in `[T0, T0 + HORIZON_MS)`: 48 hours.
const HORIZON_MS: i64 = 48 * 3_600_000;
/// `fire` moves the clock a minute at a time...
const STEP_MS: i64 = 60_000;
/// ...through the first 12 hours.
const FIRE_MS: i64 = 12 * 3_600_000;
/// Set in a child process to measure the bytes of one structure: `"<name> <n>"`.
const CHILD_ENV: &str = "WHEEL_BENCH_MEMORY_CHILD";

/// The three contenders behind one interface, so each bench is written once.
trait Timers: Sized {
    const NAME: &'static str;
    type Key: Copy;
    /// An empty structure whose clock reads `T0`.
    fn empty() -> Self;
    /// Runs `f` where the structure can be used (a `DelayQueue` needs its runtime).
    fn enter<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        f(self)
    }
    fn insert(&mut self, when: i64, value: u32) -> Self::Key;
    fn cancel(&mut self, key: Self::Key);
    /// Moves the clock from `T0` to `T0 + FIRE_MS`, `STEP_MS` at a time, popping every
    /// timer that comes due; returns how many fired.
    fn fire_all(&mut self) -> usize;
    /// Heap bytes held, if the structure can tell.
    fn heap_bytes(&self) -> Option<usize>;
}

impl Timers for TimerWheel<u32> {
    const NAME: &'static str = "timer_wheel";
    type Key = TimerKey;

    fn empty() -> Self {
        let mut wheel = TimerWheel::new();
        assert_eq!(wheel.pop_before(T0), None, "hands the wheel the clock");
        wheel
    }

    fn insert(&mut self, when: i64, value: u32) -> TimerKey {
        TimerWheel::insert(self, when, value)
    }

    fn cancel(&mut self, key: TimerKey) {
        black_box(TimerWheel::cancel(self, key));
    }

    fn fire_all(&mut self) -> usize {
        let mut fired = 0;
        for step in 1..=FIRE_MS / STEP_MS {
            let now = T0 + step * STEP_MS;
            while let Some(timer) = self.pop_before(now) {
                black_box(timer);
                fired += 1;
            }
        }
        fired
    }

    fn heap_bytes(&self) -> Option<usize> {
        Some(TimerWheel::heap_bytes(self))
    }
}

/// A binary heap of (when, sequence number) with tombstones for cancelled timers.
struct LazyHeap {
    heap: BinaryHeap<Reverse<(i64, u32)>>,
    dead: Vec<bool>,
}

impl Timers for LazyHeap {
    const NAME: &'static str = "binary_heap";
    type Key = u32;

    fn empty() -> Self {
        LazyHeap {
            heap: BinaryHeap::new(),
            dead: Vec::new(),
        }
    }

    /// The sequence number is the key and stands for the value.
    fn insert(&mut self, when: i64, _value: u32) -> u32 {
        let seq = self.dead.len() as u32;
        self.dead.push(false);
        self.heap.push(Reverse((when, seq)));
        seq
    }

    fn cancel(&mut self, key: u32) {
        self.dead[key as usize] = true;
    }

    fn fire_all(&mut self) -> usize {
        let mut fired = 0;
        for step in 1..=FIRE_MS / STEP_MS {
            let now = T0 + step * STEP_MS;
            while let Some(&Reverse((when, seq))) = self.heap.peek() {
                if when >= now {
                    break;
                }
                self.heap.pop();
                fired += usize::from(!self.dead[seq as usize]);
            }
        }
        fired
    }

    fn heap_bytes(&self) -> Option<usize> {
        Some(self.heap.capacity() * size_of::<Reverse<(i64, u32)>>() + self.dead.capacity())
    }
}

/// tokio-util's `DelayQueue` on a current-thread runtime whose clock is paused at start.
struct Dq {
    rt: Arc<Runtime>,
    queue: DelayQueue<u32>,
    start: tokio::time::Instant,
}

impl Timers for Dq {
    const NAME: &'static str = "delay_queue";
    type Key = delay_queue::Key;

    fn empty() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build();
        let rt = Arc::new(rt.expect("a paused current-thread runtime"));
        let _guard = rt.enter();
        Dq {
            queue: DelayQueue::new(),
            start: tokio::time::Instant::now(),
            rt: rt.clone(),
        }
    }

    fn enter<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let rt = self.rt.clone();
        let _guard = rt.enter();
        f(self)
    }

    fn insert(&mut self, when: i64, value: u32) -> delay_queue::Key {
        self.queue.insert_at(
            value,
            self.start + Duration::from_millis((when - T0) as u64),
        )
    }

    fn cancel(&mut self, key: delay_queue::Key) {
        black_box(self.queue.remove(&key));
    }

    fn fire_all(&mut self) -> usize {
        let queue = &mut self.queue;
        self.rt.block_on(async {
            let mut fired = 0;
            for _ in 1..=FIRE_MS / STEP_MS {
                tokio::time::advance(Duration::from_millis(STEP_MS as u64)).await;
                // Unconstrained: each of the queue's sleeps spends tokio's cooperative budget
                // (128 polls), which would otherwise cut the drain short.
                fired +=
                    tokio::task::unconstrained(poll_fn(|cx| Poll::Ready(drain_expired(queue, cx))))
                        .await;
            }
            fired
        })
    }

    fn heap_bytes(&self) -> Option<usize> {
        None
    }
}

fn drain_expired(queue: &mut DelayQueue<u32>, cx: &mut Context<'_>) -> usize {
    let mut fired = 0;
    while let Poll::Ready(Some(expired)) = queue.poll_expired(cx) {
        black_box(expired);
        fired += 1;
    }
    fired
}

// ---- inputs ----

/// splitmix64: a fixed, dependency-free stream of random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// The deadlines (uniform over 48 h), the indexes of the timers to cancel (a tenth of
/// them, distinct, in random order) and how many timers `fire` pops.
struct Inputs {
    deadlines: Vec<i64>,
    cancels: Vec<u32>,
    /// Timers due before the end of the fire window, and at or before it (a
    /// `DelayQueue` fires at its deadline, the others strictly after).
    due: (usize, usize),
}

fn inputs(n: usize) -> Inputs {
    let mut rng = Rng(0x5EED ^ n as u64);
    let deadlines: Vec<i64> = (0..n)
        .map(|_| T0 + rng.below(HORIZON_MS as u64) as i64)
        .collect();
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    order.truncate(n / 10);
    let end = T0 + FIRE_MS;
    let due = (
        deadlines.iter().filter(|&&d| d < end).count(),
        deadlines.iter().filter(|&&d| d <= end).count(),
    );
    Inputs {
        deadlines,
        cancels: order,
        due,
    }
}

fn filled<S: Timers>(deadlines: &[i64]) -> (S, Vec<S::Key>) {
    let mut timers = S::empty();
    let keys = timers.enter(|t| {
        deadlines
            .iter()
            .enumerate()
            .map(|(i, &when)| t.insert(when, i as u32))
            .collect()
    });
    (timers, keys)
}

// ---- timed parts ----

fn time_insert<S: Timers>(input: &Inputs) -> Duration {
    let (mut timers, mut keys) = (S::empty(), Vec::with_capacity(input.deadlines.len()));
    timers.enter(|t| {
        let start = Instant::now();
        for (i, &when) in input.deadlines.iter().enumerate() {
            keys.push(t.insert(when, i as u32));
        }
        start.elapsed()
    })
}

fn time_cancel<S: Timers>(input: &Inputs) -> Duration {
    let (mut timers, keys) = filled::<S>(&input.deadlines);
    timers.enter(|t| {
        let start = Instant::now();
        for &i in &input.cancels {
            t.cancel(keys[i as usize]);
        }
        start.elapsed()
    })
}

fn time_fire<S: Timers>(input: &Inputs) -> Duration {
    let (mut timers, _keys) = filled::<S>(&input.deadlines);
    let start = Instant::now();
    let fired = timers.fire_all();
    let took = start.elapsed();
    let (low, high) = input.due;
    assert!(
        (low..=high).contains(&fired),
        "{} fired {fired} timers, not {low}..={high}",
        S::NAME
    );
    took
}

// ---- criterion ----

const STRUCTURES: [&str; 3] = ["timer_wheel", "binary_heap", "delay_queue"];
const OPS: [&str; 3] = ["insert", "cancel", "fire"];

/// Timed seconds and operations per (N, index in `STRUCTURES`, index in `OPS`).
type Speed = BTreeMap<(usize, usize, usize), (f64, u64)>;

/// What the timed iterations measured, for the table at the end.
static SPEED: Mutex<Speed> = Mutex::new(BTreeMap::new());

type Timed = fn(&Inputs) -> Duration;

/// One operation of the bench: its index in `OPS`, N, and operations per iteration.
struct Op {
    op: usize,
    n: usize,
    count: u64,
}

fn bench_op<S: Timers>(
    group: &mut BenchmarkGroup<WallTime>,
    op: &Op,
    structure: usize,
    timed: Timed,
    input: &Inputs,
) {
    group.bench_function(S::NAME, |b| {
        b.iter_custom(|iters| {
            let total: Duration = (0..iters).map(|_| timed(input)).sum();
            let mut speed = SPEED.lock().unwrap();
            let cell = speed.entry((op.n, structure, op.op)).or_default();
            *cell = (cell.0 + total.as_secs_f64(), cell.1 + iters * op.count);
            total
        })
    });
}

fn bench_size(c: &mut Criterion, n: usize) {
    let input = inputs(n);
    let counts = [n, input.cancels.len(), input.due.0];
    let timed: [[Timed; 3]; 3] = [
        [
            time_insert::<TimerWheel<u32>>,
            time_insert::<LazyHeap>,
            time_insert::<Dq>,
        ],
        [
            time_cancel::<TimerWheel<u32>>,
            time_cancel::<LazyHeap>,
            time_cancel::<Dq>,
        ],
        [
            time_fire::<TimerWheel<u32>>,
            time_fire::<LazyHeap>,
            time_fire::<Dq>,
        ],
    ];
    for (i, [wheel, heap, dq]) in timed.into_iter().enumerate() {
        let op = Op {
            op: i,
            n,
            count: counts[i] as u64,
        };
        let mut group = c.benchmark_group(format!("{}/{}", OPS[i], label(n)));
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .throughput(Throughput::Elements(op.count));
        let measure = if n > 1_000_000 { 5 } else { 3 };
        group
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(measure));
        bench_op::<TimerWheel<u32>>(&mut group, &op, 0, wheel, &input);
        bench_op::<LazyHeap>(&mut group, &op, 1, heap, &input);
        bench_op::<Dq>(&mut group, &op, 2, dq, &input);
        group.finish();
    }
}

fn print_speed_table() {
    println!("\nns per operation (mean over every timed iteration, warm-up included)");
    println!(
        "{:<8} {:<12} {:>10} {:>10} {:>10}",
        "N", "structure", OPS[0], OPS[1], OPS[2]
    );
    let speed = SPEED.lock().unwrap();
    let mut rows: Vec<(usize, usize)> = speed
        .keys()
        .map(|&(n, structure, _)| (n, structure))
        .collect();
    rows.dedup();
    for (n, structure) in rows {
        let cell = |op| match speed.get(&(n, structure, op)) {
            Some(&(secs, ops)) => format!("{:.1}", secs * 1e9 / ops as f64),
            None => "-".to_string(),
        };
        println!(
            "{:<8} {:<12} {:>10} {:>10} {:>10}",
            label(n),
            STRUCTURES[structure],
            cell(0),
            cell(1),
            cell(2)
        );
    }
}

// ---- bytes per timer ----

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm resident field");
    pages * 4096
}

/// In the child: fills one structure and prints "<computed bytes or -> <RSS delta>".
fn memory_child(spec: &str) {
    let (name, n) = spec.split_once(' ').expect("\"<name> <n>\"");
    let deadlines = inputs(n.parse().expect("a count")).deadlines;
    let (computed, delta) = match name {
        "timer_wheel" => measure::<TimerWheel<u32>>(&deadlines),
        "binary_heap" => measure::<LazyHeap>(&deadlines),
        _ => measure::<Dq>(&deadlines),
    };
    println!(
        "{} {delta}",
        computed.map_or("-".to_string(), |c| c.to_string())
    );
}

fn measure<S: Timers>(deadlines: &[i64]) -> (Option<usize>, usize) {
    let mut timers = S::empty();
    let before = resident_bytes();
    timers.enter(|t| {
        deadlines
            .iter()
            .enumerate()
            .for_each(|(i, &when)| _ = t.insert(when, i as u32))
    });
    let after = resident_bytes();
    (timers.heap_bytes(), after - before)
}

fn print_bytes_table(sizes: &[usize]) {
    println!("bytes per timer (each structure filled in a child process of its own)");
    println!(
        "{:<8} {:<12} {:>10} {:>10}",
        "N", "structure", "computed", "RSS delta"
    );
    let exe = std::env::current_exe().expect("the bench's own path");
    for &n in sizes {
        for name in STRUCTURES {
            let child = std::process::Command::new(&exe)
                .env(CHILD_ENV, format!("{name} {n}"))
                .output();
            let text = String::from_utf8_lossy(&child.expect("the child runs").stdout).into_owned();
            let per_timer = |field: Option<&str>| match field.and_then(|f| f.parse::<f64>().ok()) {
                Some(bytes) => format!("{:.1}", bytes / n as f64),
                None => "-".to_string(),
            };
            let mut fields = text.split_whitespace();
            println!(
                "{:<8} {:<12} {:>10} {:>10}",
                label(n),
                name,
                per_timer(fields.next()),
                per_timer(fields.next())
            );
        }
    }
}

fn label(n: usize) -> String {
    format!("{}M", n / 1_000_000)
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return memory_child(&spec);
    }
    let test_mode = std::env::args().any(|arg| arg == "--test");
    let full = !test_mode || std::env::var("WHEEL_BENCH_FULL").is_ok_and(|v| v == "1");
    let sizes: &[usize] = if full {
        &[1_000_000, 10_000_000]
    } else {
        &[1_000_000]
    };
    print_bytes_table(sizes);
    let mut criterion = Criterion::default().configure_from_args();
    for &n in sizes {
        bench_size(&mut criterion, n);
    }
    criterion.final_summary();
    print_speed_table();
}
