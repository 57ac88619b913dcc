//! Runs the ingest pipeline's stages over the example event in one thread,
//! for counting instructions per event with a deterministic tool
//! (`bench/instructions.sh` runs it under `valgrind --tool=callgrind`).
//!
//! `ingest_cost STAGE N`: STAGE is `frame` (cut lines only), `parse` (cut
//! and parse) or `apply` (cut, parse and apply to an aggregator with the
//! built-in rules), over N events in batches of up to 128.

use std::sync::Arc;

use model_exporter::aggregate::{Aggregator, Limits};
use model_exporter::clock::ManualClock;
use model_exporter::config::Config;
use model_exporter::export::metrics::{Buckets, Metrics};
use model_exporter::ingest::framing::{Frame, LineFramer};
use model_exporter::ingest::parse::parse_event;

/// The inference example of docs/events.md.
const EVENT: &str = r#"{"model":"fraud","version":"v3","id":"r-17","latency_ms":52.3,"ok":true,"prediction":1,"confidence":0.91,"features":{"age":35,"income":51000,"amount":120.5}}"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let stage = args.next().unwrap_or_else(|| "apply".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let per_read = 128;
    let mut chunk = Vec::new();
    for _ in 0..per_read {
        chunk.extend_from_slice(EVENT.as_bytes());
        chunk.push(b'\n');
    }
    let mut agg = (stage == "apply").then(|| {
        Aggregator::new(
            Metrics::new(&Buckets::default()).expect("metrics"),
            Arc::new(ManualClock::new(1000.0)),
            Limits::default(),
            Arc::new(Config::default_rules()),
            "ingest_cost".into(),
        )
    });
    let mut framer = LineFramer::new(64 * 1024);
    let (mut lines, mut parsed) = (0usize, 0usize);
    while lines < n {
        framer.push(&chunk);
        let mut batch = Vec::with_capacity(per_read);
        framer.drain_lines(|f| {
            if let Frame::Line(l) = f {
                lines += 1;
                if stage != "frame" {
                    batch.push(parse_event(l).expect("the example parses"));
                }
            }
        });
        parsed += batch.len();
        if let Some(a) = &mut agg {
            a.apply(batch);
        }
    }
    println!("stage {stage} lines {lines} parsed {parsed}");
}
