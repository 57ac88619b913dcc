//! Latency thresholds and the latency histogram's buckets: every threshold
//! of the rules is a bucket bound, so that Prometheus' histogram_quantile
//! decides exactly at it (the end-to-end check with a real Prometheus is in
//! tests/parity.rs); `check` warns where the exported rule can never fire;
//! the buckets are set at start, and a reload that adds a threshold says so.

mod common;

use std::process::Command;

use common::*;

const RULES: &str = "\
groups:
  - name: g
    rules:
      - alert: Slow
        expr: p99(latency) > 300ms
";

#[test]
fn a_threshold_between_default_buckets_is_a_bound() {
    let e = Exporter::start_with_rules(RULES, &[]);
    send_unix(
        &e.path("unix"),
        b"{\"model\":\"m\",\"version\":\"v1\",\"latency_ms\":280}\n",
    );
    e.wait_sample(
        r#"model_request_duration_seconds_bucket{model="m",version="v1",le="0.3"}"#,
        1.0,
    );
    let text = e.metrics();
    assert_eq!(
        sample(
            &text,
            r#"model_request_duration_seconds_bucket{model="m",version="v1",le="0.25"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "model_exporter_rule_thresholds_not_bucket_bounds"),
        Some(0.0)
    );
    promtool_check_metrics(&text);

    // A reload cannot change the buckets without resetting the series: the
    // new threshold is counted, logged, and made a bound by a restart.
    std::fs::write(
        e.rules_path(),
        format!("{RULES}      - alert: Slower\n        expr: p95(latency) > 700ms\n"),
    )
    .unwrap();
    unsafe { libc::kill(e.pid(), libc::SIGHUP) };
    e.wait_sample("model_exporter_rule_thresholds_not_bucket_bounds", 1.0);
    send_unix(
        &e.path("unix"),
        b"{\"model\":\"m\",\"version\":\"v1\",\"latency_ms\":280}\n",
    );
    e.wait_sample(
        r#"model_request_duration_seconds_bucket{model="m",version="v1",le="0.3"}"#,
        2.0,
    );
    assert!(!e.metrics().contains(r#"le="0.7""#));
    assert!(
        e.wait_log("the latency threshold is not a bucket bound of model_request_duration_seconds: the buckets are set when the exporter starts, so Prometheus interpolates between buckets until a restart").is_some(),
        "{}",
        e.log_text()
    );
}

fn check(rules: &str, extra: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, rules).unwrap();
    let out = Command::new(binary())
        .arg("check")
        .args(extra)
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    (
        out.status.success(),
        stderr.replace(&path.display().to_string(), "rules.yaml"),
    )
}

#[test]
fn check_warns_where_the_exported_rule_can_never_fire() {
    let rules = "\
groups:
  - name: g
    rules:
      - alert: Slow
        expr: p99(latency) > 20s
      - alert: Fine
        expr: p99(latency) > 300ms
";
    let (ok, stderr) = check(rules, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(
        stderr.trim(),
        "rules.yaml:5:30: warning: the threshold of Slow (20 s) is not below the top latency bucket (10 s): \
         histogram_quantile never exceeds the top bucket, so the exported rule can never fire; \
         add a larger bound with --metrics.latency-buckets"
    );
    // With the buckets the exporter runs with, it can.
    let (ok, stderr) = check(rules, &["--metrics.latency-buckets", "0.1,1,10,60"]);
    assert!(ok && stderr.is_empty(), "{stderr}");
    // Invalid buckets are an error.
    let (ok, stderr) = check(rules, &["--metrics.latency-buckets", "1,0.5"]);
    assert!(
        !ok && stderr.contains("--metrics.latency-buckets"),
        "{stderr}"
    );
}
