//! Client timestamps: `ts`, `loaded_at` and `trained_at` out of
//! `--events.max-clock-skew` of the time of receipt are rejected as
//! `invalid_value`, and the freshness gauges use the time of receipt.
//!
//! The exporter runs in the test process on a manual clock.

mod common;

use std::time::Duration;

use common::*;

const RULES: &str = "
defaults: {window: 10s, evaluation_interval: 200ms, min_samples: 0}
groups:
  - name: g
    rules:
      - alert: Stale
        expr: model_age > 30d
";

const REJECTED: &str = r#"model_exporter_events_rejected_total{reason="invalid_value"}"#;

fn requests(model: &str) -> String {
    format!(r#"model_requests_total{{model="{model}",outcome="ok",version="v1"}}"#)
}

#[test]
fn absurd_timestamps_are_rejected_and_freshness_is_the_time_of_receipt() {
    let e = InProcess::start_with_rules(RULES, &[]);
    let sock = e.path("unix");
    assert_eq!(sample(&e.metrics(), REJECTED), Some(0.0));
    let now = InProcess::START;
    // An hour of skew (the default) is allowed either way.
    let within = format!(
        "{{\"model\":\"ok\",\"version\":\"v1\",\"ts\":{}}}\n{{\"model\":\"ok\",\"version\":\"v1\",\"ts\":{}}}\n",
        now - 3500.0,
        now + 3500.0
    );
    send_unix(&sock, within.as_bytes());
    e.wait_sample(&requests("ok"), 2.0);
    // The gauge says when the event arrived, not what the client claimed.
    assert_eq!(
        sample(
            &e.metrics(),
            r#"model_last_event_timestamp_seconds{model="ok",version="v1"}"#
        ),
        Some(now)
    );

    for bad in [
        r#"{"model":"bad","version":"v1","ts":1e300}"#,
        // Milliseconds sent as seconds.
        r#"{"model":"bad","version":"v1","ts":99999999999}"#,
        r#"{"model":"bad","version":"v1","ts":"9999-12-31T23:59:59Z"}"#,
        r#"{"model":"bad","version":"v1","ts":1}"#,
        r#"{"type":"model","model":"bad","version":"v1","trained_at":1e300}"#,
        r#"{"type":"model","model":"bad","version":"v1","loaded_at":99999999999}"#,
    ] {
        send_unix(&sock, format!("{bad}\n").as_bytes());
    }
    e.wait_sample(REJECTED, 6.0);
    // A model trained long ago is fine, and so is one trained a little ahead
    // of the exporter's clock: its age reads 0, never negative.
    let loaded = format!(
        "{{\"type\":\"model\",\"model\":\"old\",\"version\":\"v1\",\"trained_at\":{}}}\n\
         {{\"type\":\"model\",\"model\":\"ahead\",\"version\":\"v1\",\"trained_at\":{}}}\n",
        now - 90.0 * 86400.0,
        now + 60.0
    );
    send_unix(&sock, loaded.as_bytes());
    e.wait_sample(
        r#"model_trained_timestamp_seconds{model="ahead",version="v1"}"#,
        now + 60.0,
    );
    let text = e.metrics();
    assert_eq!(sample(&text, REJECTED), Some(6.0), "{text}");
    assert!(!text.contains(r#"model="bad""#), "{text}");
    // The rules read the same ages: Stale fires for `old` only (at the
    // first evaluation after the clock moves).
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        e.advance(Duration::from_millis(200));
        let v: serde_json::Value = serde_json::from_str(&e.get("/api/v1/alerts").2).unwrap();
        let stale: Vec<String> = v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["labels"]["alertname"] == "Stale")
            .map(|a| a["labels"]["model"].as_str().unwrap().to_owned())
            .collect();
        if !stale.is_empty() {
            assert_eq!(stale, ["old"]);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "Stale never fired");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_skew_is_configurable() {
    let e = InProcess::start_with_rules(RULES, &["--events.max-clock-skew", "1m"]);
    let sock = e.path("unix");
    let now = InProcess::START;
    let lines = format!(
        "{{\"model\":\"m\",\"version\":\"v1\",\"ts\":{}}}\n{{\"model\":\"m\",\"version\":\"v1\",\"ts\":{}}}\n",
        now - 30.0,
        now - 120.0
    );
    send_unix(&sock, lines.as_bytes());
    e.wait_sample(REJECTED, 1.0);
    e.wait_sample(&requests("m"), 1.0);
    drop(e);

    // 0 turns the check off.
    let e = InProcess::start_with_rules(RULES, &["--events.max-clock-skew", "0"]);
    send_unix(
        &e.path("unix"),
        b"{\"model\":\"m\",\"version\":\"v1\",\"ts\":1}\n",
    );
    e.wait_sample(&requests("m"), 1.0);
    assert_eq!(sample(&e.metrics(), REJECTED), Some(0.0));
}
