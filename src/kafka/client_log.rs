//! librdkafka's log lines and errors, logged once per change.
//!
//! While a broker is unreachable librdkafka reports the same failure many times a
//! second, from each client (consumer, changelog reader, producer) and through two
//! callbacks (`log` and `error`). A [`ClientLog`] shared by a worker's clients passes
//! each kind of report (its facility or error code) the first time, then holds its
//! repeats back and writes one reminder a minute with how many were held, until the kind
//! has been quiet for a minute: then its next report is news again and is logged.
//!
//! Every message goes through the settings' [`Redactor`]: librdkafka quotes its
//! configuration in some errors, and a secret must never reach a log.
//!
//! [`Gate`] is the decision, pure and driven by the time it is given; [`ClientLog`] is
//! the thin part that reads the clock and writes the lines.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::clock::Clock;
use crate::config::Redactor;
use crate::core::time::{Millis, Span};

/// What to do with one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// News: log it.
    Log,
    /// A repeat, the first after a reminder period: log it with the number held back.
    Remind { held: u64 },
    /// A repeat within the period: count it, write nothing.
    Hold,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    last_report: Millis,
    last_line: Millis,
    held: u64,
}

/// Which reports of a kind to write.
#[derive(Debug)]
pub struct Gate {
    period: Span,
    kinds: HashMap<String, Seen>,
}

impl Gate {
    /// Repeats are summed up once per `period`; a kind quiet for `period` is news again.
    pub fn new(period: Span) -> Gate {
        Gate {
            period,
            kinds: HashMap::new(),
        }
    }

    pub fn observe(&mut self, kind: &str, now: Millis) -> Verdict {
        let period = self.period.as_millis();
        match self.kinds.get_mut(kind) {
            Some(seen) if now.0 - seen.last_report.0 < period => {
                seen.last_report = now;
                if now.0 - seen.last_line.0 >= period {
                    let held = seen.held;
                    seen.held = 0;
                    seen.last_line = now;
                    Verdict::Remind { held }
                } else {
                    seen.held += 1;
                    Verdict::Hold
                }
            }
            _ => {
                // Forget kinds long quiet, so the map stays as small as what is going on.
                if self.kinds.len() > 256 {
                    self.kinds.retain(|_, s| now.0 - s.last_report.0 < period);
                }
                self.kinds.insert(
                    kind.to_string(),
                    Seen {
                        last_report: now,
                        last_line: now,
                        held: 0,
                    },
                );
                Verdict::Log
            }
        }
    }
}

/// The log of a worker's Kafka clients.
pub struct ClientLog {
    gate: Mutex<Gate>,
    redactor: Redactor,
    clock: Arc<dyn Clock>,
}

/// How often repeats are summed up.
pub const REMINDER_PERIOD: Span = Span::from_secs(60);

impl ClientLog {
    pub fn new(redactor: Redactor, clock: Arc<dyn Clock>) -> Arc<ClientLog> {
        Arc::new(ClientLog {
            gate: Mutex::new(Gate::new(REMINDER_PERIOD)),
            redactor,
            clock,
        })
    }

    /// Whether to write a report of `kind`: `None` to hold it, else `Some` of how many
    /// were held since the last line (`None` for news).
    fn write(&self, kind: &str) -> Option<Option<u64>> {
        let now = self.clock.now();
        let verdict = self
            .gate
            .lock()
            .map(|mut g| g.observe(kind, now))
            .unwrap_or(Verdict::Log);
        match verdict {
            Verdict::Hold => None,
            Verdict::Log => Some(None),
            Verdict::Remind { held } => Some(Some(held)),
        }
    }

    /// `text` with the settings' secrets hidden.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    /// A line from librdkafka's log callback, from the client named `client`.
    pub fn log(&self, client: &str, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let debug = matches!(
            level,
            RDKafkaLogLevel::Debug | RDKafkaLogLevel::Info | RDKafkaLogLevel::Notice
        );
        if debug {
            // librdkafka's notices (a broker's "Disconnected" after idling, say) are its
            // chatter: there for whoever turns debug logging on.
            tracing::debug!(target: "librdkafka", client, facility, message = %self.redactor.redact(message));
            return;
        }
        let Some(held) = self.write(&format!("log:{facility}")) else {
            return;
        };
        let message = self.redactor.redact(message);
        // FAIL is a connection that failed: librdkafka reconnects by itself.
        match level {
            _ if facility == "FAIL" => {
                tracing::warn!(target: "librdkafka", client, facility, repeated = held, "{message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", client, facility, repeated = held, "{message}")
            }
            _ => {
                tracing::error!(target: "librdkafka", client, facility, repeated = held, "{message}")
            }
        }
    }

    /// A problem of the daemon's own with the cluster (a call that timed out), of a
    /// `kind` that repeats are counted by: a warning, once per change.
    pub fn problem(&self, kind: &str, message: &str) {
        let Some(held) = self.write(&format!("problem:{kind}")) else {
            return;
        };
        tracing::warn!(repeated = held, "{}", self.redactor.redact(message));
    }

    /// An error from librdkafka's error callback, or one a client call returned.
    pub fn error(&self, client: &str, error: &KafkaError, reason: &str) {
        // The changelog reader asks for end-of-partition events; they are not errors.
        let code = error.rdkafka_error_code();
        if matches!(error, KafkaError::PartitionEOF(_))
            || code == Some(RDKafkaErrorCode::PartitionEOF)
        {
            return;
        }
        let kind = code.map_or_else(|| "other".to_string(), |c| format!("{c:?}"));
        let Some(held) = self.write(&format!("error:{kind}")) else {
            return;
        };
        let error = self.redactor.redact(&error.to_string());
        let reason = self.redactor.redact(reason);
        let transient = matches!(
            code,
            Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure)
        );
        if transient {
            tracing::warn!(client, %error, reason, repeated = held, "kafka client error");
        } else {
            tracing::error!(client, %error, reason, repeated = held, "kafka client error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Millis {
        Millis(secs * 1000)
    }

    #[test]
    fn a_report_is_news_then_repeats_are_held_and_summed_up_once_a_period() {
        let mut gate = Gate::new(Span::from_secs(60));
        assert_eq!(gate.observe("FAIL", at(0)), Verdict::Log);
        for s in 1..60 {
            assert_eq!(gate.observe("FAIL", at(s)), Verdict::Hold, "second {s}");
        }
        assert_eq!(gate.observe("FAIL", at(60)), Verdict::Remind { held: 59 });
        assert_eq!(gate.observe("FAIL", at(61)), Verdict::Hold);
        assert_eq!(gate.observe("FAIL", at(120)), Verdict::Remind { held: 1 });
    }

    #[test]
    fn kinds_are_apart_and_a_kind_quiet_for_a_period_is_news_again() {
        let mut gate = Gate::new(Span::from_secs(60));
        assert_eq!(gate.observe("FAIL", at(0)), Verdict::Log);
        assert_eq!(gate.observe("GETPID", at(1)), Verdict::Log);
        assert_eq!(gate.observe("FAIL", at(2)), Verdict::Hold);
        assert_eq!(gate.observe("FAIL", at(62)), Verdict::Log, "60 s quiet");
    }

    #[test]
    fn a_flood_of_a_thousand_reports_a_second_for_ten_minutes_writes_ten_lines() {
        let mut gate = Gate::new(Span::from_secs(60));
        let lines = (0..600_000)
            .filter(|ms| gate.observe("FAIL", Millis(*ms)) != Verdict::Hold)
            .count();
        assert_eq!(lines, 10, "the first, then one reminder a minute");
    }
}
