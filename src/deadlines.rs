//! `sla-timerd deadlines`: the query API of a running daemon from the command line.
//!
//! It sends `GET /v1/deadlines` with the filters given and the bearer token, and prints
//! the answer as an aligned table sorted by time left (the time to the deadline from this
//! machine's clock), or as the JSON the API wrote (`--json`). One order is
//! `--rule ship_by --key ORDER`. Plain `http://` only: the daemon serves no TLS (reach a remote
//! one through a tunnel or `kubectl port-forward`).

use std::fmt::Write as _;

use anyhow::{bail, Context as _, Result};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;

use crate::core::time::Millis;

/// `deadlines` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DeadlinesArgs {
    /// The daemon's HTTP address (http.listen), e.g. http://127.0.0.1:9464.
    #[arg(long, default_value = "http://127.0.0.1:9464")]
    pub url: String,
    /// The daemon's http.api_token (or set SLA_TIMERD__HTTP__API_TOKEN, as the daemon reads it).
    #[arg(long, env = "SLA_TIMERD__HTTP__API_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Only this rule's instances.
    #[arg(long)]
    pub rule: Option<String>,
    /// Only this key (order, thread or return id).
    #[arg(long)]
    pub key: Option<String>,
    /// Only instances whose opening event had this seller_id.
    #[arg(long)]
    pub seller_id: Option<String>,
    /// Only instances whose opening event had this marketplace (e.g. NL).
    #[arg(long)]
    pub marketplace: Option<String>,
    /// `open` (not past the deadline) or `overdue`; both when absent.
    #[arg(long, value_parser = ["open", "overdue"])]
    pub status: Option<String>,
    /// Only deadlines before this RFC 3339 instant.
    #[arg(long, value_name = "RFC3339")]
    pub due_before: Option<String>,
    /// At most this many (1 to 10000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// The page after this cursor (the `next` a previous page gave).
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
    /// Print the API's JSON as it came.
    #[arg(long)]
    pub json: bool,
}

impl DeadlinesArgs {
    /// The request's path and query.
    pub fn path(&self) -> String {
        let mut query = Vec::new();
        let pairs = [
            ("rule", &self.rule),
            ("key", &self.key),
            ("seller_id", &self.seller_id),
            ("marketplace", &self.marketplace),
            ("status", &self.status),
            ("due_before", &self.due_before),
            ("after", &self.after),
        ];
        for (name, value) in pairs {
            if let Some(v) = value {
                query.push(format!(
                    "{name}={}",
                    utf8_percent_encode(v, NON_ALPHANUMERIC)
                ));
            }
        }
        query.push(format!("limit={}", self.limit));
        format!("/v1/deadlines?{}", query.join("&"))
    }
}

/// Runs the command: what to print on standard output, or the error the API gave.
pub async fn run(args: &DeadlinesArgs, now: Millis) -> Result<String> {
    let (status, body) = get(&args.url, &args.path(), &args.token).await?;
    if status != 200 {
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(body);
        bail!("{} answered {status}: {message}", args.url);
    }
    if args.json {
        return Ok(format!("{body}\n"));
    }
    let page: Value = serde_json::from_str(&body).context("the answer is not JSON")?;
    Ok(table(&page, now))
}

/// One GET with the bearer token: the status and the body.
async fn get(url: &str, path: &str, token: &str) -> Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("--url {url}: write it as http://host:port (no TLS)"))?;
    let (authority, base) = rest.split_once('/').unwrap_or((rest, ""));
    let base = base.trim_end_matches('/');
    let target = if base.is_empty() {
        path.to_string()
    } else {
        format!("/{base}{path}")
    };
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot connect to {authority}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
    tokio::spawn(connection);
    let request = hyper::Request::get(target)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
        .context("the request")?;
    let response = sender
        .send_request(request)
        .await
        .with_context(|| format!("GET {url}{path}"))?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A page as an aligned table, sorted by time left from `now`, with a last line that says
