//! Arbitrary bytes as a JSON Lines file through `sla_timerd::replay::replay` with the
//! default rules: every line is decoded and the well-formed ones drive the engine
//! (clock, timers, open/close, checks, alerts). Must return `Ok` and never panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sla_timerd::core::engine::Engine;
use sla_timerd::core::rules::RuleSet;
use sla_timerd::replay::{replay, Sinks};

fn rules() -> Arc<RuleSet> {
    static RULES: OnceLock<Arc<RuleSet>> = OnceLock::new();
    RULES
        .get_or_init(|| Arc::new(sla_timerd::config::load_rules(None).expect("default rules load")))
        .clone()
}

fuzz_target!(|data: &[u8]| {
    // A fresh engine per input, so every run is deterministic and reproducible.
    let mut engine = Engine::new(rules());
    let mut sinks = Sinks { alerts: std::io::sink(), dead_letters: Some(std::io::sink()) };
    let result = replay(&mut engine, data, &mut sinks, None);
    assert!(result.is_ok(), "replay failed: {:?}", result.err());
});
