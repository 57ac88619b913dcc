//! A fleet of two sidecars and one Prometheus (Debian package `prometheus`).
//! Pod A serves without errors, pod B fails 30% of its requests, with equal
//! traffic: 15% of the model's requests fail. The rules exported by `rules
//! export` sum both pods, so Prometheus fires one alert for the model when
//! the threshold is 10% and none when it is 20%, while each sidecar judges
//! only its own pod (A: no alert, B: both).

mod common;

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
    let promql = export_rules(&rules, &exported);
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

/// Rules reading every drift statistic Prometheus can compute over the
/// fleet; thresholds below any value, so that each expression's result is
/// the statistic itself for every feature.
const DRIFT_RULES: &str = "
defaults: {window: 2m, evaluation_interval: 1s, min_samples: 1}
models:
  fraud:
    baseline: fraud.json
groups:
  - name: drift
    interval: 1s
    rules:
      - {alert: Psi, expr: 'psi(feature.*) > -1'}
      - {alert: Js, expr: 'js(feature.*) > -1'}
      - {alert: Ks, expr: 'ks(feature.*) > -1'}
      - {alert: RecentPsi, expr: 'psi(feature.*) > -1', max_samples: 100}
";

/// `n` events of `fraud` from `start`: `amount` spread over 100 values from
/// `low`, `country` from `countries` in turn, and a binary `flag` that is 1
/// for every other event, as in training.
fn drift_events(start: usize, n: usize, low: usize, countries: &[&str]) -> String {
    let mut out = String::new();
    for i in start..start + n {
        out += &format!(
            "{{\"model\":\"fraud\",\"features\":{{\"amount\":{},\"country\":\"{}\",\"flag\":{}}}}}\n",
            low + (i * 37) % 100,
            countries[i % countries.len()],
            i % 2
        );
    }
    out
}

