//! `sla-timerd replay`: a JSON Lines file through the core, alerts to stdout (contract
//! section 6).
//!
//! # Ground rules
//!
//! * The input is streamed: read and decoded a batch ahead of the engine, on a second
//!   thread when there is a second CPU ([`crate::read_ahead`]), and never held whole, so
//!   a replay's memory is the engine's state and a few batches, whatever the file's size.
//! * Every non-blank line is a record and ends as exactly one of applied, skipped
//!   (unknown type, or a duplicate), or dead-lettered. Blank lines are not records.
//! * Event times are the clock; at the end, points at or before `--until` (default: the
//!   clock) fire.
//! * Dead letters are written as `{"line": N, "reason": "...", "raw": "..."}`; bytes that
//!   are not UTF-8 are kept exactly in `raw_base64` as well.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, Write};

use crate::core::alert::AlertRef;
use crate::core::effect::{Effect, Sink};
use crate::core::engine::{Engine, PartitionId};
use crate::core::partition::Taken;
use crate::core::time::Millis;
use crate::decode::DeadLetter;
use crate::read_ahead::for_each_record;

/// What a replay read and wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    pub applied: u64,
    pub skipped_unknown: u64,
    pub skipped_duplicate: u64,
    pub dead_lettered: u64,
    pub alerts_by_type: BTreeMap<&'static str, u64>,
    pub alert_ids_suppressed: u64,
}

impl Summary {
    pub fn alerts(&self) -> u64 {
        self.alerts_by_type.values().sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let skipped = self.skipped_unknown + self.skipped_duplicate;
        writeln!(
            f,
            "records read: {}; applied: {}; skipped: {} ({} unknown type, {} duplicate); dead-lettered: {}",
            self.records, self.applied, skipped, self.skipped_unknown, self.skipped_duplicate, self.dead_lettered
        )?;
        let by_type: Vec<String> = self
            .alerts_by_type
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        write!(
            f,
            "alerts: {} ({})",
            self.alerts(),
            if by_type.is_empty() {
                "none".into()
            } else {
                by_type.join(", ")
            }
        )
    }
}

/// Where a replay writes.
pub struct Sinks<A: Write, D: Write> {
    pub alerts: A,
    pub dead_letters: Option<D>,
}

/// Replays `input` through `engine`, writing alerts and dead letters as they happen.
pub fn replay<A: Write, D: Write>(
    engine: &mut Engine,
    input: impl BufRead + Send,
    sinks: &mut Sinks<A, D>,
    until: Option<Millis>,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let mut alerts = AlertLines::default();
    for_each_record(input, |record| {
        summary.records += 1;
        match &record.input {
            Ok(event) => match engine.take(PartitionId::REPLAY, event, &mut alerts) {
                Taken::Applied => summary.applied += 1,
                Taken::Skipped => summary.skipped_unknown += 1,
                Taken::Duplicate => summary.skipped_duplicate += 1,
            },
            Err(dead) => {
                summary.dead_lettered += 1;
                if let Some(out) = sinks.dead_letters.as_mut() {
                    write_dead_letter(out, record.number, dead, record.bytes)?;
                }
            }
        }
        if alerts.lines.len() >= OUTPUT_CHUNK {
            sinks.alerts.write_all(&alerts.lines)?;
            alerts.lines.clear();
        }
        Ok(())
    })?;
    engine.finish(PartitionId::REPLAY, until, &mut alerts);
    sinks.alerts.write_all(&alerts.lines)?;
    summary.alerts_by_type = alerts
        .by_type
        .0
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    if let Some(state) = engine.partition(PartitionId::REPLAY) {
        summary.alert_ids_suppressed = state.tally().alert_ids_suppressed;
    }
    sinks.alerts.flush()?;
    if let Some(out) = sinks.dead_letters.as_mut() {
        out.flush()?;
    }
    Ok(summary)
}

/// Alert lines are written into one buffer of about this size, then handed to the
/// output in one call: each line is copied once, not once into a line and again into
/// the output's buffer.
const OUTPUT_CHUNK: usize = 1 << 16;

/// Alerts by type, counted without a map lookup per alert.
struct AlertTally([(&'static str, u64); 4]);

impl Default for AlertTally {
    fn default() -> Self {
        AlertTally(["sla.breach", "sla.resolved", "sla.violation", "sla.warning"].map(|t| (t, 0)))
    }
}

impl AlertTally {
    fn count(&mut self, alert: &AlertRef<'_>) {
        use crate::core::alert::{AlertKind, SlaStage};
        let i = match &alert.kind {
            AlertKind::Sla {
                stage: SlaStage::Breach,
                ..
            } => 0,
            AlertKind::Sla {
                stage: SlaStage::Resolved(_),
                ..
            } => 1,
            AlertKind::Violation => 2,
            AlertKind::Sla {
                stage: SlaStage::Warning(_),
                ..
            } => 3,
        };
        self.0[i].1 += 1;
    }
}

/// The replay's sink: each alert written as a JSON line as the engine emits it, into
/// a chunk the caller hands to the output.
#[derive(Default)]
struct AlertLines {
    lines: Vec<u8>,
    by_type: AlertTally,
}

impl Sink for AlertLines {
    #[inline]
    fn emit(&mut self, effect: Effect<'_>) {
        if let Effect::Alert(alert) = effect {
            self.by_type.count(&alert);
            alert.write_json(&mut self.lines);
            self.lines.push(b'\n');
        }
    }
}

/// One dead-letter line: position, reason and the original bytes.
pub fn dead_letter_json(
    position: serde_json::Value,
    reason: &DeadLetter,
    raw: &[u8],
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "reason": reason.to_string(),
        "class": reason.class(),
        "raw": String::from_utf8_lossy(raw),
    });
    if std::str::from_utf8(raw).is_err() {
        v["raw_base64"] = base64(raw).into();
    }
    if let (Some(obj), serde_json::Value::Object(pos)) = (v.as_object_mut(), position) {
        obj.extend(pos);
    }
    v
}

fn write_dead_letter(
    out: &mut impl Write,
    line: u64,
    reason: &DeadLetter,
    raw: &[u8],
) -> io::Result<()> {
    let v = dead_letter_json(serde_json::json!({ "line": line }), reason, raw);
    serde_json::to_writer(&mut *out, &v)?;
    out.write_all(b"\n")
}

/// Standard base64 with padding (RFC 4648), for bytes that are not UTF-8.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            let c = if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            };
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}
