//! The HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (every worker's
//! loop came round within `http.liveness_timeout`), `/readyz` (contract section 9.3: the
//! broker answers, every input topic exists, partitions are assigned and restored), and
//! the query API under `/v1/` ([`crate::api`]).
//!
//! axum routes `/v1/`; every other request goes, as it is, to [`respond_to`], which
//! answers `/metrics`, `/healthz` and `/readyz` as it always has (any other method or
//! path: 404 naming them).
//!
//! Build and run are split ([`HttpServer::bind`] then [`HttpServer::serve`]) so tests
//! bind port 0 and read the real address back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::Api;
use crate::clock::Clock;
use crate::core::time::{Millis, Span};
use crate::metrics::Metrics;

/// What `/healthz` and `/readyz` report beside the assigned partitions
/// (`sla_assigned_partitions`, which every worker keeps its share of, and which loses
/// that share when it stops).
pub struct Health {
    pub broker_reachable: AtomicBool,
    /// Input topics the cluster's metadata did not list at the last look.
    pub missing_topics: Mutex<Vec<String>>,
    /// Per worker, when its loop last came round (milliseconds of the clock).
    turns: Vec<AtomicI64>,
    liveness_timeout: Span,
    clock: Arc<dyn Clock>,
}

impl Health {
    /// For `workers` workers, each counted as having come round now.
    pub fn new(workers: usize, liveness_timeout: Span, clock: Arc<dyn Clock>) -> Health {
        let now = clock.now().0;
        Health {
            broker_reachable: AtomicBool::new(false),
            missing_topics: Mutex::new(Vec::new()),
            turns: (0..workers).map(|_| AtomicI64::new(now)).collect(),
            liveness_timeout,
            clock,
        }
    }

    /// Worker `worker`'s loop came round at `now`.
    pub fn turned(&self, worker: usize, now: Millis) {
        if let Some(t) = self.turns.get(worker) {
            t.store(now.0, Ordering::Relaxed);
        }
    }

    /// The workers whose loop has not come round within the liveness timeout, with how
    /// long it has been.
    pub fn stuck(&self) -> Vec<(usize, Span)> {
        let now = self.clock.now().0;
        self.turns
            .iter()
            .enumerate()
            .map(|(w, t)| (w, Span(now - t.load(Ordering::Relaxed))))
            .filter(|(_, since)| *since > self.liveness_timeout)
            .collect()
    }
}

/// A bound, not yet serving, HTTP listener.
pub struct HttpServer {
    listener: TcpListener,
}

impl HttpServer {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<HttpServer> {
        Ok(HttpServer {
            listener: TcpListener::bind(addr).await?,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` turns true.
    pub async fn serve(
        self,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        api: Api,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let others = move |req: Request<axum::body::Body>| {
            let response = respond_to(req.method().as_str(), req.uri().path(), &metrics, &health);
            async move { response }
        };
        let app = api.router().fallback(others);
        let stopped = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(e) = axum::serve(self.listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::warn!(error = %e, "the HTTP server stopped");
        }
    }
}

fn respond_to(
    method: &str,
    path: &str,
    metrics: &Metrics,
    health: &Health,
) -> Response<Full<Bytes>> {
    match (method, path) {
        ("GET", "/metrics") => text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics.render(),
        ),
        ("GET", "/healthz") => {
            let stuck = health.stuck();
            if stuck.is_empty() {
                return text(StatusCode::OK, "text/plain", "ok\n".into());
            }
            let which: Vec<String> = stuck
                .iter()
                .map(|(w, since)| format!("worker {w} for {} s", since.whole_secs()))
                .collect();
            let reason = format!(
                "not live: a worker's loop has not come round ({}); http.liveness_timeout is {} s\n",
                which.join(", "),
                health.liveness_timeout.whole_secs()
            );
            text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", reason)
        }
        ("GET", "/readyz") => match not_ready(metrics, health) {
            None => text(StatusCode::OK, "text/plain", "ready\n".into()),
            Some(reason) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {reason}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

/// Why the process is not ready, in one line; `None` when it is.
fn not_ready(metrics: &Metrics, health: &Health) -> Option<String> {
    if !health.broker_reachable.load(Ordering::Relaxed) {
        return Some("the Kafka cluster does not answer".into());
    }
    let missing = health
        .missing_topics
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default();
    if !missing.is_empty() {
        return Some(format!("input topic missing: {}", missing.join(", ")));
    }
    let assigned = metrics.assigned_partitions().get();
    if assigned == 0 {
        return Some("no partition assigned to this process".into());
    }
    let restoring = metrics.restoring_partitions().get();
    if restoring > 0 {
        return Some(format!(
            "{restoring} of {assigned} assigned partitions restoring their state"
        ));
    }
    None
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a static response is valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A clock the test moves by hand.
    struct Hand(AtomicI64);

    impl Clock for Hand {
        fn now(&self) -> Millis {
            Millis(self.0.load(Ordering::Relaxed))
        }
        fn real_until(&self, _: Millis) -> Duration {
            Duration::ZERO
        }
    }

    fn get(path: &str, metrics: &Metrics, health: &Health) -> (u16, String) {
        let req = Request::get(path).body(()).unwrap();
        let response = respond_to(req.method().as_str(), req.uri().path(), metrics, health);
        let status = response.status().as_u16();
        let body = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(
            response.into_body(),
        ))
        .unwrap()
        .unwrap()
        .to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[test]
    fn healthz_says_503_once_a_worker_loop_has_not_come_round_for_the_liveness_timeout() {
        let clock = Arc::new(Hand(AtomicI64::new(1_000_000)));
        let health = Health::new(2, Span::from_secs(60), clock.clone());
        let metrics = Metrics::new();
        assert_eq!(get("/healthz", &metrics, &health).0, 200);
        clock.0.store(1_000_000 + 59_000, Ordering::Relaxed);
        health.turned(0, clock.now());
        assert_eq!(get("/healthz", &metrics, &health).0, 200);
        clock.0.store(1_000_000 + 61_000, Ordering::Relaxed);
        let (status, body) = get("/healthz", &metrics, &health);
        assert_eq!(status, 503);
        assert!(body.contains("worker 1 for 61 s"), "{body}");
        assert!(body.contains("http.liveness_timeout is 60 s"), "{body}");
        health.turned(1, clock.now());
        assert_eq!(get("/healthz", &metrics, &health).0, 200);
    }

    #[test]
    fn readyz_names_what_is_missing_first() {
        let clock = Arc::new(Hand(AtomicI64::new(0)));
        let health = Health::new(1, Span::from_secs(60), clock);
        let metrics = Metrics::new();
        let (status, body) = get("/readyz", &metrics, &health);
        assert_eq!(
            (status, body.as_str()),
            (503, "not ready: the Kafka cluster does not answer\n")
        );
        health.broker_reachable.store(true, Ordering::Relaxed);
        *health.missing_topics.lock().unwrap() = vec!["shipment".into()];
        let (_, body) = get("/readyz", &metrics, &health);
        assert_eq!(body, "not ready: input topic missing: shipment\n");
        health.missing_topics.lock().unwrap().clear();
        let (_, body) = get("/readyz", &metrics, &health);
        assert_eq!(body, "not ready: no partition assigned to this process\n");
        metrics.assigned_partitions().set(3);
        metrics.restoring_partitions().set(1);
        let (_, body) = get("/readyz", &metrics, &health);
        assert_eq!(
            body,
            "not ready: 1 of 3 assigned partitions restoring their state\n"
        );
        metrics.restoring_partitions().set(0);
        assert_eq!(get("/readyz", &metrics, &health), (200, "ready\n".into()));
    }
}
