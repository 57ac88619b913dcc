//! Alert rules end to end through the real binary: an alert fires on
//! /metrics and /api/v1/alerts, and reloads keep or reject rules as they
//! should.

mod common;

use std::time::{Duration, Instant};

use common::*;

const RULES: &str = "
defaults: {window: 2s, evaluation_interval: 200ms, min_samples: 5}
groups:
  - name: ops
    rules:
      - alert: HighErrorRate
        expr: error_rate > 5%
        for: 400ms
        severity: critical
        annotations: {summary: '{{ $labels.model }} fails'}
";

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send_errors(sock: &std::path::Path, n: usize) {
    let p: String = (0..n)
        .map(|_| "{\"model\":\"fraud\",\"error\":\"timeout\"}\n")
        .collect();
    send_unix(sock, p.as_bytes());
}

/// Replaces a file in one step, so that the file watch never reads it half
/// written (which would be a reload of its own).
fn replace(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// On the manual clock: the errors stay in the 2 s window and `for` is
/// reached only when the test moves the clock, so an alert that kept
/// firing across a reload did so because its state was kept.
#[test]
fn an_alert_fires_is_exported_and_survives_a_bad_reload() {
    let e = InProcess::start_with_rules(
        RULES,
        &["--web.enable-lifecycle", "--config.watch-interval", "100ms"],
    );
    let rules = e.dir.path().join("rules.yaml");
    let sock = e.path("unix");
    let firing = r#"model_alerts{alertname="HighErrorRate",alertstate="firing",model="fraud",severity="critical",version=""}"#;
    let pending = firing.replace("firing", "pending");
    send_errors(&sock, 10);
    e.wait_sample(
        r#"model_requests_total{model="fraud",outcome="error",version=""}"#,
        10.0,
    );
    // Evaluated with the errors, the alert is pending until `for` passes.
    e.advance(Duration::from_millis(200));
    e.wait_sample(&pending, 1.0);
    assert_eq!(sample(&e.metrics(), firing), None);
    e.advance(Duration::from_millis(500));
    e.wait_sample(firing, 1.0);
    let m = e.metrics();
    assert_eq!(sample(&m, &pending), None, "{m}");
    assert_eq!(
        sample(
            &m,
            r#"model_rule_signal_value{alertname="HighErrorRate",model="fraud",version=""}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"model_window_error_ratio{model="fraud",version="",window="2s"}"#
        ),
        Some(1.0)
    );
    let rounds = r#"model_exporter_rule_evaluations_total{group="ops"}"#;
    let evaluated = sample(&m, rounds).unwrap();
    assert!(evaluated >= 2.0, "{m}");

    let (status, ctype, body) = e.get("/api/v1/alerts");
    assert_eq!((status, ctype.as_str()), (200, "application/json"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let alert = &v["data"]["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "HighErrorRate");
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["annotations"]["summary"], "fraud fails");
    let (_, _, body) = e.get("/api/v1/rules");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["groups"][0]["rules"][0]["name"], "HighErrorRate");
    assert_eq!(v["data"]["groups"][0]["rules"][0]["state"], "firing");

    // A broken file: the running rules stay, the failure is visible.
    replace(&rules, "groups: [\n");
    e.wait_sample("model_exporter_config_last_reload_successful", 0.0);
    let (status, _, body) = post(e.web, "/-/reload");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("rules.yaml:"), "{body}");
    // The old rules are still evaluated: one more round, still firing.
    e.advance(Duration::from_millis(200));
    e.wait_sample(rounds, evaluated + 1.0);
    assert_eq!(sample(&e.metrics(), firing), Some(1.0));

    // Fixed again, with a second rule: picked up by the file watch.
    replace(
        &rules,
        &format!(
            "{RULES}      - alert: Traffic\n        expr: request_rate > 0\n        min_samples: 0\n"
        ),
    );
    e.wait_sample("model_exporter_config_last_reload_successful", 1.0);
    // The new rule's alert shows the aggregator evaluated the new rules (the
    // gauge above is set as soon as the file is read).
    let traffic = firing
        .replace("HighErrorRate", "Traffic")
        .replace("critical", "warning");
    e.wait_sample(&traffic, 1.0);
    // The unchanged rule kept its state: still firing, although the clock
    // has not moved the 400 ms of `for` since the reload (a rule started
    // afresh would be pending).
    let m = e.metrics();
    assert_eq!(sample(&m, firing), Some(1.0), "{m}");
    assert_eq!(sample(&m, &pending), None, "{m}");
    // Once by the file watch and once by POST; each reload seen once.
    assert_eq!(
        sample(
            &m,
            r#"model_exporter_config_reloads_total{result="failure"}"#
        ),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"model_exporter_config_reloads_total{result="success"}"#
        ),
        Some(2.0),
        "{m}"
    );
}

