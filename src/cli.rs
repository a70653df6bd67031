//! The command line: what each command does, its options and their defaults.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::core::time::Millis;
use crate::telemetry::LogFormat;

/// sla-timerd keeps marketplace sellers inside their service-level deadlines.
///
/// It reads order, customer-message and return events (CloudEvents JSON), keeps a
/// deadline per open obligation (reply within 48h, ship by the ship-by date, ...), and
/// emits alerts: warnings as a deadline nears, a breach when it lapses, a resolution
/// when an obligation that alerted is met (on time or late), and policy violations.
///
/// Every command that reads settings (run, replay, report, check-config) reads the --config file
/// (default: the shipped one) layered with SLA_TIMERD__SECTION__KEY environment
/// variables, and checks them all before it starts.
#[derive(Debug, Parser)]
#[command(name = "sla-timerd", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log line format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true, env = "SLA_TIMERD_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a JSON Lines file of events and print the alerts they cause.
    ///
    /// Event times are the clock: before each event is applied, every warning or breach
    /// point strictly before the greatest event time seen so far fires, so an event at
    /// exactly a deadline meets it. At the end of the input, points at or before
    /// --until fire. Alerts go to standard output as JSON lines in the order emitted; a
    /// summary goes to standard error. Exit status 0 once the input was read to the end,
    /// whatever it contained.
    Replay(ReplayArgs),

    /// Report how the seller did over a history: SLA fates and marketplace metrics.
    ///
    /// Reads the events exactly as replay does (same rules, timing, duplicates and bad
    /// input), then reports the state at the end E (--until, default the greatest event
    /// time): per group (--by) and rule, the instances opened in the window and the fates
    /// of those due in it (met, late, overdue, pending), and Amazon's seller performance
    /// metrics (late shipment, pre-fulfillment cancellation, valid tracking, on-time
    /// delivery, contact response within 24h, return response) against their targets.
    /// The window is [--from, --to), by default the 30 days before E.
    Report(ReportArgs),

    /// Run the live daemon: consume the input topics, fire alerts on time, produce them.
    ///
    /// Reads the three input topics in one consumer group, keeps each partition's
    /// deadlines, and produces alerts keyed by their key to the alert topic, dead letters
    /// to the dead-letter topic. A partition's points fire on event time while it lags and
    /// on the wall clock once it is caught up. Offsets are committed only after the alerts
    /// they caused are acknowledged. Settings come from --config (default: the shipped
    /// file) and SLA_TIMERD__SECTION__KEY environment variables. SIGTERM or SIGINT stop
    /// it gracefully. Metrics are served on http.listen (/metrics, /healthz, /readyz).
    Run {
        /// Settings file (TOML); without it, the shipped defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },

    /// Run the live path on an in-process mock Kafka cluster, with nothing to install.
    ///
    /// Starts librdkafka's mock cluster (not a real broker), creates the topics, feeds a
    /// realistic sample stream of orders, messages and returns on a clock running --speed
    /// times faster than real time, runs the daemon against it and prints each alert as
    /// it fires. Metrics are served on --listen.
    Demo(crate::demo::DemoArgs),

    /// Print the open deadlines a running daemon holds, from its query API.
    ///
    /// Asks GET /v1/deadlines on --url with the bearer token (--token, or the
    /// SLA_TIMERD__HTTP__API_TOKEN variable the daemon reads too), with the filters
    /// given, and prints an aligned table sorted by time left, or the API's JSON with
    /// --json. Exit status 1 with the API's error when it refuses.
    Deadlines(crate::deadlines::DeadlinesArgs),

    /// Check the settings and print what they define, secrets redacted.
    ///
    /// Reads --config (default: the shipped file) and the SLA_TIMERD__ environment
    /// variables as run does, and prints the rules (their deadlines, warnings and closing
    /// events), the checks, and the kafka and http settings. Exit status 1 with the
    /// setting to fix, and the variable when it came from one, if anything is wrong.
    CheckConfig {
        /// Settings file (TOML); without it, the shipped defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Settings file (TOML). Without it, the shipped defaults (config/default.toml).
    /// SLA_TIMERD__ environment variables apply as for run, and are checked too.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Fire the points at or before this RFC 3339 instant at the end of the input
    /// (default: the greatest event time read).
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub until: Option<Millis>,

    /// Write records that could not be decoded here, one JSON object per line with the
    /// line number, the reason and the original text (default: count them only).
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,

    /// Events as JSON Lines, one CloudEvent per line; `-` or absent reads standard input.
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
}

/// How `report` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned tables for reading in a terminal (the default when writing to one).
    Table,
    /// One JSON object in the contract's shape (the default otherwise).
    Json,
    /// One row per group and metric.
    Csv,
    /// One self-contained HTML page with tables and a daily chart per metric.
    Html,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Settings file (TOML). Without it, the shipped defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Start of the window, inclusive (default: 30 days before --to).
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub from: Option<Millis>,

    /// End of the window, exclusive (default: the end E).
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub to: Option<Millis>,

    /// The end E at which fates are judged (default: the greatest event time read).
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub until: Option<Millis>,

    /// Group by these fields of the opening or counted event, comma-separated.
    #[arg(long, value_name = "FIELDS", default_value = "seller_id,marketplace", value_parser = parse_by)]
    pub by: GroupBy,

    /// Output format (default: table on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,

    /// Write the report here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Events as JSON Lines; `-` or absent reads standard input.
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
}

/// The fields of `--by`, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupBy(pub Vec<crate::report::GroupField>);

fn parse_by(text: &str) -> Result<GroupBy, String> {
    let mut fields = Vec::new();
    for name in text.split(',') {
        let f = crate::report::GroupField::parse(name).ok_or_else(|| {
            format!(
                "`{}` cannot group a report; use seller_id and/or marketplace",
                name.trim()
            )
        })?;
        if fields.contains(&f) {
            return Err(format!("`{}` is listed twice", name.trim()));
        }
        fields.push(f);
    }
    Ok(GroupBy(fields))
}

fn parse_instant(text: &str) -> Result<Millis, String> {
    Millis::parse_rfc3339(text).map_err(|e| e.0)
}
