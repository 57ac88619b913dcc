//! The alert lifecycle as Alertmanager and the dashboards see it, through
//! the real binary: the firing time is `startsAt`, a firing alert is
//! re-posted only every resend delay, a resolution made while the real
//! Alertmanager is unreachable arrives once it is back, a reload that
//! reshapes the windows leaves unchanged alerts alone, and every counter
//! the Grafana dashboard reads exists from the start.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn post(web: SocketAddr, path: &str) -> u16 {
    let mut s = TcpStream::connect(web).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split(' ').nth(1).unwrap().parse().unwrap()
}

/// A real Alertmanager, killed when dropped.
struct Alertmanager {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    fn start() -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
        )
        .unwrap();
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{ALERTMANAGER}: {e}; install prometheus-alertmanager"));
        let am = Alertmanager { child, addr, dir };
        wait_until("Alertmanager to be ready", || {
            TcpStream::connect(am.addr).is_ok() && http_get(am.addr, "/-/ready").0 == 200
        });
        am
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// The active alerts named `name`.
    fn active(&self, name: &str) -> Vec<serde_json::Value> {
        let (status, _, body) = http_get(self.addr, "/api/v2/alerts?active=true");
        assert_eq!(status, 200, "{body}");
        let all: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        all.into_iter()
            .filter(|a| a["labels"]["alertname"] == name)
            .collect()
    }
}

/// A TCP relay to `target` that can be cut: while down, it accepts and
/// closes every connection at once, and going down closes the open ones, so
/// that the exporter finds the Alertmanager behind it unreachable while the
/// Alertmanager keeps its state.
struct Relay {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                open2.lock().unwrap().push(client.try_clone().unwrap());
                open2.lock().unwrap().push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay { addr, up, open }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            for s in self.open.lock().unwrap().drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

const ERRORS: &str = "
defaults: {window: 3s, evaluation_interval: 200ms, min_samples: 5}
groups:
  - name: ops
    rules:
      - alert: HighErrorRate
        expr: error_rate > 5%
        for: 600ms
        severity: critical
        annotations: {summary: 'errors at {{ $value }}'}
";

fn send(e: &Exporter, line: &str, n: usize) {
    let p = format!("{line}\n").repeat(n);
    send_unix(&e.path("unix"), p.as_bytes());
}

/// The exporter's active alerts named `name`, from /api/v1/alerts.
fn api_alerts(e: &Exporter, name: &str) -> Vec<serde_json::Value> {
    let (status, _, body) = e.get("/api/v1/alerts");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == name)
        .cloned()
        .collect()
}

