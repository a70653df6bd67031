//! What `check-config` prints: the settings in words, secrets redacted.
//!
//! Durations are written with the largest whole units (`48h`, `7d`, `1h30m`), in hours
//! below three days, since deadlines of a day or two are thought of in hours.

use std::fmt::{self, Display, Formatter, Write as _};

use super::describe_business::{calendar_lines, deadline_words, override_lines};
use super::{HttpSettings, KafkaSettings, Settings};
use crate::core::event::EventType;
use crate::core::rules::{Check, Condition, Expected, Rule, RuleSet};
use crate::core::time::Span;
use crate::worker::Guarantee;

/// The settings in words; see [`Settings::describe`].
pub struct Description<'a>(&'a Settings);

impl Settings {
    /// What these settings define, in words, for `check-config`. Secret values are
    /// written as `<redacted>`.
    pub fn describe(&self) -> Description<'_> {
        Description(self)
    }
}

impl Display for Description<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(f, "settings from {}", s.file)?;
        match s.environment.as_slice() {
            [] => writeln!(f, ", no environment overrides")?,
            vars => writeln!(f, ", overridden by the environment: {}", vars.join(", "))?,
        }
        for calendar in &s.rules.calendars {
            calendar_lines(f, calendar)?;
        }
        for (id, rule) in s.rules.rules.iter().enumerate() {
            rule_lines(f, &s.rules, id, rule)?;
        }
        for (index, check) in s.rules.checks.iter().enumerate() {
            check_lines(f, &s.rules, index, check)?;
        }
        writeln!(
            f,
            "engine: event ids, closing times and order totals are remembered for {} of event time",
            words(s.rules.retention)
        )?;
        kafka_lines(f, &s.kafka)?;
        http_lines(f, &s.http)
    }
}

fn rule_lines(f: &mut Formatter<'_>, rules: &RuleSet, id: usize, rule: &Rule) -> fmt::Result {
    writeln!(f, "rule {}: one instance per {}", rule.name, rule.key)?;
    for t in EventType::ALL {
        for opening in rules
            .actions(*t)
            .opens
            .iter()
            .filter(|o| usize::from(o.rule) == id)
        {
            writeln!(f, "  opens on {t}{}", when(&opening.when))?;
        }
    }
    writeln!(f, "  deadline: {}", deadline_words(&rule.deadline))?;
    let leads: Vec<String> = rule.warn_before.iter().map(|l| words(*l)).collect();
    match leads.as_slice() {
        [] => writeln!(f, "  no warnings")?,
        leads => writeln!(f, "  warnings: {} before the deadline", list(leads, "and"))?,
    }
    let closing: Vec<String> = EventType::ALL
        .iter()
        .filter(|t| {
            rules
                .actions(**t)
                .closes
                .iter()
                .any(|r| usize::from(*r) == id)
        })
        .map(ToString::to_string)
        .collect();
    writeln!(f, "  closes on {}", list(&closing, "or"))?;
    writeln!(
        f,
        "  breach severity {}; action: {}",
        rule.texts.severity, rule.texts.action
    )?;
    for (n, o) in rule.overrides.iter().enumerate() {
        override_lines(f, rule, n, o)?;
    }
    Ok(())
}

fn check_lines(f: &mut Formatter<'_>, rules: &RuleSet, index: usize, check: &Check) -> fmt::Result {
    writeln!(
        f,
        "check {}: a violation keyed by {}",
        check.name, check.key
    )?;
    for t in EventType::ALL.iter().filter(|t| {
        rules
            .actions(**t)
            .checks
            .iter()
            .any(|c| usize::from(*c) == index)
    }) {
        writeln!(f, "  on {t}{}", when(&check.when))?;
    }
    if !check.order_total_at_least.is_empty() {
        let totals: Vec<String> = check
            .order_total_at_least
            .iter()
            .map(|m| format!("{} {}", m.amount, m.currency.as_str()))
            .collect();
        writeln!(
            f,
            "  only when the order total is at least {}",
            list(&totals, "or")
        )?;
    }
    writeln!(
        f,
        "  severity {}; action: {}",
        check.texts.severity, check.texts.action
    )
}

fn kafka_lines(f: &mut Formatter<'_>, k: &KafkaSettings) -> fmt::Result {
    writeln!(f, "kafka:")?;
    writeln!(f, "  bootstrap servers {}", k.bootstrap_servers)?;
    writeln!(
        f,
        "  consumer group {}, client id {}, {} worker(s)",
        k.group_id, k.client_id, k.workers
    )?;
    writeln!(f, "  reads {}", k.topics.inputs().join(", "))?;
    writeln!(
        f,
        "  writes alerts to {} and dead letters to {}",
        k.topics.alerts, k.topics.dead_letter
    )?;
    let guarantee = match k.guarantee {
        Guarantee::ExactlyOnce => {
            "exactly once (alerts, state and offsets in one Kafka transaction)"
        }
        Guarantee::AtLeastOnce => "at least once (a fault may deliver an alert twice, with its id)",
    };
    writeln!(f, "  delivers {guarantee}")?;
    writeln!(
        f,
        "  dead-letters events more than {} ahead of the wall clock",
        words(k.max_clock_skew)
    )?;
    writeln!(
        f,
        "  commits every {}, stops within {}",
        words(k.commit_interval),
        words(k.shutdown_timeout)
    )?;
    let properties: Vec<String> = k
        .properties
        .iter()
        .map(|(name, value)| format!("{name} = {value}"))
        .collect();
    match properties.as_slice() {
        [] => writeln!(f, "  no librdkafka properties"),
        p => writeln!(f, "  librdkafka properties: {}", p.join(", ")),
    }
}

