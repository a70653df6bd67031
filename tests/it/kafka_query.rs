//! The query API (contract section 12) and `sla-timerd deadlines` against a daemon
//! running on a real broker: the list sorted, filters, pages, one instance, the token.

use std::time::Duration;

use serde_json::Value;
use sla_timerd::clock::{Clock, SystemClock};
use sla_timerd::core::time::{Millis, Span};

use crate::kafka::start_with;
use crate::kafka_helpers::*;

const TOKEN: &str = "it-t0ken-5d41402a";

fn minutes_before(base: Millis, n: i64) -> Millis {
    base.minus(Span::from_secs(60 * n))
}

/// Ten unanswered messages (sellers S0 and S1 in turn) and one order already past its
/// ship-by date.
fn backlog(base: Millis) -> String {
    let mut lines: Vec<String> = (0..10)
        .map(|i| {
            format!(
                r#"{{"specversion":"1.0","id":"m-{i}","source":"helpdesk","type":"customer_message.received","time":"{}","data":{{"thread_id":"T-{i}","seller_id":"S{}","marketplace":"NL"}}}}"#,
                minutes_before(base, 20 - i).to_rfc3339(),
                i % 2
            )
        })
        .collect();
    lines.push(format!(
        r#"{{"specversion":"1.0","id":"o-1","source":"shop","type":"order.placed","time":"{}","data":{{"order_id":"O-1","latest_ship_date":"{}","seller_id":"S9","marketplace":"DE"}}}}"#,
        minutes_before(base, 5).to_rfc3339(),
        minutes_before(base, 60).to_rfc3339()
    ));
    lines.join("\n")
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let (status, _, body) = http_get_as(addr, path, Some(TOKEN)).await;
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, v)
}

