//! Scrape conventions: a real Prometheus scrapes OpenMetrics with gzip (what
//! it asks for by default) and finds the target healthy; curl gets the
//! text format, gzipped with --compressed, and OpenMetrics when it asks.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Events so that model families, histograms and rule families are all in
/// the exposition.
fn traffic(e: &Exporter) {
    let mut lines = String::new();
    for i in 0..50 {
        lines.push_str(&format!(
            "{{\"model\":\"om\",\"version\":\"v1\",\"latency_ms\":{},\"prediction\":0.{},\"error\":{}}}\n",
            10 + i,
            i % 10,
            if i % 7 == 0 { "\"timeout\"" } else { "null" }
        ));
    }
    send_unix(&e.path("unix"), lines.as_bytes());
    let deadline = Instant::now() + PATIENCE;
    while !e.metrics().contains("model=\"om\"") {
        assert!(Instant::now() < deadline, "events not counted");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "-D", "/dev/stderr"])
        .args(args)
        .output()
        .expect("curl");
    assert!(out.status.success());
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn prometheus_scrapes_openmetrics_with_gzip() {
    let e = Exporter::start(&[]);
    traffic(&e);
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, "groups: []\n").unwrap();
    let p = Prometheus::start(&[e.web], &rules);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, _, body) = http_get(p.addr, "/api/v1/targets");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let t = &v["data"]["activeTargets"][0];
        if t["health"] == "up" {
            assert_eq!(t["lastError"], "", "{t}");
            break;
        }
        assert!(
            t["health"] != "down" || Instant::now() < deadline,
            "target down: {t}\n{}",
            p.log()
        );
        assert!(Instant::now() < deadline, "never scraped: {t}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Prometheus read the counters, histograms and the exporter's families.
    let r = p.query("sum(model_requests_total{model=\"om\"})");
    assert_eq!(r[0]["value"][1], "50", "{r:?}");
    let r = p.query("model_request_duration_seconds_count{model=\"om\"}");
    assert_eq!(r[0]["value"][1], "50", "{r:?}");
    assert!(!p.query("process_resident_memory_bytes").is_empty());
    // And it asked for OpenMetrics with gzip.
    let text = e.metrics();
    let om_gzip = sample(
        &text,
        "model_exporter_scrapes_total{encoding=\"gzip\",format=\"openmetrics\"}",
    )
    .unwrap();
    assert!(om_gzip >= 1.0, "{text}");
}

#[test]
fn curl_gets_text_gzip_and_openmetrics() {
    let e = Exporter::start(&[]);
    traffic(&e);
    let url = format!("http://{}/metrics", e.web);
    // Plain: the text format, uncompressed; promtool accepts it.
    let (head, text) = curl(&[&url]);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("content-encoding"),
        "{head}"
    );
    promtool_check_metrics(&text);
    // --compressed: the same text, gzipped on the wire.
    let (head, unzipped) = curl(&["--compressed", &url]);
    assert!(
        head.to_ascii_lowercase().contains("content-encoding: gzip"),
        "{head}"
    );
    assert!(unzipped.contains("model_requests_total{model=\"om\""));
    assert!(unzipped.starts_with("# HELP"));
    // Asking for OpenMetrics.
    let (head, om) = curl(&[
        "-H",
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        &url,
    ]);
    assert!(
        head.contains("application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE model_requests counter\n"), "{om}");
    assert!(om.contains("model_requests_total{"));
    assert!(om.contains("# UNIT model_request_duration_seconds seconds\n"));
    assert!(!om.contains("# TYPE model_requests_total"));
    let text = e.metrics();
    for (format, encoding) in [
        ("text", "identity"),
        ("text", "gzip"),
        ("openmetrics", "identity"),
    ] {
        let n = sample(
            &text,
            &format!("model_exporter_scrapes_total{{encoding=\"{encoding}\",format=\"{format}\"}}"),
        )
        .unwrap();
        assert!(n >= 1.0, "{format} {encoding}: {n}");
    }
}
