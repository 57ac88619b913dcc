//! `model-exporter loadgen` against the real exporter: on a stream every
//! event sent is received, and the report says so.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::*;

fn loadgen(args: &[&str]) -> HashMap<String, f64> {
    let out = Command::new(binary())
        .arg("loadgen")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "loadgen failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
        .collect()
}

#[test]
fn stream_events_are_all_received() {
    let e = Exporter::start(&[]);
    let target = format!("unix://{}", e.path("unix").display());
    let url = format!("http://{}", e.web);
    let pid = e.pid().to_string();
    let r = loadgen(&[
        "--target",
        &target,
        "--rate",
        "2000",
        "--duration",
        "1s",
        "--connections",
        "2",
        "--metrics-url",
        &url,
        "--pid",
        &pid,
    ]);
    let sent = r["sent_events"];
    assert!(sent > 0.0, "{r:?}");
    assert_eq!(r["exporter_received"], sent, "{r:?}");
    assert_eq!(r["exporter_rejected"], 0.0, "{r:?}");
    assert_eq!(r["send_drops"], 0.0, "{r:?}");
    assert!(r["exporter_cpu_seconds"] >= 0.0, "{r:?}");
    assert!(r["exporter_max_rss_bytes"] > 0.0, "{r:?}");
    e.wait_sample(
        r#"model_requests_total{model="fraud",outcome="ok",version="v3"}"#,
        sent,
    );
}

#[test]
fn datagrams_are_counted_sent_or_dropped() {
    let e = Exporter::start(&[]);
    let target = format!("unixgram://{}", e.path("unixgram").display());
    let url = format!("http://{}", e.web);
    let r = loadgen(&[
        "--target",
        &target,
        "--rate",
        "1000",
        "--duration",
        "500ms",
        "--metrics-url",
        &url,
    ]);
    // Nothing the exporter received went uncounted by the sender.
    assert!(r["sent_events"] > 0.0, "{r:?}");
    assert!(r["exporter_received"] <= r["sent_events"], "{r:?}");
    assert_eq!(r["exporter_rejected"], 0.0, "{r:?}");
}

#[test]
fn bad_targets_are_refused() {
    for target in ["tcp://127.0.0.1:1", "ftp://x"] {
        let out = Command::new(binary())
            .args(["loadgen", "--target", target, "--duration", "10ms"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{target} accepted");
    }
}
