//! The `[kafka]` and `[http]` sections: where the daemon reads, writes and listens.
//!
//! Defaults are the contract's topic names and a broker on localhost, so a daemon started
//! with no file at all does the expected thing. `kafka.properties` passes librdkafka
//! settings through untouched (security, SASL, TLS, tuning); the few that the daemon's
//! guarantees depend on (group id, offset storage, idempotence, partitioner) are owned by
//! the daemon and refused there with a pointer to the setting to use instead.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;

use super::rules::span;
use super::secret::{Properties, Redactor, Secret, REDACTED};
use super::Problem;
use crate::core::time::Span;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKafka {
    #[serde(default = "default_bootstrap")]
    bootstrap_servers: String,
    #[serde(default = "default_group")]
    group_id: String,
    #[serde(default = "default_client_id")]
    client_id: String,
    #[serde(default)]
    topics: RawTopics,
    #[serde(default = "default_skew")]
    max_clock_skew: String,
    #[serde(default = "default_guarantee")]
    guarantee: String,
    /// Default: 100ms under exactly once, 5s under at least once.
    #[serde(default)]
    commit_interval: Option<String>,
    #[serde(default = "default_shutdown_timeout")]
    shutdown_timeout: String,
    /// No longer a setting; refused with the way to say it now.
    #[serde(default)]
    max_in_flight: Option<serde::de::IgnoredAny>,
    #[serde(default = "default_workers")]
    workers: toml::Value,
    #[serde(default)]
    properties: BTreeMap<String, toml::Value>,
}

impl Default for RawKafka {
    fn default() -> Self {
        toml::from_str("").expect("every kafka setting has a default")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopics {
    #[serde(default = "t_customer_message")]
    customer_message: String,
    #[serde(default = "t_return_request")]
    return_request: String,
    #[serde(default = "t_shipment")]
    shipment: String,
    #[serde(default = "t_alerts")]
    alerts: String,
    #[serde(default = "t_dead_letter")]
    dead_letter: String,
}

impl Default for RawTopics {
    fn default() -> Self {
        toml::from_str("").expect("every topic has a default")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default = "default_liveness_timeout")]
    liveness_timeout: String,
    /// Taken as any value and checked by hand, so that no message quotes it.
    #[serde(default)]
    api_token: Option<toml::Value>,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: default_listen(),
            liveness_timeout: default_liveness_timeout(),
            api_token: None,
        }
    }
}

fn default_liveness_timeout() -> String {
    "60s".into()
}

fn default_bootstrap() -> String {
    "localhost:9092".into()
}
fn default_group() -> String {
    "sla-timerd".into()
}
fn default_client_id() -> String {
    "sla-timerd".into()
}
fn default_skew() -> String {
    "5m".into()
}
fn default_guarantee() -> String {
    "exactly_once".into()
}
fn default_shutdown_timeout() -> String {
    "30s".into()
}
fn default_workers() -> toml::Value {
    toml::Value::Integer(1)
}
fn default_listen() -> String {
    "0.0.0.0:9464".into()
}
fn t_customer_message() -> String {
    "customer-message".into()
}
fn t_return_request() -> String {
    "return-request".into()
}
fn t_shipment() -> String {
    "shipment".into()
}
fn t_alerts() -> String {
    "sla-alerts".into()
}
fn t_dead_letter() -> String {
    "sla-dead-letter".into()
}

/// Topic names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub customer_message: String,
    pub return_request: String,
    pub shipment: String,
    pub alerts: String,
    pub dead_letter: String,
}

impl Topics {
    /// The three input topics, in a fixed order (their index is the partition id's topic).
    pub fn inputs(&self) -> [&str; 3] {
        [&self.customer_message, &self.return_request, &self.shipment]
    }
}

/// Validated Kafka settings.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `host:port` entries, checked, joined with `,`.
    pub bootstrap_servers: String,
    pub group_id: String,
    pub client_id: String,
    pub topics: Topics,
    /// How far ahead of the wall clock an event time may be before it is dead-lettered.
    pub max_clock_skew: Span,
    /// How alerts are delivered: in Kafka transactions, or at least once.
    pub guarantee: crate::worker::Guarantee,
    /// How often work is committed (also on shutdown).
    pub commit_interval: Span,
    /// How long a graceful shutdown may take before the daemon gives up and exits.
    pub shutdown_timeout: Span,
    /// Consumers in this process, each a member of the group with its own engine and
    /// producer (like Kafka Streams' `num.stream.threads`).
    pub workers: usize,
    /// librdkafka properties passed through, e.g. `security.protocol`; secret ones
    /// (`sasl.password`, ...) hold a [`Secret`](super::Secret) that never prints.
    pub properties: Properties,
}

