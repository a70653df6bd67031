//! The `sla-timerd` binary: parse the command line, set up logging, run, exit.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;

use sla_timerd::cli::{Cli, Command, ReplayArgs, ReportArgs, ReportFormat};
use sla_timerd::clock::{Clock as _, SystemClock};
use sla_timerd::config::{self, Settings};
use sla_timerd::core::engine::Engine;
use sla_timerd::replay::{replay, Sinks};
use sla_timerd::report;
use sla_timerd::service;
use sla_timerd::telemetry;

/// jemalloc, for Rust and for librdkafka's C code alike (its `malloc` replaces the C
/// library's in this process): librdkafka frees on one thread what it allocated on
/// another for every record, which glibc's arenas serialise with a lock. Measured with
/// `scripts/bench-daemon.sh`: see the README's performance notes.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main` (its `malloc_conf` global; `MALLOC_CONF` in
/// the environment still applies on top): a background thread purges freed pages on
/// jemalloc's decay schedule even while the process idles. Without it, pages freed
/// after a burst (a catch-up, a restore) stay resident until later allocations happen
/// to purge them: a daemon holding 1M open instances measured 193 to 223 bytes each
/// above its idle baseline, and 130 with it (`scripts/bench-daemon.sh`, part 3).
/// (`malloc_conf` where jemalloc's symbols are unprefixed, on Linux; `_rjem_malloc_conf`
/// elsewhere.)
#[allow(non_upper_case_globals)]
#[cfg_attr(target_os = "linux", export_name = "malloc_conf")]
#[cfg_attr(not(target_os = "linux"), export_name = "_rjem_malloc_conf")]
pub static malloc_conf: JemallocConf = JemallocConf(c"background_thread:true".as_ptr());

/// A `const char *` that C reads.
#[repr(transparent)]
pub struct JemallocConf(*const std::ffi::c_char);

// SAFETY: it points to a static NUL-terminated string that nothing ever writes.
unsafe impl Sync for JemallocConf {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Replay(_) | Command::Report(_)) {
        "warn"
    } else {
        "info"
    };
    telemetry::init(cli.log_format, default_level);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of standard output went away (`| head`): it has what it wanted.
        Err(e) if e.downcast_ref::<StdoutClosed>().is_some() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sla-timerd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Standard output was closed by its reader.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
struct StdoutClosed;

/// A failed write to standard output: [`StdoutClosed`] when its reader went away, else
/// the error, saying where it was writing.
fn stdout_error(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        anyhow::Error::new(e).context("cannot write to standard output")
    }
}

/// Writes `text` to standard output.
fn print_out(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Replay(args) => run_replay(args),
        Command::Report(args) => run_report(args),
        Command::Run { config } => run_service(config.as_deref()),
        Command::Demo(args) => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(sla_timerd::demo::run(args))
        }
        Command::Deadlines(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let out = runtime.block_on(sla_timerd::deadlines::run(&args, SystemClock.now()))?;
            print_out(&out)
        }
        Command::CheckConfig { config } => {
            print_out(&config::load(config.as_deref())?.describe().to_string())
        }
    }
}

fn run_service(config: Option<&Path>) -> Result<()> {
    tracing::info!(
        "{} {} starting",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION")
    );
    let settings = config::load(config)?;
    // librdkafka's messages may quote a property's value, secrets included.
    let redactor = settings.kafka.redactor();
    serve(settings).map_err(|e| anyhow::anyhow!(redactor.redact(&format!("{e:#}"))))
}

fn serve(settings: Settings) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let mut shutdown = service::shutdown_on_signals();
        let service = tokio::select! {
            built = service::Service::build(settings, Arc::new(SystemClock)) => built?,
            Ok(_) = shutdown.wait_for(|&stop| stop) => {
                tracing::info!("stopped during start-up");
                return Ok(());
            }
        };
        service.run(shutdown).await
    });
    // A start-up stopped by a signal may leave librdkafka's blocking call running on its
    // thread (it gives up by itself within its timeout); the process does not wait.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

fn run_replay(args: ReplayArgs) -> Result<()> {
    let rules = Arc::new(config::load(args.config.as_deref())?.rules);
    let input = open_input(args.input.as_deref())?;
    let dead_letters = match &args.dead_letter {
        Some(p) => {
            anyhow::ensure!(
                !is_input(p, args.input.as_deref()),
                "--dead-letter {} is the input file itself; writing it would erase the input: name another file",
                p.display()
            );
            if let Some(config) = args.config.as_deref() {
                anyhow::ensure!(
                    !same_file(config, p),
                    "--dead-letter {} is the --config file; writing it would erase the settings: name another file",
                    p.display()
                );
            }
            Some(BufWriter::new(Watched::new(File::create(p).with_context(
                || format!("cannot create the dead-letter file {}", p.display()),
            )?)))
        }
        None => None,
    };
    let mut sinks = Sinks {
        alerts: BufWriter::with_capacity(1 << 16, Watched::new(io::stdout().lock())),
        dead_letters,
    };
    let mut engine = Engine::new(rules);
    let summary = match replay(&mut engine, input, &mut sinks, args.until) {
        Ok(summary) => summary,
        Err(e) => {
            let dead_letters_failed = sinks
                .dead_letters
                .as_ref()
                .is_some_and(|d| d.get_ref().failed.is_some());
            return Err(match sinks.alerts.get_ref().failed {
                Some(io::ErrorKind::BrokenPipe) => {
                    if let Some(p) = &args.dead_letter {
                        eprintln!(
                            "replay stopped early: standard output was closed; {} holds the dead letters of the records read before",
                            p.display()
                        );
                    }
                    StdoutClosed.into()
                }
                Some(_) => stdout_error(e),
                None if dead_letters_failed => anyhow::Error::new(e).context(format!(
                    "cannot write the dead-letter file {}",
                    args.dead_letter
                        .as_deref()
                        .unwrap_or(Path::new(""))
                        .display()
                )),
                None => anyhow::Error::new(e)
                    .context(format!("cannot read {}", input_name(args.input.as_deref()))),
            });
        }
    };
    sinks.alerts.flush().map_err(stdout_error)?;
    eprintln!("{summary}");
    if summary.alert_ids_suppressed > 0 {
        eprintln!(
            "alert ids suppressed as already emitted: {}",
            summary.alert_ids_suppressed
        );
    }
    Ok(())
}

