//! Configuration: a TOML file (or the embedded defaults), layered with environment
//! variables, validated into [`Settings`] at start-up.
//!
//! # Ground rules
//!
//! * Layering: the file (default: the embedded `config/default.toml`), then every
//!   environment variable named `SLA_TIMERD__SECTION__KEY` (double underscores separate
//!   the path, case-insensitive): `SLA_TIMERD__KAFKA__BOOTSTRAP_SERVERS=broker:9092`
//!   sets `kafka.bootstrap_servers`. A value is read as a TOML value when it parses as
//!   one (`true`, `42`, `["a"]`) and as a string otherwise. Keys of
//!   `kafka.properties` keep their dots: `SLA_TIMERD__KAFKA__PROPERTIES__SASL.PASSWORD`.
//! * Stage one is serde into raw structs with `deny_unknown_fields`, so a misspelt key
//!   is an error naming it; stage two validates across fields. Every problem is
//!   reported as `file: place: problem` before any record is read.
//! * Secrets (`kafka.properties` whose name contains `password`, `secret` or `key`)
//!   never reach a log line: [`KafkaSettings::redacted_properties`] masks them.

mod bootstrap;
mod rules;
mod service;

use std::path::Path;

use serde::Deserialize;

use crate::core::rules::RuleSet;
pub use service::{HttpSettings, KafkaSettings, Topics};

/// The shipped configuration, embedded at build time.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");
/// How the embedded defaults are named in messages.
pub const DEFAULT_CONFIG_NAME: &str = "<built-in config/default.toml>";
/// Prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "SLA_TIMERD__";

/// A configuration problem: which file, where in it, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {place}: {problem}")]
pub struct ConfigError {
    pub file: String,
    pub place: String,
    pub problem: String,
}

/// A problem at a place; the loader adds the file name.
type Problem = (String, String);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    engine: rules::RawEngine,
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
}

/// Loads the file (or the embedded defaults) layered with the process environment.
pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
    let (text, name) = read(path)?;
    parse(&text, &name, std::env::vars())
}

/// Loads only the rules, from a file or the embedded defaults, without the environment.
pub fn load_rules(path: Option<&Path>) -> Result<RuleSet, ConfigError> {
    let (text, name) = read(path)?;
    parse_rules(&text, &name)
}

/// Parses rules from text; `file` names it in errors.
pub fn parse_rules(text: &str, file: &str) -> Result<RuleSet, ConfigError> {
    parse(text, file, std::iter::empty()).map(|s| s.rules)
}

fn read(path: Option<&Path>) -> Result<(String, String), ConfigError> {
    let Some(p) = path else {
        return Ok((DEFAULT_CONFIG.to_string(), DEFAULT_CONFIG_NAME.to_string()));
    };
    let name = p.display().to_string();
    let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
        file: name.clone(),
        place: "file".into(),
        problem: format!("cannot be read ({e}); pass an existing TOML file to --config"),
    })?;
    Ok((text, name))
}

/// Parses text layered with `env` (name, value) pairs, and validates.
pub fn parse(
    text: &str,
    file: &str,
    env: impl Iterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let error = |(place, problem): Problem| ConfigError {
        file: file.to_string(),
        place,
        problem,
    };
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| error(("syntax".into(), one_line(&e))))?;
    for (name, value) in env {
        if let Some(path) = name.strip_prefix(ENV_PREFIX) {
            overlay(&mut table, path, &value)
                .map_err(|p| error((format!("{p} (from {name})"), "cannot be set".into())))?;
        }
    }
    let raw: RawConfig = toml::Value::Table(table)
        .try_into()
        .map_err(|e| error(("settings".into(), one_line(&e))))?;
    let rules = rules::compile(&raw.engine, &raw.rules, &raw.checks).map_err(error)?;
    let kafka = service::compile_kafka(&raw.kafka).map_err(error)?;
    let http = service::compile_http(&raw.http).map_err(error)?;
    Ok(Settings { rules, kafka, http })
}

fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().trim().replace('\n', " ")
}

/// Sets `a__b__c` (lower-cased, except below `kafka.properties`) in the table.
fn overlay(table: &mut toml::Table, path: &str, value: &str) -> Result<(), String> {
    let parts: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    let dotted = parts.join(".");
    let (last, parents) = parts.split_last().ok_or_else(|| dotted.clone())?;
    let mut here = table;
    for part in parents {
        let entry = here
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = entry.as_table_mut().ok_or_else(|| dotted.clone())?;
    }
    here.insert(last.clone(), env_value(value));
    Ok(())
}

/// A TOML value when the text is one (`true`, `42`, `["a", "b"]`), else a string.
fn env_value(text: &str) -> toml::Value {
    let wrapped = format!("v = {text}");
    match toml::from_str::<toml::Table>(&wrapped) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(text.to_string())),
        Err(_) => toml::Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let s = parse(
            DEFAULT_CONFIG,
            "d",
            env(&[
                (
                    "SLA_TIMERD__KAFKA__BOOTSTRAP_SERVERS",
                    "broker-1:9092,broker-2:9092",
                ),
                ("SLA_TIMERD__KAFKA__TOPICS__ALERTS", "alerts-nl"),
                ("SLA_TIMERD__HTTP__LISTEN", "127.0.0.1:0"),
                ("SLA_TIMERD__KAFKA__PROPERTIES__sasl.password", "hunter2"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.kafka.bootstrap_servers, "broker-1:9092,broker-2:9092");
        assert_eq!(s.kafka.topics.alerts, "alerts-nl");
        assert_eq!(s.http.listen.port(), 0);
        assert_eq!(
            s.kafka.properties.get("sasl.password").map(String::as_str),
            Some("hunter2")
        );
        let shown = format!("{:?}", s.kafka.redacted_properties());
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn a_misspelt_environment_setting_is_named() {
        let e = parse(
            DEFAULT_CONFIG,
            "d",
            env(&[("SLA_TIMERD__KAFKA__BOOTSTRAP_SERVER", "x:1")]),
        )
        .unwrap_err();
        assert!(e.problem.contains("bootstrap_server"), "{e}");
    }

    #[test]
    fn environment_values_are_typed_when_they_parse() {
        assert_eq!(env_value("true"), toml::Value::Boolean(true));
        assert_eq!(env_value("42"), toml::Value::Integer(42));
        assert_eq!(
            env_value("broker:9092"),
            toml::Value::String("broker:9092".into())
        );
    }
}
