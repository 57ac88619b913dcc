//! Runs the ingest pipeline's stages over the example event in one thread,
//! for counting instructions per event with a deterministic tool
//! (`bench/instructions.sh` runs it under `valgrind --tool=callgrind`).
//!
//! `ingest_cost STAGE N`: STAGE is `frame` (cut lines only), `parse` (cut
//! and parse) or `apply` (cut, parse and apply to an aggregator with the
//! built-in rules), over N events in batches of up to 128. `apply-ids` is
//! `apply` with a distinct request id in every event (as real traffic has),
//! so that the feedback join remembers each one; it also writes the ids
//! into the buffer, which the other stages do not. `apply-refs` is `apply`
//! with a reference for each of the event's three features (inline `{mean,
//! std}` in the built-in rules), so that every feature value is also binned
//! against its reference and checked against the model's expectations.

use std::sync::Arc;

use model_exporter::aggregate::{Aggregator, Options};
use model_exporter::clock::ManualClock;
use model_exporter::config::Config;
use model_exporter::export::metrics::{Buckets, Metrics};
use model_exporter::ingest::framing::{Frame, LineFramer};
use model_exporter::ingest::parse::parse_event;
use model_exporter::loadgen::write_decimal;

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
    let unique = stage == "apply-ids";
    let refs = stage == "apply-refs";
    let config = if refs {
        let text = model_exporter::DEFAULT_RULES_YAML.replacen(
            "models:\n",
            "models:\n  fraud:\n    features:\n      age: {mean: 35, std: 10}\n      \
             income: {mean: 50000, std: 20000}\n      amount: {mean: 100, std: 50}\n",
            1,
        );
        model_exporter::config::load("ingest_cost", &text).expect("the rules load")
    } else {
        Config::default_rules()
    };
    let mut agg = (stage == "apply" || unique || refs).then(|| {
        Aggregator::new(Options {
            source: "ingest_cost".into(),
            ..Options::new(
                Metrics::new(&Buckets::default()).expect("metrics"),
                Arc::new(ManualClock::new(1000.0)),
                Arc::new(config),
            )
        })
    });
    let mut framer = LineFramer::new(64 * 1024);
    let (mut lines, mut parsed) = (0usize, 0usize);
    // With distinct ids: the example with a 12-digit id, whose digits are
    // rewritten in place for every event.
    let id_at: Vec<usize> = if unique {
        let line = EVENT.replacen("r-17", "r-000000000000", 1);
        chunk.clear();
        for _ in 0..per_read {
            chunk.extend_from_slice(line.as_bytes());
            chunk.push(b'\n');
        }
        let first = line.find("r-0").expect("the id") + 2;
        (0..per_read)
            .map(|k| k * (line.len() + 1) + first)
            .collect()
    } else {
        Vec::new()
    };
    let mut next_id = 0u64;
    while lines < n {
        for &at in &id_at {
            next_id += 1;
            write_decimal(&mut chunk[at..at + 12], next_id);
        }
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
