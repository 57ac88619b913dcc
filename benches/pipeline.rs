//! Benchmarks of the ingest pipeline's stages: parsing one event, the
//! aggregator applying a batch, and encoding `/metrics` with many series
//! (model families, and rule families as the evaluator publishes them).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use model_exporter::aggregate::{Aggregator, Options};
use model_exporter::clock::ManualClock;
use model_exporter::config::Config;
use model_exporter::export::dynamic::GaugeFamily;
use model_exporter::export::metrics::{Buckets, Metrics};
use model_exporter::ingest::parse::parse_event;

/// The inference example of docs/events.md: three features, about 150 bytes.
const EVENT: &str = r#"{"model":"fraud","version":"v3","id":"r-17","latency_ms":52.3,"ok":true,"prediction":1,"confidence":0.91,"features":{"age":35,"income":51000,"amount":120.5}}"#;

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(EVENT.len() as u64));
    g.bench_function("parse_event", |b| {
        b.iter(|| black_box(parse_event(black_box(EVENT.as_bytes()))))
    });
    g.finish();
}

fn aggregator() -> Aggregator {
    let m = Metrics::new(&Buckets::default()).expect("metrics");
    Aggregator::new(Options {
        source: "bench".into(),
        ..Options::new(
            m,
            Arc::new(ManualClock::new(1000.0)),
            Arc::new(Config::default_rules()),
        )
    })
}

fn apply(c: &mut Criterion) {
    const N: usize = 1024;
    let event = parse_event(EVENT.as_bytes()).expect("example parses");
    let mut a = aggregator();
    // Warm the handle caches, as in steady state.
    a.apply(vec![event.clone(); N]);
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("apply_1024", |b| {
        b.iter_batched(
            || vec![event.clone(); N],
            |batch| a.apply(batch),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// A registry holding about `series` series: 10 models, one version each,
/// features with a missing counter (one series each) until the count is
/// reached.
fn populated(series: usize) -> Metrics {
    let m = Metrics::new(&Buckets::default()).expect("metrics");
    let models = 10;
    let per_model = series / models;
    for i in 0..models {
        let model = format!("model-{i}");
        for f in 0..per_model {
            m.feature_missing
                .with_label_values(&[&model, "v1", &format!("feature_{f}")])
                .inc();
        }
    }
    m
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.sample_size(10);
    for series in [10_000usize, 100_000] {
        let m = populated(series);
        g.throughput(Throughput::Elements(series as u64));
        g.bench_with_input(BenchmarkId::from_parameter(series), &m, |b, m| {
            b.iter(|| black_box(m.encode().len()))
        });
    }
    g.finish();
}

/// `series` samples of `model_rule_signal_value`, as the built-in rules
/// publish them for every feature of 10 models.
fn with_rule_signals(series: usize) -> Metrics {
    let m = Metrics::new(&Buckets::default()).expect("metrics");
    let mut g = GaugeFamily::new("model_rule_signal_value", "Rule signals.");
    for i in 0..series {
        let labels = BTreeMap::from([
            ("alertname".to_owned(), "FeatureMissing".to_owned()),
            ("feature".to_owned(), format!("feature_{}", i / 10)),
            ("model".to_owned(), format!("model-{}", i % 10)),
            ("severity".to_owned(), "warning".to_owned()),
            ("version".to_owned(), "v1".to_owned()),
        ]);
        g.push(&labels, i as f64 * 0.000123);
    }
    m.rule_families.store(vec![g.finish()]);
    m
}

fn encode_rules(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_rules");
    g.sample_size(10);
    let series = 100_000usize;
    let m = with_rule_signals(series);
    g.throughput(Throughput::Elements(series as u64));
    g.bench_with_input(BenchmarkId::from_parameter(series), &m, |b, m| {
        b.iter(|| black_box(m.encode().len()))
    });
    g.finish();
}

criterion_group!(benches, parse, apply, encode, encode_rules);
criterion_main!(benches);
