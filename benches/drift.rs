//! Benchmarks of the drift statistics over 12 bins, the usual size of a
//! numeric feature's baseline (deciles plus two tails), of binning one
//! value, and of an evaluation round over a model with many features.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use model_exporter::aggregate::{Aggregator, Options};
use model_exporter::clock::ManualClock;
use model_exporter::config::load;
use model_exporter::export::metrics::{Buckets, Metrics};
use model_exporter::ingest::event::Event;
use model_exporter::ingest::parse::parse_event;
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

/// Features of the wide model of [`round`].
const WIDE: usize = 200;

/// The built-in rules with a model `wide` of [`WIDE`] features, each with a
/// N(0, 1) reference.
fn wide_rules() -> String {
    let mut features = String::from("models:\n  wide:\n    features:\n");
    for i in 0..WIDE {
        features.push_str(&format!("      f{i}: {{mean: 0, std: 1}}\n"));
    }
    model_exporter::DEFAULT_RULES_YAML.replacen("models:\n", &features, 1)
}

/// `n` events of model `wide`, numbered from `k0`: every feature about
/// N(0, 1) (the sum of twelve uniform draws, less 6), every fourth one
/// shifted by one standard deviation, so that FeatureDrift holds for 50 of
/// the 200 and reads their significance.
fn wide_events(n: usize, k0: u64) -> Vec<Event> {
    (k0..k0 + n as u64)
        .map(|k| {
            let mut state = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut uniform = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64
            };
            let values: Vec<String> = (0..WIDE)
                .map(|i| {
                    let x: f64 = (0..12).map(|_| uniform()).sum::<f64>() - 6.0;
                    let shift = if i % 4 == 0 { 1.0 } else { 0.0 };
                    format!(r#""f{i}":{:.4}"#, x + shift)
                })
                .collect();
            let line = format!(r#"{{"model":"wide","features":{{{}}}}}"#, values.join(","));
            parse_event(line.as_bytes()).expect("parses")
        })
        .collect()
}

/// One evaluation round (`Aggregator::evaluate`: the built-in rules, among
/// them FeatureDrift, a `psi(feature.*)` rule with `significance`, then the
/// drift gauges and their p-values, raw and adjusted, of every method and
/// window) over a model version of [`WIDE`] features. Between rounds
/// (untimed) the clock moves on by the evaluation interval and 100 events
/// arrive, as in steady state. The round must find FeatureDrift holding
/// (pending or firing) on a drifted feature, else it did not read the
/// significance it is meant to time.
fn round(c: &mut Criterion) {
    let config = load("rules.yaml", &wide_rules()).expect("rules load");
    let clock = ManualClock::new(1000.0);
    let mut a = Aggregator::new(Options::new(
        Metrics::new(&Buckets::default()).expect("metrics"),
        Arc::new(clock.clone()),
        Arc::new(config),
    ));
    // Fifteen minutes of events: the drift window of FeatureDrift.
    let mut k = 0;
    for _ in 0..90 {
        clock.advance(Duration::from_secs(10));
        a.apply(wide_events(100, k));
        k += 100;
    }
    let mut g = c.benchmark_group("drift_round");
    g.sample_size(10);
    g.bench_function("evaluate_200_features", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                clock.advance(Duration::from_secs(10));
                a.apply(wide_events(100, k));
                k += 100;
                let started = Instant::now();
                let ev = a.evaluate();
                spent += started.elapsed();
                assert!(!ev.groups_evaluated.is_empty(), "a round was due");
                assert!(
                    ev.alerts
                        .iter()
                        .any(|a| a.labels["alertname"] == "FeatureDrift"),
                    "FeatureDrift holds on the drifted features"
                );
                black_box(ev);
            }
            spent
        })
    });
    g.finish();
}

criterion_group!(benches, bench, round);
criterion_main!(benches);
