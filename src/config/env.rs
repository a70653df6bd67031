//! Environment overrides: `SLA_TIMERD__SECTION__KEY=value`, laid over the file's table.
//!
//! # Ground rules
//!
//! * The name after `SLA_TIMERD__` is the path, `__` between parts, case-insensitive:
//!   `SLA_TIMERD__KAFKA__BOOTSTRAP_SERVERS` sets `kafka.bootstrap_servers`. The value is
//!   read as a TOML value when it parses as one (`true`, `42`, `["a"]`), else as a string.
//! * Under `SLA_TIMERD__KAFKA__PROPERTIES__` the rest of the name is one librdkafka
//!   property, lower-cased, and the value is always the string as written. A name with
//!   a dot is taken as it is (`SASL.PASSWORD`, for `env` and Kubernetes, which allow
//!   dots). A name without one reads each `_` as a `.` (`SASL_PASSWORD` is
//!   `sasl.password`), so that a shell can assign it: librdkafka's property names are
//!   dotted, and the only ones with an underscore that can be set as text, `log_level`
//!   and `enabled_events`, are kept as they are.
//! * Each override remembers its variable, so that an error in a value it set names the
//!   variable rather than the file. Two variables setting one place are refused.

use super::{ConfigError, Origin, ENV_PREFIX};

/// Settings whose value from the environment is the text as written, never read as TOML
/// (a token `12345` stays text).
const TEXT_SETTINGS: [&str; 1] = ["http.api_token"];

/// librdkafka's properties settable as text whose names hold `_` (its CONFIGURATION.md).
const UNDERSCORED_PROPERTIES: [&str; 2] = ["log_level", "enabled_events"];

/// One environment variable's setting. Its `Debug` leaves the value out: it may be a
/// secret.
#[derive(Clone)]
pub(super) struct Override {
    /// The variable, as named in the environment.
    pub var: String,
    /// Where it goes, as the table path (`["kafka", "properties", "sasl.password"]`).
    pub path: Vec<String>,
    /// The same place as errors spell it (`kafka.properties."sasl.password"`).
    pub place: String,
    pub value: toml::Value,
}

impl std::fmt::Debug for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Override")
            .field("var", &self.var)
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

impl Override {
    fn error(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: Origin::Environment(self.var.clone()),
            place: self.place.clone(),
            problem: problem.into(),
        }
    }

    /// Sets the value in `table`. A part of the path names the file's key of any case
    /// (variable names are upper case; a calendar may be called `NL`).
    pub fn apply(&self, table: &mut toml::Table) -> Result<(), ConfigError> {
        let (last, parents) = self
            .path
            .split_last()
            .expect("a path has at least one part");
        let existing = |t: &toml::Table, part: &str| {
            t.keys()
                .find(|k| k.eq_ignore_ascii_case(part))
                .cloned()
                .unwrap_or_else(|| part.to_string())
        };
        let mut here = table;
        for (depth, part) in parents.iter().enumerate() {
            let key = existing(here, part);
            let entry = here
                .entry(key)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            here = entry.as_table_mut().ok_or_else(|| {
                self.error(format!(
                    "cannot be set: `{}` is a value, not a section",
                    self.path[..=depth].join(".")
                ))
            })?;
        }
        let key = existing(here, last);
        here.insert(key, self.value.clone());
        Ok(())
    }

    /// Whether a problem found at `place` lies in what this override set.
    pub fn covers(&self, place: &str) -> bool {
        let within = |outer: &str, inner: &str| {
            inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        let (mine, theirs) = (self.place.to_ascii_lowercase(), place.to_ascii_lowercase());
        within(&mine, &theirs) || within(&theirs, &mine)
    }
}

/// The overrides among `env`, sorted by variable name.
pub(super) fn overrides(
    env_vars: impl Iterator<Item = (String, String)>,
) -> Result<Vec<Override>, ConfigError> {
    let mut found: Vec<Override> = Vec::new();
    let mut env: Vec<(String, String)> = Vec::new();
    for (name, value) in env_vars {
        if name.starts_with(ENV_PREFIX) {
            env.push((name, value));
        } else if let Some(fixed) = misspelt_prefix(&name) {
            return Err(ConfigError {
                origin: Origin::Environment(name),
                place: "environment".into(),
                problem: format!("looks like a setting but is not read: a setting's variable starts with {ENV_PREFIX}, two underscores after SLA_TIMERD; rename it {fixed}"),
            });
        }
    }
    env.sort();
    for (var, value) in env {
        let o = override_for(var, &value)?;
        if let Some(other) = found.iter().find(|f| f.path == o.path) {
            return Err(o.error(format!("is also set by {}; keep one", other.var)));
        }
        found.push(o);
    }
    Ok(found)
}

/// `SLA_TIMERD_KAFKA__WORKERS` (one underscore after the name, then a section and a key)
/// is a setting's variable misspelt: its right name. Other `SLA_TIMERD_` variables
/// (`SLA_TIMERD_LOG_FORMAT`) are not settings.
fn misspelt_prefix(name: &str) -> Option<String> {
    let rest = name.strip_prefix("SLA_TIMERD")?.trim_start_matches('_');
    (rest.contains("__") && !name.starts_with(ENV_PREFIX)).then(|| format!("{ENV_PREFIX}{rest}"))
}

