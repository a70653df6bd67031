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

use serde::Serialize;

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
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SlaStage {
    Warning(Span),
    Breach,
    Resolved { outcome: Outcome, closed_by: String },
}

/// The two families of alerts.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum AlertKind {
    /// About an instance of a rule.
    Sla { stage: SlaStage, deadline: Millis, started_at: Millis, opened_by: String },
    /// A check failed on one event.
    Violation { event_id: String },
}

/// Values copied from the opening (or checked) event into the alert.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Copied {
    pub order_id: Option<String>,
    pub seller_id: Option<String>,
    pub marketplace: Option<String>,
}

/// One alert, ready to be written.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Alert {
    pub id: String,
    pub kind: AlertKind,
    /// The rule's or the check's name.
    pub name: Arc<str>,
    pub key: String,
    pub time: Millis,
    pub copied: Copied,
    pub texts: Texts,
}

impl Alert {
    /// An alert about an instance; the id is derived here, once.
    pub fn sla(rule: &Arc<str>, key: &str, time: Millis, kind: AlertKind, copied: Copied, texts: &Texts) -> Alert {
        let AlertKind::Sla { stage, opened_by, .. } = &kind else {
            panic!("Alert::sla needs an AlertKind::Sla, got {kind:?}");
        };
        let suffix = match stage {
            SlaStage::Warning(lead) => format!("warning-{}", lead.whole_secs()),
            SlaStage::Breach => "breach".to_string(),
            SlaStage::Resolved { .. } => "resolved".to_string(),
        };
        let id = format!("{rule}:{key}:{opened_by}:{suffix}");
        Alert { id, kind, name: rule.clone(), key: key.to_string(), time, copied, texts: texts.clone() }
    }

    /// A check's violation on one event.
    pub fn violation(check: &Arc<str>, key: &str, event_id: &str, time: Millis, copied: Copied, texts: &Texts) -> Alert {
        Alert {
            id: format!("{check}:{event_id}"),
            kind: AlertKind::Violation { event_id: event_id.to_string() },
            name: check.clone(),
            key: key.to_string(),
            time,
            copied,
            texts: texts.clone(),
        }
    }

    /// `sla.warning`, `sla.breach`, `sla.resolved` or `sla.violation`.
    pub fn event_type(&self) -> &'static str {
        match &self.kind {
            AlertKind::Sla { stage: SlaStage::Warning(_), .. } => "sla.warning",
            AlertKind::Sla { stage: SlaStage::Breach, .. } => "sla.breach",
            AlertKind::Sla { stage: SlaStage::Resolved { .. }, .. } => "sla.resolved",
            AlertKind::Violation { .. } => "sla.violation",
        }
    }

    /// `warning`, `breach`, `resolved` or `violation`.
    pub fn stage(&self) -> &'static str {
        self.event_type().trim_start_matches("sla.")
    }

    fn severity(&self) -> &str {
        match &self.kind {
            AlertKind::Sla { stage: SlaStage::Warning(_), .. } => "warning",
            AlertKind::Sla { stage: SlaStage::Resolved { .. }, .. } => "info",
            _ => &self.texts.severity,
        }
    }

    /// The CloudEvents 1.0 structured-mode JSON object, on one line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.envelope()).expect("an alert always serialises")
    }

    fn envelope(&self) -> Envelope<'_> {
        Envelope {
            specversion: "1.0",
            id: &self.id,
            source: "sla-timerd",
            event_type: self.event_type(),
            time: self.time.to_rfc3339(),
            subject: format!("{}/{}", self.name, self.key),
            datacontenttype: "application/json",
            data: self.data(),
        }
    }

    fn data(&self) -> Data<'_> {
        let is_check = matches!(self.kind, AlertKind::Violation { .. });
        let mut data = Data {
            rule: (!is_check).then_some(&*self.name),
            check: is_check.then_some(&*self.name),
            key: &self.key,
            stage: self.stage(),
            severity: self.severity(),
            action: &self.texts.action,
            order_id: self.copied.order_id.as_deref(),
            seller_id: self.copied.seller_id.as_deref(),
            marketplace: self.copied.marketplace.as_deref(),
            ..Data::default()
        };
        match &self.kind {
            AlertKind::Sla { stage, deadline, started_at, opened_by } => {
                data.deadline = Some(deadline.to_rfc3339());
                data.started_at = Some(started_at.to_rfc3339());
                data.opened_by = Some(opened_by);
                match stage {
                    SlaStage::Warning(lead) => data.lead_seconds = Some(lead.whole_secs()),
                    SlaStage::Breach => {}
                    SlaStage::Resolved { outcome, closed_by } => {
                        data.outcome = Some(outcome.as_str());
                        data.closed_by = Some(closed_by);
                    }
                }
            }
            AlertKind::Violation { event_id } => data.event_id = Some(event_id),
        }
        data
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    specversion: &'static str,
    id: &'a str,
    source: &'static str,
    #[serde(rename = "type")]
    event_type: &'static str,
    time: String,
    subject: String,
    datacontenttype: &'static str,
    data: Data<'a>,
}

#[derive(Serialize, Default)]
struct Data<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<&'a str>,
    key: &'a str,
    stage: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    lead_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    opened_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    closed_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seller_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    marketplace: Option<&'a str>,
    severity: &'a str,
    action: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts() -> Texts {
        Texts { severity: Arc::from("critical"), action: Arc::from("Ship it.") }
    }

    #[test]
    fn a_warning_is_written_as_the_contract_shows() {
        let t = |s| Millis::parse_rfc3339(s).unwrap();
        let kind = AlertKind::Sla {
            stage: SlaStage::Warning(Span::from_secs(14400)),
            deadline: t("2026-11-20T18:00:00Z"),
            started_at: t("2026-11-19T09:12:00Z"),
            opened_by: "evt-17".into(),
        };
        let copied = Copied { order_id: Some("123-4567890-1234567".into()), seller_id: None, marketplace: Some("NL".into()) };
        let a = Alert::sla(&Arc::from("ship_by"), "123-4567890-1234567", t("2026-11-20T14:00:00Z"), kind, copied, &texts());
        assert_eq!(a.id, "ship_by:123-4567890-1234567:evt-17:warning-14400");
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
        let a = Alert::violation(&Arc::from("tracking_missing"), "O-1", "s-9", Millis(0), Copied::default(), &texts());
        assert_eq!(a.id, "tracking_missing:s-9");
        let v: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(v["data"]["check"], "tracking_missing");
        assert_eq!(v["data"]["event_id"], "s-9");
        assert_eq!(v["data"]["stage"], "violation");
        assert!(v["data"].get("rule").is_none());
    }
}
