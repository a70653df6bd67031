//! The loader: layering, and which origin an error names.

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<Vec<_>>()
        .into_iter()
}

/// A check, so that a file of other settings still alerts on something.
const ONE_CHECK: &str = "[[checks]]\nname = \"c\"\non = \"shipment.confirmed\"\nwhen = [{ field = \"tracking_number\", present = false }]\nseverity = \"high\"\naction = \"Add it.\"\n";

fn refused(pairs: &[(&str, &str)]) -> ConfigError {
    parse(DEFAULT_CONFIG, "ok.toml", env(pairs)).expect_err("the settings should be refused")
}

#[test]
fn the_environment_overrides_the_file() {
    let s = parse(
        DEFAULT_CONFIG,
        "d",
        env(&[
            (
                "SLA_TIMERD__KAFKA__BOOTSTRAP_SERVERS",
                "broker-1:9092,broker-2:9092",
            ),
            ("SLA_TIMERD__KAFKA__TOPICS__ALERTS", "alerts-nl"),
            ("SLA_TIMERD__HTTP__LISTEN", "127.0.0.1:0"),
            ("SLA_TIMERD__KAFKA__PROPERTIES__sasl.password", "hunter2"),
            (
                "SLA_TIMERD__KAFKA__PROPERTIES__SECURITY_PROTOCOL",
                "SASL_SSL",
            ),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(s.kafka.bootstrap_servers, "broker-1:9092,broker-2:9092");
    assert_eq!(s.kafka.topics.alerts, "alerts-nl");
    assert_eq!(s.http.listen.port(), 0);
    assert_eq!(
        s.kafka
            .properties
            .value("sasl.password")
            .map(PropertyValue::expose),
        Some("hunter2")
    );
    assert!(s
        .kafka
        .properties
        .get("security.protocol")
        .is_some_and(|p| p == "SASL_SSL"));
    assert_eq!(s.environment.len(), 5);
    for shown in [
        format!("{:?}", s.kafka.redacted_properties()),
        format!("{s:?}"),
    ] {
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

#[test]
fn a_misspelt_environment_setting_names_the_variable() {
    let e = refused(&[("SLA_TIMERD__KAFKA__GROUPID", "x")]);
    assert_eq!(
        e.origin,
        Origin::Environment("SLA_TIMERD__KAFKA__GROUPID".into())
    );
    assert_eq!(e.place, "kafka.groupid");
    assert!(e.problem.contains("unknown field `groupid`"), "{e}");
}

#[test]
fn a_bad_environment_value_names_the_variable_not_the_file() {
    for (var, value, place) in [
        ("SLA_TIMERD__KAFKA__WORKERS", "abc", "kafka.workers"),
        (
            "SLA_TIMERD__KAFKA__MAX_CLOCK_SKEW",
            "-5m",
            "kafka.max_clock_skew",
        ),
        ("SLA_TIMERD__ENGINE__RETENTION", "-1d", "engine.retention"),
        (
            "SLA_TIMERD__KAFKA__SHUTDOWN_TIMEOUT",
            "abc",
            "kafka.shutdown_timeout",
        ),
        (
            "SLA_TIMERD__KAFKA__BOOTSTRAP_SERVERS",
            "127.0.0.1:notaport",
            "kafka.bootstrap_servers",
        ),
        (
            "SLA_TIMERD__KAFKA__PROPERTIES__GROUP_ID",
            "x",
            "kafka.properties.\"group.id\"",
        ),
        (
            "SLA_TIMERD__KAFKA__TOPICS__ALERTS",
            "shipment",
            "kafka.topics",
        ),
    ] {
        let e = refused(&[(var, value), ("SLA_TIMERD__HTTP__LISTEN", "127.0.0.1:0")]);
        assert_eq!(
            e.to_string(),
            format!("environment {var}: {place}: {}", e.problem),
            "{var}"
        );
    }
}

#[test]
fn an_error_in_the_file_still_names_the_file() {
    let text = DEFAULT_CONFIG.replace("retention = \"7d\"", "retention = \"-7d\"");
    let e = parse(
        &text,
        "rules.toml",
        env(&[("SLA_TIMERD__KAFKA__WORKERS", "2")]),
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("rules.toml: engine.retention: "),
        "{e}"
    );
    let e = parse(
        "[kafka]\nworkers = \"many\"\n",
        "k.toml",
        std::iter::empty(),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("k.toml: kafka.workers: "), "{e}");
    let e = parse(
        "[kafka]\ngroupid = \"x\"\n",
        "k.toml",
        env(&[("SLA_TIMERD__KAFKA__WORKERS", "2")]),
    )
    .unwrap_err();
    assert_eq!(e.origin, Origin::File("k.toml".into()), "{e}");
}

#[test]
fn the_environment_may_mend_the_file() {
    let s = parse(
        &format!("[kafka]\nworkers = \"many\"\n{ONE_CHECK}"),
        "k.toml",
        env(&[("SLA_TIMERD__KAFKA__WORKERS", "2")]),
    )
    .unwrap();
    assert_eq!(s.kafka.workers, 2);
}

#[test]
fn a_syntax_error_gives_the_line_but_not_its_text() {
    let text = "[kafka.properties]\n\"sasl.password\" = \"hunter2\n";
    let e = parse(text, "k.toml", std::iter::empty()).unwrap_err();
    assert_eq!(e.place, "line 2", "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn a_property_librdkafka_refuses_fails_at_start_up_without_its_value() {
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="hunter2";"#;
    // librdkafka refuses all three (JAAS is Java's, OIDC needs libcurl, and the last is
    // a misspelt password, whose name does not look secret); its own messages quote the
    // value.
    for (var, value) in [
        ("SLA_TIMERD__KAFKA__PROPERTIES__SASL.JAAS.CONFIG", jaas),
        (
            "SLA_TIMERD__KAFKA__PROPERTIES__SASL_OAUTHBEARER_CLIENT_SECRET",
            "s3cr3t",
        ),
        ("SLA_TIMERD__KAFKA__PROPERTIES__SASL_PASWORD", "hunter2"),
    ] {
        let e = parse(DEFAULT_CONFIG, "d", env(&[(var, value)])).expect_err(var);
        assert_eq!(e.origin, Origin::Environment(var.into()), "{e}");
        let shown = format!("{e} / {e:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }
    let e = refused(&[(
        "SLA_TIMERD__KAFKA__PROPERTIES__SECURITY_PROTOCOL",
        "SASL_PLAINTEX",
    )]);
    assert!(
        e.problem.contains("refuses") && e.problem.contains("SASL_PLAINTEX"),
        "a value that is not secret is shown: {e}"
    );
}

#[test]
fn an_environment_variable_reaches_a_calendar_named_in_upper_case_and_is_blamed_for_it() {
    let pack = include_str!("../../tests/data/marketplace.toml");
    let s = parse(
        pack,
        "pack.toml",
        env(&[("SLA_TIMERD__CALENDARS__NL__TIME_ZONE", "Europe/Brussels")]),
    )
    .unwrap();
    let nl = s.rules.calendars.iter().find(|c| &*c.name == "NL").unwrap();
    assert_eq!(nl.zone_name(), "Europe/Brussels");
    assert_eq!(s.rules.calendars.len(), 3, "no second calendar `nl`");
    let e = parse(
        pack,
        "pack.toml",
        env(&[("SLA_TIMERD__CALENDARS__NL__TIME_ZONE", "Europe/Nowhere")]),
    )
    .unwrap_err();
    assert_eq!(
        e.origin,
        Origin::Environment("SLA_TIMERD__CALENDARS__NL__TIME_ZONE".into())
    );
    assert_eq!(e.place, "calendars.NL.time_zone");
}

#[test]
fn a_mistake_in_the_file_is_placed_by_its_line_and_quotes_no_value() {
    let text = "[engine]\nretention = \"7d\"\n\n[[rules]]\nname = \"r\"\nwarn_befor = [\"1h\"]\n";
    let e = parse(text, "f.toml", env(&[])).expect_err("a misspelt key");
    assert_eq!(e.place, "line 6", "{e}");
    assert!(e.problem.starts_with("unknown field `warn_befor`"), "{e}");
    let e = parse(
        "[engine]\nretention = \"hunter2\"\n[http]\nlisten = 5\n",
        "f.toml",
        env(&[]),
    )
    .expect_err("a number where text belongs");
    assert_eq!(e.place, "line 4", "{e}");
    assert_eq!(e.problem, "invalid type: integer, expected a string", "{e}");
}

#[test]
fn serde_messages_are_said_plainly() {
    assert_eq!(
        plain("invalid type: string \"s3cr3t\", expected i64"),
        "invalid type: string, expected a whole number"
    );
    assert_eq!(
        plain("invalid type: floating point `1.5`, expected u32"),
        "invalid type: floating point number, expected a whole number"
    );
    assert_eq!(plain("unknown field `x`"), "unknown field `x`");
}

#[test]
fn an_override_that_mends_the_file_does_not_hide_another_that_breaks_it() {
    let e = parse(
        &format!("[http]\nlisten = 5\n{ONE_CHECK}"),
        "f.toml",
        env(&[
            ("SLA_TIMERD__HTTP__LISTEN", "127.0.0.1:0"),
            ("SLA_TIMERD__KAFKA__GROUPID", "x"),
        ]),
    )
    .expect_err("a misspelt variable");
    assert_eq!(
        e.origin,
        Origin::Environment("SLA_TIMERD__KAFKA__GROUPID".into()),
        "{e}"
    );
    assert!(e.problem.contains("groupid"), "{e}");
}

#[test]
fn a_setting_mistyped_in_the_file_is_placed_even_with_an_override_elsewhere() {
    let e = parse(
        &format!("[http]\nlisten = 5\n{ONE_CHECK}"),
        "f.toml",
        env(&[("SLA_TIMERD__KAFKA__GROUP_ID", "g")]),
    )
    .expect_err("a number where an address belongs");
    assert_eq!(e.origin, Origin::File("f.toml".into()), "{e}");
    assert_eq!(e.place, "line 2", "{e}");
}

#[test]
fn a_setting_variable_with_one_underscore_after_the_name_is_refused_with_its_right_name() {
    let e = refused(&[("SLA_TIMERD_KAFKA__WORKERS", "2")]);
    assert_eq!(
        e.origin,
        Origin::Environment("SLA_TIMERD_KAFKA__WORKERS".into()),
        "{e}"
    );
    assert!(e.problem.contains("SLA_TIMERD__KAFKA__WORKERS"), "{e}");
    parse(
        DEFAULT_CONFIG,
        "d",
        env(&[("SLA_TIMERD_LOG_FORMAT", "json"), ("SLA_TIMERD_BIN", "/x")]),
    )
    .expect("other SLA_TIMERD_ variables are not settings");
}
