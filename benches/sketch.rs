//! Benchmarks of the latency sketch: insert, merge, quantile.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use model_exporter::stats::sketch::Sketch;

/// Deterministic latencies: lognormal-ish around 50 ms (1 ms .. ~10 s).
fn latencies(n: usize) -> Vec<f64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let u = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
            // Sum of uniforms ≈ normal; exp gives a long tail.
            0.05 * ((u - 0.5) * 6.0).exp()
        })
        .collect()
}

fn sketch_of(values: &[f64]) -> Sketch {
    let mut s = Sketch::new();
    for &v in values {
        s.insert(v);
    }
    s
}

fn bench(c: &mut Criterion) {
    let values = latencies(4096);

    let mut g = c.benchmark_group("sketch");
    g.throughput(Throughput::Elements(values.len() as u64));
    // Warm sketch: the range is already allocated, as in steady state.
    let mut warm = sketch_of(&values);
    g.bench_function("insert_4096_warm", |b| {
        b.iter(|| {
            for &v in &values {
                warm.insert(black_box(v));
            }
        })
    });
    g.finish();

    let a = sketch_of(&latencies(10_000));
    let other = sketch_of(&values);
    c.bench_function("sketch/merge", |b| {
        b.iter_batched_ref(
            || a.clone(),
            |s| s.merge(black_box(&other)),
            BatchSize::SmallInput,
        )
    });

    c.bench_function("sketch/quantile_p99", |b| {
        b.iter(|| black_box(&a).quantile(black_box(0.99)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
