//! Configuration: a TOML file (or the embedded defaults), layered with environment
//! variables, validated into [`Settings`] at start-up.
//!
//! # Ground rules
//!
//! * One loader, [`load`], for every command that reads settings (`run`, `replay`,
//!   `check-config`): the file (default: the embedded `config/default.toml`), then every
//!   environment variable named `SLA_TIMERD__SECTION__KEY` (`env.rs` has the rules for
//!   the names, `kafka.properties` included, and how values are read).
//! * Stage one is serde into raw structs with `deny_unknown_fields`, so a misspelt key
//!   is an error naming it; stage two validates across fields. Every problem is
//!   reported before any record is read as `origin: place: problem`, where the origin
//!   is the file, or `environment VARIABLE` when the value came from one.
//! * Secrets (`kafka.properties` whose name holds `password`, `secret`, `jaas`, `token`
//!   or `key`, and `http.api_token`) are [`Secret`]s, which print as `<redacted>`, and
//!   no error quotes one; text from librdkafka goes
//!   through [`Settings::redact`] (see `secret.rs`). Errors never quote the file's text.

mod bootstrap;
mod calendars;
mod deadlines;
mod describe;
mod describe_business;
mod env;
mod rules;
mod secret;
mod service;

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::core::rules::RuleSet;
use env::Override;
pub use secret::{is_secret, Properties, PropertyValue, Redactor, Secret, REDACTED};
pub use service::{HttpSettings, KafkaSettings, Topics};

/// The shipped configuration, embedded at build time.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");
/// How the embedded defaults are named in messages.
pub const DEFAULT_CONFIG_NAME: &str = "<built-in config/default.toml>";
/// Prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "SLA_TIMERD__";

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The file, by name (or [`DEFAULT_CONFIG_NAME`]).
    File(String),
    /// An environment variable, by name.
    Environment(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(name) => f.write_str(name),
            Origin::Environment(var) => write!(f, "environment {var}"),
        }
    }
}

/// A configuration problem: where it came from, where in the settings, and what to do.
/// Always permanent: the same settings fail the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {place}: {problem}")]
pub struct ConfigError {
    pub origin: Origin,
    pub place: String,
    pub problem: String,
}

/// A problem at a place; the loader adds the origin.
type Problem = (String, String);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    engine: rules::RawEngine,
    #[serde(default)]
    calendars: std::collections::BTreeMap<String, calendars::RawCalendar>,
    #[serde(default)]
    rules: Vec<rules::RawRule>,
    #[serde(default)]
    checks: Vec<rules::RawCheck>,
    #[serde(default)]
    kafka: service::RawKafka,
    #[serde(default)]
    http: service::RawHttp,
}

/// Everything the program needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub rules: RuleSet,
    pub kafka: KafkaSettings,
    pub http: HttpSettings,
    /// The file read (or [`DEFAULT_CONFIG_NAME`]).
    pub file: String,
    /// The environment variables that overrode it, by name, sorted.
    pub environment: Vec<String>,
}

impl Settings {
    /// `text` with every secret value of these settings written as `<redacted>`: for
    /// messages from librdkafka, which may echo a property's value.
    pub fn redact(&self, text: &str) -> String {
        self.kafka.redactor().redact(text)
    }
}

/// Loads the file (or the embedded defaults) layered with the process environment.
pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
    let (text, name) = read(path)?;
    // `std::env::vars` panics on a name or value that is not UTF-8; such a variable is
    // skipped when it is not ours, and read lossily when it is (its value then fails).
    let vars = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())));
    parse(&text, &name, vars)
}

/// Loads only the rules, from a file or the embedded defaults, without the environment:
/// for tests and benches. The commands use [`load`].
pub fn load_rules(path: Option<&Path>) -> Result<RuleSet, ConfigError> {
    let (text, name) = read(path)?;
    parse_rules(&text, &name)
}

/// Parses rules from text, without the environment; `file` names it in errors.
pub fn parse_rules(text: &str, file: &str) -> Result<RuleSet, ConfigError> {
    parse(text, file, std::iter::empty()).map(|s| s.rules)
}

fn read(path: Option<&Path>) -> Result<(String, String), ConfigError> {
    let Some(p) = path else {
        return Ok((DEFAULT_CONFIG.to_string(), DEFAULT_CONFIG_NAME.to_string()));
    };
    let name = p.display().to_string();
    let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
        origin: Origin::File(name.clone()),
        place: "file".into(),
        problem: format!("cannot be read ({e}); pass an existing TOML file to --config"),
    })?;
    Ok((text, name))
}

