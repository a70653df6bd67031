//! Business-time deadlines against an independent reference: the deadlines of random
//! messages around daylight-saving changes in four zones, computed by
//! `tests/data/business_time_reference.py` with Python's zoneinfo, must be the breach
//! deadlines replay gives.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use crate::helpers::{data, json_lines, scratch, sla_timerd};

#[test]
fn deadlines_agree_with_the_python_reference_around_daylight_saving_changes() {
    let dir = scratch("business_time_reference");
    let made = Command::new("python3")
        .arg(data("business_time_reference.py"))
        .arg(&dir)
        .output()
        .ok()
        .filter(|o| o.status.success());
    let Some(made) = made else {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with zoneinfo is needed for the business-time reference"
        );
        eprintln!("SKIPPED: python3 with zoneinfo is not available");
        return;
    };
    assert!(made.status.success());
    let (config, input) = (dir.join("cfg.toml"), dir.join("in.jsonl"));
    let out = sla_timerd(&[
        "replay",
        "--config",
        config.to_str().unwrap(),
        "--until",
        "2031-01-01T00:00:00Z",
        input.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json")).unwrap()).unwrap();
    let got: BTreeMap<String, String> = json_lines(&String::from_utf8(out.stdout).unwrap())
        .iter()
        .map(|a| {
            let d = &a["data"];
            (
                d["key"].as_str().unwrap().to_string(),
                d["deadline"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(expected.len() > 1000);
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(k, e)| got.get(*k).map(String::as_str) != e[0].as_str())
        .take(5)
        .map(|(k, e)| {
            format!(
                "{k} ({}, s = {}): expected {}, got {:?}",
                e[1],
                e[2],
                e[0],
                got.get(k)
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
