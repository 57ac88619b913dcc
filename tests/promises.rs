//! What docs/events.md, docs/metrics.md and docs/rules.md promise, each
//! checked end to end: how `ok` and `error` decide the outcome, both
//! `outcome` series appearing together, a rate rule firing on a model that
//! went silent, and windows kept or restarted by a reload.
//!
//! The exporter runs in the test process on a manual clock: windows and
//! rates are exact, and nothing expires while the test waits for a tick.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replaces the rules file in one step, so that a reload never reads it
/// half written.
fn write_rules(e: &InProcess, text: &str) {
    let tmp = e.dir.path().join("rules.yaml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, e.dir.path().join("rules.yaml")).unwrap();
}

/// `POST /-/reload`; its status and body.
fn reload(web: SocketAddr) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(web).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        s,
        "POST /-/reload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.into(),
    )
}

fn requests(model: &str, outcome: &str) -> String {
    format!(r#"model_requests_total{{model="{model}",outcome="{outcome}",version=""}}"#)
}

fn errors(model: &str, class: &str) -> String {
    format!(r#"model_request_errors_total{{error="{class}",model="{model}",version=""}}"#)
}

/// docs/events.md: "When `ok` is given it decides the outcome; a request
/// with `ok: false` and no `error` is counted under the error class
/// `unknown`", and `ok` defaults to false when `error` is set.
#[test]
fn ok_decides_the_outcome_and_a_failure_without_error_is_unknown() {
    let e = InProcess::start_with_rules("groups: []\n", &[]);
    send_unix(
        &e.path("unix"),
        concat!(
            "{\"model\":\"m\",\"ok\":false}\n",
            "{\"model\":\"m\",\"ok\":false}\n",
            "{\"model\":\"m\",\"ok\":true,\"error\":\"timeout\"}\n",
            "{\"model\":\"m\",\"error\":\"timeout\"}\n",
            "{\"model\":\"m\",\"ok\":false,\"error\":\"oom\"}\n",
            "{\"model\":\"m\",\"error\":\"\"}\n",
            "{\"model\":\"m\"}\n",
        )
        .as_bytes(),
    );
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        7.0,
    );
    let m = e.metrics();
    // ok: true with an error, an empty error, and no ok at all: successes.
    assert_eq!(sample(&m, &requests("m", "ok")), Some(3.0), "{m}");
    assert_eq!(sample(&m, &requests("m", "error")), Some(4.0), "{m}");
    assert_eq!(sample(&m, &errors("m", "unknown")), Some(2.0), "{m}");
    // The timeout of the `ok: true` event is not counted; the other is.
    assert_eq!(sample(&m, &errors("m", "timeout")), Some(1.0), "{m}");
    assert_eq!(sample(&m, &errors("m", "oom")), Some(1.0), "{m}");
    let classes = m
        .lines()
        .filter(|l| l.starts_with("model_request_errors_total{"))
        .count();
    assert_eq!(classes, 3, "{m}");
}

/// docs/metrics.md: "both `outcome` series of `model_requests_total` appear
/// together, so `rate()` of errors is 0 rather than absent".
#[test]
fn both_outcome_series_appear_together() {
    let e = InProcess::start_with_rules("groups: []\n", &[]);
    let sock = e.path("unix");
    send_unix(&sock, b"{\"model\":\"good\"}\n");
    e.wait_sample(&requests("good", "ok"), 1.0);
    assert_eq!(
        e.metrics()
            .lines()
            .filter(|l| l.contains("model=\"bad\""))
            .count(),
        0
    );
    assert_eq!(sample(&e.metrics(), &requests("good", "error")), Some(0.0));

    send_unix(&sock, b"{\"model\":\"bad\",\"error\":\"x\"}\n");
    e.wait_sample(&requests("bad", "error"), 1.0);
    let m = e.metrics();
    assert_eq!(sample(&m, &requests("bad", "ok")), Some(0.0), "{m}");
    // Each appears exactly once.
    for model in ["good", "bad"] {
        for outcome in ["ok", "error"] {
            let series = requests(model, outcome);
            let n = m.lines().filter(|l| l.starts_with(&series)).count();
            assert_eq!(n, 1, "{series}\n{m}");
        }
    }
    promtool_check_metrics(&m);
}

/// docs/rules.md: rates "need no samples: they always give a verdict, so a
/// traffic drop to zero can fire" — even with the default `min_samples`.
#[test]
fn a_request_rate_floor_fires_on_a_model_gone_silent() {
    let e = InProcess::start_with_rules(
        "defaults: {window: 10s, evaluation_interval: 1s, min_samples: 5}\n\
         groups:\n  - name: traffic\n    rules:\n      - alert: NoTraffic\n        expr: request_rate < 1\n",
        &[],
    );
    let firing = r#"model_alerts{alertname="NoTraffic",alertstate="firing",model="quiet",severity="warning",version=""}"#;
    let reading = r#"model_rule_signal_value{alertname="NoTraffic",model="quiet",version=""}"#;
    let line: String = "{\"model\":\"quiet\"}\n".repeat(50);
    send_unix(&e.path("unix"), line.as_bytes());
    e.wait_sample(&requests("quiet", "ok"), 50.0);
    // One second of the clock later: 50 requests in 1 s of window.
    e.advance(Duration::from_secs(1));
    e.wait_sample(reading, 50.0);
    assert_eq!(sample(&e.metrics(), firing), None);

    // Silent for longer than the window (and the slice it may reach back).
    e.advance(Duration::from_secs(12));
    e.wait_sample(reading, 0.0);
    e.wait_sample(firing, 1.0);
    let m = e.metrics();
    assert_eq!(
        sample(
            &m,
            r#"model_window_request_rate{model="quiet",version="",window="10s"}"#
        ),
        Some(0.0),
        "{m}"
    );
}

/// docs/rules.md: a reload keeps the windows, reshaped when the new rules
/// need another longest window; only another slice width (another
/// shortest window) restarts them empty.
#[test]
fn windows_restart_when_a_reload_changes_their_shape() {
    let rules = |window: &str, name: &str| {
        format!(
            "defaults: {{window: {window}, evaluation_interval: 1s, min_samples: 1}}\n\
             groups:\n  - name: g\n    rules:\n      - alert: {name}\n        expr: request_rate > 1000\n"
        )
    };
    let e = InProcess::start_with_rules(&rules("10s", "A"), &["--web.enable-lifecycle"]);
    let reading = |name: &str| {
        format!(r#"model_rule_signal_value{{alertname="{name}",model="m",version=""}}"#)
    };
    send_unix(&e.path("unix"), "{\"model\":\"m\"}\n".repeat(20).as_bytes());
    e.wait_sample(&requests("m", "ok"), 20.0);
    e.advance(Duration::from_secs(2));
    // 20 requests over the 2 s recorded.
    e.wait_sample(&reading("A"), 10.0);

    // Same windows, another rule: the windows carry on.
    write_rules(&e, &rules("10s", "B"));
    assert_eq!(reload(e.web).0, 200);
    e.wait_sample(&reading("B"), 10.0);

    // A 20 s window: slices of another width, so the windows restart.
    write_rules(&e, &rules("20s", "C"));
    assert_eq!(reload(e.web).0, 200);
    wait_until("the aggregator to take the new rules", || {
        e.get("/api/v1/rules").2.contains("\"C\"")
    });
    // Empty windows: no reading (kept, they would read 20 requests).
    let m = e.metrics();
    assert_eq!(sample(&m, &reading("C")), None, "{m}");
    // The counters are not windows: they keep counting.
    assert_eq!(sample(&m, &requests("m", "ok")), Some(20.0));
    // The new windows record from here: 6 requests over 2 s. Had the old
    // ones been kept, 26 requests over 4 s.
    send_unix(&e.path("unix"), "{\"model\":\"m\"}\n".repeat(6).as_bytes());
    e.wait_sample(&requests("m", "ok"), 26.0);
    e.advance(Duration::from_secs(2));
    e.wait_sample(&reading("C"), 3.0);
    e.wait_sample(
        r#"model_window_request_rate{model="m",version="",window="20s"}"#,
        3.0,
    );

    // The same shortest window and a longer one besides: the rings span
    // more, and the windows are carried over into them.
    write_rules(
        &e,
        &format!(
            "{}      - alert: Long\n        expr: request_rate > 1000\n        window: 1m\n",
            rules("20s", "D")
        ),
    );
    assert_eq!(reload(e.web).0, 200);
    wait_until("the aggregator to take the new rules", || {
        e.get("/api/v1/rules").2.contains("\"Long\"")
    });
    // Still the 6 requests over 2 s.
    e.wait_sample(&reading("D"), 3.0);
    // 10 requests over 4 s (restarted, the windows would read 4 over 2 s).
    send_unix(&e.path("unix"), "{\"model\":\"m\"}\n".repeat(4).as_bytes());
    e.wait_sample(&requests("m", "ok"), 30.0);
    e.advance(Duration::from_secs(2));
    e.wait_sample(&reading("D"), 2.5);
    e.wait_sample(&reading("Long"), 2.5);
}
