//! State across restarts through the real binary (`--storage.path`): a
//! rolling restart keeps the windows, the alerts with their activeAt, and
//! the predictions awaiting their label; a killed exporter comes back from
//! its last periodic snapshot; a bad snapshot is moved aside and counted.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const RULES: &str = "
defaults: {window: 10m, evaluation_interval: 200ms, min_samples: 5}
groups:
  - name: ops
    rules:
      - alert: HighErrorRate
        expr: error_rate > 5%
        for: 400ms
        severity: critical
";

const FIRING: &str = r#"model_alerts{alertname="HighErrorRate",alertstate="firing",model="fraud",severity="critical",version=""}"#;
const ERROR_RATIO: &str = r#"model_window_error_ratio{model="fraud",version="",window="10m"}"#;
const PENDING_LABELS: &str = r#"model_feedback_pending{model="fraud",version=""}"#;

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn storage_args(dir: &Path, interval: &str) -> Vec<String> {
    vec![
        "--storage.path".into(),
        dir.display().to_string(),
        "--storage.snapshot-interval".into(),
        interval.into(),
    ]
}

fn start(rules: &str, args: &[String]) -> Exporter {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Exporter::start_with_rules(rules, &args)
}

/// The active alerts of /api/v1/alerts: (alertname, state, activeAt).
fn alerts(e: &Exporter) -> Vec<(String, String, String)> {
    let (status, _, body) = e.get("/api/v1/alerts");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
                a["activeAt"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Sends failing requests until the alert fires; returns how many.
fn fire(e: &Exporter) -> u64 {
    let mut sent = 0;
    wait_until("the alert to fire", || {
        send_unix(
            &e.path("unix"),
            "{\"model\":\"fraud\",\"error\":\"timeout\"}\n"
                .repeat(10)
                .as_bytes(),
        );
        sent += 10;
        e.sample(FIRING) == Some(1.0)
    });
    sent
}

fn log_has(lines: &[serde_json::Value], message: &str) -> bool {
    lines
        .iter()
        .any(|v| v["fields"]["message"].as_str() == Some(message))
}

/// A stand-in Alertmanager that keeps every alert posted to it.
struct Receiver {
    url: String,
    alerts: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let alerts: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let kept = alerts.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let kept = kept.clone();
                std::thread::spawn(move || serve(conn, &kept));
            }
        });
        Receiver { url, alerts }
    }

    /// `startsAt` of every firing HighErrorRate alert received.
    fn starts(&self) -> Vec<String> {
        self.alerts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a["labels"]["alertname"] == "HighErrorRate")
            .map(|a| a["startsAt"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Answers HTTP/1.1 requests on one connection until it closes.
fn serve(conn: std::net::TcpStream, kept: &Mutex<Vec<serde_json::Value>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        if let Ok(serde_json::Value::Array(list)) = serde_json::from_slice(&body) {
            kept.lock().unwrap().extend(list);
        }
        out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
    }
}

#[test]
fn a_restart_keeps_windows_alerts_and_pending_feedback() {
    let storage = tempfile::tempdir().unwrap();
    // Created by the exporter; only written at shutdown.
    let dir = storage.path().join("state");
    let am = Receiver::start();
    let mut args = storage_args(&dir, "0");
    args.extend(["--alertmanager.url".to_owned(), am.url.clone()]);

    let e = start(RULES, &args);
    let errors = fire(&e);
    send_unix(
        &e.path("unix"),
        b"{\"model\":\"fraud\",\"id\":\"req-1\",\"prediction\":1}\n",
    );
    e.wait_sample(
        r#"model_requests_total{model="fraud",outcome="error",version=""}"#,
        errors as f64,
    );
    let ratio = errors as f64 / (errors + 1) as f64;
    e.wait_sample(ERROR_RATIO, ratio);
    e.wait_sample(PENDING_LABELS, 1.0);
    let before = alerts(&e);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].1, "firing");
    wait_until("the alert at the receiver", || !am.starts().is_empty());
    let (status, lines) = e.stop();
    assert!(status.success());
    assert!(log_has(&lines, "wrote the final snapshot"));
    assert!(dir.join("snapshot.json").is_file());
    let sent_before = am.starts().len();

    let e = start(RULES, &args);
    // At once, before any new event: firing with the same activeAt, never
    // pending, and the windows as they were.
    assert_eq!(alerts(&e), before);
    let m = e.metrics();
    assert_eq!(sample(&m, FIRING), Some(1.0), "{m}");
    assert_eq!(sample(&m, ERROR_RATIO), Some(ratio), "{m}");
    assert_eq!(sample(&m, PENDING_LABELS), Some(1.0), "{m}");
    assert_eq!(
        sample(&m, r#"model_exporter_storage_snapshots_total{op="load"}"#),
        Some(1.0)
    );
    assert!(!m.contains(r#"alertstate="pending""#), "{m}");
    let restored = e.wait_log("restored the snapshot").unwrap();
    assert_eq!(restored["fields"]["alerts"], 1, "{restored}");
    assert_eq!(restored["fields"]["pending_feedback"], 1, "{restored}");

    // The label of a prediction made before the restart joins it.
    send_unix(
        &e.path("unix"),
        b"{\"type\":\"feedback\",\"model\":\"fraud\",\"id\":\"req-1\",\"actual\":1}\n",
    );
    e.wait_sample(r#"model_exporter_feedback_total{result="joined"}"#, 1.0);
    wait_until("no label pending", || e.sample(PENDING_LABELS).is_none());

    // Alertmanager heard of one alert only: every send, before and after
    // the restart, has the same startsAt.
    wait_until("a send after the restart", || {
        am.starts().len() > sent_before
    });
    let starts: BTreeSet<String> = am.starts().into_iter().collect();
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(e.stop().0.code(), Some(0));
}

#[test]
fn a_killed_exporter_comes_back_from_its_last_periodic_snapshot() {
    let storage = tempfile::tempdir().unwrap();
    let args = storage_args(storage.path(), "100ms");
    let e = start(RULES, &args);
    send_unix(
        &e.path("unix"),
        "{\"model\":\"fraud\",\"error\":\"x\"}\n{\"model\":\"fraud\"}\n"
            .repeat(10)
            .as_bytes(),
    );
    e.wait_sample(
        r#"model_requests_total{model="fraud",outcome="ok",version=""}"#,
        10.0,
    );
    e.wait_sample(ERROR_RATIO, 0.5);
    e.wait_sample(FIRING, 1.0);
    let before = alerts(&e);
    // A snapshot taken after the events were applied: at most one can have
    // been under way before, so the second one to finish from now is it.
    let saves = r#"model_exporter_storage_snapshots_total{op="save"}"#;
    let from = e.sample(saves).unwrap();
    wait_until("two more snapshots", || {
        e.sample(saves).unwrap() >= from + 2.0
    });
    assert_eq!(
        e.sample(r#"model_exporter_storage_snapshot_failures_total{op="save"}"#),
        Some(0.0)
    );
    assert!(
        e.sample("model_exporter_storage_snapshot_bytes").unwrap() > 100.0,
        "{}",
        e.metrics()
    );
    unsafe { libc::kill(e.pid(), libc::SIGKILL) };
    drop(e);

    let e = start(RULES, &args);
    let m = e.metrics();
    assert_eq!(sample(&m, ERROR_RATIO), Some(0.5), "{m}");
    assert_eq!(sample(&m, FIRING), Some(1.0), "{m}");
    assert_eq!(alerts(&e), before);
}

fn corrupt_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("snapshot.json.corrupt-")
        })
        .collect()
}

#[test]
fn a_corrupt_snapshot_is_moved_aside_and_the_exporter_starts_empty() {
    let storage = tempfile::tempdir().unwrap();
    let file = storage.path().join("snapshot.json");
    let cut = r#"{"format":"model-exporter-snapshot","version":1,"exporter_version":"0.1.0","written_at":1,"windows":{"slice_seconds":10,"#;
    std::fs::write(&file, cut).unwrap();
    let args = storage_args(storage.path(), "1h");
    let e = start(RULES, &args);
    let error = e
        .log_lines()
        .into_iter()
        .find(|v| {
            v["fields"]["error"]
                .as_str()
                .is_some_and(|m| m.contains("truncated"))
        })
        .unwrap_or_else(|| panic!("no error logged:\n{}", e.log_text()));
    assert_eq!(error["level"], "ERROR");
    let message = error["fields"]["message"].as_str().unwrap();
    let expected = format!(
        "{}: cannot restore the snapshot: it is truncated: EOF while parsing an object at line 1 column {}; it was moved aside to ",
        file.display(),
        cut.len()
    );
    assert!(message.starts_with(&expected), "{message}\n{expected}");
    assert_eq!(
        e.sample(r#"model_exporter_storage_snapshot_failures_total{op="load"}"#),
        Some(1.0)
    );
    let aside = corrupt_files(storage.path());
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read_to_string(&aside[0]).unwrap(), cut);
    assert!(message.ends_with(&format!("{}; starting empty", aside[0].display())));
    assert!(!file.exists());
    // It serves and counts as usual, and saves a good snapshot at shutdown.
    send_unix(&e.path("unix"), b"{\"model\":\"fraud\"}\n");
    e.wait_sample(
        r#"model_requests_total{model="fraud",outcome="ok",version=""}"#,
        1.0,
    );
    assert!(e.stop().0.success());
    let e = start(RULES, &args);
    assert_eq!(
        e.sample(r#"model_exporter_storage_snapshot_failures_total{op="load"}"#),
        Some(0.0)
    );
    assert_eq!(
        e.sample(r#"model_exporter_storage_snapshots_total{op="load"}"#),
        Some(1.0)
    );
}

/// Starts the exporter with `--storage.path storage` and `extra` flags,
/// expects it to refuse, and returns what it wrote to stderr.
fn refused(storage: &Path, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--events.listen",
            &format!("unix://{}", dir.path().join("e.sock").display()),
        ])
        .args(extra)
        .arg("--storage.path")
        .arg(storage)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_unusable_storage_path_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let stderr = refused(&file, &[]);
    assert!(
        stderr.contains(&format!(
            "--storage.path {}: not a directory",
            file.display()
        )),
        "{stderr}"
    );
}

#[test]
fn storage_with_several_aggregator_shards_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = refused(&dir.path().join("state"), &["--aggregate.shards", "2"]);
    assert!(
        stderr.contains(
            "--storage.path works with one aggregator shard only (--aggregate.shards is 2)"
        ),
        "{stderr}"
    );
}

#[test]
fn the_storage_flags_are_read_from_the_environment() {
    let storage = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(binary());
    cmd.env("MODEL_EXPORTER_STORAGE_PATH", storage.path())
        .env("MODEL_EXPORTER_STORAGE_SNAPSHOT_INTERVAL", "50ms")
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
            "--events.listen",
            &format!("unix://{}", dir.path().join("e.sock").display()),
        ]);
    let e = Exporter::spawn(&mut cmd, dir).unwrap();
    wait_until("a periodic snapshot", || {
        storage.path().join("snapshot.json").is_file()
    });
    assert!(
        e.sample(r#"model_exporter_storage_snapshots_total{op="save"}"#)
            .unwrap()
            >= 1.0
    );
}