/// librdkafka properties the daemon sets itself, and the setting to use instead.
const OWNED: &[(&str, &str)] = &[
    ("bootstrap.servers", "kafka.bootstrap_servers"),
    ("group.id", "kafka.group_id"),
    ("client.id", "kafka.client_id"),
    (
        "enable.auto.commit",
        "nothing: offsets are committed after alerts are acknowledged",
    ),
    (
        "enable.auto.offset.store",
        "nothing: offsets are stored after alerts are acknowledged",
    ),
    (
        "enable.idempotence",
        "nothing: the producer is always idempotent",
    ),
    (
        "transactional.id",
        "nothing: each worker has its own, from kafka.group_id and kafka.client_id",
    ),
    (
        "isolation.level",
        "nothing: the daemon reads read_committed",
    ),
    (
        "partitioner",
        "nothing: murmur2_random places keys where Java clients do",
    ),
];

impl KafkaSettings {
    /// The pass-through properties with secret values masked, for logs.
    pub fn redacted_properties(&self) -> BTreeMap<&str, &str> {
        self.properties
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if v.is_secret() { REDACTED } else { v.expose() },
                )
            })
            .collect()
    }

    /// What hides this configuration's secrets in text from librdkafka.
    pub fn redactor(&self) -> Redactor {
        self.properties.redactor()
    }
}

/// Validated HTTP settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub listen: SocketAddr,
    /// `/healthz` answers 503 once a worker's loop has not come round for this long.
    pub liveness_timeout: Span,
    /// The bearer token of the query API (`/v1/*`); without one those routes answer 404.
    pub api_token: Option<Secret>,
}

pub(super) fn compile_kafka(raw: &RawKafka) -> Result<KafkaSettings, Problem> {
    let bootstrap_servers = super::bootstrap::bootstrap_servers(&raw.bootstrap_servers)?;
    non_empty(
        &raw.group_id,
        "kafka.group_id",
        "a consumer group name such as \"sla-timerd\"",
    )?;
    let t = &raw.topics;
    let topics = Topics {
        customer_message: topic(&t.customer_message, "kafka.topics.customer_message")?,
        return_request: topic(&t.return_request, "kafka.topics.return_request")?,
        shipment: topic(&t.shipment, "kafka.topics.shipment")?,
        alerts: topic(&t.alerts, "kafka.topics.alerts")?,
        dead_letter: topic(&t.dead_letter, "kafka.topics.dead_letter")?,
    };
    let mut inputs = topics.inputs().to_vec();
    inputs.sort_unstable();
    inputs.dedup();
    if inputs.len() != 3
        || [&topics.alerts, &topics.dead_letter]
            .iter()
            .any(|o| topics.inputs().contains(&o.as_str()))
    {
        return Err((
            "kafka.topics".into(),
            "input, alert and dead-letter topics must all differ".into(),
        ));
    }
    let properties = properties(&raw.properties)?;
    let guarantee = match raw.guarantee.trim() {
        "exactly_once" => crate::worker::Guarantee::ExactlyOnce,
        "at_least_once" => crate::worker::Guarantee::AtLeastOnce,
        other => {
            return Err((
                "kafka.guarantee".into(),
                format!("is \"{other}\"; it must be \"exactly_once\" or \"at_least_once\""),
            ))
        }
    };
    let default_interval = match guarantee {
        crate::worker::Guarantee::ExactlyOnce => "100ms",
        crate::worker::Guarantee::AtLeastOnce => "5s",
    };
    let commit_interval = positive(
        raw.commit_interval.as_deref().unwrap_or(default_interval),
        "kafka.commit_interval",
    )?;
    let shutdown_timeout = positive(&raw.shutdown_timeout, "kafka.shutdown_timeout")?;
    if raw.max_in_flight.is_some() {
        return Err((
            "kafka.max_in_flight".to_string(),
            "is no longer a setting: reading waits when the producer's queue is full; \
             remove it (the queue's size is queue.buffering.max.messages under [kafka.properties])"
                .to_string(),
        ));
    }
    let workers = workers(&raw.workers)?;
    Ok(KafkaSettings {
        bootstrap_servers,
        group_id: raw.group_id.trim().to_string(),
        client_id: raw.client_id.trim().to_string(),
        topics,
        max_clock_skew: span(&raw.max_clock_skew, "kafka.max_clock_skew")?,
        guarantee,
        commit_interval,
        shutdown_timeout,
        workers,
        properties,
    })
}

/// Most workers one process runs: past this, more instances are the way to scale.
pub const MAX_WORKERS: usize = 64;

