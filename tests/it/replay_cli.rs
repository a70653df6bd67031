//! `sla-timerd replay` from the outside: the spec examples, exit codes, dead letters.

use crate::helpers::{
    assert_same_alerts, assert_same_alerts_and_texts, data, json_lines, scratch, sla_timerd,
};

fn replay_matches_example(name: &str) {
    let input = data(&format!("{name}.jsonl"));
    let out = sla_timerd(&["replay", input.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_to_string(data(&format!("{name}.alerts.jsonl"))).unwrap();
    assert_same_alerts(
        &json_lines(&expected),
        &json_lines(&String::from_utf8(out.stdout).unwrap()),
    );
}

#[test]
fn the_basic_example_replays_to_its_expected_alerts() {
    replay_matches_example("basic");
}

#[test]
fn the_mixed_example_replays_to_its_expected_alerts() {
    replay_matches_example("mixed");
}

#[test]
fn the_marketplace_example_replays_with_its_overrides_and_calendars() {
    let config = data("marketplace.toml");
    let input = data("marketplace.jsonl");
    let out = sla_timerd(&[
        "replay",
        "--config",
        config.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_to_string(data("marketplace.alerts.jsonl")).unwrap();
    assert_same_alerts_and_texts(
        &json_lines(&expected),
        &json_lines(&String::from_utf8(out.stdout).unwrap()),
    );
}

#[test]
fn the_summary_accounts_for_every_record() {
    let out = sla_timerd(&["replay", data("basic.jsonl").to_str().unwrap()]);
    let summary = String::from_utf8(out.stderr).unwrap();
    assert!(summary.contains("records read: 17; applied: 13; skipped: 2 (1 unknown type, 1 duplicate); dead-lettered: 2"), "{summary}");
    assert!(summary.contains("alerts: 13"), "{summary}");
}

#[test]
fn dead_letters_keep_the_line_the_reason_and_the_original_text() {
    let dir = scratch("dead_letters");
    let dead = dir.join("dead.jsonl");
    let out = sla_timerd(&[
        "replay",
        "--dead-letter",
        dead.to_str().unwrap(),
        data("basic.jsonl").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let letters = json_lines(&std::fs::read_to_string(&dead).unwrap());
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0]["line"], 5);
    assert_eq!(letters[0]["raw"], "not even json");
    assert_eq!(letters[1]["line"], 15);
    assert!(
        letters[1]["reason"]
            .as_str()
            .unwrap()
            .contains("latest_ship_date"),
        "{}",
        letters[1]
    );
}

#[test]
fn replay_reads_standard_input_and_honours_until() {
    use std::io::Write;
    let line = r#"{"specversion":"1.0","id":"m","source":"s","type":"customer_message.received","time":"2026-11-02T10:00:00Z","data":{"thread_id":"T"}}"#;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sla-timerd"))
        .args(["replay", "--until", "2026-11-04T10:00:00Z", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(line.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let alerts = json_lines(&String::from_utf8(out.stdout).unwrap());
    let types: Vec<_> = alerts
        .iter()
        .map(|a| a["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["sla.warning", "sla.warning", "sla.breach"]);
}

#[test]
fn a_missing_input_file_fails_with_a_clear_message() {
    let out = sla_timerd(&["replay", "/nonexistent/events.jsonl"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("cannot read the input file /nonexistent/events.jsonl"),
        "{err}"
    );
}

#[test]
fn a_bad_config_fails_at_start_up_naming_the_place() {
    let dir = scratch("bad_config");
    let config = dir.join("rules.toml");
    let text = sla_timerd_default_config().replace("after = \"24h\"", "after = \"-24h\"");
    std::fs::write(&config, text).unwrap();
    let out = sla_timerd(&[
        "replay",
        "--config",
        config.to_str().unwrap(),
        data("basic.jsonl").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("rules[carrier_scan].deadline.after") && err.contains("negative"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing is replayed with a bad config"
    );
}

fn sla_timerd_default_config() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml")).unwrap()
}

/// Copies `basic.jsonl` to a scratch file, runs `run` on its path, and checks that replay
/// refused to write its dead letters there and left the file as it was.
fn refuses_to_write_dead_letters_over(
    name: &str,
    run: impl FnOnce(&std::path::Path) -> std::process::Output,
) {
    let input = scratch(name).join("in.jsonl");
    std::fs::copy(data("basic.jsonl"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let out = run(&input);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is the input file itself"), "{stderr}");
    assert_eq!(
        std::fs::read(&input).unwrap(),
        before,
        "the input is untouched"
    );
}

#[test]
fn a_dead_letter_file_that_is_the_input_is_refused_and_the_input_kept() {
    refuses_to_write_dead_letters_over("replay-into-itself", |input| {
        let path = input.to_str().unwrap();
        sla_timerd(&["replay", "--dead-letter", path, path])
    });
}

#[test]
fn a_directory_as_input_is_named_and_creates_no_dead_letter_file() {
    let scratch = scratch("replay-a-directory");
    let dir = scratch.join("a-directory");
    std::fs::create_dir_all(&dir).unwrap();
    let dead = scratch.join("dead.jsonl");
    let out = sla_timerd(&[
        "replay",
        "--dead-letter",
        dead.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is a directory"), "{stderr}");
    assert!(stderr.contains(dir.to_str().unwrap()), "{stderr}");
    assert!(!dead.exists());
}

/// Runs sla-timerd with its standard output a pipe whose reader is gone before it
/// starts, as `| head` leaves it once it has its lines: every write fails.
fn with_stdout_closed(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    std::process::Command::new(env!("CARGO_BIN_EXE_sla-timerd"))
        .args(args)
        .stdout(writer)
        .output()
        .unwrap()
}

#[test]
fn a_reader_that_closes_standard_output_ends_the_command_quietly() {
    let mixed = data("mixed.jsonl");
    for args in [
        vec!["replay", mixed.to_str().unwrap()],
        vec!["report", "--format", "table", mixed.to_str().unwrap()],
        vec!["check-config"],
    ] {
        let out = with_stdout_closed(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("error"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_dead_letter_file_that_is_the_redirected_standard_input_is_refused() {
    refuses_to_write_dead_letters_over("replay-stdin-into-itself", |input| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sla-timerd"))
            .args(["replay", "--dead-letter", input.to_str().unwrap()])
            .stdin(std::fs::File::open(input).unwrap())
            .output()
            .unwrap()
    });
}

#[test]
fn a_failed_write_names_the_output() {
    let basic = data("basic.jsonl");
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sla-timerd"))
        .args(["replay", basic.to_str().unwrap()])
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot write to standard output"),
        "{stderr}"
    );
    let out = sla_timerd(&[
        "replay",
        "--dead-letter",
        "/dev/full",
        data("mixed.jsonl").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot write the dead-letter file /dev/full"),
        "{stderr}"
    );
}

#[test]
fn a_report_window_that_ends_before_it_starts_is_refused() {
    let out = sla_timerd(&[
        "report",
        "--from",
        "2026-11-10T00:00:00Z",
        "--to",
        "2026-11-01T00:00:00Z",
        data("basic.jsonl").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--from") && stderr.contains("not before --to"),
        "{stderr}"
    );
}

#[test]
fn a_demo_speed_that_is_not_a_positive_number_is_an_argument_error() {
    for speed in ["0", "-5", "1e-20", "inf", "nan", "fast"] {
        let out = sla_timerd(&["demo", "--speed", speed]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{speed}: {stderr}");
        assert!(!stderr.contains("panicked"), "{speed}: {stderr}");
    }
}
