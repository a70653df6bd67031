//! `--format html`: one self-contained page (no external script, style or font): per
//! group its rule and metric tables, and per metric a chart of its daily value over the
//! window against its target line, as inline SVG.
//!
//! Every number a table shows also sits in `data-` attributes (`data-group`,
//! `data-metric`, `data-numerator`, `data-denominator`, `data-value`) so that a test in
//! a browser can read them back and compare them with the JSON report.

use std::fmt::Write as _;

use super::render::{percent, verdict};
use super::tally::{GroupReport, Metric, Ratio, Report, Target};

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1d2330;background:#fff}\
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2.5rem;border-bottom:2px solid #d0d5dd;padding-bottom:.3rem}\
table{border-collapse:collapse;margin:.8rem 0}th,td{padding:.25rem .7rem;border-bottom:1px solid #e4e7ec;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f2f4f7}\
.met{color:#067647;font-weight:600}.missed{color:#b42318;font-weight:700}.nodata{color:#667085}\
.charts{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0;border:1px solid #e4e7ec;border-radius:6px;padding:.5rem}\
figcaption{font-size:.85rem;font-weight:600;margin-bottom:.2rem}svg text{font-size:10px;fill:#475467}";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The group's name as the page shows it and as `data-group` carries it.
fn group_label(r: &Report, g: &GroupReport) -> String {
    let parts: Vec<String> =
        r.by.iter()
            .zip(&g.values)
            .map(|(f, v)| format!("{}={}", f.name(), v))
            .collect();
    parts.join(",")
}

/// The whole page.
pub fn page(r: &Report) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<title>sla-timerd compliance report</title><style>");
    out.push_str(STYLE);
    out.push_str("</style></head><body>\n<h1>Compliance report</h1>\n");
    match r.window {
        Some(w) => {
            let _ = writeln!(
                out,
                "<p id=\"window\" data-from=\"{}\" data-to=\"{}\" data-until=\"{}\">Window {} to {} (UTC), state at {}. {} group(s).</p>",
                w.from, w.to, w.until, w.from, w.to, w.until, r.groups.len()
            );
        }
        None => out.push_str("<p id=\"window\">The input holds no event.</p>\n"),
    }
    for g in &r.groups {
        group_section(&mut out, r, g);
    }
    out.push_str("</body></html>\n");
    out
}

fn group_section(out: &mut String, r: &Report, g: &GroupReport) {
    let label = esc(&group_label(r, g));
    let title: Vec<String> =
        r.by.iter()
            .zip(&g.values)
            .map(|(f, v)| format!("{} {}", f.name(), if v.is_empty() { "(none)" } else { v }))
            .collect();
    let _ = writeln!(
        out,
        "<section class=\"group\" data-group=\"{label}\"><h2>{}</h2>",
        esc(&title.join(", "))
    );
    out.push_str("<table class=\"rules\"><tr><th>rule</th><th>opened</th><th>met</th><th>late</th><th>overdue</th><th>pending</th><th>on time</th></tr>\n");
    for (name, c) in r.rules.iter().zip(&g.rules) {
        let _ = writeln!(
            out,
            "<tr data-rule=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name), esc(name), c.opened, c.met, c.late, c.overdue, c.pending, percent(c.on_time_rate())
        );
    }
    out.push_str("</table>\n<table class=\"metrics\"><tr><th>metric</th><th>value</th><th>target</th><th>status</th><th>count</th></tr>\n");
    for (m, ratio) in Metric::ALL.iter().zip(&g.metrics) {
        metric_row(out, *m, *ratio);
    }
    out.push_str("</table>\n<div class=\"charts\">\n");
    for m in Metric::ALL {
        chart(out, r, g, m);
    }
    out.push_str("</div></section>\n");
}

fn metric_row(out: &mut String, m: Metric, ratio: Ratio) {
    let class = match ratio.ok(m.target()) {
        Some(true) => "met",
        Some(false) => "missed",
        None => "nodata",
    };
    let value = ratio.value().map_or("null".into(), |v| format!("{v:.12}"));
    let _ = writeln!(
        out,
        "<tr class=\"metric\" data-metric=\"{}\" data-numerator=\"{}\" data-denominator=\"{}\" data-value=\"{value}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{} / {}</td></tr>",
        m.name(),
        ratio.numerator,
        ratio.denominator,
        m.name(),
        percent(ratio.value()),
        m.target().map_or("-", |t| t.percent_text()),
        verdict(ratio, m),
        ratio.numerator,
        ratio.denominator
    );
}

const W: f64 = 320.0;
const H: f64 = 150.0;
const LEFT: f64 = 34.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;

fn target_value(t: Target) -> f64 {
    match t {
        Target::Below(n, d) | Target::AtLeast(n, d) => n as f64 / d as f64,
    }
}

/// One metric's daily value (dots joined where consecutive days have one) and its
/// target as a dashed line; y from 0 to 100 %.
/// The top of a chart's y axis: 100 % for the rates that should be high; for the rates
/// that should stay below a small target, the smallest of 5, 10, 20, 50 and 100 % that
/// holds twice the target and every daily value, so a 4 % target is not a hair above 0.
fn y_top(g: &GroupReport, m: Metric) -> f64 {
    let Some(Target::Below(n, d)) = m.target() else {
        return 1.0;
    };
    let highest = g
        .daily
        .iter()
        .filter_map(|day| day[m as usize].value())
        .fold(2.0 * n as f64 / d as f64, f64::max);
    [0.05, 0.1, 0.2, 0.5, 1.0]
        .into_iter()
        .find(|top| highest <= *top)
        .unwrap_or(1.0)
}

fn chart(out: &mut String, r: &Report, g: &GroupReport, m: Metric) {
    let days = r.days.len().max(1);
    let top = y_top(g, m);
    let x = |i: usize| LEFT + (W - LEFT - 6.0) * (i as f64 + 0.5) / days as f64;
    let y = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - (v / top).clamp(0.0, 1.0));
    let _ = write!(
        out,
        "<figure data-metric=\"{}\"><figcaption>{} (daily)</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{} per day\">",
        m.name(),
        m.name(),
        m.name()
    );
    for v in [0.0, top / 2.0, top] {
        let (right, gy, pct) = (W - 4.0, y(v), v * 100.0);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{right}\" y1=\"{gy:.1}\" y2=\"{gy:.1}\" stroke=\"#e4e7ec\"/><text x=\"2\" y=\"{:.1}\">{pct}%</text>",
            gy + 3.0
        );
    }
    if let (Some(first), Some(last)) = (r.days.first(), r.days.last()) {
        let date = |t: &crate::core::time::Millis| t.to_string()[..10].to_string();
        let _ = write!(
            out,
            "<text x=\"{LEFT}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            H - 5.0,
            date(first),
            W - 4.0,
            H - 5.0,
            date(last)
        );
    }
    if let Some(t) = m.target() {
        let ty = y(target_value(t));
        let _ = write!(
            out,
            "<line class=\"target\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#b42318\" stroke-dasharray=\"5 3\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" style=\"fill:#b42318\">target {}</text>",
            W - 4.0,
            W - 4.0,
            ty - 3.0,
            esc(t.percent_text())
        );
    }
    let points: Vec<Option<(f64, f64)>> = g
        .daily
        .iter()
        .enumerate()
        .map(|(i, d)| d[m as usize].value().map(|v| (x(i), y(v))))
        .collect();
    let mut path = String::new();
    let mut pen_down = false;
    for p in &points {
        match p {
            Some((px, py)) => {
                let _ = write!(path, "{}{px:.1},{py:.1} ", if pen_down { "L" } else { "M" });
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    if !path.is_empty() {
        let _ = write!(
            out,
            "<path d=\"{}\" fill=\"none\" stroke=\"#1570ef\" stroke-width=\"1.5\"/>",
            path.trim_end()
        );
    }
    for (i, p) in points.iter().enumerate() {
        if let Some((px, py)) = p {
            let d = &g.daily[i][m as usize];
            let _ = write!(
                out,
                "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"2.5\" fill=\"#1570ef\"><title>{}: {} / {}</title></circle>",
                &r.days[i].to_string()[..10],
                d.numerator,
                d.denominator
            );
        }
    }
    if points.iter().all(Option::is_none) {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data in the window</text>",
            (W + LEFT) / 2.0,
            H - BOTTOM - 12.0
        );
    }
    out.push_str("</svg></figure>\n");
}
