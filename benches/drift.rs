//! Benchmarks of the drift statistics over 12 bins, the usual size of a
//! numeric feature's baseline (deciles plus two tails), and of binning one
//! value.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use model_exporter::stats::drift::{
    BinCounts, PSI_EPSILON, bin_index, bin_points, chi2_pvalue, js, ks, psi, wasserstein,
};

const BINS: usize = 12;

/// Quantile edges of the standard logistic distribution.
fn edges() -> Vec<f64> {
    (1..BINS)
        .map(|i| {
            let p = i as f64 / BINS as f64;
            (p / (1.0 - p)).ln()
        })
        .collect()
}

/// Live counts of 10 000 logistic values shifted by 0.3, binned on `edges`.
fn live(edges: &[f64]) -> Vec<u64> {
    let cdf = |x: f64| 1.0 / (1.0 + (0.3 - x).exp());
    let mut prev = 0.0;
    let mut out: Vec<u64> = edges
        .iter()
        .map(|&e| {
            let c = cdf(e);
            let n = ((c - prev) * 10_000.0).round() as u64;
            prev = c;
            n
        })
        .collect();
    out.push(((1.0 - prev) * 10_000.0).round() as u64);
    out
}

fn bench(c: &mut Criterion) {
    let edges = edges();
    let reference = vec![1.0 / BINS as f64; BINS];
    let live = live(&edges);
    let points = bin_points(&edges);
    let std = std::f64::consts::PI / 3f64.sqrt();

    let mut g = c.benchmark_group("drift_12_bins");
    g.bench_function("psi", |b| {
        b.iter(|| psi(black_box(&reference), black_box(&live), PSI_EPSILON))
    });
    g.bench_function("ks", |b| {
        b.iter(|| ks(black_box(&reference), black_box(&live)))
    });
    g.bench_function("js", |b| {
        b.iter(|| js(black_box(&reference), black_box(&live)))
    });
    g.bench_function("wasserstein", |b| {
        b.iter(|| wasserstein(black_box(&reference), black_box(&live), &points, std))
    });
    g.bench_function("chi2_pvalue", |b| {
        b.iter(|| chi2_pvalue(black_box(&reference), black_box(&live)))
    });
    g.finish();

    let mut g = c.benchmark_group("drift_binning");
    let mut counts = BinCounts::with_bins(BINS);
    g.bench_function("bin_index", |b| {
        b.iter(|| bin_index(black_box(&edges), black_box(0.7)))
    });
    g.bench_function("record", |b| {
        b.iter(|| counts.add(bin_index(black_box(&edges), black_box(0.7)), 1))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
