//! Prometheus metrics: one owned registry, one method per observable fact.
//!
//! Label values come from small fixed sets only: topic names from the configuration,
//! partition numbers, rule and check names, alert types, outcomes and dead-letter
//! classes. Never an order id, a thread id or any other event value.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    records: IntCounterVec,
    dead_letters: IntCounterVec,
    alerts: IntCounterVec,
    alerts_reemitted: IntCounter,
    alert_ids_suppressed: IntCounter,
    open_instances: IntGaugeVec,
    pending_points: IntGauge,
    consumer_lag: IntGaugeVec,
    clock_behind: prometheus::GaugeVec,
    firing_lateness: prometheus::HistogramVec,
    commit_seconds: Histogram,
    produce_errors: IntCounterVec,
    processing_latency: Histogram,
    assigned_partitions: IntGauge,
    commits: IntCounterVec,
    restoring_partitions: IntGauge,
    restore_seconds: Histogram,
    restored_records: IntCounter,
    instances_dropped: IntCounterVec,
    transactions: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric definition");
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric names are unique");
    g
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("a valid histogram");
    registry
        .register(Box::new(h.clone()))
        .expect("metric names are unique");
    h
}

/// Seconds from 1 ms to about 30 s.
fn latency_buckets() -> Vec<f64> {
    vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let clock_behind = prometheus::GaugeVec::new(
            Opts::new(
                "sla_partition_clock_behind_seconds",
                "How far a partition's clock is behind the wall clock.",
            ),
            &["topic", "partition"],
        )
        .expect("a valid metric definition");
        r.register(Box::new(clock_behind.clone()))
            .expect("metric names are unique");
        Metrics {
            records: counter(&r, "sla_records_consumed_total", "Input records by topic and outcome (applied, skipped, duplicate, dead_lettered).", &["topic", "outcome"]),
            dead_letters: counter(&r, "sla_dead_letters_total", "Dead-lettered records by reason class.", &["class"]),
            alerts: counter(&r, "sla_alerts_produced_total", "Alerts acknowledged by the broker, by rule or check and type.", &["rule", "type"]),
            alerts_reemitted: IntCounter::new("sla_alerts_reemitted_total", "Under at least once, alerts sent again that had been delivered before: re-read after a crash or a failed commit (counted from the changelog's delivery marks; errs low).").expect("valid"),
            alert_ids_suppressed: IntCounter::new("sla_alert_ids_suppressed_total", "Alerts not produced because their id was already emitted.").expect("valid"),
            open_instances: gauge(&r, "sla_open_instances", "Open SLA instances by rule.", &["rule"]),
            pending_points: IntGauge::new("sla_pending_timer_points", "Warning and breach points waiting to fire.").expect("valid"),
            consumer_lag: gauge(&r, "sla_consumer_lag_records", "Records between the consumer position and the high watermark.", &["topic", "partition"]),
            clock_behind,
            firing_lateness: {
                let h = prometheus::HistogramVec::new(
                    HistogramOpts::new(
                        "sla_alert_firing_lateness_seconds",
                        "How long after its due time an alert was sent: mode=\"live\" for a caught-up partition (timer precision; a point already past when its instance opened counts here too), mode=\"catch_up\" while it reads a backlog on event time.",
                    )
                    .buckets(latency_buckets()),
                    &["mode"],
                )
                .expect("a valid histogram");
                r.register(Box::new(h.clone())).expect("metric names are unique");
                for mode in ["live", "catch_up"] {
                    h.with_label_values(&[mode]);
                }
                h
            },
            commit_seconds: histogram(&r, "sla_commit_duration_seconds", "How long a commit held the worker's loop (a transaction's offsets and commit under exactly once; flushes and the offset commit under at least once).", latency_buckets()),
            produce_errors: counter(&r, "sla_produce_errors_total", "Failed produce attempts by topic and kind (retriable, fatal).", &["topic", "kind"]),
            processing_latency: histogram(&r, "sla_processing_latency_seconds", "From a record's broker timestamp to the broker acknowledging everything it caused.", latency_buckets()),
            assigned_partitions: IntGauge::new("sla_assigned_partitions", "Input partitions assigned to this instance.").expect("valid"),
            commits: counter(&r, "sla_offset_commits_total", "Offset commits by outcome (ok, error).", &["outcome"]),
            restoring_partitions: IntGauge::new("sla_partitions_restoring", "Assigned partitions whose state is being restored from the changelog.").expect("valid"),
            restore_seconds: histogram(&r, "sla_restore_duration_seconds", "Time to restore one partition's state from its changelog.", latency_buckets()),
            restored_records: IntCounter::new("sla_restored_records_total", "Changelog records read while restoring state.").expect("valid"),
            instances_dropped: counter(&r, "sla_restored_instances_dropped_total", "Restored instances dropped because their rule is no longer configured.", &["rule"]),
            transactions: counter(&r, "sla_transactions_total", "Kafka transactions by outcome (committed, aborted).", &["outcome"]),
            registry: r,
        }
        .registered()
    }

    fn registered(self) -> Metrics {
        // Each known label value at zero from the start, so that a rate over it is 0
        // rather than absent until the first event.
        for class in crate::decode::DeadLetter::CLASSES
            .iter()
            .chain(&["by_reference"])
        {
            self.dead_letters.with_label_values(&[class]);
        }
        for outcome in ["ok", "error"] {
            self.commits.with_label_values(&[outcome]);
        }
        for outcome in ["committed", "aborted"] {
            self.transactions.with_label_values(&[outcome]);
        }
        for c in [
            &self.alerts_reemitted,
            &self.alert_ids_suppressed,
            &self.restored_records,
        ] {
            self.registry
                .register(Box::new(c.clone()))
                .expect("metric names are unique");
        }
        for g in [
            &self.pending_points,
            &self.assigned_partitions,
            &self.restoring_partitions,
        ] {
            self.registry
                .register(Box::new(g.clone()))
                .expect("metric names are unique");
        }
        self
    }

    /// The records counter of one (topic, outcome), for a caller to keep and bump
    /// without a label lookup per record.
    pub fn record_counter(&self, topic: &str, outcome: &str) -> IntCounter {
        self.records.with_label_values(&[topic, outcome])
    }

    pub fn dead_letter(&self, class: &str) {
        self.dead_letters.with_label_values(&[class]).inc();
    }

    pub fn alert_produced(&self, rule: &str, alert_type: &str) {
        self.alerts.with_label_values(&[rule, alert_type]).inc();
    }

    pub fn alert_reemitted(&self) {
        self.alerts_reemitted.inc();
    }

    pub fn alert_ids_suppressed(&self, more: u64) {
        self.alert_ids_suppressed.inc_by(more);
    }

    /// `sla_open_instances` of one rule, for a worker's [`GaugePart`].
    pub fn open_instances(&self, rule: &str) -> IntGauge {
        self.open_instances.with_label_values(&[rule])
    }

    /// `sla_pending_timer_points`, for a worker's [`GaugePart`].
    pub fn pending_points(&self) -> IntGauge {
        self.pending_points.clone()
    }

    pub fn partition_position(
        &self,
        topic: &str,
        partition: i32,
        lag: i64,
        clock_behind_secs: f64,
    ) {
        let p = partition.to_string();
        self.consumer_lag.with_label_values(&[topic, &p]).set(lag);
        self.clock_behind
            .with_label_values(&[topic, &p])
            .set(clock_behind_secs);
    }

    pub fn partition_revoked(&self, topic: &str, partition: i32) {
        let p = partition.to_string();
        let _ = self.consumer_lag.remove_label_values(&[topic, &p]);
        let _ = self.clock_behind.remove_label_values(&[topic, &p]);
    }

    /// An alert sent `seconds` after its due time, by a partition caught up (`live`) or
    /// not.
    pub fn fired_late_by(&self, live: bool, seconds: f64) {
        self.firing_lateness
            .with_label_values(&[if live { "live" } else { "catch_up" }])
            .observe(seconds.max(0.0));
    }

    pub fn produce_error(&self, topic: &str, kind: &str) {
        self.produce_errors.with_label_values(&[topic, kind]).inc();
    }

    pub fn processed_in(&self, seconds: f64) {
        self.processing_latency.observe(seconds.max(0.0));
    }

    /// `sla_assigned_partitions`, for a worker's [`GaugePart`].
    pub fn assigned_partitions(&self) -> IntGauge {
        self.assigned_partitions.clone()
    }

    pub fn restoring_partitions(&self) -> IntGauge {
        self.restoring_partitions.clone()
    }

    /// One partition restored from its changelog.
    pub fn restored(&self, seconds: f64, records: u64) {
        self.restore_seconds.observe(seconds);
        self.restored_records.inc_by(records);
    }

    pub fn instances_dropped(&self, rule: &str, n: u64) {
        self.instances_dropped.with_label_values(&[rule]).inc_by(n);
    }

    /// A transaction ended: `committed` or `aborted`.
    pub fn transaction(&self, outcome: &str) {
        self.transactions.with_label_values(&[outcome]).inc();
    }

    /// A commit held the worker's loop for `seconds`.
    pub fn commit_took(&self, seconds: f64) {
        self.commit_seconds.observe(seconds.max(0.0));
    }

    pub fn commit(&self, ok: bool) {
        self.commits
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }

    /// The text exposition format, for `/metrics`.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// One worker's share of a gauge summed over the process's workers: the worker sets its
