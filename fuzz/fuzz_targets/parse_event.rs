//! Any bytes as one event line: never a panic; an accepted event keeps its
//! invariants, a rejected one has a reason the parser can give.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_exporter::ingest::event::Body;
use model_exporter::ingest::parse::{RejectReason, parse_event};

fuzz_target!(|data: &[u8]| {
    match parse_event(data) {
        Ok(event) => {
            assert!(!event.model.is_empty());
            if let Some(ts) = event.ts {
                assert!(ts.is_finite());
            }
            if let Body::Inference(i) = &event.body {
                if let Some(s) = i.latency_seconds {
                    assert!(s >= 0.0 && s.is_finite());
                }
                if let Some(c) = i.confidence {
                    assert!((0.0..=1.0).contains(&c));
                }
                assert!(i.counters.iter().all(|(_, v)| *v >= 0.0));
            }
        }
        Err(r) => {
            assert!(!matches!(
                r.reason,
                RejectReason::TooLong | RejectReason::Truncated
            ));
            assert_eq!(
                r.reason == RejectReason::InvalidUtf8,
                std::str::from_utf8(data).is_err()
            );
        }
    }
});
