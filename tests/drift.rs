//! From training data to a drift alert, through the real binary:
//! `model-exporter baseline` makes the reference, rules.yaml points at it,
//! and shifted traffic fires FeatureDrift for the shifted feature only.

mod common;

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_baseline_from_training_data_drives_feature_drift() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gen(7);
    let mut csv = String::from("age,amount,country\n");
    for i in 0..5000 {
        let country = ["DE", "FR", "US"][i % 3];
        writeln!(
            csv,
            "{:.2},{:.2},{country}",
            g.normal(35.0, 10.0),
            g.normal(100.0, 50.0)
        )
        .unwrap();
    }
    make_baseline(dir.path(), &csv, "fraud");

    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "defaults: {window: 3s, evaluation_interval: 200ms, min_samples: 300}\n\
         models:\n  fraud:\n    baseline: fraud.json\n\
         groups:\n  - name: ml\n    rules:\n      - alert: FeatureDrift\n        expr: psi(feature.*) > 0.2\n",
    )
    .unwrap();
    let e = Exporter::start(&["--config.file", rules.to_str().unwrap()]);

    // Live traffic: age shifted by +50% of its mean, amount and country as
    // in training.
    let firing = |m: &str, f: &str| {
        m.contains(&format!(
            r#"model_alerts{{alertname="FeatureDrift",alertstate="firing",feature="{f}",model="fraud",severity="warning",version=""}} 1"#
        ))
    };
    let deadline = Instant::now() + PATIENCE;
    let m = loop {
        let mut batch = String::new();
        for i in 0..200 {
            let country = ["DE", "FR", "US"][i % 3];
            writeln!(
                batch,
                r#"{{"model":"fraud","features":{{"age":{:.2},"amount":{:.2},"country":"{country}"}}}}"#,
                g.normal(52.5, 10.0),
                g.normal(100.0, 50.0)
            )
            .unwrap();
        }
        send_unix(&e.path("unix"), batch.as_bytes());
        let m = e.metrics();
        if firing(&m, "age") {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "FeatureDrift never fired for age:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!firing(&m, "amount") && !firing(&m, "country"), "{m}");
    // The drift values themselves, by method.
    let psi = |f: &str| {
        sample(&m, &format!(
            r#"model_feature_drift{{feature="{f}",method="psi",model="fraud",version="",window="3s"}}"#
        ))
        .unwrap()
    };
    assert!(psi("age") > 0.5, "age {}", psi("age"));
    assert!(psi("amount") < 0.1, "amount {}", psi("amount"));
    // Country is sent in the training proportions (a third each, in turn):
    // the chi-square test finds nothing (a window of whole batches has a
    // statistic below 0.01 and a p-value above 0.99).
    let country = sample(
        &m,
        r#"model_feature_drift{feature="country",method="chi2_pvalue",model="fraud",version="",window="3s"}"#,
    )
    .unwrap();
    assert!(country > 0.9 && country <= 1.0, "country {country}");
    assert!(!m.contains(r#"model_feature_drift{feature="country",method="ks""#));
    // The feature histogram's buckets are the baseline's edges.
    let baseline: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("fraud.json")).unwrap())
            .unwrap();
    let edges = baseline["features"]["age"]["edges"].as_array().unwrap();
    let les = m
        .lines()
        .filter(|l| l.starts_with(r#"model_feature_value_bucket{feature="age""#))
        .count();
    assert_eq!(les, edges.len() + 1, "one bucket per edge plus +Inf");
}

/// The chi-square p-value exported for a categorical feature, against a
/// number worked out by hand: 1,000 training values, DE 0.5, FR 0.3, US
/// 0.2; 100 live values, 40 DE, 30 FR, 30 US. The two-sample test
/// (docs/drift.md) of the table [[500, 300, 200], [40, 30, 30]]: with
/// m = 1000, n = 100, each category adds (r − l)² · m · n / (R + L), so
/// X² = 0.1² · 10⁵ / 540 + 0 + 0.1² · 10⁵ / 230 = 1000/540 + 1000/230
/// with 2 degrees of freedom, whose survival function is e^(−X²/2):
/// p = 0.0450564572775736
/// (`scipy.stats.chi2_contingency([[500, 300, 200], [40, 30, 30]],
/// correction=False).pvalue` agrees to the last digits).
#[test]
fn the_chi_square_p_value_of_a_categorical_feature() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("country\n");
    for i in 0..1000 {
        csv.push_str(match i % 10 {
            0..5 => "DE\n",
            5..8 => "FR\n",
            _ => "US\n",
        });
    }
    make_baseline(dir.path(), &csv, "fraud");
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "defaults: {window: 1h, evaluation_interval: 100ms, min_samples: 100}\n\
         models:\n  fraud:\n    baseline: fraud.json\n\
         groups:\n  - name: ml\n    rules:\n      - alert: CountryDrift\n        expr: chi2_pvalue(feature.country) < 0.05\n",
    )
    .unwrap();
    let e = Exporter::start(&["--config.file", rules.to_str().unwrap()]);
    let live: String = (0..100)
        .map(|i| {
            let c = match i % 10 {
                0..4 => "DE",
                4..7 => "FR",
                _ => "US",
            };
            format!("{{\"model\":\"fraud\",\"features\":{{\"country\":\"{c}\"}}}}\n")
        })
        .collect();
    send_unix(&e.path("unix"), live.as_bytes());
    e.wait_sample(
        r#"model_feature_category_total{category="US",feature="country",model="fraud",version=""}"#,
        30.0,
    );
    // Two more rounds: the second began after every event was applied.
    let rounds = r#"model_exporter_rule_evaluations_total{group="ml"}"#;
    let from = e.sample(rounds).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while e.sample(rounds).unwrap() < from + 2.0 {
        assert!(Instant::now() < deadline, "no evaluation");
        std::thread::sleep(Duration::from_millis(20));
    }
    let m = e.metrics();
    let want = (-(1000.0 / 540.0 + 1000.0 / 230.0) / 2.0f64).exp();
    for series in [
        r#"model_feature_drift{feature="country",method="chi2_pvalue",model="fraud",version="",window="1h"}"#,
        // A rule on one named feature carries it, as its exported rule does.
        r#"model_rule_signal_value{alertname="CountryDrift",feature="country",model="fraud",version=""}"#,
    ] {
        let got = sample(&m, series).unwrap_or_else(|| panic!("no {series}\n{m}"));
        assert!(
            (got - want).abs() <= 1e-12 * want,
            "{series} {got}, want {want}"
        );
    }
    assert_eq!(
        sample(
            &m,
            r#"model_alerts{alertname="CountryDrift",alertstate="firing",feature="country",model="fraud",severity="warning",version=""}"#
        ),
        Some(1.0),
        "{m}"
    );
}

#[test]
fn a_bad_baseline_is_a_located_config_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"format":"model-exporter-baseline","version":1,"created_at":"2026-11-01T00:00:00Z","source":"x","rows":1,
           "features":{"age":{"type":"numeric","count":1,"missing":0,"missing_rate":0,"mean":1,"std":1,"min":1,"max":2,
           "edges":[2,1],"proportions":[0,1,0]}}}"#,
    )
    .unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "models:\n  fraud:\n    baseline: bad.json\n  other:\n    baseline: missing.json\n",
    )
    .unwrap();
    let out = Command::new(binary())
        .arg("check")
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let name = rules.display().to_string();
    assert!(
        err.contains(&format!("{name}:3:15: cannot use the baseline:")),
        "{err}"
    );
    assert!(err.contains("features.age.edges"), "{err}");
    assert!(
        err.contains(&format!("{name}:5:15: cannot use the baseline:")),
        "{err}"
    );
    assert!(err.contains("missing.json"), "{err}");
}