/// Parses text layered with the environment `vars` (name, value), and validates.
pub fn parse(
    text: &str,
    file: &str,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let in_file = |(place, problem): Problem| ConfigError {
        origin: Origin::File(file.to_string()),
        place,
        problem,
    };
    let overrides = env::overrides(vars)?;
    let mut table = file_table(text).map_err(in_file)?;
    for o in &overrides {
        o.apply(&mut table)?;
    }
    let raw = match deserialize(table) {
        Ok(raw) => raw,
        Err(problem) => {
            // The file's own line when reading the file alone fails the same way (an
            // override may have mended the file's mistake and made this one).
            let placed = stage_one_in_file(text).filter(|(_, why)| *why == problem.1);
            return Err(blame_stage_one(text, &overrides, &problem)
                .unwrap_or_else(|| in_file(placed.unwrap_or(problem))));
        }
    };
    let blame = |(place, problem): Problem| match overrides.iter().find(|o| o.covers(&place)) {
        Some(o) => ConfigError {
            origin: Origin::Environment(o.var.clone()),
            place,
            problem,
        },
        None => in_file((place, problem)),
    };
    let calendars = calendars::compile(&raw.calendars).map_err(blame)?;
    let rules = rules::compile(&raw.engine, &calendars, &raw.rules, &raw.checks).map_err(blame)?;
    let kafka = service::compile_kafka(&raw.kafka).map_err(blame)?;
    let http = service::compile_http(&raw.http).map_err(blame)?;
    if raw.rules.is_empty() && raw.checks.is_empty() {
        return Err(blame((
            "rules".into(),
            "the configuration has no [[rules]] and no [[checks]], so nothing would ever alert; a file given with --config replaces the shipped defaults whole: start from config/default.toml".into(),
        )));
    }
    let environment = overrides.into_iter().map(|o| o.var).collect();
    Ok(Settings {
        rules,
        kafka,
        http,
        file: file.to_string(),
        environment,
    })
}

/// The file as a table. A syntax error gives toml's message and the line, never the
/// line's text (it may hold a secret).
fn file_table(text: &str) -> Result<toml::Table, Problem> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        let place = line.map_or_else(|| "syntax".to_string(), |l| format!("line {l}"));
        (place, one_line(&e.message()))
    })
}

/// Stage one: serde into the raw structs. The place is toml's path when it gives one.
fn deserialize(table: toml::Table) -> Result<RawConfig, Problem> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            let message = plain(&one_line(&e.message()));
            match message.rsplit_once(" in `") {
                Some((problem, place)) if place.ends_with('`') => {
                    (place.trim_end_matches('`').to_string(), problem.to_string())
                }
                _ => ("settings".to_string(), message),
            }
        })
}

/// Stage one's problem in the file, read straight from its text so that toml knows the
/// line (a table built from it has no lines, and names no place inside an array).
fn stage_one_in_file(text: &str) -> Option<Problem> {
    let e = toml::from_str::<RawConfig>(text).err()?;
    let line = line_of(text, e.span()?.start);
    Some((format!("line {line}"), plain(&one_line(&e.message()))))
}

/// serde's message in a person's words: the offending value left out (errors never quote
/// the file, which may hold a secret) and Rust's type names said plainly.
fn plain(message: &str) -> String {
    let mut text = message.to_string();
    for lead in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(lead) {
            if let Some((what, expected)) = rest.rsplit_once(", expected ") {
                let kind = what.split([' ', '`', '"']).next().unwrap_or(what);
                let kind = if what.starts_with("floating point") {
                    "floating point number"
                } else {
                    kind
                };
                text = format!("{lead}{kind}, expected {expected}");
            }
        }
    }
    for (rust, words) in [
        ("i64", "a whole number"),
        ("u64", "a whole number"),
        ("i32", "a whole number"),
        ("u32", "a whole number"),
        ("u16", "a whole number"),
        ("u8", "a whole number"),
        ("usize", "a whole number"),
        ("f64", "a number"),
    ] {
        if let Some(head) = text.strip_suffix(&format!("expected {rust}")) {
            text = format!("{head}expected {words}");
        }
    }
    text
}

/// Who is to blame for stage one's `problem` (found with the overrides applied); `None`
/// blames the file. When the file alone passes, the first override (in name order) with
/// which it fails. When the file alone fails differently (an override mended its mistake
/// and another made this one), the first override after which the problem appears.
fn blame_stage_one(text: &str, overrides: &[Override], problem: &Problem) -> Option<ConfigError> {
    let mut table = file_table(text).ok()?;
    let alone = deserialize(table.clone()).err();
    if alone.as_ref().is_some_and(|(_, why)| *why == problem.1) {
        return None;
    }
    for o in overrides {
        o.apply(&mut table).ok()?;
        match deserialize(table.clone()) {
            Err((_, why)) if alone.is_none() || why == problem.1 => {
                return Some(ConfigError {
                    origin: Origin::Environment(o.var.clone()),
                    place: o.place.clone(),
                    problem: why,
                })
            }
            _ => {}
        }
    }
    None
}

/// The line (from 1) that holds byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let before = text.get(..offset).unwrap_or(text);
    before.bytes().filter(|&b| b == b'\n').count() + 1
}

fn one_line(e: &dyn fmt::Display) -> String {
    e.to_string().trim().replace('\n', " ")
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