#[test]
fn sighup_reloads_and_lifecycle_is_off_by_default() {
    let e = Exporter::start_with_rules(RULES, &["--config.watch-interval", "0"]);
    let rules = e.rules_path();
    assert_eq!(post(e.web, "/-/reload").0, 403);
    std::fs::write(&rules, RULES.replace("HighErrorRate", "Renamed")).unwrap();
    unsafe { libc::kill(e.pid(), libc::SIGHUP) };
    wait_until("the SIGHUP reload", || {
        e.get("/api/v1/rules").2.contains("\"Renamed\"")
    });
}

fn post(web: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(web).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        String::new(),
        body.to_owned(),
    )
}

#[test]
fn promtool_accepts_the_exposition_with_rule_families() {
    let e = Exporter::start_with_rules(RULES, &[]);
    let series =
        r#"model_window_latency_seconds{model="fraud",percentile="p99",version="",window="2s"}"#;
    wait_until("windowed gauges", || {
        send_unix(
            &e.path("unix"),
            b"{\"model\":\"fraud\",\"latency_ms\":20,\"prediction\":0.9,\"confidence\":0.2,\"error\":\"x\"}\n",
        );
        e.sample(series).is_some() && e.metrics().contains("model_alerts{")
    });
    let text = e.metrics();
    promtool_check_metrics(&text);
}

/// A Kubernetes ConfigMap volume updates by swapping the `..data` symlink to
/// a new timestamped directory; the file watch must see through it.
#[test]
fn a_configmap_style_symlink_swap_is_reloaded() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let v1 = root.join("..2026_11_29_12_00_00.1");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(v1.join("rules.yaml"), RULES).unwrap();
    symlink(v1.file_name().unwrap(), root.join("..data")).unwrap();
    symlink("..data/rules.yaml", root.join("rules.yaml")).unwrap();
    let path = root.join("rules.yaml");
    let e = Exporter::start(&[
        "--config.file",
        path.to_str().unwrap(),
        "--config.watch-interval",
        "100ms",
    ]);
    assert!(e.get("/api/v1/rules").2.contains("\"HighErrorRate\""));

    // The kubelet's update: a new directory, then an atomic rename of a new
    // `..data` link over the old one.
    let v2 = root.join("..2026_11_29_12_05_00.2");
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(
        v2.join("rules.yaml"),
        RULES.replace("HighErrorRate", "Swapped"),
    )
    .unwrap();
    symlink(v2.file_name().unwrap(), root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(&v1).unwrap();

    wait_until("the swapped rules", || {
        e.get("/api/v1/rules").2.contains("\"Swapped\"")
    });
    assert_eq!(
        e.sample(r#"model_exporter_config_reloads_total{result="success"}"#),
        Some(2.0)
    );
}

#[test]
fn a_change_written_as_the_exporter_starts_is_picked_up() {
    let e = Exporter::start_with_rules(RULES, &["--config.watch-interval", "100ms"]);
    // At once, before the watcher may have looked at the file for the
    // first time: it compares with what was loaded, not with what it reads.
    // (In one step: a half-written file read by the watch would be one
    // more reload.)
    replace(
        &e.rules_path(),
        &RULES.replace("HighErrorRate", "ErrorsAtStart"),
    );
    e.wait_sample(
        r#"model_exporter_config_reloads_total{result="success"}"#,
        2.0,
    );
    wait_until("the new rule to be listed", || {
        e.get("/api/v1/rules").2.contains("ErrorsAtStart")
    });
}
