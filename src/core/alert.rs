//! Alerts, and their CloudEvents JSON form (contract section 8).
//!
//! # Ground rules
//!
//! * An alert's `id` is a pure function of what it reports, so a re-emission after a
//!   crash carries the same id and consumers can drop it:
//!   `{rule}:{key}:{opening event id}:warning-{lead seconds}` / `:breach` / `:resolved`,
//!   and `{check}:{event id}` for violations.
//! * Times are written in UTC with a `Z` and milliseconds.
//! * Warnings carry severity `warning`, resolutions `info`; breaches and violations the
//!   rule's or check's configured severity.

use std::sync::Arc;

use super::rules::Texts;
use super::time::{Millis, Span};

/// Whether a late or timely closing resolved an instance.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    Met,
    Late,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Met => "met",
            Outcome::Late => "late",
        }
    }
}

/// What an SLA alert reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SlaStage {
    Warning(Span),
    Breach,
    Resolved(Outcome),
}

/// The two families of alerts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AlertKind {
    /// About an instance of a rule.
    Sla {
        stage: SlaStage,
        deadline: Millis,
        started_at: Millis,
    },
    /// A check failed on one event.
    Violation,
}

/// Values copied from the opening (or checked) event into the alert.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Copied<'a> {
    pub order_id: Option<&'a str>,
    pub seller_id: Option<&'a str>,
    pub marketplace: Option<&'a str>,
}

/// Indices into [`Alert::spans`].
const ID: usize = 0;
const KEY: usize = 1;
/// The opening event's id (SLA alerts) or the checked event's id (violations).
const EVENT: usize = 2;
const CLOSED_BY: usize = 3;
const ORDER_ID: usize = 4;
const SELLER_ID: usize = 5;
const MARKETPLACE: usize = 6;

/// One alert, ready to be written. Its texts share one allocation: the id (which holds
/// the name, the key and the event id) followed by the closing event id and the copied
/// values; `spans` says where each is. Alerts outnumber input events, so this matters.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Alert {
    text: String,
    /// (start, end) in `text` of each part above; an absent part is empty.
    spans: [(u32, u32); 7],
    pub kind: AlertKind,
    /// The rule's or the check's name.
    pub name: Arc<str>,
    pub time: Millis,
    pub texts: Texts,
}

impl Alert {
    /// An alert about an instance of `rule` opened by `opened_by`; `closed_by` is the
    /// closing event of a resolution.
    #[allow(clippy::too_many_arguments)]
    pub fn sla(
        rule: &Arc<str>,
        key: &str,
        opened_by: &str,
        closed_by: Option<&str>,
        time: Millis,
        kind: AlertKind,
        copied: Copied<'_>,
        texts: &Texts,
    ) -> Alert {
        let AlertKind::Sla { stage, .. } = kind else {
            panic!("Alert::sla needs an AlertKind::Sla, got {kind:?}");
        };
        let lead = match stage {
            SlaStage::Warning(lead) => lead.whole_secs().to_string(),
            _ => String::new(),
        };
        let suffix = match stage {
            SlaStage::Warning(_) => "warning-",
            SlaStage::Breach => "breach",
            SlaStage::Resolved(_) => "resolved",
        };
        let id = [&**rule, ":", key, ":", opened_by, ":", suffix, &lead];
        Alert::build(&id, (2, 4), closed_by, kind, rule, time, copied, texts)
    }

    /// A check's violation on one event.
    pub fn violation(
        check: &Arc<str>,
        key: &str,
        event_id: &str,
        time: Millis,
        copied: Copied<'_>,
        texts: &Texts,
    ) -> Alert {
        let mut alert = Alert::build(
            &[&**check, ":", event_id],
            (usize::MAX, 2),
            None,
            AlertKind::Violation,
            check,
            time,
            copied,
            texts,
        );
        alert.push(KEY, key);
        alert
    }

