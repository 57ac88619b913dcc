//! The bins are one definition (docs/drift.md, "Bins"): for random training
//! data full of repeated values (zero-inflated, binary, small integers,
//! rounded numbers), the baseline the `baseline` builder makes, the
//! sidecar's reference of it, the exported `model_feature_value` histogram
//! (whose buckets are the edges), the exported reference CDF and the
//! per-bin shares all put every value in the same bin.
//!
//! Runs 64 cases from a fixed seed, like tests/properties.rs
//! (`PROPTEST_CASES`, `PROPTEST_RNG_SEED` override it).

use std::collections::HashMap;
use std::io::Cursor;

use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed};

use model_exporter::baseline::build::{BuildOptions, InputFormat, build};
use model_exporter::baseline::format::{Baseline, FeatureBaseline, NumericBaseline};
use model_exporter::export::histograms::HistogramFamily;
use model_exporter::export::metrics::validate_buckets;
use model_exporter::export::references::{bin_shares, cumulative_at_edges};
use model_exporter::export::series::le_label;
use model_exporter::stats::DriftMethod;

const SEED: u64 = 0x6269_6e73_2d6f_6e65;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        rng_seed: RngSeed::Fixed(SEED),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// xorshift64*: uniform in [0, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `m` values of one of four shapes, all with many repeats.
fn data(kind: u8, m: usize, seed: u64, p: f64) -> Vec<f64> {
    let mut rng = Rng(seed | 1);
    (0..m)
        .map(|_| {
            let u = rng.next();
            let v = rng.next();
            match kind {
                // Zero-inflated: 0 with probability p, else a positive amount.
                0 => {
                    if u < p {
                        0.0
                    } else {
                        (v * 500.0).round() / 4.0
                    }
                }
                // A binary flag.
                1 => f64::from(u8::from(u < p)),
                // Small integers, skewed.
                2 => (v * v * 14.0).floor() - 3.0,
                // Rounded numbers with a heavy repeat at the maximum.
                _ => {
                    if u < p / 2.0 {
                        9.5
                    } else {
                        ((v - 0.5) * 40.0).round() / 4.0
                    }
                }
            }
        })
        .collect()
}

fn baseline_of(values: &[f64], bins: usize) -> NumericBaseline {
    let mut text = String::from("x\n");
    for v in values {
        text.push_str(&format!("{v}\n"));
    }
    let mut options = BuildOptions::new("train.csv", InputFormat::Csv);
    options.bins = bins;
    let (b, _) = build(
        || Ok(Cursor::new(text.clone().into_bytes())),
        options,
        None,
        None,
    )
    .unwrap();
    // What the sidecar reads is what was written.
    let b = Baseline::from_slice("b.json", b.to_json().as_bytes()).unwrap();
    match b.feature("x") {
        Some(FeatureBaseline::Numeric(n)) => n.clone(),
        other => panic!("{other:?}"),
    }
}

/// The cumulative bucket counts of a real `model_feature_value` member
/// with the edges as buckets, by `le`.
fn histogram_buckets(edges: &[f64], values: &[f64]) -> HashMap<String, u64> {
    let family = HistogramFamily::new("model_feature_value", "h", &["feature"], &[1.0]);
    let h = family.member(&["x"], edges);
    for &v in values {
        h.observe(v);
    }
    let mut out = Vec::new();
    family.family().encode(&mut out);
    let text = String::from_utf8(out).unwrap();
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("model_feature_value_bucket{feature=\"x\",le=\"")?;
            let (le, count) = rest.split_once("\"} ")?;
            Some((le.to_owned(), count.parse().unwrap()))
        })
        .collect()
}

