//! `sla-timerd report`: how a seller did over a history (contract section 11).
//!
//! # Ground rules
//!
//! * The history is read exactly as `replay` reads it (a batch ahead, the same
//!   decoder, the same engine and rules, duplicates and dead letters alike); instead of
//!   alerts, the engine's instance lifecycle effects and the applied events go into
//!   [`Facts`], and [`tally`] computes the numbers at the end `E`.
//! * Progress goes to standard error through the caller's callback, every
//!   [`PROGRESS_EVERY`] records, for histories of millions of lines.

mod facts;
pub mod html;
mod measures;
pub mod render;
pub mod tally;

use std::io::{self, BufRead};

pub use facts::Facts;
pub use tally::{tally, GroupField, Report, Window};

use crate::core::engine::{Engine, PartitionId};
use crate::core::event::Input;
use crate::core::partition::Taken;
use crate::core::time::Millis;

/// Records between two progress reports.
pub const PROGRESS_EVERY: u64 = 1_000_000;

/// The window options of the command line.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub until: Option<Millis>,
    pub by: Vec<GroupField>,
}

/// Records read so far and input bytes consumed, for a progress line; `done` on the
/// last call, at the end of the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub records: u64,
    pub bytes: u64,
    /// Records that were not well-formed events (the report leaves them out).
    pub dead_lettered: u64,
    pub done: bool,
}

/// Reads the history through the engine and computes the report.
pub fn report(
    engine: &mut Engine,
    input: impl BufRead + Send,
    options: &Options,
    mut progress: impl FnMut(Progress),
) -> io::Result<Report> {
    let mut facts = Facts::new();
    let mut seen = Progress::default();
    crate::read_ahead::for_each_record(input, |record| {
        seen.bytes = record.consumed;
        seen.records += 1;
        if seen.records % PROGRESS_EVERY == 0 {
            progress(seen);
        }
        let Ok(input) = &record.input else {
            seen.dead_lettered += 1;
            return Ok(());
        };
        let taken = engine.take(PartitionId::REPLAY, input, &mut facts);
        if let (Taken::Applied, Input::Known(event)) = (taken, input) {
            facts.observe(event);
        }
        Ok(())
    })?;
    seen.done = true;
    progress(seen);
    let clock = engine
        .partition(PartitionId::REPLAY)
        .and_then(|p| p.clock());
    let window = Window::resolve(options.from, options.to, options.until, clock);
    let by = if options.by.is_empty() {
        vec![GroupField::SellerId, GroupField::Marketplace]
    } else {
        options.by.clone()
    };
    Ok(tally(&facts, engine.rules(), window, &by))
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
