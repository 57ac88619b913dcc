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
    assert!(m.contains(r#"model_feature_drift{feature="country",method="chi2_pvalue""#));
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
