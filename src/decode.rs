//! Bytes to a typed input event, or a dead letter whose reason a person can act on
//! (contract sections 1, 2 and 5). Pure: no I/O, no clock, no allocation on the common
//! path (text borrows from the record).
//!
//! # Ground rules
//!
//! * Every record decodes to exactly one of [`Decoded::Known`], [`Decoded::Unknown`]
//!   (a well-formed event of a type the engine does not handle: skipped) or
//!   [`Decoded::Dead`]. Nothing panics, whatever the bytes.
//! * The envelope needs `specversion` `"1.0"`, non-empty string `id`, `source`, `type`,
//!   an RFC 3339 `time` with an offset, and an object `data`; other attributes are
//!   carried, not read.
//! * For a known type, each field of its schema ([`EventType::schema`]) is read with the
//!   field's [`Kind`]; `null` is absent; a required field that is absent (or empty text)
//!   and a present field of another JSON type make a dead letter. Fields outside the
//!   schema are ignored.
//! * `fulfillment_channel` defaults to `"MFN"` when absent (contract section 2).
//! * Two readers, one answer: a record in the shape producers send is read in one scan
//!   (`decode_scan.rs`); anything that scan does not vouch for is read by serde_json,
//!   which is the reference, and whose errors become the dead letters' reasons.

use std::borrow::Cow;
use std::fmt;

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::core::event::{
    Currency, Decimal, Event, EventType, Field, Fields, Input, Kind, Money, Presence, Unknown,
    Value, FIELD_COUNT,
};
use crate::core::time::{shorten, Millis};

/// The outcome of decoding one record (unboxed, like [`Input`]).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
pub enum Decoded<'a> {
    Known(Event<'a>),
    Unknown(Unknown<'a>),
    Dead(DeadLetter),
}

impl<'a> Decoded<'a> {
    /// The well-formed input, or the dead letter.
    pub fn into_input(self) -> Result<Input<'a>, DeadLetter> {
        match self {
            Decoded::Known(e) => Ok(Input::Known(e)),
            Decoded::Unknown(u) => Ok(Input::Unknown(u)),
            Decoded::Dead(d) => Err(d),
        }
    }
}

/// Why a record was dead-lettered. `Display` is the sentence written to the dead-letter
/// file or header; [`DeadLetter::class`] is a short fixed label for metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadLetter {
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object: the record is {0}")]
    NotAnObject(&'static str),
    #[error("attribute `{0}` is missing or empty")]
    MissingAttribute(&'static str),
    #[error("attribute `specversion` is {0}, expected \"1.0\"")]
    BadSpecVersion(String),
    #[error("attribute `{attribute}` is {found}, expected {expected}")]
    AttributeType {
        attribute: &'static str,
        found: &'static str,
        expected: &'static str,
    },
    #[error("attribute `time`: {0}")]
    BadTime(String),
    #[error("data: {0}")]
    BadData(String),
    #[error("{event_type}: required field `data.{field}` is missing or empty")]
    MissingField { event_type: EventType, field: Field },
    #[error("{event_type}: field `data.{field}` is {found}, expected {expected}")]
    FieldType {
        event_type: EventType,
        field: Field,
        found: &'static str,
        expected: &'static str,
    },
    #[error("{event_type}: field `data.{field}`: {problem}")]
    BadField {
        event_type: EventType,
        field: Field,
        problem: String,
    },
    /// Live mode only: the event claims a time too far ahead of the wall clock.
    #[error("attribute `time` {time} is {ahead_secs}s ahead of the wall clock, beyond the allowed skew of {skew_secs}s")]
    FromTheFuture {
        time: String,
        ahead_secs: i64,
        skew_secs: i64,
    },
}

impl DeadLetter {
    /// A label from a small fixed set, for metrics.
    /// Every [`Self::class`], for metrics that show each at zero before the first.
    pub const CLASSES: [&'static str; 7] = [
        "not_json_object",
        "bad_envelope",
        "bad_time",
        "bad_data",
        "missing_field",
        "bad_field",
        "from_the_future",
    ];

    pub fn class(&self) -> &'static str {
        match self {
            DeadLetter::NotJson(_) | DeadLetter::NotAnObject(_) => "not_json_object",
            DeadLetter::MissingAttribute(_)
            | DeadLetter::BadSpecVersion(_)
            | DeadLetter::AttributeType { .. } => "bad_envelope",
            DeadLetter::BadTime(_) => "bad_time",
            DeadLetter::BadData(_) => "bad_data",
            DeadLetter::MissingField { .. } => "missing_field",
            DeadLetter::FieldType { .. } | DeadLetter::BadField { .. } => "bad_field",
            DeadLetter::FromTheFuture { .. } => "from_the_future",
        }
    }
}

