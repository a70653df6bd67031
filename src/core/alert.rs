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

/// An alert as the engine emits it, borrowed from the engine's state for the duration
/// of one [`super::effect::Sink::emit`] call: written out from there without an owned
/// copy (replay), or turned into an [`Alert`] by a sink that keeps it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AlertRef<'a> {
    /// The id (see the module doc).
    pub id: &'a str,
    pub key: &'a str,
    /// The opening event's id (SLA alerts) or the checked event's id (violations).
    event: &'a str,
    /// The closing event of a resolution.
    pub closed_by: Option<&'a str>,
    pub copied: Copied<'a>,
    pub kind: AlertKind,
    /// The rule's or the check's name.
    pub name: &'a Arc<str>,
    pub time: Millis,
    pub texts: &'a Texts,
}

/// Appends an SLA alert's id to `out`: `{rule}:{key}:{opened_by}:` and `warning-{lead
/// seconds}`, `breach` or `resolved`.
pub fn write_sla_id(out: &mut String, rule: &str, key: &str, opened_by: &str, stage: SlaStage) {
    for part in [rule, ":", key, ":", opened_by, ":"] {
        out.push_str(part);
    }
    match stage {
        SlaStage::Warning(lead) => {
            out.push_str("warning-");
            out.push_str(decimal(lead.whole_secs(), &mut [0; 20]));
        }
        SlaStage::Breach => out.push_str("breach"),
        SlaStage::Resolved(_) => out.push_str("resolved"),
    }
}

/// Appends a violation's id to `out`: `{check}:{event id}`.
pub fn write_violation_id(out: &mut String, check: &str, event_id: &str) {
    for part in [check, ":", event_id] {
        out.push_str(part);
    }
}