/// `(feature, value)` of each series of an instant query.
fn by_feature(result: &[Value]) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = result
        .iter()
        .map(|s| {
            (
                s["metric"]["feature"].as_str().unwrap().to_owned(),
                s["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Fleet-wide drift: pod A's traffic has drifted, pod B's has not. The PSI,
/// JS and KS that Prometheus computes from the two sidecars' bin counters
/// with the exported rules equal those of a third sidecar that received
/// both pods' events, and differ from the larger of the two pods' own.
/// The binary flag has not drifted: its KS is 0 in the sidecar and in
/// Prometheus (the reference's share at `le="0"` is the share of zeros,
/// which the histogram's bucket `le="0"` counts), and its PSI and JS are
/// small. A rule with `max_samples` is exported over each pod's own
/// value of its newest values, so Prometheus reads what the sidecars
/// compute.
#[test]
fn prometheus_computes_drift_over_the_fleet_like_one_sidecar_seeing_every_pod() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("amount,country,flag\n");
    for i in 0..1000 {
        csv += &format!(
            "{},{},{}\n",
            50 + (i * 37) % 100,
            ["DE", "FR", "US"][i % 3],
            i % 2
        );
    }
    baseline_from_csv(dir.path(), "fraud", &csv, &[]);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, DRIFT_RULES).unwrap();
    let exported = dir.path().join("fleet.rules.yml");
    let file: serde_yaml::Value = serde_yaml::from_str(&export_rules(&rules, &exported)).unwrap();
    let expr = |alert: &str| -> String {
        file["groups"][0]["rules"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|r| r["alert"] == alert)
            .and_then(|r| r["expr"].as_str())
            .unwrap()
            .to_owned()
    };

    let flags = ["--config.file", rules.to_str().unwrap()];
    let (a, b, all) = (
        Exporter::start(&flags),
        Exporter::start(&flags),
        Exporter::start(&flags),
    );
    let prom = Prometheus::start(&[a.web, b.web], &exported);
    let send = |e: &Exporter, events: &str| {
        send_unix(&e.path("unix"), events.as_bytes());
        send_unix(&all.path("unix"), events.as_bytes());
    };

    // One event per pod creates the bin series; Prometheus scrapes them
    // for a while before the traffic, so that rates span the whole burst.
    send(&a, &drift_events(0, 1, 50, &["DE"]));
    send(&b, &drift_events(1, 1, 50, &["FR"]));
    let deadline = Instant::now() + DEADLINE;
    let scraped = |q: &str, n: f64| {
        let r = prom.query(q);
        r.len() == 2
            && r.iter()
                .all(|s| s["value"][1].as_str().unwrap().parse::<f64>().unwrap() >= n)
    };
    while !scraped(
        r#"count_over_time(model_feature_bin_total{feature="amount",bin="1"}[5m])"#,
        15.0,
    ) {
        assert!(Instant::now() < deadline, "no samples\n{}", prom.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Pod A drifted: amounts 40 higher (many past the training maximum),
    // and mostly DE, with a country never seen in training. Pod B: as in
    // training.
    send(&a, &drift_events(2, 300, 90, &["DE", "DE", "DE", "BR"]));
    send(&b, &drift_events(302, 300, 50, &["DE", "FR", "US"]));
    let total = r#"sum(model_feature_bin_total{feature="country"})"#;
    while prom
        .query(total)
        .first()
        .is_none_or(|s| s["value"][1].as_str() != Some("602"))
    {
        assert!(Instant::now() < deadline, "{total}\n{}", prom.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let evaluated = |e: &Exporter| {
        e.sample(r#"model_exporter_rule_last_evaluation_timestamp_seconds{group="drift"}"#)
            .unwrap_or(0.0)
    };
    let counted = |e: &Exporter| {
        sample(
            &e.metrics(),
            r#"model_feature_bin_total{bin="0",feature="country",model="fraud",version=""}"#,
        )
        .is_some()
    };
    for e in [&a, &b, &all] {
        // Each sidecar has applied everything; then wait for an evaluation.
        e.wait_sample(
            r#"model_exporter_events_received_total{type="inference"}"#,
            if std::ptr::eq(e, &all) { 602.0 } else { 301.0 },
        );
        assert!(counted(e));
        let seen = evaluated(e);
        while evaluated(e) <= seen {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let own = |e: &Exporter, method: &str, feature: &str| {
        e.sample(&format!(
            r#"model_feature_drift{{feature="{feature}",method="{method}",model="fraud",version="",window="2m"}}"#
        ))
        .unwrap_or_else(|| panic!("{method}({feature}) of a sidecar\n{}", e.metrics()))
    };

    for (alert, method, features) in [
        ("Psi", "psi", &["amount", "country", "flag"][..]),
        ("Js", "js", &["amount", "country", "flag"][..]),
        ("Ks", "ks", &["amount", "flag"][..]),
    ] {
        let rule = expr(alert);
        let value = rule.split(" > -1").next().unwrap();
        assert!(rule.contains("model_feature_bin_total"), "{rule}");
        // The rule's statistic over every value counted since the start
        // (the window of the sidecar that saw every event holds them all):
        // rates replaced by the counters themselves, so no extrapolation.
        let counts = value.replace("rate(", "(").replace("[2m])", ")");
        let exact = by_feature(&prom.query(&counts));
        // The rule as exported: rates over the window, extrapolated by
        // Prometheus to its edges, and without the first event per pod.
        let windowed = by_feature(&prom.query(value));
        assert_eq!(exact.len(), features.len(), "{alert}: {exact:?}\n{counts}");
        assert_eq!(windowed.len(), features.len(), "{alert}: {windowed:?}");
        for (((feature, fleet), (_, rated)), want) in exact.iter().zip(&windowed).zip(features) {
            assert_eq!(feature, want);
            let one = own(&all, method, feature);
            let pods = own(&a, method, feature).max(own(&b, method, feature));
            eprintln!(
                "{method}({feature}): Prometheus {fleet} (counters), {rated} (exported rule); \
                 one sidecar {one}; pod A {}, pod B {}",
                own(&a, method, feature),
                own(&b, method, feature)
            );
            assert!(
                (fleet - one).abs() <= 1e-9 * one.max(1.0),
                "{method}({feature}): Prometheus {fleet}, one sidecar {one}"
            );
            // Rate extrapolation weighs each pod's counts by its own
            // factor, within a scrape interval over the time sampled.
            assert!(
                (rated - one).abs() <= 0.1 * one + 0.005,
                "{method}({feature}): exported rule {rated}, one sidecar {one}"
            );
            if feature == "flag" {
                // Undrifted: 301 of the 602 values are 1, as half in training.
                // KS reads the raw shares: 0. PSI and JS read the bin above
                // the maximum as holding one training value of 1001, and
                // the window none there: PSI (1/1001 - 1e-4)·ln(1/1001/1e-4)
                // (about 0.002) and JS about 0.02.
                let floor = match method {
                    "ks" => 1e-9,
                    "psi" => 0.0021,
                    _ => 0.025,
                };
                assert!(
                    one <= floor && *fleet <= floor,
                    "{method}(flag): Prometheus {fleet}, one sidecar {one}"
                );
                continue;
            }
            assert!(
                (pods - one).abs() > 0.2 * one,
                "{method}({feature}): the pods' own values ({pods}) are not the fleet's ({one})"
            );
        }
    }

    // max_samples: the largest of the pods' PSI over their newest 100
    // values, as each sidecar computes it, not a fleet statistic.
    let rule = expr("RecentPsi");
    assert_eq!(
        rule,
        r#"max by (model, version, feature) (model_rule_signal_value{alertname="RecentPsi"}) > -1"#
    );
    let recent = |e: &Exporter, feature: &str| {
        e.sample(&format!(
            r#"model_feature_drift{{feature="{feature}",max_samples="100",method="psi",model="fraud",version="",window="2m"}}"#
        ))
        .unwrap_or_else(|| panic!("psi({feature}) of the newest 100
{}", e.metrics()))
    };
    let want: Vec<(String, f64)> = ["amount", "country", "flag"]
        .iter()
        .map(|f| (f.to_string(), recent(&a, f).max(recent(&b, f))))
        .collect();
    // A reading of its own: pod A's newest 100 amounts are not its whole
    // window of 301.
    assert!(recent(&a, "amount") > own(&a, "psi", "amount"), "{want:?}");
    let value = rule.split(" > -1").next().unwrap();
    loop {
        let got = by_feature(&prom.query(value));
        let same = got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .all(|((f, g), (w, v))| f == w && (g - v).abs() <= 1e-9 * v.max(1.0));
        if same {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus {got:?}, the sidecars {want:?}\n{}",
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