/// own value, the gauge moves by the difference.
pub struct GaugePart {
    gauge: IntGauge,
    last: i64,
}

impl GaugePart {
    pub fn new(gauge: IntGauge) -> GaugePart {
        GaugePart { gauge, last: 0 }
    }

    pub fn set(&mut self, value: i64) {
        self.gauge.add(value - self.last);
        self.last = value;
    }
}

impl Drop for GaugePart {
    /// A worker that stops takes its share out.
    fn drop(&mut self) {
        self.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_families_are_exported_with_their_units() {
        let m = Metrics::new();
        m.record_counter("shipment", "applied").inc();
        m.alert_produced("ship_by", "sla.breach");
        m.fired_late_by(true, 0.002);
        let text = m.render();
        for family in [
            "sla_records_consumed_total{outcome=\"applied\",topic=\"shipment\"} 1",
            "sla_alerts_produced_total{rule=\"ship_by\",type=\"sla.breach\"} 1",
            "sla_alert_firing_lateness_seconds_bucket",
            "sla_pending_timer_points 0",
        ] {
            assert!(text.contains(family), "{family} missing from:\n{text}");
        }
    }

    #[test]
    fn gauge_parts_add_up_over_workers_and_leave_with_them() {
        let m = Metrics::new();
        let (mut a, mut b) = (
            GaugePart::new(m.pending_points()),
            GaugePart::new(m.pending_points()),
        );
        a.set(5);
        b.set(7);
        a.set(2);
        assert_eq!(m.pending_points().get(), 9);
        drop(b);
        assert_eq!(m.pending_points().get(), 2);
    }
}