fn parse_time(s: &str) -> f64 {
    // 2026-12-05T08:20:01.234Z (UTC, as both sides write it).
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t: Vec<f64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    days as f64 * 86_400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

/// Items 3, 4 and 5 of the alert lifecycle against the real Alertmanager:
/// `startsAt` is the firing time; a firing alert whose `$value` changes at
/// every evaluation is posted once (the resend delay is an hour); a
/// resolution made while Alertmanager is unreachable waits, retried, and
/// reaches it once it is reachable again (with an hour's resend delay,
/// only the queue can bring it there).
#[test]
fn a_resolution_made_while_alertmanager_is_down_arrives_when_it_is_back() {
    let am = Alertmanager::start();
    let relay = Relay::start(am.addr);
    let url = format!("http://{}", relay.addr);
    let e = Exporter::start_with_rules(
        ERRORS,
        &[
            "--alertmanager.url",
            &url,
            "--alertmanager.resend-delay",
            "1h",
        ],
    );
    let sent = format!(r#"model_exporter_notifications_sent_total{{alertmanager="{url}"}}"#);
    let errors = format!(r#"model_exporter_notifications_errors_total{{alertmanager="{url}"}}"#);

    // Errors, and a different error rate at every evaluation for a while.
    let deadline = Instant::now() + PATIENCE;
    let alert = loop {
        send(
            &e,
            r#"{"model":"fraud","version":"v1","error":"timeout"}"#,
            10,
        );
        if let Some(a) = am.active("HighErrorRate").pop() {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "no alert reached Alertmanager\n{}",
            e.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let ours = api_alerts(&e, "HighErrorRate").pop().unwrap();
    assert_eq!(ours["state"], "firing");
    // startsAt is when it fired: at least `for` after it became active.
    let starts = parse_time(alert["startsAt"].as_str().unwrap());
    let active = parse_time(ours["activeAt"].as_str().unwrap());
    // Both are evaluation times on the 200 ms grid: exactly 600 ms apart.
    let apart = ((starts - active) * 1000.0).round();
    assert!(
        apart == 600.0,
        "startsAt {} activeAt {}",
        alert["startsAt"],
        ours["activeAt"]
    );
    let mut summaries = BTreeSet::new();
    let evaluations = r#"model_exporter_rule_evaluations_total{group="ops"}"#;
    let first = e.sample(evaluations).unwrap();
    while e.sample(evaluations).unwrap() < first + 8.0 {
        send(&e, r#"{"model":"fraud","version":"v1"}"#, 1);
        send(
            &e,
            r#"{"model":"fraud","version":"v1","error":"timeout"}"#,
            1,
        );
        if let Some(a) = api_alerts(&e, "HighErrorRate").pop() {
            summaries.insert(a["annotations"]["summary"].to_string());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        summaries.len() > 1,
        "the value did not change: {summaries:?}"
    );
    assert_eq!(
        e.sample(&sent),
        Some(1.0),
        "posted again before the resend delay"
    );

    // Alertmanager becomes unreachable; the error rate falls to 0 and the
    // alert resolves in the exporter.
    relay.set_up(false);
    wait_until("the exporter to resolve the alert", || {
        send(&e, r#"{"model":"fraud","version":"v1"}"#, 20);
        api_alerts(&e, "HighErrorRate").is_empty()
    });
    let failed = e.sample(&errors).unwrap();
    // More failed attempts than a give-up after three would make.
    wait_until("retries while Alertmanager is down", || {
        e.sample(&errors).unwrap() >= failed + 4.0
    });
    assert_eq!(
        am.active("HighErrorRate").len(),
        1,
        "reached Alertmanager while down"
    );
    let m = e.metrics();
    assert!(
        sample(&m, "model_exporter_notifications_queue_length").unwrap() >= 1.0,
        "{m}"
    );

    relay.set_up(true);
    let deadline = Instant::now() + PATIENCE;
    while !am.active("HighErrorRate").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the resolution never arrived\n{}\n{}",
            e.log_text(),
            am.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(e.sample(&sent), Some(2.0));
    assert_eq!(
        e.sample("model_exporter_notifications_dropped_total"),
        Some(0.0)
    );
    assert_eq!(
        e.sample("model_exporter_notifications_queue_length"),
        Some(0.0)
    );
}

/// Item 6: a reload that adds a rule with a longer window (another shape of
/// windows) keeps the windows, so an unchanged `for: 0` alert keeps firing
/// with its activeAt, and an unchanged pending one keeps its `for` progress.
#[test]
fn a_reload_adding_a_longer_window_leaves_unchanged_alerts_alone() {
    let rules = "
defaults: {window: 1m, evaluation_interval: 200ms, min_samples: 5}
groups:
  - name: ops
    rules:
      - alert: Errors
        expr: error_rate > 5%
      - alert: SlowErrors
        expr: error_rate > 5%
        for: 1h
";
    let e = Exporter::start_with_rules(rules, &["--web.enable-lifecycle"]);
    send(&e, r#"{"model":"fraud","error":"timeout"}"#, 20);
    wait_until("the alerts", || {
        let text = e.metrics();
        sample(
            &text,
            r#"model_alerts{alertname="Errors",alertstate="firing",model="fraud",severity="warning",version=""}"#,
        ) == Some(1.0)
            && sample(
                &text,
                r#"model_alerts{alertname="SlowErrors",alertstate="pending",model="fraud",severity="warning",version=""}"#,
            ) == Some(1.0)
    });
    let before: Vec<(String, String)> = ["Errors", "SlowErrors"]
        .iter()
        .map(|n| {
            let a = api_alerts(&e, n).pop().unwrap();
            (a["state"].to_string(), a["activeAt"].to_string())
        })
        .collect();

    let longer = format!(
        "{rules}  - name: slow\n    rules:\n      - alert: Quiet\n        expr: request_rate < 0.001\n        window: 30m\n"
    );
    std::fs::write(e.rules_path(), longer).unwrap();
    assert_eq!(post(e.web, "/-/reload"), 200);
    wait_until("the new group's first evaluation", || {
        e.sample(r#"model_exporter_rule_evaluations_total{group="slow"}"#)
            .is_some_and(|n| n >= 1.0)
    });
    let evaluations = r#"model_exporter_rule_evaluations_total{group="ops"}"#;
    let n = e.sample(evaluations).unwrap();
    wait_until("more evaluations", || {
        e.sample(evaluations).unwrap() >= n + 6.0
    });
    let after: Vec<(String, String)> = ["Errors", "SlowErrors"]
        .iter()
        .map(|name| {
            let a = api_alerts(&e, name)
                .pop()
                .unwrap_or_else(|| panic!("{name} is gone after the reload\n{}", e.metrics()));
            (a["state"].to_string(), a["activeAt"].to_string())
        })
        .collect();
    assert_eq!(after, before);
}

/// Item 9: every self-metric the Grafana dashboard queries exists before
/// anything has happened, at 0 for the counters, with a series per rule
/// group (and for a group added by a reload).
#[test]
fn every_counter_the_dashboard_reads_exists_at_zero_from_the_start() {
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana/model-exporter.json"
    ))
    .unwrap();
    let mut names = BTreeSet::new();
    for (i, _) in dashboard.match_indices("model_exporter_") {
        let name: String = dashboard[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.insert(name);
    }
    assert!(
        names.contains("model_exporter_rule_evaluation_failures_total"),
        "{names:?}"
    );
    let rules = "
groups:
  - name: ops
    rules:
      - {alert: Errors, expr: error_rate > 5%}
  - name: ml
    rules:
      - {alert: Drift, expr: 'psi(feature.*) > 0.2'}
";
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let e = Exporter::start_with_rules(
        rules,
        &[
            "--alertmanager.url",
            &format!("http://{closed}"),
            "--web.enable-lifecycle",
        ],
    );
    let text = e.metrics();
    for name in &names {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .collect();
        assert!(!lines.is_empty(), "{name} is not exposed:\n{text}");
        if name.ends_with("_total") && name != "model_exporter_rule_evaluations_total" {
            for l in &lines {
                assert!(l.ends_with(" 0"), "{l}");
            }
        }
    }
    for group in ["ops", "ml"] {
        let failures =
            format!(r#"model_exporter_rule_evaluation_failures_total{{group="{group}"}}"#);
        assert_eq!(sample(&text, &failures), Some(0.0), "{text}");
    }
    // A group added by a reload has its series at once.
    let more = format!(
        "{rules}  - name: kpi\n    rules:\n      - {{alert: Quiet, expr: request_rate < 1}}\n"
    );
    std::fs::write(e.rules_path(), more).unwrap();
    assert_eq!(post(e.web, "/-/reload"), 200);
    e.wait_sample(
        r#"model_exporter_rule_evaluation_failures_total{group="kpi"}"#,
        0.0,
    );
    promtool_check_metrics(&e.metrics());
}
