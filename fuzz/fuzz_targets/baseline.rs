//! Any bytes as a baseline file: never a panic, and an accepted baseline
//! written back reads as the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_exporter::baseline::format::Baseline;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Baseline::from_slice("b.json", data) {
        let again = Baseline::from_slice("b.json", b.to_json().as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, b);
    }
});