fn run_report(args: ReportArgs) -> Result<()> {
    use std::io::IsTerminal;
    let rules = Arc::new(config::load(args.config.as_deref())?.rules);
    let (end, end_flag) = match (args.to, args.until) {
        (Some(to), _) => (Some(to), "--to"),
        (None, until) => (until, "--until"),
    };
    if let (Some(from), Some(end)) = (args.from, end) {
        anyhow::ensure!(
            from < end,
            "--from {from} is not before {end_flag} {end}: the window [--from, --to) would be empty{}; give --from the earlier instant",
            if args.to.is_none() { " (--to defaults to --until)" } else { "" }
        );
    }
    let size = args
        .input
        .as_deref()
        .filter(|p| *p != Path::new("-"))
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len());
    let input = open_input(args.input.as_deref())?;
    let options = report::Options {
        from: args.from,
        to: args.to,
        until: args.until,
        by: args.by.0,
    };
    let mut engine = Engine::new(rules);
    let progress = |p: report::Progress| match size {
        _ if p.done => {
            if p.dead_lettered > 0 {
                eprintln!(
                    "report: {} records read, {} of them left out as not well-formed events (`sla-timerd replay --dead-letter FILE` lists them with their reasons)",
                    p.records, p.dead_lettered
                );
            }
        }
        Some(total) if total > 0 => eprintln!(
            "report: {} records read, {}% of the input",
            p.records,
            p.bytes * 100 / total
        ),
        _ => eprintln!("report: {} records read", p.records),
    };
    let r = report::report(&mut engine, input, &options, progress)
        .with_context(|| format!("report of {} failed", input_name(args.input.as_deref())))?;
    let to_terminal = args.output.is_none() && io::stdout().is_terminal();
    let format = args.format.unwrap_or(if to_terminal {
        ReportFormat::Table
    } else {
        ReportFormat::Json
    });
    let text = match format {
        ReportFormat::Table => report::render::table(&r),
        ReportFormat::Json => report::render::json(&r),
        ReportFormat::Csv => report::render::csv(&r),
        ReportFormat::Html => report::html::page(&r),
    };
    match &args.output {
        Some(p) => std::fs::write(p, text)
            .with_context(|| format!("cannot write the report to {}", p.display()))?,
        None => print_out(&text)?,
    }
    Ok(())
}

/// How messages name the input.
fn input_name(path: Option<&Path>) -> String {
    match path {
        Some(p) if p != Path::new("-") => p.display().to_string(),
        _ => "standard input".into(),
    }
}

/// True if `path` names the regular file the input is read from: the input file, or
/// the file standard input was redirected from (`< events.jsonl`).
fn is_input(path: &Path, input: Option<&Path>) -> bool {
    match input {
        Some(input) if input != Path::new("-") => same_file(input, path),
        _ => stdin_metadata().is_some_and(|stdin| {
            std::fs::metadata(path).is_ok_and(|m| same_regular_file(&stdin, &m))
        }),
    }
}

/// True if both paths name one existing regular file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => same_regular_file(&a, &b),
        _ => false,
    }
}

#[cfg(unix)]
fn same_regular_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.is_file() && b.is_file() && a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_regular_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

/// What standard input is, when the platform says.
fn stdin_metadata() -> Option<std::fs::Metadata> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
        File::from(fd).metadata().ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// An output that remembers how a write to it failed, so that replay's error can say
/// which output it was (or that standard output's reader went away).
struct Watched<W> {
    out: W,
    failed: Option<io::ErrorKind>,
}

impl<W: Write> Watched<W> {
    fn new(out: W) -> Self {
        Watched { out, failed: None }
    }

    fn note<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        match &result {
            // Tried again by the writer above.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.failed.get_or_insert(e.kind());
            }
            Ok(_) => {}
        }
        result
    }
}

impl<W: Write> Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.out.write(buf);
        self.note(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.out.flush();
        self.note(result)
    }
}

fn open_input(path: Option<&Path>) -> Result<BufReader<Box<dyn Read + Send>>> {
    let reader: Box<dyn Read + Send> = match path {
        None => Box::new(io::stdin()),
        Some(p) if p == Path::new("-") => Box::new(io::stdin()),
        Some(p) => {
            let file = File::open(p)
                .with_context(|| format!("cannot read the input file {}", p.display()))?;
            anyhow::ensure!(
                !file.metadata().is_ok_and(|m| m.is_dir()),
                "the input {} is a directory; pass a JSON Lines file, or - for standard input",
                p.display()
            );
            Box::new(file)
        }
    };
    Ok(BufReader::with_capacity(1 << 16, reader))
}