/// The envelope attributes, raw; `None` only when absent (`null` is kept, to be named).
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow, default, deserialize_with = "keep_null")]
    specversion: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "keep_null")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "keep_null")]
    source: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "type", deserialize_with = "keep_null")]
    event_type: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "keep_null")]
    time: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "raw_data")]
    data: Option<RawData<'a>>,
}

/// A record's envelope attributes and `data` as raw JSON text, however it was read:
/// by the fast path ([`scan`]) or through serde ([`RawEnvelope`]).
#[derive(Default, Debug, PartialEq)]
struct Raw<'a> {
    specversion: Option<&'a str>,
    id: Option<&'a str>,
    source: Option<&'a str>,
    event_type: Option<&'a str>,
    time: Option<&'a str>,
    data: Option<RawData<'a>>,
}

impl<'a> From<RawEnvelope<'a>> for Raw<'a> {
    fn from(env: RawEnvelope<'a>) -> Raw<'a> {
        Raw {
            specversion: env.specversion.map(RawValue::get),
            id: env.id.map(RawValue::get),
            source: env.source.map(RawValue::get),
            event_type: env.event_type.map(RawValue::get),
            time: env.time.map(RawValue::get),
            data: env.data,
        }
    }
}

fn keep_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// `data`, read in the envelope's one pass: an object's known fields left as raw JSON (to
/// be read per schema once the type is known), or the kind of JSON found instead.
/// Unboxed: it lives on the stack for one record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
enum RawData<'a> {
    Object {
        fields: [Option<&'a str>; FIELD_COUNT],
        /// A known field given twice: named as the reason once the type is known.
        duplicate: Option<Field>,
    },
    Not(&'static str),
}

/// Keeps an explicit `null` as `Some(RawData::Not("null"))`, so it can be named.
fn raw_data<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<RawData<'de>>, D::Error> {
    d.deserialize_any(RawDataVisitor).map(Some)
}

struct RawDataVisitor;

