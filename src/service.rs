//! The live service assembled: HTTP endpoints, metrics, the Kafka daemon, signals.
//!
//! Build and run are split so tests (and the demo) can bind port 0, read the real
//! address back, and stop the service through the same shutdown channel a signal uses.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::api::Api;
use crate::clock::Clock;
use crate::config::Settings;
use crate::http::{Health, HttpServer};
use crate::kafka::daemon::Daemon;
use crate::metrics::Metrics;
use crate::query::ask::Querier;

/// A built service: clients created, HTTP bound, nothing running yet.
/// Whether start-up creates the missing changelog topics and checks the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangelogTopics {
    Ensure,
    /// They exist, made by whoever runs the cluster (the demo).
    Trust,
}

pub struct Service {
    /// `kafka.workers` of them, each a consumer-group member with its own engine.
    workers: Vec<Daemon>,
    http: HttpServer,
    api: Api,
    /// The query API's way to every worker.
    querier: Querier,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// How long a graceful shutdown may take (`kafka.shutdown_timeout`).
    shutdown_timeout: std::time::Duration,
}

impl Service {
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> Result<Service> {
        Service::build_with(settings, clock, ChangelogTopics::Ensure).await
    }

    /// As [`Service::build`], saying whether to create and check the changelog topics
    /// (the demo's mock cluster answers no admin requests; it creates them itself).
    pub async fn build_with(
        settings: Settings,
        clock: Arc<dyn Clock>,
        changelogs: ChangelogTopics,
    ) -> Result<Service> {
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::new(
            settings.kafka.workers,
            settings.http.liveness_timeout,
            clock.clone(),
        ));
        let listen = settings.http.listen;
        let http = HttpServer::bind(listen)
            .await
            .with_context(|| format!("cannot listen on http.listen {listen}"))?;
        anyhow::ensure!(
            settings.kafka.workers >= 1,
            "kafka.workers is 0; it must be at least 1"
        );
        let k = &settings.kafka;
        if changelogs == ChangelogTopics::Ensure {
            crate::kafka::topics::ensure_changelogs(
                &crate::kafka::admin_config(k),
                &k.group_id,
                &k.topics.inputs(),
                crate::kafka::client_log::ClientLog::new(k.redactor(), clock.clone()),
            )
            .await?;
        }
        let (querier, questions) = Querier::new(settings.kafka.workers);
        let workers = questions
            .into_iter()
            .enumerate()
            .map(|(w, questions)| {
                Daemon::build(
                    w,
                    settings.clone(),
                    clock.clone(),
                    metrics.clone(),
                    health.clone(),
                    questions,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let api = Api::new(&settings, querier.clone());
        Ok(Service {
            workers,
            http,
            api,
            querier,
            metrics,
            health,
            shutdown_timeout: std::time::Duration::from_millis(
                settings.kafka.shutdown_timeout.as_millis().max(1) as u64,
            ),
        })
    }

    /// Where `/metrics`, `/healthz`, `/readyz` and the query API are served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    /// Asks the workers what the query API asks them (the demo's view of the deadlines).
    pub fn querier(&self) -> Querier {
        self.querier.clone()
    }

    /// Runs until `shutdown` turns true; returns once every worker committed its offsets.
    /// A worker that fails (a fatal Kafka error) stops the others the same graceful way,
    /// and its error is returned.
    ///
    /// Each worker runs on a thread of its own (`sla-worker-N`, a single-threaded tokio
    /// runtime), as a Kafka Streams stream thread does: the calls librdkafka makes block
    /// (the commit on partition revoke, reading committed offsets on assignment) hold up
    /// that worker only, never the HTTP endpoints or the other workers.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        tracing::info!(http = %self.http.local_addr(), workers = self.workers.len(), "serving /metrics, /healthz, /readyz and /v1/ (the query API)");
        let http =
            tokio::spawn(
                self.http
                    .serve(self.metrics, self.health, self.api, shutdown.clone()),
            );
        let (stop, stop_requested) = watch::channel(false);
        let (finished, mut running) = tokio::sync::mpsc::unbounded_channel();
        let workers_started = self.workers.len();
        for (w, daemon) in self.workers.into_iter().enumerate() {
            let (stop_requested, done) = (stop_requested.clone(), finished.clone());
            let thread = std::thread::Builder::new()
                .name(format!("sla-worker-{w}"))
                .spawn(move || {
                    let _ = done.send(run_worker(w, daemon, stop_requested));
                });
            if let Err(e) = thread {
                let _ = stop.send(true);
                let _ = finished.send(Err(
                    anyhow::Error::new(e).context("cannot start a worker thread")
                ));
            }
        }
        drop(finished);
        let mut first_error = None;
        let mut signalled = false;
        let mut left = workers_started;
        let deadline = tokio::time::sleep(std::time::Duration::MAX / 4);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                // A closed channel (its sender gone) asks for shutdown too; either way
                // this branch is done with, or it would be ready again at once.
                _ = shutdown.changed(), if !signalled => {
                    signalled = true;
                    let _ = stop.send(true);
                    deadline.as_mut().reset(tokio::time::Instant::now() + self.shutdown_timeout);
                }
                _ = &mut deadline => {
                    http.abort();
                    anyhow::bail!(
                        "shutdown took longer than kafka.shutdown_timeout ({} s): {left} worker(s) had not finished \
                         (is the broker reachable?); what they had not committed is aborted, and the partitions' next owner does it again",
                        self.shutdown_timeout.as_secs()
                    );
                }
                done = running.recv() => {
                    let Some(result) = done else { break };
                    left = left.saturating_sub(1);
                    if let Err(e) = result {
                        tracing::error!(error = format!("{e:#}"), "a worker failed; stopping the others");
                        first_error.get_or_insert(e);
                        let _ = stop.send(true);
                    }
                }
            }
        }
        http.abort();
        first_error.map_or(Ok(()), Err)
    }
}

/// One worker, on the calling thread, until it stops; a panic is returned as an error.
fn run_worker(w: usize, daemon: Daemon, stop_requested: watch::Receiver<bool>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a worker runtime")?;
    let run = || {
        runtime.block_on(
            daemon
                .run(stop_requested)
                .instrument(tracing::info_span!("worker", w)),
        )
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|_| {
        Err(anyhow::anyhow!(
            "worker {w} panicked (see the panic message above)"
        ))
    })
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
