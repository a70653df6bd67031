//! Raw bytes into `sla_timerd::decode::decode`. No input may panic; every outcome is
//! exercised further: a dead letter's `Display` and `class`, every field of a known event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sla_timerd::core::event::Field;
use sla_timerd::decode::{decode, Decoded};

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Decoded::Dead(d) => {
            let reason = d.to_string();
            assert!(!reason.is_empty());
            let class = d.class();
            assert!(!class.is_empty());
        }
        Decoded::Known(e) => {
            for &field in Field::ALL {
                std::hint::black_box(e.data.get(field));
            }
            // Display of the decoded parts must not panic either.
            std::hint::black_box((e.event_type.to_string(), e.time.to_string(), e.source.len(), e.id.len()));
        }
        Decoded::Unknown(u) => {
            std::hint::black_box((u.type_name.len(), u.time.to_string(), u.source.len(), u.id.len()));
        }
    }
});
