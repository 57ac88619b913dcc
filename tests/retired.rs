//! Retired versions: a version superseded by a newer one of the same model
//! (announced by a `model` event, or sending its first event) is not
//! silent, it was replaced: silence rules leave it out, and
//! `model_version_retired` says so to the exported rules.
//!
//! The exporter runs in the test process on a manual clock.

mod common;

use std::time::{Duration, Instant};

use common::*;

const RULES: &str = "
defaults: {window: 10s, evaluation_interval: 200ms, min_samples: 0}
groups:
  - name: g
    rules:
      - alert: Silent
        expr: time_since_last_event > 30s
";

const RETIRED_V1: &str = r#"model_version_retired{model="m",version="v1"}"#;
const RETIRED_V2: &str = r#"model_version_retired{model="m",version="v2"}"#;

/// The versions of model `m` the sidecar's Silent alert fires for.
fn silent_versions(e: &InProcess) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&e.get("/api/v1/alerts").2).unwrap();
    v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["labels"]["alertname"] == "Silent"
                && a["labels"]["model"] == "m"
                && a["state"] == "firing"
        })
        .map(|a| a["labels"]["version"].as_str().unwrap().to_owned())
        .collect()
}

/// Moves the clock past the silence threshold, then waits until the current
/// version `v2` fires (an evaluation happened since) and returns every
/// version that fires.
fn silent_after_a_minute(e: &InProcess) -> Vec<String> {
    e.advance(Duration::from_secs(60));
    let deadline = Instant::now() + PATIENCE;
    loop {
        let firing = silent_versions(e);
        if firing.iter().any(|v| v == "v2") {
            return firing;
        }
        assert!(Instant::now() < deadline, "v2 never fired Silent");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_model_event_announcing_v2_retires_v1() {
    let e = InProcess::start_with_rules(RULES, &[]);
    let sock = e.path("unix");
    send_unix(
        &sock,
        b"{\"model\":\"m\",\"version\":\"v1\",\"latency_ms\":5}\n",
    );
    e.wait_sample(RETIRED_V1, 0.0);
    send_unix(
        &sock,
        b"{\"type\":\"model\",\"model\":\"m\",\"version\":\"v2\"}\n",
    );
    e.wait_sample(RETIRED_V1, 1.0);
    e.wait_sample(RETIRED_V2, 0.0);
    assert_eq!(silent_after_a_minute(&e), ["v2"]);
}

#[test]
fn the_first_inference_of_v2_retires_v1() {
    let e = InProcess::start_with_rules(RULES, &[]);
    let sock = e.path("unix");
    send_unix(
        &sock,
        b"{\"model\":\"m\",\"version\":\"v1\",\"latency_ms\":5}\n\
          {\"model\":\"other\",\"version\":\"v1\",\"latency_ms\":5}\n",
    );
    e.wait_sample(RETIRED_V1, 0.0);
    e.advance(Duration::from_secs(1));
    send_unix(
        &sock,
        b"{\"model\":\"m\",\"version\":\"v2\",\"latency_ms\":5}\n",
    );
    e.wait_sample(RETIRED_V1, 1.0);
    // Another model's version is not superseded by m's.
    assert_eq!(
        sample(
            &e.metrics(),
            r#"model_version_retired{model="other",version="v1"}"#
        ),
        Some(0.0)
    );
    assert_eq!(silent_after_a_minute(&e), ["v2"]);
}

#[test]
fn a_retired_version_that_sends_again_is_current() {
    let e = InProcess::start_with_rules(RULES, &[]);
    let sock = e.path("unix");
    send_unix(
        &sock,
        b"{\"model\":\"m\",\"version\":\"v1\",\"latency_ms\":5}\n\
          {\"model\":\"m\",\"version\":\"v2\",\"latency_ms\":5}\n",
    );
    e.wait_sample(RETIRED_V1, 1.0);
    // A canary: v1 keeps serving next to v2; neither is retired.
    send_unix(
        &sock,
        b"{\"model\":\"m\",\"version\":\"v1\",\"latency_ms\":5}\n",
    );
    e.wait_sample(RETIRED_V1, 0.0);
    assert_eq!(
        sample(&e.metrics(), RETIRED_V2),
        Some(0.0),
        "v1's return is not an announcement"
    );
    // Both go silent: both fire.
    let mut firing = silent_after_a_minute(&e);
    firing.sort();
    assert_eq!(firing, ["v1", "v2"]);
}
