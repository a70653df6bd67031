use super::*;
use crate::config::{load_rules, parse_rules, ConfigError, DEFAULT_CONFIG};

fn problem(text: &str) -> ConfigError {
    parse_rules(text, "test.toml").expect_err("the config should be refused")
}

const RULE: &str = r#"
[[rules]]
name = "customer_reply"
key = "thread_id"
opens_on = [{ type = "customer_message.received" }]
deadline = { after = "48h" }
warn_before = ["24h", "4h"]
closes_on = ["customer_message.replied"]
severity = "high"
action = "Reply."
"#;

#[test]
fn the_shipped_defaults_load_and_hold_the_contract_rules() {
    let rules = load_rules(None).unwrap();
    let names: Vec<_> = rules.rules.iter().map(|r| r.name.to_string()).collect();
    let expected = [
        "customer_reply",
        "return_authorization",
        "ship_by",
        "delivery",
        "carrier_scan",
        "out_of_stock_cancel",
        "refund",
    ];
    assert_eq!(names, expected);
    let checks: Vec<_> = rules.checks.iter().map(|c| c.name.to_string()).collect();
    assert_eq!(
        checks,
        [
            "tracking_missing",
            "return_instructions_missing",
            "close_reason_missing",
            "signature_missing"
        ]
    );
    assert_eq!(rules.retention, Span::parse("7d").unwrap());
    assert!(rules.remembers_order_totals);
}

#[test]
fn warning_leads_are_sorted_largest_first() {
    let text = RULE.replace(r#"["24h", "4h"]"#, r#"["4h", "24h"]"#);
    let rules = parse_rules(&text, "t").unwrap();
    assert_eq!(
        rules.rules[0].warn_before,
        vec![Span::from_secs(86400), Span::from_secs(14400)]
    );
}

#[test]
fn an_unknown_event_type_names_the_rule_and_the_type() {
    let e = problem(&RULE.replace("customer_message.replied", "customer_message.answered"));
    assert_eq!(e.place, "rules[customer_reply].closes_on[0]");
    assert!(
        e.problem
            .contains("unknown event type `customer_message.answered`"),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("test.toml: rules[customer_reply]"),
        "{e}"
    );
}

#[test]
fn a_field_the_event_type_lacks_is_refused() {
    let e = problem(&RULE.replace(r#"key = "thread_id""#, r#"key = "return_id""#));
    assert_eq!(e.place, "rules[customer_reply].key");
    assert!(e.problem.contains("has no field `return_id`"), "{e}");
}

#[test]
fn a_negative_duration_is_refused() {
    let e = problem(&RULE.replace(r#"after = "48h""#, r#"after = "-48h""#));
    assert_eq!(e.place, "rules[customer_reply].deadline.after");
    assert!(e.problem.contains("negative"), "{e}");
}

#[test]
fn a_misspelt_key_is_refused() {
    let e = problem(&RULE.replace("warn_before", "warn_befor"));
    assert!(e.problem.contains("warn_befor"), "{e}");
}

#[test]
fn a_zero_or_repeated_lead_is_refused() {
    assert!(problem(&RULE.replace(r#"["24h", "4h"]"#, r#"["0s"]"#))
        .problem
        .contains("positive"));
    assert!(
        problem(&RULE.replace(r#"["24h", "4h"]"#, r#"["4h", "240m"]"#))
            .problem
            .contains("twice")
    );
}

#[test]
fn a_deadline_field_the_opening_type_does_not_carry_is_refused() {
    let text = r#"
[[rules]]
name = "ship"
key = "order_id"
opens_on = [{ type = "shipment.confirmed" }]
deadline = { field = "latest_delivery_date" }
closes_on = ["shipment.delivered"]
severity = "high"
action = "Deliver."
"#;
    let e = problem(text);
    assert_eq!(e.place, "rules[ship].deadline.field");
    assert!(e.problem.contains("has no field"), "{e}");
}

#[test]
fn a_deadline_field_that_may_be_absent_is_allowed_and_opens_nothing_without_it() {
    let text = r#"
[[rules]]
name = "delivery"
key = "order_id"
opens_on = [{ type = "order.placed" }]
deadline = { field = "latest_delivery_date" }
closes_on = ["shipment.delivered"]
severity = "high"
action = "Deliver."
"#;
    assert!(parse_rules(text, "test.toml").is_ok());
}

#[test]
fn a_condition_of_the_wrong_kind_is_refused() {
    let text = RULE.replace(
        r#"opens_on = [{ type = "customer_message.received" }]"#,
        r#"opens_on = [{ type = "customer_message.received", when = [{ field = "thread_id", equals = true }] }]"#,
    );
    let e = problem(&text);
    assert_eq!(e.place, "rules[customer_reply].opens_on[0].when[0]");
}

#[test]
fn a_type_that_opens_and_closes_one_rule_is_refused() {
    let e = problem(&RULE.replace("customer_message.replied", "customer_message.received"));
    assert!(e.problem.contains("both opens and closes"), "{e}");
}

#[test]
fn a_bad_threshold_currency_is_refused() {
    let defaults = DEFAULT_CONFIG.replace(r#"{ EUR = "750" }"#, r#"{ EURO = "750" }"#);
    let e = problem(&defaults);
    assert_eq!(
        e.place,
        "checks[signature_missing].order_total_at_least.EURO"
    );
}

#[test]
fn rule_names_must_be_simple_and_unique() {
    assert!(
        problem(&RULE.replace("name = \"customer_reply\"", "name = \"reply:now\""))
            .problem
            .contains("lower-case")
    );
    let twice = format!("{RULE}{RULE}");
    assert!(problem(&twice).problem.contains("used twice"));
}

#[test]
fn a_configuration_that_could_never_alert_is_refused() {
    let e = crate::config::parse(
        "[kafka]\nbootstrap_servers = \"b:9092\"\n",
        "k.toml",
        std::iter::empty(),
    )
    .expect_err("no rules, no checks");
    assert_eq!(e.place, "rules", "{e}");
    assert!(e.problem.contains("config/default.toml"), "{e}");
}

#[test]
fn a_negative_order_total_threshold_is_refused() {
    let text = DEFAULT_CONFIG.to_string()
        + "\n[[checks]]\nname = \"neg\"\non = \"shipment.confirmed\"\nwhen = [{ field = \"signature_confirmation\", not_equals = true }]\norder_total_at_least = { EUR = \"-5\" }\nseverity = \"low\"\naction = \"x\"\n";
    let e = parse_rules(&text, "n.toml").expect_err("below zero");
    assert!(e.problem.contains("below zero"), "{e}");
}

#[test]
fn an_unknown_field_name_is_answered_with_the_known_ones() {
    let e = problem(&RULE.replace("key = \"thread_id\"", "key = \"threadid\""));
    assert!(e.problem.starts_with("unknown field `threadid`"), "{e}");
    assert!(e.problem.contains("thread_id, message_id"), "{e}");
}
