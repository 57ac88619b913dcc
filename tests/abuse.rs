//! A hostile client cannot grow the exporter's memory without bound: label
//! values past the caps fold into `__other__` and are counted.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;

use common::*;

#[test]
fn a_million_distinct_feature_names_leave_memory_bounded() {
    let e = Exporter::start(&[]);
    let mut s = UnixStream::connect(e.path("unix")).unwrap();
    // 1000 events of 1000 features each, every name different.
    let mut line = String::with_capacity(40_000);
    for i in 0..1000 {
        line.clear();
        line.push_str("{\"model\":\"m\",\"features\":{");
        for j in 0..1000 {
            if j > 0 {
                line.push(',');
            }
            line.push_str(&format!("\"f{i}_{j}\":{j}"));
        }
        line.push_str("}}\n");
        s.write_all(line.as_bytes()).unwrap();
    }
    drop(s);
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        1000.0,
    );
    let m = e.metrics();
    // 200 features per model version (the default cap), then __other__.
    let series = m
        .lines()
        .filter(|l| l.starts_with("model_feature_value_count{"))
        .count();
    assert_eq!(series, 201, "feature series");
    assert_eq!(
        sample(
            &m,
            r#"model_exporter_series_dropped_total{label="feature"}"#
        ),
        Some(1_000_000.0 - 200.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"model_feature_value_count{feature="__other__",model="m",version=""}"#
        ),
        Some(1_000_000.0 - 200.0)
    );
    let rss = sample(&m, "process_resident_memory_bytes").unwrap();
    assert!(rss < 100.0 * 1024.0 * 1024.0, "RSS {rss}");
}

#[test]
fn models_versions_and_long_values_are_capped() {
    let e = Exporter::start(&[
        "--limits.models",
        "3",
        "--limits.versions",
        "2",
        "--limits.label-length",
        "16",
    ]);
    let mut payload = String::new();
    for i in 0..10 {
        payload += &format!("{{\"model\":\"m{i}\"}}\n");
    }
    for v in 0..5 {
        payload += &format!("{{\"model\":\"m0\",\"version\":\"v{v}\"}}\n");
    }
    payload += &format!("{{\"model\":\"m1\",\"error\":\"{}\"}}\n", "x".repeat(5000));
    payload += &format!("{{\"model\":\"{}\"}}\n", "y".repeat(5000));
    send_unix(&e.path("unix"), payload.as_bytes());
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        17.0,
    );
    let m = e.metrics();
    let models: std::collections::BTreeSet<&str> = m
        .lines()
        .filter(|l| l.starts_with("model_requests_total{"))
        .filter_map(|l| l.split("model=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        models.into_iter().collect::<Vec<_>>(),
        ["__other__", "m0", "m1", "m2"]
    );
    assert_eq!(
        sample(
            &m,
            r#"model_requests_total{model="__other__",outcome="ok",version=""}"#
        ),
        Some(8.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"model_requests_total{model="m0",outcome="ok",version="__other__"}"#
        ),
        Some(4.0)
    );
    assert_eq!(
        sample(&m, r#"model_exporter_series_dropped_total{label="model"}"#),
        Some(8.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"model_exporter_series_dropped_total{label="version"}"#
        ),
        Some(4.0)
    );
    // Two values cut: the long error class and the long model name.
    assert_eq!(
        sample(
            &m,
            r#"model_exporter_series_dropped_total{label="label_length"}"#
        ),
        Some(2.0)
    );
    assert!(
        !m.contains(&"y".repeat(17)),
        "a long model name was not cut"
    );
    assert!(
        !m.contains(&"x".repeat(17)),
        "a long error class was not cut"
    );
    assert_eq!(
        sample(
            &m,
            r#"model_exporter_series_dropped_total{label="label_length"}"#
        ),
        Some(2.0)
    );
}