/// `kafka.workers`: a whole number from 1 to [`MAX_WORKERS`], or `"auto"` for one per CPU
/// the process may use (cgroup limits included), at most 8.
fn workers(raw: &toml::Value) -> Result<usize, Problem> {
    let given = match raw {
        toml::Value::String(s) => format!("\"{s}\""),
        toml::Value::Integer(n) => n.to_string(),
        other => format!("a {}", other.type_str()),
    };
    let wrong = || {
        (
            "kafka.workers".to_string(),
            format!("is {given}; it must be \"auto\" or a whole number from 1 to {MAX_WORKERS}"),
        )
    };
    match raw {
        toml::Value::String(s) if s.trim() == "auto" => Ok(std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8)),
        toml::Value::Integer(n) => usize::try_from(*n)
            .ok()
            .filter(|n| (1..=MAX_WORKERS).contains(n))
            .ok_or_else(wrong),
        _ => Err(wrong()),
    }
}

fn properties(raw: &BTreeMap<String, toml::Value>) -> Result<Properties, Problem> {
    let mut out = Properties::default();
    for (name, value) in raw {
        let place = format!("kafka.properties.\"{name}\"");
        if let Some((_, instead)) = OWNED.iter().find(|(owned, _)| owned == name) {
            return Err((place, format!("is set by sla-timerd; use {instead}")));
        }
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err((
                    place,
                    format!(
                        "is {}, expected a string, number or boolean",
                        other.type_str()
                    ),
                ))
            }
        };
        librdkafka_accepts(name, &text).map_err(|problem| (place, problem))?;
        out.insert(name.clone(), text);
    }
    Ok(out)
}

/// Whether librdkafka knows the property and takes its value, asked of its configuration
/// alone (no client is made), so that `check-config` and start-up refuse the same
/// settings `run` would fail on. An unknown name's value is never shown (a misspelt
/// secret's name does not look secret), nor a secret property's.
fn librdkafka_accepts(name: &str, value: &str) -> Result<(), String> {
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaConfRes;
    let Err(e) = rdkafka::ClientConfig::new()
        .set(name, value)
        .create_native_config()
    else {
        return Ok(());
    };
    Err(match e {
        KafkaError::ClientConfig(RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN, ..) => {
            "is not a librdkafka property: check its name against librdkafka's CONFIGURATION.md (https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md)".to_string()
        }
        KafkaError::ClientConfig(_, description, ..) => {
            // A property known to be secret keeps its value to itself.
            let description = if super::secret::is_secret(name) && !value.is_empty() {
                description.replace(value, REDACTED)
            } else {
                description
            };
            format!("has a value librdkafka refuses ({description}); see its CONFIGURATION.md for the values it takes")
        }
        other => format!("cannot be given to librdkafka ({other})"),
    })
}

pub(super) fn compile_http(raw: &RawHttp) -> Result<HttpSettings, Problem> {
    let listen = raw.listen.trim().parse().map_err(|_| {
        (
            "http.listen".to_string(),
            format!(
                "`{}` is not an address; write e.g. \"0.0.0.0:9464\"",
                raw.listen
            ),
        )
    })?;
    let liveness_timeout = positive(&raw.liveness_timeout, "http.liveness_timeout")?;
    Ok(HttpSettings {
        listen,
        liveness_timeout,
        api_token: raw.api_token.as_ref().map(api_token).transpose()?,
    })
}

/// `http.api_token`: text a header can carry (visible ASCII, no spaces). Its value is
/// never part of a message.
fn api_token(raw: &toml::Value) -> Result<Secret, Problem> {
    let place = || "http.api_token".to_string();
    let toml::Value::String(text) = raw else {
        return Err((
            place(),
            format!("is a {}; it must be a string", raw.type_str()),
        ));
    };
    if text.is_empty() {
        return Err((
            place(),
            "is empty; set a token, or leave it out to turn the query API off".into(),
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err((
            place(),
            "holds a space, a control or a non-ASCII character; a bearer token is visible ASCII"
                .into(),
        ));
    }
    Ok(Secret::new(text.clone()))
}

fn non_empty(value: &str, place: &str, example: &str) -> Result<(), Problem> {
    if value.trim().is_empty() {
        return Err((
            place.to_string(),
            format!("must not be empty; write {example}"),
        ));
    }
    Ok(())
}

fn topic(name: &str, place: &str) -> Result<String, Problem> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err((
            place.to_string(),
            format!("`{name}` is not a Kafka topic name (letters, digits, `.`, `_`, `-`)"),
        ));
    }
    Ok(name.to_string())
}

