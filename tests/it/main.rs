//! The one integration-test binary. Each module drives the real `sla-timerd` binary or
//! the library from outside, with the helpers in `helpers`.

mod helpers;
mod engine_model;
mod replay_cli;
