//! Names rules.yaml declares (its models, the features of a model's
//! baseline or expectations) keep their own series and windows whatever
//! junk names arrive first, past `--limits.models` and `--limits.features`,
//! and take no place under those caps; clients cannot name a model
//! `__other__` or `""`.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

const RULES: &str = "
defaults: {window: 5m, evaluation_interval: 100ms, min_samples: 5}
models:
  fraud:
    features:
      amount: {mean: 100, std: 10}
groups:
  - name: ops
    rules:
      - alert: HighErrorRate
        expr: error_rate > 5%
        for: 1m
        severity: critical
";

fn wait_until(web: std::net::SocketAddr, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            metrics(web)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn post_reload(web: std::net::SocketAddr) -> u16 {
    let mut s = std::net::TcpStream::connect(web).unwrap();
    write!(
        s,
        "POST /-/reload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split(' ').nth(1).unwrap().parse().unwrap()
}

fn alert(model: &str, state: &str) -> String {
    format!(
        r#"model_alerts{{alertname="HighErrorRate",alertstate="{state}",model="{model}",severity="critical",version=""}}"#
    )
}

#[test]
fn a_declared_model_keeps_its_series_and_alert_after_fifty_junk_models() {
    let e = InProcess::start_with_rules(RULES, &["--limits.models", "5"]);
    let mut p = String::new();
    for i in 0..50 {
        p += &format!("{{\"model\":\"junk{i}\",\"error\":\"timeout\"}}\n");
    }
    for _ in 0..20 {
        p += "{\"model\":\"fraud\",\"error\":\"timeout\"}\n";
    }
    send_unix(&e.path("unix"), p.as_bytes());
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        70.0,
    );
    let m = e.metrics();
    let errors = |model: &str| {
        sample(
            &m,
            &format!(r#"model_request_errors_total{{error="timeout",model="{model}",version=""}}"#),
        )
    };
    assert_eq!(errors("fraud"), Some(20.0), "{m}");
    // Five junk models took the five places, the other 45 are folded;
    // the declared model took none.
    assert_eq!(errors("__other__"), Some(45.0));
    assert_eq!(
        sample(&m, r#"model_exporter_series_dropped_total{label="model"}"#),
        Some(45.0)
    );
    // The alert of the declared model, under its own name, pending then
    // firing once `for` has passed on the exporter's clock (rules are due
    // when that clock has moved by their interval).
    e.advance(Duration::from_secs(1));
    wait_until(e.web, "the alert to be pending", || {
        metrics(e.web).contains(&alert("fraud", "pending"))
    });
    e.advance(Duration::from_secs(61));
    wait_until(e.web, "the alert to fire", || {
        sample(&metrics(e.web), &alert("fraud", "firing")) == Some(1.0)
    });
}

#[test]
fn a_declared_feature_keeps_its_series_and_drift_after_fifty_junk_features() {
    let e = InProcess::start_with_rules(RULES, &["--limits.features", "5"]);
    let mut p = String::from("{\"model\":\"fraud\",\"features\":{");
    for i in 0..50 {
        p += &format!("\"junk{i}\":{i},");
    }
    p += "\"amount\":100}}\n";
    let mut g = Gen(7);
    for _ in 0..199 {
        p += &format!(
            "{{\"model\":\"fraud\",\"features\":{{\"amount\":{}}}}}\n",
            g.normal(130.0, 10.0)
        );
    }
    send_unix(&e.path("unix"), p.as_bytes());
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        200.0,
    );
    let m = e.metrics();
    assert_eq!(
        sample(
            &m,
            r#"model_feature_value_count{feature="amount",model="fraud",version=""}"#
        ),
        Some(200.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"model_feature_value_count{feature="__other__",model="fraud",version=""}"#
        ),
        Some(45.0)
    );
    // Drift of the declared feature is computed: shifted by three
    // standard deviations, its PSI is far above 0.25.
    let psi = r#"model_feature_drift{feature="amount",method="psi",model="fraud",version="",window="5m"}"#;
    e.advance(Duration::from_secs(1));
    wait_until(e.web, "the drift of amount", || {
        sample(&metrics(e.web), psi).is_some_and(|v| v > 0.25)
    });
}

#[test]
fn names_declared_by_a_reload_are_admitted_across_shards() {
    let rules = "defaults: {evaluation_interval: 100ms}\n";
    let e = InProcess::start_with_rules(
        rules,
        &[
            "--limits.models",
            "2",
            "--aggregate.shards",
            "2",
            "--web.enable-lifecycle",
        ],
    );
    let requests = |m: &str, model: &str| {
        sample(
            m,
            &format!(r#"model_requests_total{{model="{model}",outcome="ok",version=""}}"#),
        )
    };
    send_unix(
        &e.path("unix"),
        b"{\"model\":\"a\"}\n{\"model\":\"b\"}\n{\"model\":\"reco\"}\n",
    );
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        3.0,
    );
    assert_eq!(requests(&e.metrics(), "__other__"), Some(1.0));
    std::fs::write(
        e.dir.path().join("rules.yaml"),
        "defaults: {evaluation_interval: 100ms}\nmodels:\n  reco: {}\n",
    )
    .unwrap();
    assert_eq!(post_reload(e.web), 200);
    send_unix(
        &e.path("unix"),
        b"{\"model\":\"reco\"}\n{\"model\":\"c\"}\n",
    );
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        5.0,
    );
    let m = e.metrics();
    assert_eq!(requests(&m, "reco"), Some(1.0), "{m}");
    // It took no place: the next junk name still folds.
    assert_eq!(requests(&m, "c"), None);
    assert_eq!(requests(&m, "__other__"), Some(2.0));
}

#[test]
fn clients_cannot_name_a_model_other_or_empty() {
    let e = InProcess::start_with_rules(RULES, &[]);
    send_unix(
        &e.path("unix"),
        b"{\"model\":\"__other__\"}\n{\"model\":\"\"}\n{\"type\":\"feedback\",\"model\":\"__other__\",\"id\":\"x\",\"actual\":1}\n{\"model\":\"fraud\"}\n",
    );
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        1.0,
    );
    let m = e.metrics();
    assert_eq!(
        sample(
            &m,
            r#"model_exporter_events_rejected_total{reason="invalid_value"}"#
        ),
        Some(3.0),
        "{m}"
    );
    assert!(!m.contains(r#"model="__other__""#), "{m}");
    assert!(!m.contains(r#"model="""#), "{m}");
}
