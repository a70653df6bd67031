//! The HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (the process is
//! alive and its loop is turning), `/readyz` (partitions are assigned and the broker
//! answers).
//!
//! Build and run are split ([`HttpServer::bind`] then [`HttpServer::serve`]) so tests
//! bind port 0 and read the real address back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// What `/readyz` reports beside the assigned partitions (`sla_assigned_partitions`,
/// which every worker keeps its share of, and which loses that share when it stops).
#[derive(Default)]
pub struct Health {
    pub broker_reachable: AtomicBool,
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
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => spawn_connection(stream, metrics.clone(), health.clone()),
                    Err(e) => tracing::warn!(error = %e, "http accept failed"),
                },
                _ = shutdown.changed() => break,
            }
        }
    }
}

fn spawn_connection(stream: tokio::net::TcpStream, metrics: Arc<Metrics>, health: Arc<Health>) {
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req| {
            let response = respond(&req, &metrics, &health);
            async move { Ok::<_, Infallible>(response) }
        });
        if let Err(e) = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await
        {
            tracing::debug!(error = %e, "http connection ended with an error");
        }
    });
}

fn respond(req: &Request<Incoming>, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/metrics") => text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics.render(),
        ),
        ("GET", "/healthz") => text(StatusCode::OK, "text/plain", "ok\n".into()),
        ("GET", "/readyz") => {
            let assigned = metrics.assigned_partitions().get();
            let restoring = metrics.restoring_partitions().get();
            let reachable = health.broker_reachable.load(Ordering::Relaxed);
            if assigned > 0 && restoring == 0 && reachable {
                return text(StatusCode::OK, "text/plain", "ready\n".into());
            }
            let broker = if reachable {
                "reachable"
            } else {
                "not reachable"
            };
            let reason = format!("not ready: {assigned} partitions assigned, {restoring} restoring, broker {broker}\n");
            text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", reason)
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a static response is valid")
}