impl<'de> Visitor<'de> for RawDataVisitor {
    type Value = RawData<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawData<'de>, A::Error> {
        let (mut fields, mut duplicate) = ([None; FIELD_COUNT], None);
        while let Some(FieldName(field)) = map.next_key()? {
            match field {
                Some(field) => {
                    let value: &RawValue = map.next_value()?;
                    let slot = &mut fields[field.index()];
                    let value = value.get();
                    if slot.is_some() {
                        duplicate.get_or_insert(field);
                    }
                    *slot = Some(value);
                }
                None => _ = map.next_value::<IgnoredAny>()?,
            }
        }
        Ok(RawData::Object { fields, duplicate })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawData<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawData::Not("an array"))
    }

    fn visit_unit<E>(self) -> Result<RawData<'de>, E> {
        Ok(RawData::Not("null"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<RawData<'de>, E> {
        Ok(RawData::Not("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<RawData<'de>, E> {
        Ok(RawData::Not("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<RawData<'de>, E> {
        Ok(RawData::Not("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<RawData<'de>, E> {
        Ok(RawData::Not("a number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<RawData<'de>, E> {
        Ok(RawData::Not("a string"))
    }
}

/// A member name of `data`: the known field it names, if any.
struct FieldName(Option<Field>);

impl<'de> Deserialize<'de> for FieldName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FieldName, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = FieldName;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_str<E>(self, name: &str) -> Result<FieldName, E> {
                Ok(FieldName(Field::from_name(name)))
            }
        }
        d.deserialize_str(NameVisitor)
    }
}

#[derive(Deserialize)]
struct RawMoney<'a> {
    #[serde(borrow, default)]
    amount: Option<&'a RawValue>,
    #[serde(borrow, default)]
    currency: Option<&'a RawValue>,
}

/// Decodes one record (a Kafka value or a JSON Lines line).
pub fn decode(bytes: &[u8]) -> Decoded<'_> {
    match decode_inner(bytes) {
        Ok(decoded) => decoded,
        Err(dead) => Decoded::Dead(dead),
    }
}

fn decode_inner(bytes: &[u8]) -> Result<Decoded<'_>, DeadLetter> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Checked first: serde would read a JSON array positionally into the struct.
        let whole: Result<&RawValue, _> = serde_json::from_slice(bytes);
        return Err(match whole {
            Ok(raw) => DeadLetter::NotAnObject(json_kind(raw.get())),
            Err(_) if bytes.starts_with(b"\xEF\xBB\xBF") => DeadLetter::NotJson(
                "the record starts with a byte order mark (EF BB BF), which JSON does not allow; write the file as UTF-8 without one".into(),
            ),
            Err(e) => DeadLetter::NotJson(e.to_string()),
        });
    }
    // One UTF-8 check of the whole record, then the fast path, or else a serde parse that
    // trusts it (serde_json checks each string of a byte slice on its own, which costs
    // more). Bytes that are not UTF-8 take the byte-slice parse, whose error says where.
    let mut env = Raw::default();
    let read = match std::str::from_utf8(bytes) {
        Ok(text) if scan::scan_into(text, &mut env) => Ok(()),
        Ok(text) => serde_json::from_str::<RawEnvelope>(text).map(|e| env = Raw::from(e)),
        Err(_) => serde_json::from_slice::<RawEnvelope>(bytes).map(|e| env = Raw::from(e)),
    };
    read.map_err(|e| DeadLetter::NotJson(e.to_string()))?;
    let specversion = envelope_text(env.specversion, "specversion")?;
    if specversion != "1.0" {
        return Err(DeadLetter::BadSpecVersion(format!(
            "\"{}\"",
            shorten(&specversion)
        )));
    }
    let id = envelope_text(env.id, "id")?;
    let source = envelope_text(env.source, "source")?;
    let type_name = envelope_text(env.event_type, "type")?;
    let time_text = envelope_text(env.time, "time")?;
    let time = Millis::parse_rfc3339(&time_text).map_err(|e| DeadLetter::BadTime(e.0))?;
    let (raw, duplicate) = match env
        .data
        .as_ref()
        .ok_or(DeadLetter::MissingAttribute("data"))?
    {
        RawData::Object { fields, duplicate } => (fields, *duplicate),
        RawData::Not(kind) => {
            return Err(DeadLetter::BadData(format!(
                "is {kind}, expected an object"
            )))
        }
    };
    let Some(event_type) = EventType::from_name(&type_name) else {
        return Ok(Decoded::Unknown(Unknown {
            source,
            id,
            type_name,
            time,
        }));
    };
    if let Some(field) = duplicate {
        return Err(DeadLetter::BadData(format!(
            "duplicate field `{}`",
            field.as_str()
        )));
    }
    let data = decode_data(event_type, raw)?;
    Ok(Decoded::Known(Event {
        source,
        id,
        event_type,
        time,
        data,
    }))
}

fn envelope_text<'a>(
    raw: Option<&'a str>,
    attribute: &'static str,
) -> Result<Cow<'a, str>, DeadLetter> {
    let raw = raw.ok_or(DeadLetter::MissingAttribute(attribute))?;
    match text(raw) {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(DeadLetter::MissingAttribute(attribute)),
        Err(found) => Err(DeadLetter::AttributeType {
            attribute,
            found,
            expected: "a string",
        }),
    }
}

