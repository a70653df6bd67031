//! Settings from the outside: every command reads the file and the environment the same
//! way, names the variable at fault, and never prints a secret.

use std::process::{Command, Output};

use crate::helpers::{data, scratch};

const BIN: &str = env!("CARGO_BIN_EXE_sla-timerd");

/// Runs the binary with `env` on top of this process's environment, minus any
/// `SLA_TIMERD__` variable of its own. `run` gets a free port and stops after 20 s.
fn sla_timerd(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("timeout");
    c.arg("20").arg(BIN).args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SLA_TIMERD__") {
            c.env_remove(name);
        }
    }
    c.env("SLA_TIMERD__HTTP__LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied());
    c.output().expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A copy of the shipped file, so that errors could wrongly blame it.
fn ok_toml() -> String {
    let path = scratch("config_cli_ok").join("ok.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"),
        &path,
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn every_command_refuses_a_bad_environment_value_naming_the_variable() {
    let config = ok_toml();
    let input = data("basic.jsonl");
    let commands: [&[&str]; 3] = [
        &["run", "--config", &config],
        &["check-config", "--config", &config],
        &["replay", "--config", &config, input.to_str().unwrap()],
    ];
    for (var, value, place) in [
        ("SLA_TIMERD__KAFKA__WORKERS", "abc", "kafka.workers"),
        ("SLA_TIMERD__KAFKA__GROUPID", "x", "kafka.groupid"),
        (
            "SLA_TIMERD__KAFKA__MAX_CLOCK_SKEW",
            "-5m",
            "kafka.max_clock_skew",
        ),
        ("SLA_TIMERD__ENGINE__RETENTION", "-1d", "engine.retention"),
    ] {
        for args in commands {
            let out = sla_timerd(args, &[(var, value)]);
            let err = stderr(&out);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{args:?} with {var}={value}: {err}"
            );
            assert!(
                err.contains(&format!("sla-timerd: error: environment {var}: {place}: ")),
                "{args:?}: {err}"
            );
            assert!(!err.contains("ok.toml"), "the file is not to blame: {err}");
            assert!(
                out.stdout.is_empty(),
                "{args:?} with {var} started: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

#[test]
fn a_bootstrap_list_that_is_not_host_port_stops_run_at_start_up() {
    for servers in [
        "127.0.0.1:notaport",
        "127.0.0.1:99999",
        "kafka://127.0.0.1:29092",
        ",,; ;",
    ] {
        let out = sla_timerd(
            &["run"],
            &[("SLA_TIMERD__KAFKA__BOOTSTRAP_SERVERS", servers)],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{servers}: {err}");
        let named = "environment SLA_TIMERD__KAFKA__BOOTSTRAP_SERVERS: kafka.bootstrap_servers: ";
        assert!(
            err.contains(named) && err.contains("write host:port entries separated by commas"),
            "{err}"
        );
    }
}

#[test]
fn secrets_never_appear_in_what_run_or_check_config_print() {
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="hunter2";"#;
    let cases: [&[(&str, &str)]; 3] = [
        &[
            ("SLA_TIMERD__KAFKA__PROPERTIES__SASL.JAAS.CONFIG", jaas),
            (
                "SLA_TIMERD__KAFKA__PROPERTIES__SASL.OAUTHBEARER.CLIENT.SECRET",
                "s3cr3t-1",
            ),
        ],
        // Misspelt properties: librdkafka refuses them, and its message would quote the
        // value, even of a name that no longer looks secret.
        &[(
            "SLA_TIMERD__KAFKA__PROPERTIES__SASL_OAUTHBEARER_CLIENT_SECRETS",
            "s3cr3t-2",
        )],
        &[("SLA_TIMERD__KAFKA__PROPERTIES__SASL_PASWORD", "s3cr3t-3")],
    ];
    for env in cases {
        let out = sla_timerd(&["run"], env);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("environment SLA_TIMERD__KAFKA__PROPERTIES__")
                && err.contains(": kafka.properties.\""),
            "the variable and the property are named: {err}"
        );
        let shown = sla_timerd(&["check-config"], env);
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&shown.stdout),
            stderr(&shown)
        );
        for (_, secret) in env {
            assert!(!err.contains(secret) && !err.contains("hunter2"), "{err}");
            assert!(
                !shown.contains(secret) && !shown.contains("hunter2"),
                "{shown}"
            );
        }
    }
}

#[test]
fn run_logs_its_name_and_version_first() {
    let out = sla_timerd(&["run"], &[("SLA_TIMERD__KAFKA__WORKERS", "abc")]);
    let err = stderr(&out);
    let version = format!("sla-timerd {} starting", env!("CARGO_PKG_VERSION"));
    assert!(
        err.lines().next().is_some_and(|l| l.contains(&version)),
        "{err}"
    );
}

#[test]
fn check_config_prints_the_settings_in_words() {
    let out = sla_timerd(
        &["check-config"],
        &[("SLA_TIMERD__KAFKA__PROPERTIES__SECURITY_PROTOCOL", "SSL")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = String::from_utf8(out.stdout).unwrap();
    for part in [
        "rule customer_reply: one instance per thread_id\n",
        "  deadline: 48h after the opening event\n",
        "  warnings: 24h and 4h before the deadline\n",
        "  closes on customer_message.replied or customer_message.no_response_needed\n",
        "check tracking_missing: a violation keyed by order_id\n",
        "kafka:\n  bootstrap servers localhost:9092\n",
        "  librdkafka properties: security.protocol = SSL\n",
        "http:\n  serves /metrics, /healthz and /readyz on 127.0.0.1:0\n",
    ] {
        assert!(shown.contains(part), "missing {part:?} in\n{shown}");
    }
    assert!(
        !shown.contains("Span(") && !shown.contains("After("),
        "{shown}"
    );
}

#[test]
fn check_config_says_whether_the_query_api_is_on_and_never_shows_its_token() {
    let token = "q-t0ken-9f8e7d";
    let out = sla_timerd(&["check-config"], &[("SLA_TIMERD__HTTP__API_TOKEN", token)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(
        shown.contains(
            "serves the query API (/v1/deadlines) to requests bearing http.api_token (<redacted>)"
        ),
        "{shown}"
    );
    assert!(!shown.contains(token), "{shown}");
    let off = sla_timerd(&["check-config"], &[]);
    let off = String::from_utf8(off.stdout).unwrap();
    assert!(
        off.contains("query API (/v1/deadlines) off: http.api_token is not set"),
        "{off}"
    );
    let bad = sla_timerd(
        &["check-config"],
        &[("SLA_TIMERD__HTTP__API_TOKEN", "a b-9f8e7d")],
    );
    let err = stderr(&bad);
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert!(
        err.contains("environment SLA_TIMERD__HTTP__API_TOKEN: http.api_token:")
            && !err.contains("9f8e7d"),
        "{err}"
    );
}

#[test]
fn help_says_a_resolution_comes_when_a_deadline_is_met_on_time_or_late() {
    let out = sla_timerd(&["--help"], &[]);
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("a resolution when an obligation that alerted is met (on time or late)"),
        "{help}"
    );
    assert!(!help.contains("met late"), "{help}");
}

/// The README's environment examples, run by `sh` as written, with `check-config` in
/// place of `run` (there is no broker to run against).
#[test]
fn the_readme_environment_examples_work_in_a_shell() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split_once("```").map(|(block, _)| block))
        .filter(|b| {
            b.contains("SLA_TIMERD__KAFKA__PROPERTIES__")
                && b.trim_end().ends_with("sla-timerd run")
        })
        .collect();
    assert!(
        blocks.len() >= 2,
        "the README shows the dot-free and the `env` spellings"
    );
    for block in blocks {
        let script = block
            .trim_end()
            .strip_suffix("sla-timerd run")
            .unwrap()
            .to_string()
            + "\"$BIN\" check-config";
        let out = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("BIN", BIN)
            .output()
            .expect("sh runs");
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{script}\n{}", stderr(&out));
        assert!(
            shown.contains("security.protocol = SASL_SSL"),
            "{script}\n{shown}"
        );
        assert!(
            shown.contains("sasl.password = <redacted>"),
            "{script}\n{shown}"
        );
        assert!(
            shown.contains("bootstrap servers broker-1:9092,broker-2:9092"),
            "{script}\n{shown}"
        );
    }
}

#[test]
fn check_config_prints_the_amazon_pack_in_words() {
    let pack = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/amazon-marketplaces.toml"
    );
    let out = sla_timerd(&["check-config", "--config", pack], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    for words in [
        "calendar UK: local time of Europe/London",
        "working days: Monday to Friday",
        "2026-12-28 Mon",
        "1. for opening events when marketplace is \"NL\":",
        "deadline: the end of the 2nd business day after the opening day, on calendar US (America/Los_Angeles local time)",
    ] {
        assert!(text.contains(words), "{words:?} missing from:\n{text}");
    }
    assert!(
        !text.contains("BusinessDays"),
        "internal forms leak:\n{text}"
    );
}

#[test]
fn a_signal_during_start_up_stops_the_daemon_at_once() {
    // No broker answers on port 1: start-up waits for the cluster's topics (up to 30 s).
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sla-timerd"))
        .arg("run")
        .env("SLA_TIMERD__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
        .env("SLA_TIMERD__HTTP__LISTEN", "127.0.0.1:0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let signalled = std::time::Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(
        signalled.elapsed() < std::time::Duration::from_secs(10),
        "stopped {:?} after the signal: {stderr}",
        signalled.elapsed()
    );
    assert!(stderr.contains("stopped during start-up"), "{stderr}");
}
