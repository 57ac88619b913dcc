//! `--metrics.ttl`: a model version that stops sending disappears from
//! /metrics, while one kept alive by events stays; it comes back from zero.
//!
//! The exporter runs in the test process on a manual clock: the test moves
//! time on instead of sleeping until the ttl has passed.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Short windows, so that a silent version's windows empty soon after the
/// ttl; a silence rule, so that the newest version's windows are kept.
const RULES: &str = "
defaults: {window: 2s, evaluation_interval: 1s, min_samples: 1}
groups:
  - name: g
    rules:
      - alert: Errors
        expr: error_rate > 50%
      - alert: Silent
        expr: time_since_last_event > 1h
        min_samples: 0
";

#[test]
fn a_silent_version_disappears_and_a_live_one_stays() {
    let e = InProcess::start_with_rules(RULES, &["--metrics.ttl", "2s"]);
    let sock = e.path("unix");
    send_unix(
        &sock,
        b"{\"model\":\"m\",\"version\":\"v1\",\"error\":\"boom\",\"features\":{\"age\":3}}\n\
          {\"type\":\"log\",\"model\":\"m\",\"version\":\"v1\",\"level\":\"error\",\"component\":\"io\"}\n\
          {\"model\":\"m\",\"version\":\"v2\",\"latency_ms\":5}\n",
    );
    e.wait_sample(
        r#"model_requests_total{model="m",outcome="error",version="v1"}"#,
        1.0,
    );
    assert!(e.metrics().contains(r#"version="v2""#));

    // v2 keeps sending, a second of the clock apart (less than the ttl);
    // v1 is silent until it is gone from every family, at the next tick.
    let deadline = Instant::now() + PATIENCE;
    let mut sent = 1;
    let text = loop {
        e.advance(Duration::from_secs(1));
        send_unix(
            &sock,
            b"{\"model\":\"m\",\"version\":\"v2\",\"latency_ms\":5}\n",
        );
        sent += 1;
        e.wait_sample(
            r#"model_requests_total{model="m",outcome="ok",version="v2"}"#,
            f64::from(sent),
        );
        let text = e.metrics();
        if !text.contains(r#"version="v1""#) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "v1 still exposed after {PATIENCE:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // v2's series stay, with every event counted.
    assert_eq!(
        sample(
            &text,
            r#"model_request_duration_seconds_count{model="m",version="v2"}"#
        ),
        Some(f64::from(sent)),
        "{text}"
    );
    // One version expired: v1.
    assert_eq!(
        sample(
            &text,
            r#"model_exporter_series_expired_total{label="version"}"#
        ),
        Some(1.0),
        "{text}"
    );
    promtool_check_metrics(&text);

    // Everything v2 sent is still counted: it never expired.
    e.wait_sample(
        r#"model_requests_total{model="m",outcome="ok",version="v2"}"#,
        f64::from(sent),
    );

    // v1 comes back, its counters from zero.
    send_unix(&sock, b"{\"model\":\"m\",\"version\":\"v1\"}\n");
    e.wait_sample(
        r#"model_requests_total{model="m",outcome="ok",version="v1"}"#,
        1.0,
    );
    let text = e.metrics();
    assert_eq!(
        sample(
            &text,
            r#"model_requests_total{model="m",outcome="error",version="v1"}"#
        ),
        Some(0.0),
        "{text}"
    );
    promtool_check_metrics(&text);
}

#[test]
fn without_the_flag_nothing_expires() {
    let e = InProcess::start_with_rules(RULES, &[]);
    send_unix(&e.path("unix"), b"{\"model\":\"m\",\"version\":\"v1\"}\n");
    e.wait_sample(
        r#"model_requests_total{model="m",outcome="ok",version="v1"}"#,
        1.0,
    );
    // Hours pass on the clock; wait for evaluation rounds (one per tick of
    // a second) that see them, rather than for a fixed time.
    let rounds =
        |t: &str| sample(t, r#"model_exporter_rule_evaluations_total{group="g"}"#).unwrap_or(0.0);
    let first = rounds(&e.metrics());
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        e.advance(Duration::from_secs(3600));
        let text = e.metrics();
        if rounds(&text) >= first + 2.0 {
            break text;
        }
        assert!(Instant::now() < deadline, "rules not evaluated:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        sample(
            &text,
            r#"model_requests_total{model="m",outcome="ok",version="v1"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("model_exporter_series_expired_total"),
        "{text}"
    );
}
