//! The pure core: event model, rules, timer wheel, per-partition engine state, alerts.
//!
//! Nothing under `core` reads a clock, touches Kafka, HTTP, files or a metrics registry.
//! It is handed decoded events and times and returns alerts; replay, the live daemon,
//! the benches and the property tests all drive it the same way.

pub mod alert;
pub mod arena;
pub mod calendar;
pub mod effect;
pub mod engine;
pub mod event;
pub mod instances;
pub mod packed;
pub mod partition;
pub mod retained;
pub mod rules;
pub mod time;
pub mod wheel;