fn check(values: &[f64], bins: usize) {
    let m = values.len() as f64;
    let n = baseline_of(values, bins);
    let edges = &n.edges;
    validate_buckets(edges).expect("baseline edges are histogram buckets");
    let feature = FeatureBaseline::Numeric(n.clone());
    let reference = feature.reference().unwrap();
    assert_eq!(reference.edges(), Some(&edges[..]));

    // The sidecar's bin of every training value gives the baseline's
    // proportions exactly.
    let mut counts = vec![0u64; reference.bins()];
    for &x in values {
        counts[reference.bin_number(x).unwrap()] += 1;
        assert_eq!(reference.bin_number(x), n.bin_of(x));
    }
    for (i, (&c, &p)) in counts.iter().zip(&n.proportions).enumerate() {
        assert!(
            (c as f64 / m - p).abs() < 1e-12,
            "bin {i}: {c} vs {p} {edges:?}"
        );
    }
    // The first bin is the values equal to the minimum; none is above the
    // maximum.
    let at_min = values.iter().filter(|&&x| x == n.min).count() as u64;
    assert_eq!(counts[0], at_min, "{edges:?}");
    assert_eq!(*counts.last().unwrap(), 0);

    // Histogram bucket `le = e(i)` = bins 0..=i = the reference CDF at e(i).
    let buckets = histogram_buckets(edges, values);
    let cdf = cumulative_at_edges(&reference).unwrap();
    assert_eq!(cdf.len(), edges.len());
    let mut cumulative = 0u64;
    for (i, &e) in edges.iter().enumerate() {
        cumulative += counts[i];
        let le = le_label(e);
        let at_or_below = values.iter().filter(|&&x| x <= e).count() as u64;
        assert_eq!(cumulative, at_or_below, "le={le}");
        assert_eq!(buckets.get(&le), Some(&cumulative), "le={le} {buckets:?}");
        assert_eq!(cdf[i].0, le);
        assert!(
            (cdf[i].1 - cumulative as f64 / m).abs() < 1e-12,
            "le={le}: reference {} vs {}",
            cdf[i].1,
            cumulative as f64 / m
        );
    }
    assert_eq!(buckets.get("+Inf"), Some(&(values.len() as u64)));

    // The published shares are the bins' counts, each empty bin holding
    // one more training value.
    let shares = bin_shares(&reference);
    let empty = counts.iter().filter(|&&c| c == 0).count() as f64;
    for (i, (&c, &s)) in counts.iter().zip(&shares).enumerate() {
        let want = c.max(1) as f64 / (m + empty);
        assert!((s - want).abs() < 1e-12, "bin {i}: {s} vs {want}");
    }

    // The training data itself, as live data, shows no drift: KS 0, and
    // PSI no more than the floor of the empty bins (docs/drift.md, "Values
    // beyond the reference"): each holds 1 / (m + z) of the reference and
    // 1e-4 of the window.
    assert!(reference.drift(DriftMethod::Ks, &counts).unwrap() < 1e-12);
    let share = 1.0 / (m + empty);
    let floor = empty * (share - 1e-4).max(0.0) * (share / 1e-4).ln().max(0.0);
    let psi = reference.drift(DriftMethod::Psi, &counts).unwrap();
    // (To first order: the normalisations move it by well under 1%.)
    assert!(psi <= 1.01 * floor + 1e-9, "PSI {psi}, floor {floor}");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn baseline_sidecar_histogram_and_reference_bin_alike(
        kind in 0u8..4,
        m in 20usize..1500,
        seed in any::<u64>(),
        p in 0.05f64..0.95,
        bins in 1usize..16,
    ) {
        let values = data(kind, m, seed, p);
        prop_assume!(values.iter().any(|&x| x != values[0]));
        check(&values, bins);
    }
}

/// The example: 70 % zeros. The zeros are the first bin alone, so a
/// drop to 50 % zeros is measured on them, not on them merged with the
/// smallest positive values.
#[test]
fn a_point_mass_at_the_minimum_is_its_own_bin() {
    let values = data(0, 1000, 7, 0.7);
    let n = baseline_of(&values, 10);
    assert_eq!(n.edges[0], 0.0);
    let zeros = values.iter().filter(|&&x| x == 0.0).count() as f64 / 1000.0;
    assert_eq!(n.proportions[0], zeros);
    check(&values, 10);

    // A binary flag: the bins `x <= 0`, `0 < x <= 1`.
    let flag = data(1, 1000, 11, 0.3);
    let n = baseline_of(&flag, 10);
    assert_eq!(n.edges, [0.0, 1.0]);
    let ones = flag.iter().filter(|&&x| x == 1.0).count() as f64 / 1000.0;
    assert!((n.proportions[0] - (1.0 - ones)).abs() < 1e-12);
    assert!((n.proportions[1] - ones).abs() < 1e-12);
    check(&flag, 10);
}
