//! Cost of sharding on one thread: the router splitting a batch by model,
//! and applying a batch of 8 models on one aggregator or split over two.
//! (Whether two shards run faster depends on free cores: see loadgen and
//! bench/shards.sh.)

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use model_exporter::aggregate::shards::shard_limits;
use model_exporter::aggregate::{Aggregator, Limits, Options, Router, ShardSlot};
use model_exporter::clock::ManualClock;
use model_exporter::config::Config;
use model_exporter::export::metrics::{Buckets, Metrics};
use model_exporter::ingest::Batch;
use model_exporter::ingest::parse::parse_event;

const N: usize = 1024;
const MODELS: usize = 8;

/// The loadgen event (docs/events.md's example) for `MODELS` model names,
/// taking turns.
fn batch() -> Batch {
    (0..N)
        .map(|i| {
            let line = model_exporter::loadgen::event((i % MODELS) as u32, MODELS as u32);
            parse_event(line.as_bytes()).expect("example parses")
        })
        .collect()
}

fn router(shards: usize, m: &Metrics) -> Router {
    let senders = (0..shards)
        .map(|_| tokio::sync::mpsc::channel(1).0)
        .collect();
    Router::new(senders, Limits::default(), m.clone())
}

fn split(c: &mut Criterion) {
    let m = Metrics::new(&Buckets::default()).expect("metrics");
    let r = router(2, &m);
    let b = batch();
    let mut g = c.benchmark_group("shards");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("split_1024x8", |bench| {
        bench.iter_batched(
            || b.clone(),
            |b| black_box(r.split(b)),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn apply(c: &mut Criterion) {
    let mut g = c.benchmark_group("shards");
    g.throughput(Throughput::Elements(N as u64));
    for shards in [1usize, 2] {
        let m = Metrics::new(&Buckets::default()).expect("metrics");
        let config = Arc::new(Config::default_rules());
        let mut aggs: Vec<Aggregator> = ShardSlot::all(shards)
            .into_iter()
            .map(|slot| {
                Aggregator::new(Options {
                    limits: shard_limits(Limits::default()),
                    source: "bench".into(),
                    shard: slot,
                    ..Options::new(
                        m.clone(),
                        Arc::new(ManualClock::new(1000.0)),
                        config.clone(),
                    )
                })
            })
            .collect();
        let r = router(shards, &m);
        let b = batch();
        // Warm the handle caches, as in steady state.
        for (s, part) in r.split(b.clone()) {
            aggs[s].apply(part);
        }
        g.bench_with_input(
            BenchmarkId::new("apply_1024x8", shards),
            &shards,
            |bench, _| {
                bench.iter_batched(
                    || b.clone(),
                    |b| {
                        // One shard: no router, as in the exporter.
                        if shards == 1 {
                            return aggs[0].apply(b);
                        }
                        for (s, part) in r.split(b) {
                            aggs[s].apply(part);
                        }
                    },
                    criterion::BatchSize::LargeInput,
                )
            },
        );
    }
    g.finish();
}

criterion_group!(benches, split, apply);
criterion_main!(benches);
