//! One test per bad-input class of contract section 5, and the happy paths.

use super::*;

fn event(type_name: &str, data: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"e-1","source":"test","type":"{type_name}","time":"2026-11-02T10:00:00Z","data":{data}}}"#
    )
}

fn dead(line: &str) -> DeadLetter {
    match decode(line.as_bytes()) {
        Decoded::Dead(d) => d,
        other => panic!("expected a dead letter for {line}, got {other:?}"),
    }
}

fn known(line: &str) -> Event<'_> {
    match decode(line.as_bytes()) {
        Decoded::Known(e) => e,
        other => panic!("expected a known event for {line}, got {other:?}"),
    }
}

#[test]
fn a_well_formed_event_decodes_with_borrowed_text() {
    let line = event(
        "customer_message.received",
        r#"{"thread_id":"T-1","marketplace":"NL"}"#,
    );
    let e = known(&line);
    assert_eq!(e.event_type, EventType::MessageReceived);
    assert_eq!(e.data.text(Field::ThreadId), Some("T-1"));
    assert_eq!(e.data.text(Field::Marketplace), Some("NL"));
    assert!(matches!(e.id, Cow::Borrowed("e-1")));
    assert_eq!(
        e.time,
        Millis::parse_rfc3339("2026-11-02T10:00:00Z").unwrap()
    );
}

#[test]
fn text_that_is_not_json_is_dead_lettered() {
    assert!(matches!(dead("not even json"), DeadLetter::NotJson(_)));
    assert!(matches!(dead(""), DeadLetter::NotJson(_)));
    assert!(matches!(dead("{\"specversion\":"), DeadLetter::NotJson(_)));
}

#[test]
fn json_that_is_not_an_object_is_dead_lettered() {
    assert_eq!(dead("[1,2]"), DeadLetter::NotAnObject("an array"));
    assert_eq!(dead("42"), DeadLetter::NotAnObject("a number"));
}