    /// Lays out the texts: `id_parts` concatenated, `(key, event)` the indices in it of the
    /// key (`usize::MAX` when the id holds none) and of the event id.
    #[allow(clippy::too_many_arguments)]
    fn build(
        id_parts: &[&str],
        (key, event): (usize, usize),
        closed_by: Option<&str>,
        kind: AlertKind,
        name: &Arc<str>,
        time: Millis,
        copied: Copied<'_>,
        texts: &Texts,
    ) -> Alert {
        let extra = [
            closed_by,
            copied.order_id,
            copied.seller_id,
            copied.marketplace,
        ];
        let len = id_parts.iter().map(|p| p.len()).sum::<usize>()
            + extra.iter().flatten().map(|p| p.len()).sum::<usize>();
        let mut alert = Alert {
            text: String::with_capacity(len + 32),
            spans: [(0, 0); 7],
            kind,
            name: name.clone(),
            time,
            texts: texts.clone(),
        };
        for (i, part) in id_parts.iter().enumerate() {
            let at = alert.text.len() as u32;
            alert.text.push_str(part);
            if i == key {
                alert.spans[KEY] = (at, alert.text.len() as u32);
            }
            if i == event {
                alert.spans[EVENT] = (at, alert.text.len() as u32);
            }
        }
        alert.spans[ID] = (0, alert.text.len() as u32);
        for (part, index) in extra
            .into_iter()
            .zip([CLOSED_BY, ORDER_ID, SELLER_ID, MARKETPLACE])
        {
            alert.push(index, part.unwrap_or_default());
        }
        alert
    }

    fn push(&mut self, index: usize, part: &str) {
        let at = self.text.len() as u32;
        self.text.push_str(part);
        self.spans[index] = (at, self.text.len() as u32);
    }

    fn part(&self, index: usize) -> Option<&str> {
        let (start, end) = self.spans[index];
        (end > start).then(|| &self.text[start as usize..end as usize])
    }

    pub fn id(&self) -> &str {
        self.part(ID).unwrap_or_default()
    }

    pub fn key(&self) -> &str {
        self.part(KEY).unwrap_or_default()
    }

    /// The event that opened the instance (SLA alerts).
    pub fn opened_by(&self) -> Option<&str> {
        matches!(self.kind, AlertKind::Sla { .. })
            .then(|| self.part(EVENT))
            .flatten()
    }

    /// The event that closed the instance (resolutions).
    pub fn closed_by(&self) -> Option<&str> {
        self.part(CLOSED_BY)
    }

    /// The checked event (violations).
    pub fn event_id(&self) -> Option<&str> {
        matches!(self.kind, AlertKind::Violation)
            .then(|| self.part(EVENT))
            .flatten()
    }