fn http_lines(f: &mut Formatter<'_>, h: &HttpSettings) -> fmt::Result {
    writeln!(f, "http:")?;
    writeln!(f, "  serves /metrics, /healthz and /readyz on {}", h.listen)?;
    match &h.api_token {
        Some(token) => writeln!(
            f,
            "  serves the query API (/v1/deadlines) to requests bearing http.api_token ({token})"
        ),
        None => writeln!(
            f,
            "  query API (/v1/deadlines) off: http.api_token is not set (its routes answer 404)"
        ),
    }
}

/// ` when a and b`, or nothing.
pub(super) fn when(conditions: &[Condition]) -> String {
    let parts: Vec<String> = conditions.iter().map(condition).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" when {}", parts.join(" and "))
    }
}

fn condition(c: &Condition) -> String {
    let value = |e: &Expected| match e {
        Expected::Text(t) => format!("{t:?}"),
        Expected::Flag(b) => b.to_string(),
    };
    match c {
        Condition::Present(field, true) => format!("{field} is present"),
        Condition::Present(field, false) => format!("{field} is absent"),
        Condition::Equals(field, e) => format!("{field} is {}", value(e)),
        Condition::NotEquals(field, e) => format!("{field} is not {} (or absent)", value(e)),
    }
}

/// `a`, `a or b`, `a, b or c`.
pub(super) fn list(items: &[String], conjunction: &str) -> String {
    match items {
        [] => "nothing".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

/// A span in the largest whole units: `48h`, `7d`, `1h30m`, `250ms`.
pub(super) fn words(span: Span) -> String {
    const SECOND: i64 = 1000;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let mut rest = span.as_millis();
    if rest == 0 {
        return "0s".into();
    }
    let units: &[(i64, &str)] = &[
        (DAY, "d"),
        (HOUR, "h"),
        (MINUTE, "m"),
        (SECOND, "s"),
        (1, "ms"),
    ];
    let units = if rest < 3 * DAY { &units[1..] } else { units };
    let mut out = String::new();
    for (size, name) in units {
        if rest >= *size {
            let _ = write!(out, "{}{name}", rest / size);
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, DEFAULT_CONFIG};

    #[test]
    fn spans_are_written_in_whole_units() {
        for (text, shown) in [
            ("48h", "48h"),
            ("4h", "4h"),
            ("7d", "7d"),
            ("90m", "1h30m"),
            ("250ms", "250ms"),
            ("0s", "0s"),
        ] {
            assert_eq!(words(Span::parse(text).unwrap()), shown, "{text}");
        }
    }

    #[test]
    fn the_shipped_settings_are_described_in_words() {
        let env = [(
            "SLA_TIMERD__KAFKA__PROPERTIES__SASL_PASSWORD".to_string(),
            "hunter2".to_string(),
        )];
        let shown = parse(DEFAULT_CONFIG, "d.toml", env.into_iter())
            .unwrap()
            .describe()
            .to_string();
        for line in [
            "settings from d.toml, overridden by the environment: SLA_TIMERD__KAFKA__PROPERTIES__SASL_PASSWORD",
            "rule customer_reply: one instance per thread_id",
            "  opens on customer_message.received\n",
            "  deadline: 48h after the opening event",
            "  warnings: 24h and 4h before the deadline",
            "  closes on customer_message.replied or customer_message.no_response_needed",
            "  opens on order.placed when fulfillment_channel is \"MFN\"",
            "  deadline: the opening event's latest_ship_date",
            "check signature_missing: a violation keyed by order_id",
            "  only when the order total is at least 750 EUR",
            "engine: event ids, closing times and order totals are remembered for 7d of event time",
            "  bootstrap servers localhost:9092",
            "  reads customer-message, return-request, shipment",
            "  delivers exactly once (alerts, state and offsets in one Kafka transaction)",
            "  librdkafka properties: sasl.password = <redacted>",
            "  serves /metrics, /healthz and /readyz on 0.0.0.0:9464",
        ] {
            assert!(shown.contains(line), "missing {line:?} in\n{shown}");
        }
        assert!(
            !shown.contains("hunter2") && !shown.contains("Span(") && !shown.contains("After("),
            "{shown}"
        );
    }
}