fn positive(text: &str, place: &str) -> Result<Span, Problem> {
    let s = span(text, place)?;
    if s == Span::ZERO {
        return Err((place.to_string(), "must be positive".into()));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::super::{parse, DEFAULT_CONFIG};

    fn problem(extra: &str) -> super::super::ConfigError {
        parse(
            &format!("{DEFAULT_CONFIG}\n{extra}"),
            "t.toml",
            std::iter::empty(),
        )
        .unwrap_err()
    }

    #[test]
    fn defaults_are_the_contract_topic_names() {
        let s = parse(DEFAULT_CONFIG, "d", std::iter::empty()).unwrap();
        assert_eq!(
            s.kafka.topics.inputs(),
            ["customer-message", "return-request", "shipment"]
        );
        assert_eq!(s.kafka.topics.alerts, "sla-alerts");
        assert_eq!(s.kafka.topics.dead_letter, "sla-dead-letter");
        assert_eq!(s.kafka.max_clock_skew.as_millis(), 300_000);
    }

    #[test]
    fn a_property_the_daemon_owns_is_refused_with_the_setting_to_use() {
        let e = problem("[kafka.properties]\n\"group.id\" = \"x\"");
        assert_eq!(e.place, "kafka.properties.\"group.id\"");
        assert!(e.problem.contains("kafka.group_id"), "{e}");
    }

    #[test]
    fn workers_are_auto_or_a_bounded_count() {
        assert_eq!(
            parse(DEFAULT_CONFIG, "d", std::iter::empty())
                .expect("the defaults are valid")
                .kafka
                .workers,
            1
        );
        let auto = parse(
            DEFAULT_CONFIG,
            "d",
            [("SLA_TIMERD__KAFKA__WORKERS".to_string(), "auto".to_string())].into_iter(),
        );
        assert!((1..=8).contains(&auto.expect("auto is valid").kafka.workers));
        let two = parse(
            DEFAULT_CONFIG,
            "d",
            [("SLA_TIMERD__KAFKA__WORKERS".to_string(), "2".to_string())].into_iter(),
        );
        assert_eq!(two.expect("2 is valid").kafka.workers, 2);
        for bad in ["0", "65", "many", "-1"] {
            let err = parse(
                DEFAULT_CONFIG,
                "d",
                [("SLA_TIMERD__KAFKA__WORKERS".to_string(), bad.to_string())].into_iter(),
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("kafka.workers") && err.contains("\"auto\" or a whole number"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn max_in_flight_is_refused_with_what_to_do_instead() {
        let env = [(
            "SLA_TIMERD__KAFKA__MAX_IN_FLIGHT".to_string(),
            "7".to_string(),
        )];
        let err = crate::config::parse(crate::config::DEFAULT_CONFIG, "test", env.into_iter())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("kafka.max_in_flight") && err.contains("queue.buffering.max.messages"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_listen_address_is_refused() {
        let env = [(
            "SLA_TIMERD__HTTP__LISTEN".to_string(),
            "everywhere".to_string(),
        )];
        let e = parse(DEFAULT_CONFIG, "t.toml", env.into_iter()).unwrap_err();
        assert_eq!(e.place, "http.listen");
    }

    #[test]
    fn the_api_token_is_a_secret_read_as_written_and_never_quoted() {
        let env = |v: &str| {
            parse(
                DEFAULT_CONFIG,
                "t.toml",
                [("SLA_TIMERD__HTTP__API_TOKEN".to_string(), v.to_string())].into_iter(),
            )
        };
        assert!(parse(DEFAULT_CONFIG, "d", std::iter::empty())
            .unwrap()
            .http
            .api_token
            .is_none());
        for token in ["s3cr3t-Token_0", "12345", "true", "1.50"] {
            let s = env(token).unwrap();
            assert_eq!(s.http.api_token.as_ref().map(|t| t.expose()), Some(token));
            assert!(!format!("{:?}", s.http).contains(token));
        }
        for bad in ["", "two words", "tab\there"] {
            let e = env(bad).unwrap_err().to_string();
            assert!(
                e.contains("SLA_TIMERD__HTTP__API_TOKEN") && e.contains("http.api_token"),
                "{e}"
            );
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
        }
        let file = DEFAULT_CONFIG.replace(
            "liveness_timeout = \"60s\"",
            "liveness_timeout = \"60s\"\napi_token = 4711",
        );
        let e = parse(&file, "t.toml", std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http.api_token: is a integer") && !e.contains("4711"),
            "{e}"
        );
    }

    #[test]
    fn an_alert_topic_equal_to_an_input_topic_is_refused() {
        let env = [(
            "SLA_TIMERD__KAFKA__TOPICS__ALERTS".to_string(),
            "shipment".to_string(),
        )];
        let e = parse(DEFAULT_CONFIG, "t.toml", env.into_iter()).unwrap_err();
        assert_eq!(e.place, "kafka.topics");
    }
}