fn keys(page: &Value) -> Vec<String> {
    page["deadlines"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect()
}

fn cli(addr: std::net::SocketAddr, args: &[&str], token: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sla-timerd"))
        .arg("deadlines")
        .arg("--url")
        .arg(format!("http://{addr}"))
        .args(args)
        .env("SLA_TIMERD__HTTP__API_TOKEN", token)
        .output()
        .expect("the binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_api_lists_filters_pages_and_finds_open_deadlines_behind_its_token() {
    let Some(broker) = broker() else { return };
    let names = Names::new("query");
    create_topics(&broker, &names, 2).await;
    let base = SystemClock.now();
    produce_lines(&broker, &names, &backlog(base)).await;
    let mut settings = names.settings(&broker);
    settings.kafka.workers = 2;
    settings.http.api_token = Some(sla_timerd::config::Secret::new(TOKEN.into()));
    let (stop, addr, handle) = start_with(settings).await;

    let mut all = Value::Null;
    for _ in 0..120 {
        let (status, page) = get(addr, "/v1/deadlines").await;
        if status == 200 && page["deadlines"].as_array().is_some_and(|d| d.len() == 11) {
            all = page;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let expected: Vec<String> = std::iter::once("O-1".to_string())
        .chain((0..10).map(|i| format!("T-{i}")))
        .collect();
    assert_eq!(keys(&all), expected, "sorted by deadline: {all}");
    assert_eq!(all["next"], Value::Null);
    let order = &all["deadlines"][0];
    assert_eq!(order["rule"], "ship_by");
    assert_eq!(
        order["overdue"], true,
        "past its ship-by date on the wall clock"
    );
    assert_eq!(order["next_point"], Value::Null);
    assert_eq!(order["alerts_emitted"], 1);
    assert_eq!(
        (order["order_id"].as_str(), order["seller_id"].as_str()),
        (Some("O-1"), Some("S9"))
    );
    assert_eq!(order["topic"], names.shipment.as_str());
    let reply = &all["deadlines"][1];
    assert_eq!(
        (reply["opened_by"].as_str(), reply["overdue"].as_bool()),
        (Some("m-0"), Some(false))
    );
    assert_eq!(reply["next_point"]["stage"], "warning");
    assert_eq!(reply["next_point"]["lead_seconds"], 86_400);

    for (query, want) in [
        ("status=overdue", vec!["O-1"]),
        ("rule=ship_by", vec!["O-1"]),
        ("key=T-3", vec!["T-3"]),
        ("seller_id=S1&status=open&limit=2", vec!["T-1", "T-3"]),
        ("marketplace=DE", vec!["O-1"]),
    ] {
        let (status, page) = get(addr, &format!("/v1/deadlines?{query}")).await;
        assert_eq!(
            (status, keys(&page)),
            (200, want.iter().map(|s| s.to_string()).collect()),
            "{query}"
        );
    }
    // T-4 is due 16 minutes before base + 48h, T-5 15 minutes before.
    let due = base.plus(Span::from_secs(48 * 3600 - 930)).to_rfc3339();
    let (_, page) = get(addr, &format!("/v1/deadlines?status=open&due_before={due}")).await;
    assert_eq!(
        keys(&page),
        ["T-0", "T-1", "T-2", "T-3", "T-4"],
        "due before {due}"
    );

    let mut paged = Vec::new();
    let mut path = "/v1/deadlines?limit=4".to_string();
    loop {
        let (status, page) = get(addr, &path).await;
        assert_eq!(status, 200, "{page}");
        assert!(keys(&page).len() <= 4);
        paged.extend(keys(&page));
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/deadlines?limit=4&after={next}"),
            None => break,
        }
    }
    assert_eq!(paged, expected, "the pages give every entry once, in order");

    let (status, one) = get(addr, "/v1/deadlines/customer_reply/T-3").await;
    assert_eq!(
        (status, one["key"].as_str(), one["seller_id"].as_str()),
        (200, Some("T-3"), Some("S1"))
    );
    let (status, missing) = get(addr, "/v1/deadlines/customer_reply/T-99").await;
    assert_eq!(status, 404, "{missing}");
    assert!(
        missing["error"].as_str().unwrap().contains("T-99"),
        "{missing}"
    );
    let (status, _) = get(addr, "/v1/deadlines/no_such_rule/T-3").await;
    assert_eq!(status, 404);
    let (status, bad) = get(addr, "/v1/deadlines?limit=0").await;
    assert_eq!(status, 400);
    assert!(
        bad["error"].as_str().unwrap().starts_with("limit:"),
        "{bad}"
    );
    let (status, doc) = get(addr, "/v1/openapi.json").await;
    assert_eq!((status, doc["openapi"].as_str()), (200, Some("3.1.0")));

    for token in [None, Some("wrong"), Some("it-t0ken-5d41402")] {
        let (status, head, body) = http_get_as(addr, "/v1/deadlines", token).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(head.contains("www-authenticate: bearer"), "{head}");
        assert!(body.contains("\"error\""), "{body}");
    }
    let (status, metrics) = http_get(addr, "/metrics").await;
    assert!(
        status == 200 && metrics.contains("sla_assigned_partitions"),
        "/metrics unchanged"
    );

    // The command line, with the token from the daemon's own variable.
    let (addr2, out) = (
        addr,
        tokio::task::spawn_blocking(move || {
            cli(addr, &["--status", "open", "--limit", "3"], TOKEN)
        })
        .await
        .unwrap(),
    );
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TIME LEFT"), "{table}");
    assert!(
        lines[1].starts_with("1d23h") && lines[1].contains("customer_reply  T-0"),
        "{table}"
    );
    assert!(
        lines[3].contains("T-2") && lines[4].starts_with("more: add --after "),
        "{table}"
    );
    let out =
        tokio::task::spawn_blocking(move || cli(addr2, &["--rule", "ship_by", "--json"], TOKEN))
            .await
            .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).expect("--json prints the API's JSON");
    assert_eq!(keys(&json), ["O-1"]);
    let out = tokio::task::spawn_blocking(move || cli(addr2, &[], "wrong"))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("answered 401"), "{err}");

    stop.send(true).unwrap();
    handle.await.unwrap().expect("a clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_configured_the_query_api_answers_404_naming_the_setting() {
    let Some(broker) = broker() else { return };
    let names = Names::new("query-off");
    create_topics(&broker, &names, 1).await;
    let (stop, addr, handle) = start_with(names.settings(&broker)).await;
    for path in [
        "/v1/deadlines",
        "/v1/deadlines/ship_by/O-1",
        "/v1/openapi.json",
    ] {
        let (status, head, body) = http_get_as(addr, path, Some(TOKEN)).await;
        assert_eq!(status, 404, "{path}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(body.contains("http.api_token"), "{body}");
    }
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    stop.send(true).unwrap();
    handle.await.unwrap().expect("a clean shutdown");
}
