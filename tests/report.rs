//! `model-exporter report`, /api/v1/summary and /api/v1/history against a
//! known event stream.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const RULES: &str = "
defaults: {window: 1m, evaluation_interval: 200ms, min_samples: 10}
groups:
  - name: ops
    rules:
      - alert: HighErrorRate
        expr: error_rate > 5%
        severity: critical
        annotations: {summary: 'errors of {{ $labels.model }}'}
";

#[test]
fn the_report_matches_the_events_sent() {
    let e = Exporter::start_with_rules(RULES, &["--history.resolution", "200ms"]);
    // 100 requests of the fraud model: latencies 10..=1000 ms in steps of
    // 10, every tenth failing, predictions 0/1 with 20% positive,
    // confidence 0.8 (10% of them 0.3, below the 0.5 threshold).
    let mut lines = String::new();
    for i in 1..=100 {
        let err = if i % 10 == 0 {
            r#","error":"timeout""#
        } else {
            ""
        };
        let pred = if i % 5 == 0 { 1 } else { 0 };
        let conf = if i % 10 == 3 { 0.3 } else { 0.8 };
        lines += &format!(
            "{{\"model\":\"fraud\",\"version\":\"v3\",\"latency_ms\":{}{err},\"prediction\":{pred},\"confidence\":{conf}}}\n",
            i * 10
        );
    }
    // A recommender with a 20% click-through rate.
    for _ in 0..50 {
        lines +=
            "{\"model\":\"reco\",\"latency_ms\":30,\"counters\":{\"shown\":10,\"clicked\":2}}\n";
    }
    send_unix(&e.path("unix"), lines.as_bytes());
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        150.0,
    );

    let url = format!("http://{}", e.web);
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        let out = Command::new(binary())
            .args(["report", "--url", &url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        if text.contains("Model reco") && text.contains("1 firing") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "report never showed both models:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for want in [
        "ML SYSTEM MONITORING REPORT",
        "over the last 1m",
        "Model fraud (version v3)",
        "Error=10.0%",
        "Positive=20.0%",
        "Low confidence=10.0%",
        "Model reco",
        "Business: Click-through=20.0%",
        "Alerts: 1 firing, 0 pending",
        "[CRITICAL] firing HighErrorRate fraud: errors of fraud",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // The sketch's quantiles are within 1% of the exact ones (500 and 990 ms).
    let quantile = |name: &str| -> f64 {
        let at = text.find(&format!("{name}=")).unwrap() + name.len() + 1;
        text[at..].split("ms").next().unwrap().parse().unwrap()
    };
    assert!((quantile("P50") - 500.0).abs() <= 5.0, "{text}");
    assert!((quantile("P99") - 990.0).abs() <= 9.9, "{text}");
    // Confidence: 90 at 0.8 and 10 at 0.3 -> 0.75.
    assert!(text.contains("Confidence=0.75"), "{text}");

    // The history records every 200 ms: wait for the first point that
    // includes the fraud model rather than assume one already exists.
    let deadline = Instant::now() + PATIENCE;
    let fraud = loop {
        let (status, _, body) = e.get("/api/v1/history");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["data"]["resolution"], 0.2);
        let found = v["data"]["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["model"] == "fraud")
            .cloned();
        if let Some(f) = found {
            break f;
        }
        assert!(
            Instant::now() < deadline,
            "fraud never in the history: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!fraud["ts"].as_array().unwrap().is_empty());
    assert_eq!(fraud["error_rate"].as_array().unwrap().last().unwrap(), 0.1);
}

#[test]
fn report_without_an_exporter_fails_clearly() {
    let out = Command::new(binary())
        .args(["report", "--url", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to 127.0.0.1:1"));
}

/// Rules evaluated once an hour: the summary the report reads can only
/// show events sent a moment ago if the exporter reads its current state
/// when asked.
const HOURLY: &str = "
defaults: {window: 1h, evaluation_interval: 1h, min_samples: 1}
models:
  clf:
    baseline: clf.json
groups:
  - name: ml
    rules:
      - alert: FeatureDrift
        expr: psi(feature.*) > 0.2
      - alert: PredictionDrift
        expr: psi(prediction) > 0.2
";

#[test]
fn a_report_right_after_events_shows_them_with_drift_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gen(11);
    let mut csv = String::from("x,prediction\n");
    for i in 0..1000 {
        csv += &format!("{:.3},{}\n", g.normal(0.0, 1.0), i % 2);
    }
    baseline_from_csv(dir.path(), "clf", &csv, &[]);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, HOURLY).unwrap();
    let e = Exporter::start(&["--config.file", rules.to_str().unwrap()]);

    // Ten predictions of clf with x three standard deviations off its
    // training values; labels for eight of them, six right.
    let mut lines = String::new();
    for i in 0..10 {
        lines += &format!(
            "{{\"model\":\"clf\",\"id\":\"r-{i}\",\"latency_ms\":5,\"prediction\":{},\"confidence\":0.9,\"features\":{{\"x\":{:.3}}}}}\n",
            i % 2,
            3.0 + g.normal(0.0, 0.1)
        );
    }
    for i in 0..8 {
        let actual = if i < 6 { i % 2 } else { 1 - i % 2 };
        lines += &format!(
            "{{\"type\":\"feedback\",\"model\":\"clf\",\"id\":\"r-{i}\",\"actual\":{actual}}}\n"
        );
    }
    lines += "{\"model\":\"plain\",\"latency_ms\":5,\"prediction\":1}\n";
    send_unix(&e.path("unix"), lines.as_bytes());
    e.wait_sample(
        r#"model_requests_total{model="clf",outcome="ok",version=""}"#,
        10.0,
    );
    e.wait_sample(
        r#"model_requests_total{model="plain",outcome="ok",version=""}"#,
        1.0,
    );
    e.wait_sample(
        r#"model_exporter_events_received_total{type="feedback"}"#,
        8.0,
    );

    // Once, no retry: `…/metrics` as the URL, as users copy it.
    let url = format!("http://{}/metrics", e.web);
    let out = Command::new(binary())
        .args(["report", "--url", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        &format!("http://{} at ", e.web) as &str,
        "Model clf\n",
        "Requests=",
        "  Drift: prediction PSI=",
        "(PredictionDrift > 0.2); features by psi: x=",
        "(1 of 1 > 0.2, FeatureDrift)",
        "  Labels: Accuracy=75.0%, 8 joined in the last 1h, 2 waiting for their label",
        "Model plain\n",
        "  Drift: no reference to compare with; make a baseline of the training data with `model-exporter baseline`",
        "  Labels: none received",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(!text.contains("No model has sent events yet"), "{text}");
    let psi: f64 = text
        .split("features by psi: x=")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(psi > 2.0, "x moved out of its reference: PSI {psi}\n{text}");
}
