//! The live service assembled: HTTP endpoints, metrics, the Kafka daemon, signals.
//!
//! Build and run are split so tests (and the demo) can bind port 0, read the real
//! address back, and stop the service through the same shutdown channel a signal uses.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::Settings;
use crate::http::{Health, HttpServer};
use crate::kafka::daemon::Daemon;
use crate::metrics::Metrics;

/// A built service: clients created, HTTP bound, nothing running yet.
pub struct Service {
    daemon: Daemon,
    http: HttpServer,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

impl Service {
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> Result<Service> {
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::default());
        let listen = settings.http.listen;
        let http = HttpServer::bind(listen).await.with_context(|| format!("cannot listen on http.listen {listen}"))?;
        let daemon = Daemon::build(settings, clock, metrics.clone(), health.clone())?;
        Ok(Service { daemon, http, metrics, health })
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    /// Runs until `shutdown` turns true; returns once offsets are committed.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<()> {
        tracing::info!(http = %self.http.local_addr(), "serving /metrics, /healthz, /readyz");
        let http = tokio::spawn(self.http.serve(self.metrics, self.health, shutdown.clone()));
        let result = self.daemon.run(shutdown).await;
        http.abort();
        result
    }
}

/// Turns SIGINT or SIGTERM into `true` on the returned channel.
pub fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        let _ = tx.send(true);
    });
    rx
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
