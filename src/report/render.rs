//! The report as text: `json` (the contract's shape), `csv` (one row per group and
//! metric) and `table` (aligned, for a terminal).

use std::fmt::Write as _;

use super::tally::{GroupReport, Metric, Ratio, Report, RuleCounts};
use crate::core::time::Millis;

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

fn json_rate(v: Option<f64>) -> String {
    v.map_or("null".into(), |v| {
        serde_json::to_string(&v).expect("a finite rate")
    })
}

fn json_time(t: Option<Millis>) -> String {
    t.map_or("null".into(), |t| format!("\"{t}\""))
}

fn json_opt_bool(b: Option<bool>) -> String {
    b.map_or("null".into(), |b| b.to_string())
}

/// `--format json`: one object, keys in the contract's order.
pub fn json(r: &Report) -> String {
    let w = r.window;
    let mut out = format!(
        "{{\"from\":{},\"to\":{},\"until\":{},\"groups\":[",
        json_time(w.map(|w| w.from)),
        json_time(w.map(|w| w.to)),
        json_time(w.map(|w| w.until))
    );
    for (i, g) in r.groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_group(&mut out, r, g);
    }
    out.push_str("]}\n");
    out
}

fn json_group(out: &mut String, r: &Report, g: &GroupReport) {
    out.push('{');
    for (field, value) in r.by.iter().zip(&g.values) {
        let _ = write!(out, "{}:{},", json_str(field.name()), json_str(value));
    }
    out.push_str("\"rules\":{");
    for (i, (name, c)) in r.rules.iter().zip(&g.rules).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{}:{{\"opened\":{},\"met\":{},\"late\":{},\"overdue\":{},\"pending\":{},\"on_time_rate\":{}}}",
            json_str(name),
            c.opened,
            c.met,
            c.late,
            c.overdue,
            c.pending,
            json_rate(c.on_time_rate())
        );
    }
    out.push_str("},\"metrics\":{");
    for (i, (m, ratio)) in Metric::ALL.iter().zip(&g.metrics).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let target = m.target().map_or("null".into(), |t| json_str(t.text()));
        let _ = write!(
            out,
            "\"{}\":{{\"numerator\":{},\"denominator\":{},\"value\":{},\"target\":{},\"ok\":{}}}",
            m.name(),
            ratio.numerator,
            ratio.denominator,
            json_rate(ratio.value()),
            target,
            json_opt_bool(ratio.ok(m.target()))
        );
    }
    out.push_str("}}");
}

/// One CSV field: quoted when it holds a separator, a quote or a line break; a text a
/// spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return) is written after an apostrophe, which spreadsheets show as text.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `--format csv`: a header, then one row per group and metric.
pub fn csv(r: &Report) -> String {
    let mut out = String::new();
    for f in &r.by {
        out.push_str(f.name());
        out.push(',');
    }
    out.push_str("metric,numerator,denominator,value,target,ok,from,to,until\n");
    let times = match r.window {
        Some(w) => format!("{},{},{}", w.from, w.to, w.until),
        None => ",,".into(),
    };
    for g in &r.groups {
        for (m, ratio) in Metric::ALL.iter().zip(&g.metrics) {
            for v in &g.values {
                out.push_str(&csv_field(v));
                out.push(',');
            }
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{}",
                m.name(),
                ratio.numerator,
                ratio.denominator,
                ratio.value().map_or(String::new(), |v| v.to_string()),
                m.target().map_or("", |t| t.text()),
                ratio
                    .ok(m.target())
                    .map_or(String::new(), |b| b.to_string()),
                times
            );
        }
    }
    out
}

/// A rate as a percentage with two decimals, or `-`.
pub fn percent(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.2}%", v * 100.0))
}

/// What a metric's target check reads as.
pub fn verdict(ratio: Ratio, m: Metric) -> &'static str {
    match ratio.ok(m.target()) {
        Some(true) => "met",
        Some(false) => "MISSED",
        None if m.target().is_none() => "",
        None => "no data",
    }
}

/// `--format table`: per group, a table of rules and one of metrics, columns aligned.
pub fn table(r: &Report) -> String {
    let mut out = match r.window {
        Some(w) => format!(
            "compliance report, window {} to {}, state at {}\n",
            w.from, w.to, w.until
        ),
        None => "compliance report: the input holds no event\n".into(),
    };
    if r.window.is_some() && r.groups.is_empty() {
        out.push_str("no group has anything in the window\n");
    }
    for g in &r.groups {
        let name: Vec<String> =
            r.by.iter()
                .zip(&g.values)
                .map(|(f, v)| format!("{} {}", f.name(), if v.is_empty() { "(none)" } else { v }))
                .collect();
        let _ = writeln!(out, "\n== {} ==", name.join(", "));
        let mut rows = vec![row(&[
            "rule", "opened", "met", "late", "overdue", "pending", "on time",
        ])];
        for (name, c) in r.rules.iter().zip(&g.rules) {
            rows.push(rule_row(name, c));
        }
        aligned(&mut out, &rows);
        out.push('\n');
        let mut rows = vec![row(&["metric", "value", "target", "status", "count"])];
        for (m, ratio) in Metric::ALL.iter().zip(&g.metrics) {
            rows.push(vec![
                m.name().to_string(),
                percent(ratio.value()),
                m.target().map_or("-", |t| t.percent_text()).to_string(),
                verdict(*ratio, *m).to_string(),
                format!("{} / {}", ratio.numerator, ratio.denominator),
            ]);
        }
        aligned(&mut out, &rows);
    }
    out
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn rule_row(name: &str, c: &RuleCounts) -> Vec<String> {
    let mut r = vec![name.to_string()];
    r.extend([c.opened, c.met, c.late, c.overdue, c.pending].map(|n| n.to_string()));
    r.push(percent(c.on_time_rate()));
    r
}

/// Rows with the first column left-aligned and the others right-aligned.
fn aligned(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c == 0 {
                let _ = write!(line, "  {cell:<w$}", w = width[c]);
            } else {
                let _ = write!(line, "  {cell:>w$}", w = width[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn a_csv_field_is_quoted_when_it_must_be_and_never_runs_as_a_formula() {
        assert_eq!(csv_field("NL"), "NL");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
    }
}