fn decode_data<'a>(
    event_type: EventType,
    raw: &[Option<&'a str>; FIELD_COUNT],
) -> Result<Fields<'a>, DeadLetter> {
    let mut fields = Fields::default();
    for (field, presence) in event_type.schema() {
        let value = match raw[field.index()] {
            Some(raw) => read_field(event_type, field, raw)?,
            None => Value::Absent,
        };
        let value = match value {
            Value::Absent if field == Field::FulfillmentChannel => {
                Value::Text(Cow::Borrowed("MFN"))
            }
            Value::Absent if presence == Presence::Required => {
                return Err(DeadLetter::MissingField { event_type, field })
            }
            v => v,
        };
        fields.set(field, value);
    }
    Ok(fields)
}

fn read_field<'a>(
    event_type: EventType,
    field: Field,
    raw: &'a str,
) -> Result<Value<'a>, DeadLetter> {
    let wrong = |found, expected| DeadLetter::FieldType {
        event_type,
        field,
        found,
        expected,
    };
    let bad = |problem: String| DeadLetter::BadField {
        event_type,
        field,
        problem,
    };
    if raw == "null" {
        return Ok(Value::Absent);
    }
    Ok(match field.kind() {
        Kind::Text => text(raw)
            .map_err(|found| wrong(found, "a string"))?
            .map_or(Value::Absent, Value::Text),
        Kind::Flag => match raw {
            "true" => Value::Flag(true),
            "false" => Value::Flag(false),
            _ => return Err(wrong(json_kind(raw), "a boolean")),
        },
        Kind::Instant => match text(raw).map_err(|found| wrong(found, "an RFC 3339 string"))? {
            Some(t) => Value::Instant(Millis::parse_rfc3339(&t).map_err(|e| bad(e.0))?),
            None => Value::Absent,
        },
        Kind::Number => Value::Number(decimal(raw).map_err(bad)?),
        Kind::Money => Value::Money(money(raw).map_err(bad)?),
    })
}

/// A decimal string or a JSON number.
fn decimal(raw: &str) -> Result<Decimal, String> {
    let kind = json_kind(raw);
    let digits = match kind {
        "a number" => Cow::Borrowed(raw),
        "a string" => text(raw).ok().flatten().unwrap_or_default(),
        other => return Err(format!("is {other}, expected a decimal string or a number")),
    };
    Decimal::parse(&digits).ok_or_else(|| format!("`{}` is not a decimal number", shorten(&digits)))
}

fn money(raw: &str) -> Result<Money, String> {
    if json_kind(raw) != "an object" {
        return Err(format!(
            "is {}, expected an object with `amount` and `currency`",
            json_kind(raw)
        ));
    }
    let parts: RawMoney = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    let amount = parts
        .amount
        .map(RawValue::get)
        .filter(|&a| a != "null")
        .ok_or("`amount` is missing")?;
    let amount = decimal(amount).map_err(|e| format!("`amount` {e}"))?;
    let currency = parts
        .currency
        .map(|c| text(c.get()))
        .and_then(|t| t.ok().flatten())
        .ok_or("`currency` is missing or not a string")?;
    let currency = Currency::parse(&currency).ok_or_else(|| {
        format!(
            "`currency` `{}` is not an ISO 4217 code",
            shorten(&currency)
        )
    })?;
    Ok(Money { amount, currency })
}

/// A JSON string's text (`None` when empty after trimming), or the kind found instead;
/// `json` is valid JSON.
fn text(json: &str) -> Result<Option<Cow<'_, str>>, &'static str> {
    if !json.starts_with('"') {
        return Err(json_kind(json));
    }
    let inner = &json[1..json.len() - 1];
    let value = if inner.contains('\\') {
        Cow::Owned(serde_json::from_str::<String>(json).map_err(|_| "a malformed string")?)
    } else {
        Cow::Borrowed(inner)
    };
    Ok(if value.trim().is_empty() {
        None
    } else {
        Some(value)
    })
}

/// "a string", "a number", ... for messages; `raw` is valid JSON by construction.
fn json_kind(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't') | Some(b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[path = "decode_scan.rs"]
mod scan;

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
