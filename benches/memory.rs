//! Memory per open SLA instance: the peak RSS of a replay that leaves `N` instances open,
//! above the process baseline, divided by `N`. Goals: at most 160 bytes; at most 128 with
//! overrides in use.
//!
//! # What is measured
//!
//! * **The stream:** `N` customer messages on distinct threads, none answered, over one
//!   hour ([`sla_timerd::sample::unanswered_messages`]), so every `customer_reply`
//!   instance stays open (first warning 24h ahead) and no alert fires. Each message
//!   carries an order id, a seller id and a marketplace, as real ones do.
//! * **Peak RSS** of the release binary, `sla-timerd replay FILE`, as the kernel reports
//!   it for the child (`wait4`, `ru_maxrss`), once for the stream and once for a file of
//!   one such message (the baseline: code, default rules, buffers). The replay streams
//!   its input, so the file's size does not count.
//! * **With overrides in use:** the same messages on the US marketplace, replayed with the
//!   shipped Amazon pack (`config/amazon-marketplaces.toml`) and its US business-hours
//!   override of `customer_reply` switched on, so every instance opens with an override.
//! * **The engine's own accounting**, in this process: the same stream replayed into an
//!   `Engine`, then `PartitionState::heap_bytes()` per open instance, and the heap this
//!   process's allocator actually holds (live and peak), counted by a wrapping global
//!   allocator.
//!
//! `SLA_MEMORY_INSTANCES` sets `N` (default 1,000,000; 10,000 under `--test`). The binary
//! comes from `CARGO_BIN_EXE_sla-timerd`, which `cargo bench` builds first with the bench
//! profile (the release settings); `scripts/bench-memory.sh` runs it all.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use sla_timerd::config::load_rules;
use sla_timerd::core::engine::{Engine, PartitionId};
use sla_timerd::core::time::Millis;
use sla_timerd::replay::{replay, Sinks};
use sla_timerd::sample::unanswered_messages;

/// The system allocator, counting the bytes it holds for this process.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(live, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            let live = LIVE.fetch_add(new_size, Relaxed) + new_size;
            PEAK.fetch_max(live, Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// 2026-11-02T08:00:00Z.
const START: Millis = Millis(1_793_606_400_000);

fn write_stream(path: &Path, n: usize) {
    let mut out = BufWriter::new(File::create(path).expect("create the stream file"));
    for line in unanswered_messages(n, START) {
        out.write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .expect("write the stream file");
    }
    out.flush().expect("write the stream file");
}

/// Peak RSS of `sla-timerd replay FILE` in bytes, and its summary line.
#[allow(clippy::zombie_processes)] // reaped by `wait_with_max_rss` (wait4), not `Child::wait`
fn peak_rss_of_replay(binary: &str, input: &Path, config: Option<&Path>) -> (u64, String) {
    let mut command = Command::new(binary);
    command.arg("replay").arg(input);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    let (status, max_rss_kib) = wait_with_max_rss(child.id());
    let mut summary = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut summary)
        .expect("read the summary");
    assert_eq!(
        status, 0,
        "sla-timerd replay failed (wait status {status}): {summary}"
    );
    (max_rss_kib * 1024, summary.trim().replace('\n', "; "))
}

/// `wait4(2)` on Linux: the wait status and the child's `ru_maxrss` (KiB). Declared
/// here rather than taking a dependency for one call; `struct rusage` is two `timeval`s
/// then fourteen `long`s on 64-bit Linux, and `ru_maxrss` is the first long.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn wait_with_max_rss(pid: u32) -> (i32, u64) {
    extern "C" {
        fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut [i64; 18]) -> i32;
    }
    let (mut status, mut rusage) = (0i32, [0i64; 18]);
    // SAFETY: both pointers are to live locals of the sizes the kernel writes.
    let reaped = unsafe { wait4(pid as i32, &mut status, 0, &mut rusage) };
    assert_eq!(
        reaped,
        pid as i32,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    (status, rusage[4] as u64)
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn wait_with_max_rss(_pid: u32) -> (i32, u64) {
    panic!("the memory bench reads the child's peak RSS with wait4, on 64-bit Linux only")
}

/// Replays `input` into a fresh engine in this process and prints its accounting.
fn engine_accounting(input: &Path, n: usize) {
    let rules = Arc::new(load_rules(None).expect("the shipped rules load"));
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let mut engine = Engine::new(rules);
    let reader =
        BufReader::with_capacity(1 << 16, File::open(input).expect("open the stream file"));
    let mut sinks = Sinks {
        alerts: std::io::sink(),
        dead_letters: None::<std::io::Sink>,
    };
    let summary = replay(&mut engine, reader, &mut sinks, None).expect("replay the stream file");
    let (live, peak) = (LIVE.load(Relaxed) - before, PEAK.load(Relaxed) - before);
    let state = engine
        .partition(PartitionId::REPLAY)
        .expect("the replay partition exists");
    let open = state.open_instances();
    assert_eq!(
        open, n as u64,
        "every message should leave its instance open: {summary}"
    );
    assert_eq!(
        summary.alerts(),
        0,
        "no alert should fire within the hour: {summary}"
    );
    let heap = state.heap_bytes();
    println!(
        "engine accounting: open instances: {open}, heap_bytes: {heap}, per open instance: {}",
        heap / open as usize
    );
    let parts: Vec<String> = state
        .heap_bytes_by_part()
        .iter()
        .filter(|(_, bytes)| *bytes > 0)
        .map(|(part, bytes)| format!("{part} {:.1}", *bytes as f64 / open as f64))
        .collect();
    println!("   per open instance, by part: {}", parts.join(", "));
    println!(
        "allocator in process: live {:.1} MiB ({} bytes per open instance), peak {:.1} MiB ({} bytes per open instance)",
        mib(live as u64),
        live / n,
        mib(peak as u64),
        peak / n
    );
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "sla-timerd-memory-{}-{name}.jsonl",
        std::process::id()
    ))
}

fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let n: usize = std::env::var("SLA_MEMORY_INSTANCES")
        .ok()
        .map(|v| {
            v.replace('_', "")
                .parse()
                .expect("SLA_MEMORY_INSTANCES is a number of instances")
        })
        .unwrap_or(if test_mode { 10_000 } else { 1_000_000 });
    assert!(n > 0, "SLA_MEMORY_INSTANCES must be at least 1");
    let binary = env!("CARGO_BIN_EXE_sla-timerd");
    let (stream, one) = (temp_path("stream"), temp_path("baseline"));
    write_stream(&stream, n);
    write_stream(&one, 1);

    let (baseline, base_summary) = peak_rss_of_replay(binary, &one, None);
    let (peak, summary) = peak_rss_of_replay(binary, &stream, None);
    println!("binary: {binary}");
    println!("baseline replay: {base_summary}");
    println!("measured replay: {summary}");
    let per_instance = peak.saturating_sub(baseline) as f64 / n as f64;
    println!(
        "open instances: {n}, peak RSS: {:.1} MiB, baseline: {:.1} MiB, bytes per open instance: {per_instance:.0} (goal <= 160)",
        mib(peak),
        mib(baseline)
    );

    // With overrides in use: the same messages, all on the US marketplace, under the
    // shipped Amazon pack with its US business-hours override of `customer_reply`
    // switched on, so every instance opens with an override (its own deadline and leads).
    let config = temp_path("overrides.toml");
    std::fs::write(&config, overrides_config()).expect("write the override config");
    let (us_stream, us_one) = (temp_path("us-stream"), temp_path("us-baseline"));
    to_us(&stream, &us_stream);
    to_us(&one, &us_one);
    let (baseline, _) = peak_rss_of_replay(binary, &us_one, Some(&config));
    let (peak, summary) = peak_rss_of_replay(binary, &us_stream, Some(&config));
    println!("with overrides: {summary}");
    println!(
        "open instances with an override (US, business hours): {n}, peak RSS: {:.1} MiB, baseline: {:.1} MiB, bytes per open instance: {:.0} (goal <= 128)",
        mib(peak),
        mib(baseline),
        peak.saturating_sub(baseline) as f64 / n as f64
    );
    // Last: a child's peak RSS counts what this process held when it forked.
    engine_accounting(&stream, n);
    for path in [&stream, &one, &us_stream, &us_one, &config] {
        let _ = std::fs::remove_file(path);
    }
}

/// The shipped Amazon pack with its (commented-out) US override of `customer_reply` on.
fn overrides_config() -> String {
    let pack = include_str!("../config/amazon-marketplaces.toml");
    let commented = "# [[rules.overrides]]\n\
        # when = [{ field = \"marketplace\", equals = \"US\" }]\n\
        # deadline = { business_hours = \"8h\", calendar = \"US\" }\n\
        # warn_before = [\"2h\"]\n";
    assert!(
        pack.contains(commented),
        "config/amazon-marketplaces.toml no longer holds the commented US override of customer_reply"
    );
    pack.replace(commented, &commented.replace("# ", ""))
}

/// A copy of a stream with every marketplace set to US.
fn to_us(from: &Path, to: &Path) {
    let lines = BufReader::new(File::open(from).expect("open the stream file")).lines();
    let mut out = BufWriter::new(File::create(to).expect("create the stream file"));
    for line in lines {
        let line = line.expect("read the stream file");
        let at = line
            .find(r#""marketplace":""#)
            .expect("every message has a marketplace")
            + 15;
        let end = at + line[at..].find('"').expect("a closing quote");
        writeln!(out, "{}US{}", &line[..at], &line[end..]).expect("write the stream file");
    }
    out.flush().expect("write the stream file");
}
