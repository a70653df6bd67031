//! Shared helpers: run the binary, read alert files, compare alerts the way
//! `compare_alerts.py` (the acceptance comparison) does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn sla_timerd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sla-timerd"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A fresh scratch directory under the target dir, named for the test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Parses JSON lines, panicking with the line on error.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn instant_ms(v: &Value) -> Value {
    match v
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    {
        Some(t) => Value::from(t.timestamp_millis()),
        None => v.clone(),
    }
}

/// The fields acceptance compares, with times as instants (and, with `texts`, the
/// severity and action, as `compare_alerts.py --texts` does).
fn normalised(alert: &Value, texts: bool) -> Value {
    let d = &alert["data"];
    let mut out = serde_json::json!({ "type": alert["type"], "time": instant_ms(&alert["time"]) });
    for f in ["rule", "check", "key", "stage", "lead_seconds", "outcome"] {
        if let Some(v) = d.get(f) {
            out[f] = v.clone();
        }
    }
    if let Some(v) = d.get("deadline") {
        out["deadline"] = instant_ms(v);
    }
    if texts {
        out["severity"] = d["severity"].clone();
        out["action"] = d["action"].clone();
    }
    out
}

/// Asserts two alert streams agree by id and compared fields, with no id twice.
pub fn assert_same_alerts(expected: &[Value], actual: &[Value]) {
    compare_alerts(expected, actual, false)
}

/// [`assert_same_alerts`], severity and action included.
pub fn assert_same_alerts_and_texts(expected: &[Value], actual: &[Value]) {
    compare_alerts(expected, actual, true)
}

fn compare_alerts(expected: &[Value], actual: &[Value], texts: bool) {
    let index = |alerts: &[Value]| -> BTreeMap<String, Value> {
        alerts
            .iter()
            .map(|a| {
                let id = a["id"].as_str().expect("an id").to_string();
                (id, normalised(a, texts))
            })
            .collect()
    };
    let (e, a) = (index(expected), index(actual));
    assert_eq!(a.len(), actual.len(), "an alert id appears twice");
    let missing: Vec<_> = e.keys().filter(|k| !a.contains_key(*k)).collect();
    let extra: Vec<_> = a.keys().filter(|k| !e.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (id, want) in &e {
        assert_eq!(&a[id], want, "alert {id} differs");
    }
}
