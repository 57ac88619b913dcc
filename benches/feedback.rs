//! Benchmark of the feedback join store: one inference remembered and its
//! label joined, per pair, with a store already holding many pending entries.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use model_exporter::aggregate::join::FeedbackJoiner;
use model_exporter::aggregate::quality::QualitySlice;
use model_exporter::ingest::event::Outcome;

fn bench(c: &mut Criterion) {
    const N: u64 = 4096;
    const PENDING: u64 = 50_000;
    // Ids as long as a UUID, made before timing.
    let ids: Vec<String> = (0..N).map(|i| format!("{i:036}")).collect();
    let mut j = FeedbackJoiner::new(Duration::from_secs(86_400), 100_000);
    for i in 0..PENDING {
        j.on_inference(
            "fraud",
            "v3",
            &format!("p{i:035}"),
            &Outcome::Number(0.5),
            1000.0,
        );
    }
    let pred = Outcome::Number(0.8);
    let actual = Outcome::Number(1.0);

    let mut g = c.benchmark_group("feedback");
    g.throughput(Throughput::Elements(N));
    g.bench_function("inference_then_label_4096", |b| {
        b.iter(|| {
            for id in &ids {
                j.on_inference("fraud", "v3", black_box(id), &pred, 2000.0);
            }
            for id in &ids {
                let out = j.on_feedback("fraud", Some(black_box(id)), &actual, None, 2010.0);
                black_box(&out);
            }
        })
    });
    let mut q = QualitySlice::default();
    g.bench_function("quality_record_4096", |b| {
        b.iter(|| {
            for i in 0..N {
                let p = Outcome::Number((i % 100) as f64 / 100.0);
                black_box(q.record(&p, &actual, 0.5));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