impl<'a> AlertRef<'a> {
    /// An alert about an instance of `rule` opened by `opened_by`, whose `id` is
    /// [`write_sla_id`]'s; `closed_by` is the closing event of a resolution.
    #[allow(clippy::too_many_arguments)]
    pub fn sla(
        id: &'a str,
        rule: &'a Arc<str>,
        key: &'a str,
        opened_by: &'a str,
        closed_by: Option<&'a str>,
        time: Millis,
        kind: AlertKind,
        copied: Copied<'a>,
        texts: &'a Texts,
    ) -> AlertRef<'a> {
        assert!(
            matches!(kind, AlertKind::Sla { .. }),
            "AlertRef::sla needs an AlertKind::Sla, got {kind:?}"
        );
        AlertRef {
            id,
            key,
            event: opened_by,
            closed_by,
            copied,
            kind,
            name: rule,
            time,
            texts,
        }
    }

    /// A check's violation on one event, whose `id` is [`write_violation_id`]'s.
    pub fn violation(
        id: &'a str,
        check: &'a Arc<str>,
        key: &'a str,
        event_id: &'a str,
        time: Millis,
        copied: Copied<'a>,
        texts: &'a Texts,
    ) -> AlertRef<'a> {
        AlertRef {
            id,
            key,
            event: event_id,
            closed_by: None,
            copied,
            kind: AlertKind::Violation,
            name: check,
            time,
            texts,
        }
    }

    /// The event that opened the instance (SLA alerts).
    pub fn opened_by(&self) -> Option<&'a str> {
        matches!(self.kind, AlertKind::Sla { .. }).then_some(self.event)
    }

    /// The checked event (violations).
    pub fn event_id(&self) -> Option<&'a str> {
        matches!(self.kind, AlertKind::Violation).then_some(self.event)
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

    fn severity(&self) -> &'a str {
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

    /// An owned copy, for a sink that keeps the alert.
    pub fn to_alert(&self) -> Alert {
        let parts = [
            Some(self.id),
            Some(self.key),
            Some(self.event),
            self.closed_by,
            self.copied.order_id,
            self.copied.seller_id,
            self.copied.marketplace,
        ];
        let len = parts.iter().flatten().map(|p| p.len()).sum();
        let mut text = String::with_capacity(len);
        let mut spans = [(0, 0); 7];
        for (part, span) in parts.iter().zip(&mut spans) {
            let at = text.len() as u32;
            text.push_str(part.unwrap_or_default());
            *span = (at, text.len() as u32);
        }
        Alert {
            text,
            spans,
            kind: self.kind,
            name: self.name.clone(),
            time: self.time,
            texts: self.texts.clone(),
        }
    }

    /// The CloudEvents 1.0 structured-mode JSON object, on one line.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(640);
        self.write_json(&mut out);
        String::from_utf8(out).expect("written from str and ASCII")
    }

    /// Appends [`Self::to_json`]'s text to `out`: written field by field (alerts are the
    /// output's bulk), in the order of contract section 8, absent (or empty) fields left
    /// out, as an [`Alert`]'s are.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let copied = [
            (&br#","order_id":"#[..], self.copied.order_id),
            (br#","seller_id":"#, self.copied.seller_id),
            (br#","marketplace":"#, self.copied.marketplace),
        ];
        let texts_len = self.id.len()
            + self.name.len() * 2
            + self.key.len() * 2
            + self.event.len()
            + self.closed_by.map_or(0, str::len)
            + copied
                .iter()
                .filter_map(|(_, v)| *v)
                .map(str::len)
                .sum::<usize>()
            + self.texts.action.len();
        out.reserve(texts_len + 512);
        out.extend_from_slice(br#"{"specversion":"1.0","id":"#);
        json_str(out, self.id);
        out.extend_from_slice(br#","source":"sla-timerd","type":""#);
        out.extend_from_slice(self.event_type().as_bytes());
        out.extend_from_slice(br#"","time":"#);
        json_time(out, self.time);
        out.extend_from_slice(br#","subject":""#);
        json_str_body(out, self.name);
        out.push(b'/');
        json_str_body(out, self.key);
        out.extend_from_slice(br#"","datacontenttype":"application/json","data":{"#);
        match self.kind {
            AlertKind::Violation => out.extend_from_slice(br#""check":"#),
            AlertKind::Sla { .. } => out.extend_from_slice(br#""rule":"#),
        }
        json_str(out, self.name);
        out.extend_from_slice(br#","key":"#);
        json_str(out, self.key);
        out.extend_from_slice(br#","stage":""#);
        out.extend_from_slice(self.stage().as_bytes());
        out.push(b'"');
        match self.kind {
            AlertKind::Sla {
                stage,
                deadline,
                started_at,
            } => {
                if let SlaStage::Warning(lead) = stage {
                    out.extend_from_slice(br#","lead_seconds":"#);
                    json_int(out, lead.whole_secs());
                }
                if let SlaStage::Resolved(outcome) = stage {
                    out.extend_from_slice(br#","outcome":""#);
                    out.extend_from_slice(outcome.as_str().as_bytes());
                    out.push(b'"');
                }
                out.extend_from_slice(br#","deadline":"#);
                json_time(out, deadline);
                out.extend_from_slice(br#","started_at":"#);
                json_time(out, started_at);
                out.extend_from_slice(br#","opened_by":"#);
                json_str(out, self.event);
                if let Some(closed_by) = self.closed_by.filter(|c| !c.is_empty()) {
                    out.extend_from_slice(br#","closed_by":"#);
                    json_str(out, closed_by);
                }
            }
            AlertKind::Violation => {
                out.extend_from_slice(br#","event_id":"#);
                json_str(out, self.event);
            }
        }
        for (name, value) in copied {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                out.extend_from_slice(name);
                json_str(out, value);
            }
        }
        out.extend_from_slice(br#","severity":"#);
        json_str(out, self.severity());
        out.extend_from_slice(br#","action":"#);
        json_str(out, &self.texts.action);
        out.extend_from_slice(b"}}");
    }
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

/// An alert kept past the engine's call ([`AlertRef::to_alert`]). Its texts share one
/// allocation: the id, the key, the event id, the closing event id and the copied
/// values; `spans` says where each is.
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
        let mut id = String::new();
        write_sla_id(&mut id, rule, key, opened_by, stage);
        AlertRef::sla(
            &id, rule, key, opened_by, closed_by, time, kind, copied, texts,
        )
        .to_alert()
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
        let mut id = String::new();
        write_violation_id(&mut id, check, event_id);
        AlertRef::violation(&id, check, key, event_id, time, copied, texts).to_alert()
    }

    /// The borrowed form, which writes the JSON.
    pub fn as_ref(&self) -> AlertRef<'_> {
        AlertRef {
            id: self.part(ID).unwrap_or_default(),
            key: self.part(KEY).unwrap_or_default(),
            event: self.part(EVENT).unwrap_or_default(),
            closed_by: self.part(CLOSED_BY),
            copied: self.copied(),
            kind: self.kind,
            name: &self.name,
            time: self.time,
            texts: &self.texts,
        }
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
        self.as_ref().opened_by()
    }

    /// The event that closed the instance (resolutions).
    pub fn closed_by(&self) -> Option<&str> {
        self.part(CLOSED_BY)
    }

    /// The checked event (violations).
    pub fn event_id(&self) -> Option<&str> {
        self.as_ref().event_id()
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
        self.as_ref().event_type()
    }

    /// `warning`, `breach`, `resolved` or `violation`.
    pub fn stage(&self) -> &'static str {
        self.as_ref().stage()
    }

    /// The CloudEvents 1.0 structured-mode JSON object, on one line.
    pub fn to_json(&self) -> String {
        self.as_ref().to_json()
    }

    /// Appends [`Self::to_json`]'s text to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.as_ref().write_json(out)
    }
}

/// A JSON integer, written without a temporary string.
fn json_int(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(decimal(value, &mut [0; 20]).as_bytes());
}

/// `value` in decimal, written at the end of `buf` (20 bytes hold any `i64`).
fn decimal(value: i64, buf: &mut [u8; 20]) -> &str {
    let mut n = value.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if value < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    std::str::from_utf8(&buf[at..]).expect("ASCII digits")
}

/// A JSON string, escaped as serde_json does: `"` and `\` with a backslash, control
/// characters as `\n`-style or `\u00XX` escapes, the rest as is.
fn json_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    json_str_body(out, text);
    out.push(b'"');
}

/// [`json_str`] without the quotes.
fn json_str_body(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let clean = plain_prefix_len(bytes);
    if clean == bytes.len() {
        out.extend_from_slice(bytes);
        return;
    }
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

/// The length of the longest prefix with nothing to escape (no `"`, `\` or control
/// character): checked a word of 8 bytes at a time, since alert text almost never needs
/// escaping, then byte by byte.
fn plain_prefix_len(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH != 0;
    let mut i = 0;
    while let Some(word) = bytes.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
        if control
            || has_zero(w ^ (ONES * u64::from(b'"')))
            || has_zero(w ^ (ONES * u64::from(b'\\')))
        {
            break;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b < 0x20 || b == b'"' || b == b'\\' {
            break;
        }
        i += 1;
    }
    i
}

fn json_time(out: &mut Vec<u8>, t: Millis) {
    match t.rfc3339_bytes() {
        Some(bytes) => {
            out.push(b'"');
            out.extend_from_slice(&bytes);
            out.push(b'"');
        }
        None => json_str(out, &t.to_rfc3339()),
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
    fn integers_are_written_in_decimal_whatever_their_size() {
        for v in [0, 7, -7, 14_400, i64::MAX, i64::MIN] {
            assert_eq!(decimal(v, &mut [0; 20]), v.to_string());
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
    fn an_empty_copied_value_is_left_out_as_an_owned_alert_leaves_it() {
        let copied = Copied {
            order_id: Some(""),
            seller_id: None,
            marketplace: Some("NL"),
        };
        let (check, texts) = (Arc::from("c"), texts());
        let borrowed = AlertRef::violation("c:e", &check, "K", "e", Millis(0), copied, &texts);
        assert_eq!(borrowed.to_json(), borrowed.to_alert().to_json());
        assert!(!borrowed.to_json().contains("order_id"));
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
    fn the_plain_prefix_stops_at_the_first_escape() {
        assert_eq!(plain_prefix_len(b"abcdefghijklmnopq"), 17);
        for (i, special) in [b'"', b'\\', b'\n', 0x00, 0x1F].into_iter().enumerate() {
            for at in [0, 3, 9 + i, 23] {
                let mut text = *b"abcdefghijklmnopqrstuvwx";
                text[at] = special;
                assert_eq!(plain_prefix_len(&text), at, "{special:#x} at {at}");
            }
        }
        let text = "ééééééééé ✓✓✓✓";
        assert_eq!(
            plain_prefix_len(text.as_bytes()),
            text.len(),
            "bytes above 0x7F need no escape"
        );
    }
}
