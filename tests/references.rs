//! What a configured reference exports, through the real binary: the drift
//! gauges, the reference's own series and the dashboard's features, with or
//! without alert rules, and an exposition `promtool check metrics` accepts.

mod common;

use std::fmt::Write as _;
use std::time::Instant;

use common::*;

/// Training data: a numeric `age` spread over 20..70 and a categorical
/// `country`.
fn training() -> String {
    let mut csv = String::from("age,country\n");
    for i in 0..500 {
        let country = ["DE", "FR", "US"][i % 3];
        writeln!(csv, "{},{country}", 20 + (i * 7) % 50).unwrap();
    }
    csv
}

/// Inference events of `fraud` with both features.
fn traffic(n: usize) -> String {
    let mut lines = String::new();
    for i in 0..n {
        let country = ["DE", "FR", "US", "BR"][i % 4];
        writeln!(
            lines,
            r#"{{"model":"fraud","latency_ms":5,"features":{{"age":{},"country":"{country}"}}}}"#,
            25 + i % 30
        )
        .unwrap();
    }
    lines
}

/// Waits until `/metrics` has a line starting with `prefix`; returns the page.
fn wait_line(e: &Exporter, prefix: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = e.metrics();
        if text.lines().any(|l| l.starts_with(prefix)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no line starting with {prefix} in\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A rules file with a baseline and no `groups` at all still exports the
/// drift of every feature against it, the reference's series, and the
/// dashboard's feature view: these follow the state, not the rules.
#[test]
fn a_baseline_without_rules_exports_drift() {
    let dir = tempfile::tempdir().unwrap();
    baseline_from_csv(dir.path(), "fraud", &training(), &[]);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "defaults: {evaluation_interval: 200ms}\nmodels:\n  fraud:\n    baseline: fraud.json\n",
    )
    .unwrap();
    let e = Exporter::start(&["--config.file", rules.to_str().unwrap()]);
    send_unix(&e.path("unix"), traffic(200).as_bytes());

    let text = wait_line(
        &e,
        r#"model_feature_drift{feature="age",method="psi",model="fraud",version="",window="5m"}"#,
    );
    for line in [
        r#"model_feature_drift{feature="country",method="psi",model="fraud",version="",window="5m"}"#,
        r#"model_feature_reference_ratio{bin="0",feature="age",model="fraud",version=""}"#,
        r#"model_feature_reference_ratio{bin="0",feature="country",model="fraud",version=""}"#,
        r#"model_feature_reference_count{feature="age",model="fraud",version=""} 1"#,
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "{line}\n{text}");
    }
    let (status, _, body) = e.get("/api/v1/features");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<&str> = v["data"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["age", "country"], "{body}");
}

/// `promtool check metrics` accepts the page with references configured
/// (a baseline with a numeric and a categorical feature, and an inline
/// `{mean, std}`), once every reference series is there.
#[test]
fn promtool_accepts_the_exposition_with_references() {
    let dir = tempfile::tempdir().unwrap();
    baseline_from_csv(dir.path(), "fraud", &training(), &[]);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "defaults: {evaluation_interval: 200ms, min_samples: 1}\n\
         models:\n  fraud:\n    baseline: fraud.json\n    features:\n      amount: {mean: 100, std: 50}\n\
         groups:\n  - name: ml\n    rules:\n      - alert: FeatureDrift\n        expr: psi(feature.*) > 0.2\n",
    )
    .unwrap();
    let e = Exporter::start(&["--config.file", rules.to_str().unwrap()]);
    let mut lines = traffic(100);
    for i in 0..100 {
        writeln!(
            lines,
            r#"{{"model":"fraud","features":{{"amount":{}}}}}"#,
            50 + i
        )
        .unwrap();
    }
    send_unix(&e.path("unix"), lines.as_bytes());
    wait_line(
        &e,
        r#"model_feature_drift{feature="amount",method="psi",model="fraud",version="",window="5m"}"#,
    );
    let text = wait_line(&e, "model_feature_reference");
    promtool_check_metrics(&text);
    // Everything fleet-wide drift reads was on the page checked.
    for family in [
        "model_feature_bin_total{",
        "model_feature_reference_ratio{",
        r#"model_feature_reference_bucket{feature="amount""#,
        r#"model_feature_value_bucket{feature="amount""#,
    ] {
        assert!(text.contains(family), "{family}\n{text}");
    }
}