    pub fn copied(&self) -> Copied<'_> {
        Copied {
            order_id: self.part(ORDER_ID),
            seller_id: self.part(SELLER_ID),
            marketplace: self.part(MARKETPLACE),
        }
    }

    /// `sla.warning`, `sla.breach`, `sla.resolved` or `sla.violation`.
    pub fn event_type(&self) -> &'static str {
        match &self.kind {
            AlertKind::Sla {
                stage: SlaStage::Warning(_),
                ..
            } => "sla.warning",
            AlertKind::Sla {
                stage: SlaStage::Breach,
                ..
            } => "sla.breach",
            AlertKind::Sla {
                stage: SlaStage::Resolved(_),
                ..
            } => "sla.resolved",
            AlertKind::Violation => "sla.violation",
        }
    }

    /// `warning`, `breach`, `resolved` or `violation`.
    pub fn stage(&self) -> &'static str {
        self.event_type().trim_start_matches("sla.")
    }

    fn severity(&self) -> &str {
        match &self.kind {
            AlertKind::Sla {
                stage: SlaStage::Warning(_),
                ..
            } => "warning",
            AlertKind::Sla {
                stage: SlaStage::Resolved(_),
                ..
            } => "info",
            _ => &self.texts.severity,
        }
    }

    /// The CloudEvents 1.0 structured-mode JSON object, on one line.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(640);
        self.write_json(&mut out);
        String::from_utf8(out).expect("written from str and ASCII")
    }

    /// Appends [`Self::to_json`]'s text to `out`: written field by field (alerts are the
    /// output's bulk), in the order of contract section 8, absent fields left out.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"specversion":"1.0","id":"#);
        json_str(out, &[self.id()]);
        out.extend_from_slice(br#","source":"sla-timerd","type":""#);
        out.extend_from_slice(self.event_type().as_bytes());
        out.extend_from_slice(br#"","time":"#);
        json_time(out, self.time);
        out.extend_from_slice(br#","subject":"#);
        json_str(out, &[&self.name, "/", self.key()]);
        out.extend_from_slice(br#","datacontenttype":"application/json","data":{"#);
        let mut data = Fields(out);
        match self.kind {
            AlertKind::Violation => data.text("check", &self.name),
            AlertKind::Sla { .. } => data.text("rule", &self.name),
        }
        data.text("key", self.key());
        data.text("stage", self.stage());
        match self.kind {
            AlertKind::Sla {
                stage,
                deadline,
                started_at,
            } => {
                if let SlaStage::Warning(lead) = stage {
                    data.name("lead_seconds");
                    json_int(data.0, lead.whole_secs());
                }
                if let SlaStage::Resolved(outcome) = stage {
                    data.text("outcome", outcome.as_str());
                }
                data.time("deadline", deadline);
                data.time("started_at", started_at);
                data.text("opened_by", self.opened_by().unwrap_or_default());
                if let Some(closed_by) = self.closed_by() {
                    data.text("closed_by", closed_by);
                }
            }
            AlertKind::Violation => data.text("event_id", self.event_id().unwrap_or_default()),
        }
        let copied = self.copied();
        let copied = [
            ("order_id", copied.order_id),
            ("seller_id", copied.seller_id),
            ("marketplace", copied.marketplace),
        ];
        for (name, value) in copied {
            if let Some(value) = value {
                data.text(name, value);
            }
        }
        data.text("severity", self.severity());
        data.text("action", &self.texts.action);
        out.extend_from_slice(b"}}");
    }
}

/// The members of a JSON object being written; the first has no leading comma.
struct Fields<'a>(&'a mut Vec<u8>);

impl Fields<'_> {
    fn name(&mut self, name: &str) {
        if self.0.last() != Some(&b'{') {
            self.0.push(b',');
        }
        self.0.push(b'"');
        self.0.extend_from_slice(name.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    fn text(&mut self, name: &str, value: &str) {
        self.name(name);
        json_str(self.0, &[value]);
    }

    fn time(&mut self, name: &str, value: Millis) {
        self.name(name);
        json_time(self.0, value);
    }
}

/// A JSON integer, written without a temporary string.
fn json_int(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    let mut digits = [0u8; 20];
    let mut n = value.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// A JSON string of the parts concatenated, escaped as serde_json does: `"` and `\`
/// with a backslash, control characters as `\n`-style or `\u00XX` escapes, the rest as is.
fn json_str(out: &mut Vec<u8>, parts: &[&str]) {
    out.push(b'"');
    for part in parts {
        let bytes = part.as_bytes();
        let clean = clean_prefix(bytes);
        out.extend_from_slice(&bytes[..clean]);
        let mut from = clean;
        for (i, &b) in bytes.iter().enumerate().skip(clean) {
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0C => b"\\f",
                0..=0x1F => b"",
                _ => continue,
            };
            out.extend_from_slice(&bytes[from..i]);
            from = i + 1;
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ]);
            } else {
                out.extend_from_slice(escape);
            }
        }
        out.extend_from_slice(&bytes[from..]);
    }
    out.push(b'"');
}

/// The length of the longest prefix, in whole 8-byte words, with nothing to escape
/// (no `"`, `\` or control character): checked a word at a time, since alert text
/// almost never needs escaping.
fn clean_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH != 0;
    let words = bytes.chunks_exact(8).take_while(|chunk| {
        let w = u64::from_le_bytes((*chunk).try_into().expect("chunks of 8"));
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
        !(control
            || has_zero(w ^ (ONES * u64::from(b'"')))
            || has_zero(w ^ (ONES * u64::from(b'\\'))))
    });
    words.count() * 8
}

