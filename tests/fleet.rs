//! A fleet of two sidecars and one Prometheus (Debian package `prometheus`).
//! Pod A serves without errors, pod B fails 30% of its requests, with equal
//! traffic: 15% of the model's requests fail. The rules exported by `rules
//! export` sum both pods, so Prometheus fires one alert for the model when
//! the threshold is 10% and none when it is 20%, while each sidecar judges
//! only its own pod (A: no alert, B: both).

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Generous: how long the whole scenario may take, never a performance claim.
const DEADLINE: Duration = Duration::from_secs(90);

const RULES: &str = "
defaults: {window: 10s, evaluation_interval: 1s, min_samples: 5}
groups:
  - name: fleet
    interval: 1s
    rules:
      - alert: HighErrorRate
        expr: error_rate > 10%
        for: 2s
        severity: critical
      - alert: VeryHighErrorRate
        expr: error_rate > 20%
        for: 2s
        severity: critical
";

/// Alerts listed by /api/v1/alerts (the sidecar's and Prometheus' have the
/// same shape).
fn alerts(body: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(body).unwrap();
    v["data"]["alerts"].as_array().unwrap().clone()
}

fn with_name<'a>(alerts: &'a [Value], name: &str) -> Vec<&'a Value> {
    alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == name)
        .collect()
}

fn firing(alerts: &[Value], name: &str) -> bool {
    with_name(alerts, name)
        .iter()
        .any(|a| a["labels"]["model"] == "fraud" && a["state"] == "firing")
}

#[test]
fn prometheus_alerts_on_the_fleet_and_each_sidecar_on_its_pod() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let exported = dir.path().join("fleet.rules.yml");
    let out = Command::new(binary())
        .args(["rules", "export", rules.to_str().unwrap(), "--out"])
        .arg(&exported)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let promql = std::fs::read_to_string(&exported).unwrap();
    assert!(promql.contains("sum by (model, version)"), "{promql}");

    let a = Exporter::start(&["--config.file", rules.to_str().unwrap()]);
    let b = Exporter::start(&["--config.file", rules.to_str().unwrap()]);
    let prom = Prometheus::start(&[a.web, b.web], &exported);

    // Equal traffic to both pods: 10 requests per tick each. Pod B's errors
    // (3 of its 10) start only once Prometheus has a rate from both pods, so
    // the fleet view never sees pod B alone.
    let stop = Arc::new(AtomicBool::new(false));
    let b_fails = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (stop, b_fails) = (stop.clone(), b_fails.clone());
        let (sa, sb) = (a.path("unix"), b.path("unix"));
        std::thread::spawn(move || {
            let ok = "{\"model\":\"fraud\",\"version\":\"v1\",\"latency_ms\":12}\n";
            let err = "{\"model\":\"fraud\",\"version\":\"v1\",\"latency_ms\":30,\"error\":\"timeout\"}\n";
            let all_ok = ok.repeat(10);
            let some_fail = format!("{}{}", ok.repeat(7), err.repeat(3));
            while !stop.load(Ordering::Relaxed) {
                send_unix(&sa, all_ok.as_bytes());
                let pb = if b_fails.load(Ordering::Relaxed) {
                    &some_fail
                } else {
                    &all_ok
                };
                send_unix(&sb, pb.as_bytes());
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let finish = |msg: String| -> ! {
        stop.store(true, Ordering::Relaxed);
        panic!(
            "{msg}\nPrometheus alerts: {}\npod A alerts: {}\npod B alerts: {}\n{}",
            http_get(prom.addr, "/api/v1/alerts").2,
            a.get("/api/v1/alerts").2,
            b.get("/api/v1/alerts").2,
            prom.log()
        )
    };

    let deadline = Instant::now() + DEADLINE;
    while prom
        .query("rate(model_requests_total{outcome=\"ok\"}[10s]) > 0")
        .len()
        < 2
    {
        if Instant::now() > deadline {
            finish("Prometheus never got a request rate from both pods".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    b_fails.store(true, Ordering::Relaxed);

    // Until everything expected fires, and then for a further window plus
    // `for`, nothing unexpected may even be pending.
    let mut settled: Option<Instant> = None;
    let hold = Duration::from_secs(13);
    loop {
        let (pa, pb) = (
            alerts(&a.get("/api/v1/alerts").2),
            alerts(&b.get("/api/v1/alerts").2),
        );
        let central = alerts(&http_get(prom.addr, "/api/v1/alerts").2);
        if !pa.is_empty() {
            finish("pod A (no errors) has an alert".into());
        }
        if !with_name(&central, "VeryHighErrorRate").is_empty() {
            finish("the fleet (15% errors) has an alert for > 20%".into());
        }
        let done = firing(&central, "HighErrorRate")
            && firing(&pb, "HighErrorRate")
            && firing(&pb, "VeryHighErrorRate");
        if done && settled.is_none() {
            settled = Some(Instant::now());
        }
        if settled.is_some_and(|t| t.elapsed() > hold) {
            // One alert for the model, not one per pod.
            let high = with_name(&central, "HighErrorRate");
            assert_eq!(high.len(), 1, "{central:?}");
            assert_eq!(high[0]["state"], "firing");
            assert_eq!(high[0]["labels"]["version"], "v1");
            assert!(high[0]["labels"].get("instance").is_none(), "{high:?}");
            let value: f64 = high[0]["value"].as_str().unwrap().parse().unwrap();
            assert!((0.10..0.20).contains(&value), "fleet error rate {value}");
            break;
        }
        if Instant::now() > deadline {
            finish(format!(
                "not all expected alerts fired (Prometheus HighErrorRate: {}, pod B \
                 HighErrorRate: {}, pod B VeryHighErrorRate: {})",
                firing(&central, "HighErrorRate"),
                firing(&pb, "HighErrorRate"),
                firing(&pb, "VeryHighErrorRate")
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();

    // The same facts in Prometheus' view of the sidecars' own alerts.
    let own = prom.query("model_alerts{alertstate=\"firing\"}");
    let names: Vec<(String, String)> = own
        .iter()
        .map(|s| {
            let m = &s["metric"];
            (
                m["instance"].as_str().unwrap().to_owned(),
                m["alertname"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        names.iter().all(|(i, _)| *i == b.web.to_string()),
        "{names:?}"
    );
    assert!(
        names.iter().any(|(_, n)| n == "VeryHighErrorRate"),
        "{names:?}"
    );
}