#[test]
fn a_specversion_other_than_1_0_is_dead_lettered() {
    let line = event("order.cancelled", r#"{"order_id":"O"}"#).replace("\"1.0\"", "\"0.3\"");
    assert!(matches!(dead(&line), DeadLetter::BadSpecVersion(_)));
}

#[test]
fn a_missing_or_empty_envelope_attribute_is_dead_lettered() {
    let line = event("order.cancelled", r#"{"order_id":"O"}"#);
    for attribute in ["id", "source", "type", "time"] {
        let removed = line.replacen(&format!("\"{attribute}\":"), "\"ignored\":", 1);
        assert_eq!(
            dead(&removed),
            DeadLetter::MissingAttribute(attribute),
            "{attribute}"
        );
    }
    let empty_id = line.replace("\"e-1\"", "\"  \"");
    assert_eq!(dead(&empty_id), DeadLetter::MissingAttribute("id"));
}

#[test]
fn an_envelope_attribute_of_another_type_is_dead_lettered() {
    let line = event("order.cancelled", r#"{"order_id":"O"}"#).replace("\"e-1\"", "17");
    assert!(matches!(
        dead(&line),
        DeadLetter::AttributeType {
            attribute: "id",
            found: "a number",
            ..
        }
    ));
}

#[test]
fn an_unparseable_or_offsetless_time_is_dead_lettered() {
    let line = event("order.cancelled", r#"{"order_id":"O"}"#);
    assert!(matches!(
        dead(&line.replace("2026-11-02T10:00:00Z", "tomorrow")),
        DeadLetter::BadTime(_)
    ));
    assert!(matches!(
        dead(&line.replace("2026-11-02T10:00:00Z", "2026-11-02T10:00:00")),
        DeadLetter::BadTime(_)
    ));
}

#[test]
fn data_that_is_missing_or_not_an_object_is_dead_lettered() {
    let line = event("order.cancelled", "[]");
    assert!(matches!(dead(&line), DeadLetter::BadData(_)));
    let line = event("order.cancelled", "null");
    assert!(matches!(dead(&line), DeadLetter::BadData(_)));
    let no_data = r#"{"specversion":"1.0","id":"e","source":"s","type":"order.cancelled","time":"2026-11-02T10:00:00Z"}"#;
    assert_eq!(dead(no_data), DeadLetter::MissingAttribute("data"));
    for (data, kind) in [
        ("true", "a boolean"),
        ("7", "a number"),
        (r#""x""#, "a string"),
        ("[1,[2]]", "an array"),
    ] {
        assert_eq!(
            dead(&event("order.cancelled", data)),
            DeadLetter::BadData(format!("is {kind}, expected an object"))
        );
    }
}

#[test]
fn a_field_given_twice_in_data_is_dead_lettered_by_name() {
    let line = event(
        "order.cancelled",
        r#"{"order_id":"O-1","reason":"x","order_id":"O-2"}"#,
    );
    assert_eq!(
        dead(&line),
        DeadLetter::BadData("duplicate field `order_id`".into())
    );
    let line = event(
        "order.cancelled",
        r#"{"order_id":"O-1","extra":1,"extra":2,"o\u0072der_id2":3}"#,
    );
    assert!(
        !matches!(decode(line.as_bytes()), Decoded::Dead(_)),
        "unknown members may repeat"
    );
}

#[test]
fn a_known_type_missing_a_required_field_is_dead_lettered() {
    let line = event("order.placed", r#"{"order_id":"O-1"}"#);
    let d = dead(&line);
    assert_eq!(
        d,
        DeadLetter::MissingField {
            event_type: EventType::OrderPlaced,
            field: Field::LatestShipDate
        }
    );
    assert_eq!(
        d.to_string(),
        "order.placed: required field `data.latest_ship_date` is missing or empty"
    );
}

#[test]
fn a_required_text_field_that_is_blank_counts_as_missing() {
    let line = event("customer_message.received", r#"{"thread_id":"  "}"#);
    assert!(matches!(
        dead(&line),
        DeadLetter::MissingField {
            field: Field::ThreadId,
            ..
        }
    ));
}

#[test]
fn a_field_of_the_wrong_json_type_is_dead_lettered() {
    for data in [
        r#"{"thread_id":17}"#,
        r#"{"thread_id":"T","order_id":["x"]}"#,
        r#"{"thread_id":"T","marketplace":true}"#,
    ] {
        let line = event("customer_message.received", data);
        assert!(
            matches!(dead(&line), DeadLetter::FieldType { .. }),
            "{data}"
        );
    }
    let flag = event(
        "return.authorized",
        r#"{"return_id":"R","order_id":"O","item_return_required":"yes"}"#,
    );
    assert!(matches!(
        dead(&flag),
        DeadLetter::FieldType {
            field: Field::ItemReturnRequired,
            ..
        }
    ));
}

#[test]
fn a_bad_timestamp_or_amount_in_data_is_dead_lettered() {
    let ship = event(
        "order.placed",
        r#"{"order_id":"O","latest_ship_date":"soon"}"#,
    );
    assert!(matches!(
        dead(&ship),
        DeadLetter::BadField {
            field: Field::LatestShipDate,
            ..
        }
    ));
    let total = r#"{"order_id":"O","latest_ship_date":"2026-11-03T10:00:00Z","order_total":{"amount":"lots","currency":"EUR"}}"#;
    assert!(matches!(
        dead(&event("order.placed", total)),
        DeadLetter::BadField {
            field: Field::OrderTotal,
            ..
        }
    ));
    let refund = event("refund.issued", r#"{"order_id":"O","amount":{}}"#);
    assert!(matches!(
        dead(&refund),
        DeadLetter::BadField {
            field: Field::Amount,
            ..
        }
    ));
}

#[test]
fn optional_fields_may_be_absent_or_null() {
    let line = event(
        "shipment.confirmed",
        r#"{"order_id":"O","tracking_number":null,"carrier":null}"#,
    );
    let e = known(&line);
    assert_eq!(e.data.get(Field::TrackingNumber), &Value::Absent);
    assert_eq!(e.data.get(Field::SignatureConfirmation), &Value::Absent);
}

#[test]
fn the_fulfillment_channel_defaults_to_mfn() {
    let line = event(
        "order.placed",
        r#"{"order_id":"O","latest_ship_date":"2026-11-03T10:00:00Z"}"#,
    );
    let e = known(&line);
    assert_eq!(e.data.text(Field::FulfillmentChannel), Some("MFN"));
}

#[test]
fn an_order_total_reads_string_and_number_amounts() {
    let data = r#"{"order_id":"O","latest_ship_date":"2026-11-03T10:00:00Z","order_total":{"amount":899.5,"currency":"EUR"}}"#;
    let line = event("order.placed", data);
    let e = known(&line);
    let money = e.data.money(Field::OrderTotal).unwrap();
    assert_eq!(money.amount, Decimal::parse("899.50").unwrap());
    assert_eq!(money.currency.as_str(), "EUR");
}

#[test]
fn an_unknown_type_is_well_formed_but_unknown() {
    let line = event("inventory.adjusted", r#"{"sku":"A"}"#);
    assert!(matches!(
        decode(line.as_bytes()),
        Decoded::Unknown(Unknown { .. })
    ));
}

#[test]
fn escaped_strings_are_unescaped() {
    let line = event("customer_message.received", r#"{"thread_id":"T\u002d1"}"#);
    let e = known(&line);
    assert_eq!(e.data.text(Field::ThreadId), Some("T-1"));
}

#[test]
fn invalid_utf8_is_dead_lettered_not_a_panic() {
    let mut bytes = event("order.cancelled", r#"{"order_id":"O"}"#).into_bytes();
    let at = bytes.iter().position(|b| *b == b'O').unwrap();
    bytes[at] = 0xff;
    assert!(matches!(
        decode(&bytes),
        Decoded::Dead(DeadLetter::NotJson(_))
    ));
}

mod fast_path {
    //! The fast path against serde's: whenever [`scan::scan`] answers, serde's derived
    //! reader reads the same raw texts; and it answers for what producers send.
    use super::*;
    use proptest::prelude::*;

    /// Serde's reading of a UTF-8 record, as the fast path's type.
    fn serde_raw(text: &str) -> Option<Raw<'_>> {
        serde_json::from_str::<RawEnvelope>(text)
            .map(Raw::from)
            .ok()
    }

    /// Pieces of JSON and near-JSON, valid and not.
    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            4 => Just("null".to_string()),
            4 => Just("true".to_string()),
            4 => Just("false".to_string()),
            1 => Just("nul".to_string()),
            1 => Just("tru".to_string()),
            20 => "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
            2 => "-?0[0-9]|1\\.|\\.5|\\+1|1e|-|1e400|0x1",
            40 => "\"[a-zA-Z0-9 :._-]{0,12}\"",
            4 => "\"[a-z\\\\\"\\t\\u{1}é✓/]{0,6}\"",
            1 => Just("\"unterminated".to_string()),
            10 => Just("\"2026-11-02T10:00:00Z\"".to_string()),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                8 => prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
                8 => prop::collection::vec(("[a-z_]{1,8}|thread_id|order_id|amount|currency", inner), 0..4)
                    .prop_map(|m| {
                        let members: Vec<String> =
                            m.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                        format!("{{{}}}", members.join(","))
                    }),
                1 => Just("[1,]".to_string()),
                1 => Just("{\"a\":1,}".to_string()),
            ]
        })
    }

    fn member() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            Just("specversion"),
            Just("id"),
            Just("source"),
            Just("type"),
            Just("time"),
            Just("data"),
            Just("datacontenttype"),
            Just("subject"),
            Just("i\\u0064"),
            Just("Data"),
            Just("specversion"),
            Just("id"),
            Just("type"),
            Just("time"),
            Just("data"),
        ];
        let data = prop::collection::vec(
            (
                prop_oneof![
                    Just("thread_id"),
                    Just("order_id"),
                    Just("seller_id"),
                    Just("marketplace"),
                    Just("order_total"),
                    Just("other"),
                    Just("thread\\u005fid"),
                ],
                value(),
            ),
            0..5,
        )
        .prop_map(|m| {
            let members: Vec<String> = m
                .into_iter()
                .map(|(k, v)| format!("\"{k}\" : {v}"))
                .collect();
            format!("{{ {} }}", members.join(" ,"))
        });
        (name, prop_oneof![1 => value(), 2 => data]).prop_map(|(n, v)| format!("\"{n}\":{v}"))
    }

    fn record() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(member(), 0..9),
            prop_oneof![6 => Just(""), 1 => Just(" "), 1 => Just("\t\r\n"), 1 => Just("\u{c}")],
            prop_oneof![6 => Just(""), 2 => Just(" "), 1 => Just(" x"), 1 => Just("}"), 1 => Just(",")],
        )
            .prop_map(|(members, lead, tail)| format!("{lead}{{{}}}{tail}", members.join(",")))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn whenever_the_fast_path_answers_serde_reads_the_same(line in record()) {
            if let Some(fast) = scan::scan(&line) {
                prop_assert_eq!(Some(fast), serde_raw(&line), "{}", line);
            }
        }
    }

    #[test]
    fn producers_records_take_the_fast_path() {
        let lines = [
            event(
                "customer_message.received",
                r#"{"thread_id":"T-1","marketplace":"NL"}"#,
            ),
            event(
                "order.placed",
                r#"{"order_id":"1","order_total":{"amount":"12.50","currency":"EUR"},"n":[1,{"x":null}]}"#,
            ),
            format!(" {} ", event("x.y", "{}")),
        ];
        for line in &lines {
            let fast = scan::scan(line);
            assert!(fast.is_some(), "{line}");
            assert_eq!(fast, serde_raw(line));
        }
        for line in [
            event("a", r#"{"thread_id":"T\"1"}"#),
            r#"{"id":"a","id":"b"}"#.to_string(),
            event("a", "[]"),
            format!("{} x", event("a", "{}")),
        ] {
            assert_eq!(scan::scan(&line), None, "{line}");
        }
    }
}

#[test]
fn a_byte_order_mark_is_named_as_the_reason() {
    let line = format!(
        "\u{feff}{}",
        event(
            "customer_message.received",
            r#"{"thread_id":"T","message_id":"M"}"#
        )
    );
    let reason = dead(&line).to_string();
    assert!(reason.contains("byte order mark"), "{reason}");
    assert_eq!(dead(&line).class(), "not_json_object");
}

#[test]
fn every_dead_letter_class_is_listed() {
    let samples = [
        "not json".to_string(),
        r#"{"specversion":"0.3","id":"e","source":"s","type":"t","time":"2026-11-02T10:00:00Z","data":{}}"#.to_string(),
        r#"{"specversion":"1.0","id":"e","source":"s","type":"t","time":"yesterday","data":{}}"#.to_string(),
        r#"{"specversion":"1.0","id":"e","source":"s","type":"t","time":"2026-11-02T10:00:00Z","data":7}"#.to_string(),
        event("customer_message.received", r#"{"message_id":"M"}"#),
        event("customer_message.received", r#"{"thread_id":7,"message_id":"M"}"#),
    ];
    for line in &samples {
        let class = dead(line).class();
        assert!(DeadLetter::CLASSES.contains(&class), "{class} for {line}");
    }
    let future = DeadLetter::FromTheFuture {
        time: "2030-01-01T00:00:00Z".into(),
        ahead_secs: 1,
        skew_secs: 0,
    };
    assert!(DeadLetter::CLASSES.contains(&future.class()));
}
