//! The notifier against the real Alertmanager (Debian package
//! `prometheus-alertmanager`, installed by .ci/run): a firing alert shows up
//! as active with its labels, and its resolution removes it again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;

use common::alerting::Alertmanager;

use model_exporter::clock::SystemClock;
use model_exporter::rules::notify::{Alert, Notifier, NotifierOptions};

/// Upper bound for waiting on Alertmanager; generous, never a speed claim.
const PATIENCE: Duration = Duration::from_secs(30);

/// Waits until Alertmanager's active alerts satisfy `cond`; returns them.
fn wait_alerts(
    am: &Alertmanager,
    what: &str,
    cond: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let alerts = am.active_alerts();
        if cond(&alerts) {
            return alerts;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}; active alerts: {alerts:?}\n{}",
            am.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn is_ours(a: &serde_json::Value) -> bool {
    a["labels"]["alertname"] == "HighLatency" && a["labels"]["model"] == "fraud"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_alertmanager_and_resolve() {
    let am = Alertmanager::start();
    let registry = prometheus::Registry::new();
    let (trigger, shutdown) = model_exporter::shutdown::channel();
    let base = format!("http://{}/", am.addr);
    let options = NotifierOptions {
        urls: vec![base],
        ..NotifierOptions::default()
    };
    let (handle, notifier) =
        Notifier::with_clock(options, &registry, shutdown, Arc::new(SystemClock)).unwrap();
    let task = tokio::spawn(notifier.run());

    let started = now() - 60.0;
    let labels = strings(&[
        ("alertname", "HighLatency"),
        ("severity", "warning"),
        ("model", "fraud"),
        ("version", "v3"),
    ]);
    let firing = Alert {
        labels: labels.clone(),
        annotations: strings(&[("summary", "p99 latency of fraud is 0.9")]),
        starts_at: started,
        ends_at: None,
        generator_url: "http://127.0.0.1:9877/".into(),
    };
    handle.send(vec![firing.clone()]);

    let alerts = tokio::task::block_in_place(|| {
        wait_alerts(&am, "the firing alert", |a| a.iter().any(is_ours))
    });
    let ours = alerts.iter().find(|a| is_ours(a)).unwrap();
    for (k, v) in &labels {
        assert_eq!(ours["labels"][k], v.as_str(), "label {k} in {ours}");
    }
    assert_eq!(
        ours["annotations"]["summary"],
        "p99 latency of fraud is 0.9"
    );
    assert_eq!(ours["status"]["state"], "active", "{ours}");
    assert_eq!(ours["generatorURL"], "http://127.0.0.1:9877/");

    let resolved = Alert {
        ends_at: Some(now()),
        ..firing
    };
    handle.send(vec![resolved]);
    tokio::task::block_in_place(|| {
        wait_alerts(&am, "the alert to be resolved", |a| !a.iter().any(is_ours))
    });

    trigger.trigger();
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();

    // The self-metrics account for both deliveries and pass promtool.
    let mut text = String::new();
    prometheus::TextEncoder::new()
        .encode_utf8(&registry.gather(), &mut text)
        .unwrap();
    let sent = format!(
        "model_exporter_notifications_sent_total{{alertmanager=\"http://{}\"}} 2",
        am.addr
    );
    assert!(text.contains(&sent), "{sent} not in\n{text}");
    assert!(
        text.contains("model_exporter_notifications_dropped_total 0"),
        "{text}"
    );
    assert!(text.contains("model_exporter_alertmanagers 1"), "{text}");
    common::promtool_check_metrics(&text);
}

/// Through the real binary: errors make the exporter fire HighErrorRate and
/// push it to Alertmanager; recovery resolves it there.
#[test]
fn the_exporter_pushes_firing_and_resolved_alerts() {
    let am = Alertmanager::start();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "defaults: {window: 2s, evaluation_interval: 200ms, min_samples: 5}\n\
         groups:\n  - name: ops\n    rules:\n      - alert: HighErrorRate\n\
         \x20       expr: error_rate > 5%\n        for: 400ms\n        severity: critical\n",
    )
    .unwrap();
    let url = format!("http://{}", am.addr);
    let e = common::Exporter::start(&[
        "--config.file",
        rules.to_str().unwrap(),
        "--alertmanager.url",
        &url,
        "--web.external-url",
        "http://exporter.example:9877/",
    ]);
    let send = |line: &str| {
        let p = format!("{line}\n").repeat(20);
        common::send_unix(&e.path("unix"), p.as_bytes());
    };
    let ours = |a: &serde_json::Value| {
        a["labels"]["alertname"] == "HighErrorRate" && a["labels"]["model"] == "fraud"
    };
    let deadline = Instant::now() + PATIENCE;
    let alert = loop {
        send(r#"{"model":"fraud","version":"v1","error":"timeout"}"#);
        if let Some(a) = am.active_alerts().into_iter().find(|a| ours(a)) {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "no alert reached Alertmanager\n{}",
            e.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["version"], "v1");
    assert_eq!(
        alert["generatorURL"],
        "http://exporter.example:9877/api/v1/rules"
    );

    // Recovery: the error rate falls to 0 and the alert is resolved.
    let deadline = Instant::now() + PATIENCE;
    while am.active_alerts().iter().any(ours) {
        send(r#"{"model":"fraud","version":"v1"}"#);
        assert!(
            Instant::now() < deadline,
            "the alert was not resolved\n{}",
            e.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The firing and the resolved notification, each counted once
    // Alertmanager has answered, so possibly just after it shows the alert
    // resolved: wait for the count.
    let series = format!(r#"model_exporter_notifications_sent_total{{alertmanager="{url}"}}"#);
    let deadline = Instant::now() + PATIENCE;
    while e.sample(&series).unwrap_or(0.0) < 2.0 {
        assert!(Instant::now() < deadline, "sent {:?}", e.sample(&series));
        std::thread::sleep(Duration::from_millis(20));
    }
}
