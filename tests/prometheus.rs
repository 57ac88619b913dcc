//! The fleet view: a real Prometheus (Debian package `prometheus`) scrapes
//! the exporter and evaluates the rules exported by `rules export`; for the
//! same traffic, Prometheus and the sidecar show the same alert firing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

const RULES: &str = "
defaults: {window: 10s, evaluation_interval: 1s, min_samples: 5}
groups:
  - name: operational
    interval: 1s
    rules:
      - alert: HighErrorRate
        expr: error_rate > 5%
        for: 2s
        severity: critical
";

fn firing(body: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["data"]["alerts"].as_array().unwrap().iter().any(|a| {
        a["labels"]["alertname"] == "HighErrorRate"
            && a["labels"]["model"] == "fraud"
            && a["state"] == "firing"
    })
}

#[test]
fn prometheus_fires_the_exported_rule_like_the_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let exported = dir.path().join("exported.yml");
    export_rules(&rules, &exported);

    let e = Exporter::start(&["--config.file", rules.to_str().unwrap()]);
    let prom = Prometheus::start(&[e.web], &exported);

    // Steady traffic with half of the requests failing, until both fire.
    let stop = Arc::new(AtomicBool::new(false));
    let sock = e.path("unix");
    let feeder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                send_unix(
                    &sock,
                    b"{\"model\":\"fraud\",\"latency_ms\":12}\n{\"model\":\"fraud\",\"latency_ms\":30,\"error\":\"timeout\"}\n",
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut sidecar, mut central) = (false, false);
    while !(sidecar && central) {
        sidecar = sidecar || firing(&e.get("/api/v1/alerts").2);
        central = central || firing(&http_get(prom.addr, "/api/v1/alerts").2);
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
            panic!(
                "sidecar firing: {sidecar}, Prometheus firing: {central}\n{}\n{}",
                http_get(prom.addr, "/api/v1/alerts").2,
                prom.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    // Prometheus' view of the sidecar's own alert agrees as well.
    let (_, _, q) = http_get(
        prom.addr,
        "/api/v1/query?query=model_alerts%7Balertname%3D%22HighErrorRate%22%2Calertstate%3D%22firing%22%7D",
    );
    assert!(q.contains("\"model\":\"fraud\""), "{q}");
}

/// Fleet-wide drift in PromQL: Prometheus computes KS from the feature
/// histograms (whose buckets are the reference's edges) and the reference
/// CDF each sidecar exports, and agrees with the sidecar's own KS.
#[test]
fn prometheus_computes_feature_drift_from_the_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "defaults: {window: 30s, evaluation_interval: 1s, min_samples: 50}\n\
         models:\n  fraud:\n    features:\n      age: {mean: 35, std: 10}\n\
         groups:\n  - name: ml\n    interval: 1s\n    rules:\n      - alert: AgeDrift\n        expr: ks(feature.age) > 0.3\n",
    )
    .unwrap();
    let exported = dir.path().join("exported.yml");
    assert!(export_rules(&rules, &exported).contains("model_feature_reference_bucket"));

    let e = Exporter::start(&["--config.file", rules.to_str().unwrap()]);
    let prom = Prometheus::start(&[e.web], &exported);
    // Ages 50 to 60 against a reference of 35 ± 10.
    let stop = Arc::new(AtomicBool::new(false));
    let sock = e.path("unix");
    let feeder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut batch = String::new();
                for _ in 0..20 {
                    i += 1;
                    let age = 50.0 + (i % 11) as f64;
                    batch += &format!("{{\"model\":\"fraud\",\"features\":{{\"age\":{age}}}}}\n");
                }
                send_unix(&sock, batch.as_bytes());
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let fired = |body: &str| {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["alertname"] == "AgeDrift" && a["state"] == "firing")
            .and_then(|a| a["value"].as_str().and_then(|v| v.parse::<f64>().ok()))
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let central = loop {
        if let Some(v) = fired(&http_get(prom.addr, "/api/v1/alerts").2) {
            break v;
        }
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
            panic!(
                "Prometheus never fired AgeDrift\n{}",
                http_get(prom.addr, "/api/v1/alerts").2
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let sidecar = e
        .sample(r#"model_feature_drift{feature="age",method="ks",model="fraud",version="",window="30s"}"#)
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    assert!(
        (central - sidecar).abs() < 0.05,
        "Prometheus KS {central}, sidecar KS {sidecar}"
    );
    // Every value is above the reference's 90th percentile (47.8): a binned KS of 0.9.
    assert!((central - 0.9).abs() < 0.02, "{central}");
}