fn json_time(out: &mut Vec<u8>, t: Millis) {
    match t.rfc3339_bytes() {
        Some(bytes) => {
            out.push(b'"');
            out.extend_from_slice(&bytes);
            out.push(b'"');
        }
        None => json_str(out, &[&t.to_rfc3339()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts() -> Texts {
        Texts {
            severity: Arc::from("critical"),
            action: Arc::from("Ship it."),
        }
    }

    #[test]
    fn a_warning_is_written_as_the_contract_shows() {
        let t = |s| Millis::parse_rfc3339(s).unwrap();
        let kind = AlertKind::Sla {
            stage: SlaStage::Warning(Span::from_secs(14400)),
            deadline: t("2026-11-20T18:00:00Z"),
            started_at: t("2026-11-19T09:12:00Z"),
        };
        let copied = Copied {
            order_id: Some("123-4567890-1234567"),
            seller_id: None,
            marketplace: Some("NL"),
        };
        let (order, at) = ("123-4567890-1234567", t("2026-11-20T14:00:00Z"));
        let a = Alert::sla(
            &Arc::from("ship_by"),
            order,
            "evt-17",
            None,
            at,
            kind,
            copied,
            &texts(),
        );
        assert_eq!(a.id(), "ship_by:123-4567890-1234567:evt-17:warning-14400");
        assert_eq!(
            (a.key(), a.opened_by(), a.closed_by(), a.event_id()),
            (order, Some("evt-17"), None, None)
        );
        assert_eq!(a.copied(), copied);
        let v: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(v["type"], "sla.warning");
        assert_eq!(v["subject"], "ship_by/123-4567890-1234567");
        assert_eq!(v["time"], "2026-11-20T14:00:00.000Z");
        assert_eq!(v["data"]["lead_seconds"], 14400);
        assert_eq!(v["data"]["severity"], "warning");
        assert_eq!(v["data"]["deadline"], "2026-11-20T18:00:00.000Z");
        assert!(v["data"].get("seller_id").is_none());
    }

    #[test]
    fn a_violation_names_its_check_and_event() {
        let a = Alert::violation(
            &Arc::from("tracking_missing"),
            "O-1",
            "s-9",
            Millis(0),
            Copied::default(),
            &texts(),
        );
        assert_eq!(a.id(), "tracking_missing:s-9");
        assert_eq!(
            (a.key(), a.event_id(), a.opened_by()),
            ("O-1", Some("s-9"), None)
        );
        let v: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(v["data"]["check"], "tracking_missing");
        assert_eq!(v["data"]["event_id"], "s-9");
        assert_eq!(v["data"]["stage"], "violation");
        assert!(v["data"].get("rule").is_none());
    }

    #[test]
    fn text_with_quotes_backslashes_and_control_characters_round_trips() {
        let tricky = "a\"b\\c\nd\te\u{1}f\u{1f}g\u{7f}h é ✓ </script>";
        let copied = Copied {
            order_id: Some(tricky),
            seller_id: None,
            marketplace: None,
        };
        let texts = Texts {
            severity: Arc::from("high"),
            action: Arc::from(tricky),
        };
        let a = Alert::violation(&Arc::from("c"), tricky, tricky, Millis(-1), copied, &texts);
        let json = a.to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        for field in ["key", "event_id", "order_id", "action"] {
            assert_eq!(v["data"][field], tricky, "{field} in {json}");
        }
        assert_eq!(v["subject"], format!("c/{tricky}"));
        assert_eq!(v["time"], "1969-12-31T23:59:59.999Z");
        let reserialised = serde_json::to_string(&v["data"]["action"]).unwrap();
        assert!(
            json.contains(&reserialised),
            "escaped as serde_json does: {reserialised} in {json}"
        );
    }

    #[test]
    fn the_clean_prefix_stops_at_the_word_holding_the_first_escape() {
        assert_eq!(clean_prefix(b"abcdefghijklmnopq"), 16);
        for (i, special) in [b'"', b'\\', b'\n', 0x00, 0x1F].into_iter().enumerate() {
            let mut text = *b"abcdefghijklmnopqrstuvwx";
            text[9 + i] = special;
            assert_eq!(clean_prefix(&text), 8, "{special:#x} at {}", 9 + i);
        }
        assert_eq!(
            clean_prefix("ééééééééé ✓✓✓✓".as_bytes()),
            24,
            "bytes above 0x7F need no escape"
        );
    }
}
