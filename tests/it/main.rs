//! The one integration-test binary. Each module drives the real `sla-timerd` binary or
//! the library from outside, with the helpers in `helpers` and `kafka_helpers`.
//!
//! The `kafka` tests need a broker: `scripts/test.sh` starts one (`scripts/kafka.sh`)
//! and sets `KAFKA_BOOTSTRAP_SERVERS`; without it they print that they were skipped.

// Tests bound their waits with real time; the rule that only src/clock.rs reads time is
// for the product.
#![allow(clippy::disallowed_methods)]

mod business_time;
mod config_cli;
mod demo_cli;
mod engine_model;
mod faults;
mod helpers;
mod kafka;
mod kafka_helpers;
mod kafka_query;
mod replay_cli;
mod report_cli;
