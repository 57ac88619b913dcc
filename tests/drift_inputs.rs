//! What the drift statistics are fed (docs/drift.md): Wasserstein from each
//! bin's training mean, checked against SciPy on the raw values, and the
//! two-sample chi-square test, checked against SciPy and for its level.
//!
//! The fixtures come from `scripts/drift_fixtures.py`
//! (tests/fixtures/drift_inputs.json); the references are made the way the
//! sidecar makes them from a baseline file (`FeatureBaseline::reference`).

use serde_json::Value;

use model_exporter::baseline::format::{FeatureBaseline, NumericBaseline};
use model_exporter::stats::DriftMethod;
use model_exporter::stats::drift::{chi2_pvalue, chi2_two_sample_pvalue};
use model_exporter::stats::reference::Reference;

const FIXTURES: &str = include_str!("fixtures/drift_inputs.json");

fn fixtures() -> Value {
    serde_json::from_str(FIXTURES).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn counts(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// The baseline entry of a fixture case, with or without its means.
fn baseline(case: &Value, with_means: bool) -> FeatureBaseline {
    let edges = floats(&case["edges"]);
    let means: Vec<Option<f64>> = case["means"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_f64)
        .collect();
    FeatureBaseline::Numeric(NumericBaseline {
        count: case["count"].as_u64().unwrap(),
        missing: 0,
        missing_rate: 0.0,
        mean: case["mean"].as_f64().unwrap(),
        std: case["std"].as_f64().unwrap(),
        min: edges[0],
        max: edges[edges.len() - 1],
        edges,
        proportions: floats(&case["proportions"]),
        means: with_means.then_some(means),
    })
}

/// Within 10% of `scipy.stats.wasserstein_distance(ref, live) / sd_ref` on
/// normal shifts of 0.1-1 sd and on Student's t with 3 degrees of freedom;
/// the lognormal is reported and held to 20%. Bin midpoints, the fallback
/// for baselines without means, are further off on every case.
#[test]
fn wasserstein_from_bin_means_matches_scipy_on_raw_values() {
    let doc = fixtures();
    let cases = doc["wasserstein_means"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let live = counts(&case["live"]);
        let scipy = case["wasserstein"].as_f64().unwrap();
        let ours = baseline(case, true)
            .reference()
            .unwrap()
            .drift(DriftMethod::Wasserstein, &live)
            .unwrap();
        let midpoints = baseline(case, false)
            .reference()
            .unwrap()
            .drift(DriftMethod::Wasserstein, &live)
            .unwrap();
        // The midpoint-based value is what SciPy gives on the bins' midpoints.
        let want_mid = case["midpoints"].as_f64().unwrap();
        assert!((midpoints - want_mid).abs() <= 1e-9 * want_mid, "{name}");
        let error = ours / scipy - 1.0;
        let mid_error = midpoints / scipy - 1.0;
        eprintln!(
            "{name}: SciPy {scipy:.4}, bin means {ours:.4} ({:+.1}%), midpoints {midpoints:.4} ({:+.1}%)",
            100.0 * error,
            100.0 * mid_error
        );
        let bound = if name.starts_with("lognormal") {
            0.2
        } else {
            0.1
        };
        assert!(error.abs() <= bound, "{name}: {ours} vs SciPy {scipy}");
        assert!(mid_error.abs() > 0.1, "{name}: midpoints {midpoints}");
    }
}

#[test]
fn two_sample_chi_square_matches_scipy_chi2_contingency() {
    let doc = fixtures();
    let cases = doc["chi2_two_sample"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let reference = floats(&case["proportions"]);
        let m = case["count"].as_f64().unwrap();
        let live = counts(&case["live"]);
        let want = case["pvalue"].as_f64().unwrap();
        let got = chi2_two_sample_pvalue(&reference, m, &live).unwrap();
        assert!(
            (got - want).abs() <= 1e-10 * want + 1e-300,
            "{name}: {got} vs SciPy {want}"
        );
        // The sidecar's reference of a categorical baseline of that size
        // runs the same test.
        let categories: Vec<(String, f64)> = reference[..reference.len() - 1]
            .iter()
            .enumerate()
            .map(|(i, &p)| (format!("c{i}"), p))
            .collect();
        let r = Reference::categorical(
            categories.iter().map(|(c, p)| (c.as_str(), *p)),
            reference[reference.len() - 1],
        )
        .unwrap()
        .with_count(m as u64);
        let via = r.drift(DriftMethod::Chi2Pvalue, &live).unwrap();
        assert!((via - got).abs() <= 1e-12 * got + 1e-300, "{name}");
    }
    assert_eq!(chi2_two_sample_pvalue(&[0.5, 0.5], 0.0, &[1, 1]), None);
    assert_eq!(chi2_two_sample_pvalue(&[0.5, 0.5], f64::NAN, &[1, 1]), None);
    assert_eq!(chi2_two_sample_pvalue(&[0.5, 0.5], 10.0, &[0, 0]), None);
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

    /// Counts of `n` draws from the categories of probabilities `p`.
    fn multinomial(&mut self, p: &[f64], n: usize) -> Vec<u64> {
        let mut out = vec![0u64; p.len()];
        for _ in 0..n {
            let mut u = self.next();
            let mut i = 0;
            while i + 1 < p.len() && u >= p[i] {
                u -= p[i];
                i += 1;
            }
            out[i] += 1;
        }
        out
    }
}

/// With no drift, the two-sample test rejects at `p < 0.05` in about 5% of
/// trials, whether the window is ten times smaller or ten times larger than
/// the reference. (The goodness-of-fit test, which takes the reference as
/// exact, rejects in most trials at 10x.)
#[test]
fn two_sample_chi_square_is_calibrated_under_no_drift() {
    const TRIALS: usize = 2000;
    let p = [0.4, 0.25, 0.2, 0.1, 0.05];
    let mut rng = Rng(0x05ee_dc41_5a17);
    for (m, n) in [(500, 50), (500, 5000), (2000, 200)] {
        let (mut two_sample, mut fit) = (0usize, 0usize);
        for _ in 0..TRIALS {
            let training = rng.multinomial(&p, m);
            let proportions: Vec<f64> = training.iter().map(|&c| c as f64 / m as f64).collect();
            let r = Reference::categorical(
                [
                    ("a", proportions[0]),
                    ("b", proportions[1]),
                    ("c", proportions[2]),
                    ("d", proportions[3]),
                ],
                proportions[4],
            )
            .unwrap()
            .with_count(m as u64);
            let live = rng.multinomial(&p, n);
            if r.drift(DriftMethod::Chi2Pvalue, &live).unwrap() < 0.05 {
                two_sample += 1;
            }
            if chi2_pvalue(&proportions, &live).unwrap() < 0.05 {
                fit += 1;
            }
        }
        let rate = two_sample as f64 / TRIALS as f64;
        let fit_rate = fit as f64 / TRIALS as f64;
        eprintln!("m {m}, n {n}: two-sample {rate:.3}, goodness of fit {fit_rate:.3}");
        // 2000 trials: the standard error of a 5% rate is 0.5%.
        assert!((0.035..=0.065).contains(&rate), "m {m}, n {n}: {rate}");
        if n > m {
            assert!(fit_rate > 0.5, "m {m}, n {n}: goodness of fit {fit_rate}");
        }
    }
}
