//! Kafka records in and out (pure): CloudEvents binary mode to structured JSON, alert
//! and dead-letter records.
//!
//! # Ground rules
//!
//! * A record whose value is a JSON object with `specversion` is in CloudEvents
//!   *structured* mode: the value is the whole event, whatever the headers say.
//! * Otherwise, a record with a `ce_specversion` header is in *binary* mode: the `ce_*`
//!   headers are the attributes and the value is `data`. It is turned into the
//!   structured form and decoded like any other record, so both modes meet exactly the
//!   same checks. Any other record is decoded as structured mode (and dead-lettered
//!   with that reason). Looking at the value first spares reading the headers of every
//!   record, which costs librdkafka a parse and an allocation each.
//! * Dead letters keep the original value and key untouched; the reason, its class, and
//!   the source topic, partition and offset travel as headers.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::decode::{DeadLetter, Decoded};

/// Whether a value that failed as a structured event failed in a way binary mode
/// explains (not a JSON object, or one without `specversion`), so that the record's
/// headers are worth reading.
pub fn may_be_binary_mode(decoded: &Decoded<'_>) -> bool {
    matches!(
        decoded,
        Decoded::Dead(
            DeadLetter::NotJson(_)
                | DeadLetter::NotAnObject(_)
                | DeadLetter::MissingAttribute("specversion")
        )
    )
}

/// Header prefix of CloudEvents binary mode (Kafka protocol binding).
const CE_PREFIX: &str = "ce_";

/// The event as structured JSON bytes: the value itself, or built from binary-mode
/// headers. `None` when the record is structured mode (decode the value as it is).
pub fn binary_to_structured<'h>(
    headers: impl Iterator<Item = (&'h str, Option<&'h [u8]>)>,
    value: &[u8],
) -> Option<Vec<u8>> {
    let mut attributes = Map::new();
    for (name, v) in headers {
        if let Some(attribute) = name.strip_prefix(CE_PREFIX) {
            let text = String::from_utf8_lossy(v.unwrap_or_default()).into_owned();
            attributes.insert(attribute.to_string(), Value::String(text));
        }
    }
    if !attributes.contains_key("specversion") {
        return None;
    }
    let data = match std::str::from_utf8(value)
        .ok()
        .and_then(|s| serde_json::from_str::<Box<RawValue>>(s).ok())
    {
        Some(raw) => serde_json::to_value(raw).unwrap_or(Value::Null),
        None => Value::String(String::from_utf8_lossy(value).into_owned()),
    };
    attributes.insert("data".into(), data);
    Some(serde_json::to_vec(&Value::Object(attributes)).expect("a JSON value serialises"))
}

/// Headers of a dead-letter record.
pub fn dead_letter_headers(
    reason: &str,
    class: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> [(&'static str, String); 5] {
    [
        ("sla_dead_letter_reason", reason.to_string()),
        ("sla_dead_letter_class", class.to_string()),
        ("sla_source_topic", topic.to_string()),
        ("sla_source_partition", partition.to_string()),
        ("sla_source_offset", offset.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;

    #[test]
    fn a_binary_mode_record_decodes_like_its_structured_twin() {
        let headers = [
            ("ce_specversion", Some(&b"1.0"[..])),
            ("ce_id", Some(&b"m-1"[..])),
            ("ce_source", Some(&b"helpdesk"[..])),
            ("ce_type", Some(&b"customer_message.received"[..])),
            ("ce_time", Some(&b"2026-11-02T09:00:00Z"[..])),
            ("content-type", Some(&b"application/json"[..])),
        ];
        let bytes = binary_to_structured(headers.into_iter(), br#"{"thread_id":"T-1"}"#).unwrap();
        match decode(&bytes) {
            Decoded::Known(e) => assert_eq!(e.id, "m-1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_record_without_ce_headers_is_structured_mode() {
        assert_eq!(
            binary_to_structured([("content-type", Some(&b"x"[..]))].into_iter(), b"{}"),
            None
        );
    }

    #[test]
    fn headers_are_read_only_for_values_that_are_not_structured_events() {
        let structured = br#"{"specversion":"1.0","id":"m-1","source":"s","type":"customer_message.received","time":"2026-11-02T09:00:00Z","data":{"thread_id":"T-1"}}"#;
        assert!(!may_be_binary_mode(&decode(structured)));
        // A structured event with a problem is dead-lettered as one, headers or not.
        assert!(!may_be_binary_mode(&decode(
            br#"{"specversion":"1.0","source":"s"}"#
        )));
        for binary_data in [
            &br#"{"thread_id":"T-1"}"#[..],
            b"not json",
            b"[1, 2]",
            b"\"text\"",
        ] {
            assert!(
                may_be_binary_mode(&decode(binary_data)),
                "{}",
                String::from_utf8_lossy(binary_data)
            );
        }
    }

    #[test]
    fn binary_mode_data_that_is_not_json_becomes_a_dead_letter() {
        let headers = [
            ("ce_specversion", Some(&b"1.0"[..])),
            ("ce_id", Some(&b"x"[..])),
        ];
        let bytes = binary_to_structured(headers.into_iter(), b"not json").unwrap();
        assert!(matches!(decode(&bytes), Decoded::Dead(_)));
    }
}