fn override_for(var: String, value: &str) -> Result<Override, ConfigError> {
    let rest = &var[ENV_PREFIX.len()..];
    let mut path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    let is_property = path.len() > 2 && path[0] == "kafka" && path[1] == "properties";
    if is_property {
        let name = property_name(&path[2..].join("__"));
        path.truncate(2);
        let place = format!("kafka.properties.\"{name}\"");
        let ok = !name.is_empty()
            && name
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(property_byte));
        path.push(name);
        let o = Override {
            var,
            path,
            place,
            value: toml::Value::String(value.to_string()),
        };
        if !ok {
            return Err(o.error("is not a librdkafka property name; write e.g. SLA_TIMERD__KAFKA__PROPERTIES__SASL_PASSWORD"));
        }
        return Ok(o);
    }
    let place = path.join(".");
    let value = if TEXT_SETTINGS.contains(&place.as_str()) {
        toml::Value::String(value.to_string())
    } else {
        typed(value)
    };
    let o = Override {
        var,
        path,
        place,
        value,
    };
    if o.path.iter().any(String::is_empty) {
        return Err(o.error("is not a setting: parts are separated by exactly two underscores"));
    }
    Ok(o)
}

fn property_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
}

/// The property a name after `PROPERTIES__` stands for (see the ground rules).
fn property_name(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    if name.contains('.') || UNDERSCORED_PROPERTIES.contains(&name.as_str()) {
        name
    } else {
        name.replace('_', ".")
    }
}

/// A TOML value when the text is one (`true`, `42`, `["a", "b"]`), else a string.
pub(super) fn typed(text: &str) -> toml::Value {
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

    fn one(var: &str, value: &str) -> Result<Override, ConfigError> {
        overrides([(var.to_string(), value.to_string())].into_iter()).map(|mut v| v.remove(0))
    }

    #[test]
    fn values_are_typed_when_they_parse() {
        assert_eq!(typed("true"), toml::Value::Boolean(true));
        assert_eq!(typed("42"), toml::Value::Integer(42));
        assert_eq!(
            typed("broker:9092"),
            toml::Value::String("broker:9092".into())
        );
    }

    #[test]
    fn a_property_name_without_dots_reads_underscores_as_dots() {
        for (var, name) in [
            (
                "SLA_TIMERD__KAFKA__PROPERTIES__SECURITY_PROTOCOL",
                "security.protocol",
            ),
            (
                "SLA_TIMERD__KAFKA__PROPERTIES__SECURITY.PROTOCOL",
                "security.protocol",
            ),
            (
                "SLA_TIMERD__KAFKA__PROPERTIES__sasl_oauthbearer_client_secret",
                "sasl.oauthbearer.client.secret",
            ),
            ("SLA_TIMERD__KAFKA__PROPERTIES__LOG_LEVEL", "log_level"),
            (
                "SLA_TIMERD__KAFKA__PROPERTIES__ENABLED_EVENTS",
                "enabled_events",
            ),
            (
                "SLA_TIMERD__KAFKA__PROPERTIES__ssl.certificate.verify_cb",
                "ssl.certificate.verify_cb",
            ),
        ] {
            let o = one(var, "x").unwrap();
            assert_eq!(o.path, ["kafka", "properties", name], "{var}");
            assert_eq!(o.place, format!("kafka.properties.\"{name}\""));
        }
    }

    #[test]
    fn a_property_value_is_the_text_as_written() {
        for value in ["1.5", "true", "\"quoted\"", "[x]"] {
            let o = one("SLA_TIMERD__KAFKA__PROPERTIES__SASL_PASSWORD", value).unwrap();
            assert_eq!(o.value, toml::Value::String(value.into()));
        }
    }

    #[test]
    fn a_malformed_name_is_refused_naming_the_variable() {
        for var in [
            "SLA_TIMERD__KAFKA__PROPERTIES__SASL__MECHANISM",
            "SLA_TIMERD__KAFKA____WORKERS",
            "SLA_TIMERD__",
        ] {
            let e = one(var, "x").unwrap_err();
            assert_eq!(e.origin, Origin::Environment(var.into()), "{e}");
        }
    }

    #[test]
    fn two_variables_for_one_place_are_refused() {
        let env = [
            ("SLA_TIMERD__KAFKA__WORKERS", "1"),
            ("SLA_TIMERD__kafka__workers", "2"),
        ];
        let e = overrides(env.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap_err();
        assert!(
            e.to_string()
                .contains("is also set by SLA_TIMERD__KAFKA__WORKERS"),
            "{e}"
        );
    }

    #[test]
    fn an_override_covers_its_place_and_what_lies_within() {
        let o = one("SLA_TIMERD__KAFKA__TOPICS__ALERTS", "x").unwrap();
        assert!(o.covers("kafka.topics.alerts") && o.covers("kafka.topics") && o.covers("kafka"));
        assert!(!o.covers("kafka.topics.alerts_x") && !o.covers("kafka.workers"));
    }
}