/// how to get the next page when there is one.
pub fn table(page: &Value, now: Millis) -> String {
    let mut entries: Vec<&Value> = page["deadlines"].as_array().into_iter().flatten().collect();
    let deadline = |e: &Value| {
        e["deadline"]
            .as_str()
            .and_then(|t| Millis::parse_rfc3339(t).ok())
    };
    entries.sort_by_key(|e| deadline(e));
    let header = [
        "TIME LEFT",
        "DEADLINE",
        "RULE",
        "KEY",
        "NEXT",
        "ALERTS",
        "SELLER",
        "MARKETPLACE",
        "PARTITION",
    ];
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let mut rows: Vec<[String; 9]> = vec![header.map(str::to_string)];
    for e in &entries {
        let left = deadline(e).map_or("?".into(), |d| time_left(d.0 - now.0));
        let next = match e["next_point"]["stage"].as_str() {
            Some(stage) => format!("{stage} {}", short_time(&e["next_point"]["time"])),
            None => "-".into(),
        };
        rows.push([
            left,
            short_time(&e["deadline"]),
            text(&e["rule"]),
            text(&e["key"]),
            next,
            e["alerts_emitted"].to_string(),
            text(&e["seller_id"]),
            text(&e["marketplace"]),
            format!("{}/{}", text(&e["topic"]), e["partition"]),
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    if entries.is_empty() {
        out.push_str("(no open deadline matches)\n");
    }
    if let Some(next) = page["next"].as_str() {
        let _ = writeln!(out, "more: add --after {next}");
    }
    out
}

/// `2026-11-20T14:00:00.000Z` as `2026-11-20 14:00Z`.
fn short_time(v: &Value) -> String {
    match v.as_str() {
        Some(t) if t.len() >= 16 => format!("{} {}Z", &t[..10], &t[11..16]),
        Some(t) => t.to_string(),
        None => "-".into(),
    }
}

/// Milliseconds to go as `1d04h`, `3h12m`, `7m`; past the deadline, `overdue 2h05m`.
pub fn time_left(ms: i64) -> String {
    let minutes = ms.unsigned_abs() / 60_000;
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let span = if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else {
        format!("{m}m")
    };
    if ms < 0 {
        format!("overdue {span}")
    } else {
        span
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn time_left_reads_at_a_glance() {
        assert_eq!(time_left(0), "0m");
        assert_eq!(time_left(7 * 60_000 + 59_999), "7m");
        assert_eq!(time_left((3 * 60 + 12) * 60_000), "3h12m");
        assert_eq!(time_left((28 * 60) * 60_000), "1d04h");
        assert_eq!(time_left(-(125 * 60_000)), "overdue 2h05m");
    }

    #[test]
    fn the_table_is_aligned_sorted_by_time_left_and_says_how_to_page_on() {
        let entry = |key: &str, deadline: &str, next: Value| {
            json!({"rule": "ship_by", "key": key, "deadline": deadline, "next_point": next,
                   "alerts_emitted": 1, "seller_id": "S1", "marketplace": null,
                   "topic": "shipment", "partition": 2})
        };
        let page = json!({"deadlines": [
            entry("late-one", "2026-11-20T18:00:00.000Z", json!({"stage": "breach", "time": "2026-11-20T18:00:00.000Z"})),
            entry("A", "2026-11-20T09:00:00.000Z", Value::Null),
        ], "next": "abc"});
        let now = Millis::parse_rfc3339("2026-11-20T10:00:00Z").unwrap();
        let out = table(&page, now);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].starts_with("TIME LEFT      DEADLINE  "), "{out}");
        assert!(
            lines[1].starts_with("overdue 1h00m  2026-11-20 09:00Z  ship_by  A "),
            "{out}"
        );
        assert!(
            lines[2].starts_with(
                "8h00m          2026-11-20 18:00Z  ship_by  late-one  breach 2026-11-20 18:00Z"
            ),
            "{out}"
        );
        assert!(
            lines[2].ends_with("S1      -            shipment/2"),
            "{out}"
        );
        assert_eq!(lines[3], "more: add --after abc");
        let col = |l: &str| l.find("ship_by").unwrap();
        assert_eq!(col(lines[1]), col(lines[2]));
    }

    #[test]
    fn filters_go_into_the_query_string_encoded() {
        let args = DeadlinesArgs {
            url: "http://x".into(),
            token: "t".into(),
            rule: Some("ship_by".into()),
            key: Some("a/b c".into()),
            seller_id: None,
            marketplace: Some("NL".into()),
            status: Some("overdue".into()),
            due_before: Some("2026-11-20T10:00:00+01:00".into()),
            limit: 3,
            after: None,
            json: false,
        };
        assert_eq!(
            args.path(),
            "/v1/deadlines?rule=ship%5Fby&key=a%2Fb%20c&marketplace=NL&status=overdue&due_before=2026%2D11%2D20T10%3A00%3A00%2B01%3A00&limit=3"
        );
    }
}
