//! Secrets in `kafka.properties`: typed so that they cannot be printed.
//!
//! # Ground rules
//!
//! * A property is secret when its name holds `password`, `secret`, `jaas`, `token` or
//!   `key` (contract 9.3), whatever the case. Its value is a [`Secret`], whose `Debug`
//!   and `Display` print `<redacted>`; so do those of [`PropertyValue`] and
//!   [`Properties`], so a log line or a message built from the settings cannot hold one.
//! * The value itself is reached in two ways only: [`Secret::expose`], and
//!   `String::from(&PropertyValue)`, the door through which properties are handed to
//!   librdkafka (`ClientConfig::set`). [`Properties::get`] and [`Properties::get_mut`]
//!   give plain values only.
//! * librdkafka's own messages may echo a property's value (rust-rdkafka's
//!   `KafkaError::ClientConfig` prints the name and value it refused). Text that came
//!   from librdkafka goes through [`Redactor::redact`] before it is shown.

use std::collections::btree_map::{self, BTreeMap};
use std::fmt;

/// What a secret shows instead of itself.
pub const REDACTED: &str = "<redacted>";

/// Parts of a property name that make it secret (contract 9.3).
const SECRET_WORDS: [&str; 5] = ["password", "secret", "jaas", "token", "key"];

/// Whether the librdkafka property `name` holds a secret.
pub fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| name.contains(w))
}

/// A value that never shows itself: `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, for the client that needs it. Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The value of one `kafka.properties` entry.
#[derive(Clone, PartialEq, Eq)]
pub enum PropertyValue {
    Plain(String),
    Secret(Secret),
}

impl PropertyValue {
    /// A value for the property `name`: secret when the name says so.
    pub fn for_property(name: &str, value: String) -> PropertyValue {
        if is_secret(name) {
            PropertyValue::Secret(Secret::new(value))
        } else {
            PropertyValue::Plain(value)
        }
    }

    pub fn is_secret(&self) -> bool {
        matches!(self, PropertyValue::Secret(_))
    }

    /// The value, for the client that needs it. Never format it.
    pub fn expose(&self) -> &str {
        match self {
            PropertyValue::Plain(s) => s,
            PropertyValue::Secret(s) => s.expose(),
        }
    }
}

impl fmt::Debug for PropertyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropertyValue::Plain(s) => fmt::Debug::fmt(s, f),
            PropertyValue::Secret(s) => fmt::Debug::fmt(s, f),
        }
    }
}

impl fmt::Display for PropertyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropertyValue::Plain(s) => f.write_str(s),
            PropertyValue::Secret(s) => fmt::Display::fmt(s, f),
        }
    }
}

impl PartialEq<str> for PropertyValue {
    fn eq(&self, other: &str) -> bool {
        self.expose() == other
    }
}

/// Hands the value to librdkafka: `ClientConfig::set(name, &value)`.
impl From<&PropertyValue> for String {
    fn from(value: &PropertyValue) -> String {
        value.expose().to_string()
    }
}

/// The librdkafka properties passed through, by name.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Properties(BTreeMap<String, PropertyValue>);

impl Properties {
    /// Adds `name = value`, secret when the name says so.
    pub fn insert(&mut self, name: String, value: String) {
        let value = PropertyValue::for_property(&name, value);
        self.0.insert(name, value);
    }

    /// The value of `name`, plain or secret.
    pub fn value(&self, name: &str) -> Option<&PropertyValue> {
        self.0.get(name)
    }

    /// A plain value (`group.instance.id`, `group.protocol`, ...). Secrets are not
    /// handed out as text: this is `None` for them (see [`Properties::value`]).
    pub fn get(&self, name: &str) -> Option<&String> {
        match self.0.get(name)? {
            PropertyValue::Plain(s) => Some(s),
            PropertyValue::Secret(_) => None,
        }
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A plain value, to change it in place (a worker suffixes `group.instance.id`).
    /// Secrets are not changed in place: this is `None` for them.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut String> {
        match self.0.get_mut(name)? {
            PropertyValue::Plain(s) => Some(s),
            PropertyValue::Secret(_) => None,
        }
    }

    pub fn iter(&self) -> btree_map::Iter<'_, String, PropertyValue> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What hides these properties' secret values in text (messages from librdkafka).
    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.0.values().filter_map(|v| match v {
            PropertyValue::Secret(s) => Some(s.clone()),
            PropertyValue::Plain(_) => None,
        }))
    }
}

impl<'a> IntoIterator for &'a Properties {
    type Item = (&'a String, &'a PropertyValue);
    type IntoIter = btree_map::Iter<'a, String, PropertyValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

/// Removes secret values from text; cheap to clone and to keep after the settings moved.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// The secrets, longest first, so that a secret holding another is hidden whole.
    secrets: Vec<Secret>,
}

impl Redactor {
    fn new(secrets: impl Iterator<Item = Secret>) -> Redactor {
        let mut secrets: Vec<Secret> = secrets.filter(|s| !s.expose().trim().is_empty()).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
        Redactor { secrets }
    }

    /// `text` with every secret value written as `<redacted>`: the value as given, trimmed,
    /// and as `{:?}` escapes it (a value with quotes in a `Debug`-formatted error).
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            let value = secret.expose();
            let escaped = value.escape_debug().to_string();
            for form in [value, value.trim(), escaped.as_str()] {
                if !form.is_empty() && out.contains(form) {
                    out = out.replace(form, REDACTED);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_property_is_secret_by_its_name() {
        for name in [
            "sasl.password",
            "ssl.key.password",
            "sasl.jaas.config",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.token.endpoint.url",
            "ssl.key.pem",
            "SASL.PASSWORD",
        ] {
            assert!(is_secret(name), "{name}");
        }
        for name in [
            "security.protocol",
            "sasl.mechanism",
            "sasl.username",
            "group.instance.id",
        ] {
            assert!(!is_secret(name), "{name}");
        }
    }

    #[test]
    fn a_secret_never_formats_its_value() {
        let mut p = Properties::default();
        p.insert("sasl.password".into(), "hunter2".into());
        p.insert("sasl.username".into(), "sla".into());
        let value = p.value("sasl.password").expect("inserted");
        for shown in [
            format!("{value}"),
            format!("{value:?}"),
            format!("{p:?}"),
            format!("{p:#?}"),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        assert!(format!("{p:?}").contains("\"sla\""));
        assert_eq!(
            String::from(value),
            "hunter2",
            "librdkafka is handed the value"
        );
        assert!(p.get_mut("sasl.password").is_none() && p.get_mut("sasl.username").is_some());
        assert!(
            p.get("sasl.password").is_none() && p.get("sasl.username").is_some_and(|u| u == "sla")
        );
    }

    #[test]
    fn the_redactor_hides_every_form_of_a_secret() {
        let mut p = Properties::default();
        let jaas = r#"PlainLoginModule required username="u" password="hunter2";"#;
        p.insert("sasl.jaas.config".into(), jaas.into());
        p.insert("sasl.password".into(), " padded ".into());
        p.insert("ssl.key.password".into(), String::new());
        let r = p.redactor();
        assert_eq!(
            r.redact(&format!("refused: sasl.jaas.config {jaas}")),
            "refused: sasl.jaas.config <redacted>"
        );
        assert_eq!(
            r.redact(&format!("{:?}", format!("x {jaas}"))),
            "\"x <redacted>\""
        );
        assert_eq!(r.redact("value [padded]"), "value [<redacted>]");
        assert_eq!(r.redact("nothing secret"), "nothing secret");
    }
}
