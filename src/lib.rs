//! sla-timerd keeps marketplace sellers inside their service-level deadlines: it reads
//! order, message and return events, keeps a deadline timer per open obligation, and
//! emits CloudEvents alerts (warnings, breaches, resolutions, policy violations).
//!
//! # Core and shell
//!
//! * [`core`] is pure and deterministic: decoded events and times in, alerts out. It
//!   never reads a clock and does no I/O. Replay, the live daemon, the benches and the
//!   property tests all drive it.
//! * [`decode`] turns bytes into events or dead letters (pure).
//! * The shell around them owns I/O: [`config`] (files, validation at start-up),
//!   [`replay`] (a JSON Lines file through the core to stdout; [`read_ahead`] reads and
//!   decodes it a batch ahead), [`report`] (the same engine over a history, reporting
//!   fates and marketplace metrics), [`kafka`] (the live daemon), [`http`] and
//!   [`metrics`], [`clock`] (the only reader of wall time), [`cli`] and [`telemetry`].

pub mod api;
pub mod changelog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod deadlines;
pub mod decode;
pub mod demo;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod query;
pub mod read_ahead;
pub mod replay;
pub mod report;
pub mod sample;
pub mod service;
pub mod telemetry;
pub mod worker;
