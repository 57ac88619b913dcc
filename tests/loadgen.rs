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

/// User plus system CPU seconds of a process so far (`/proc/PID/stat`).
fn process_cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // Fields 14 (utime) and 15 (stime), counted from 1; `fields` starts at 3.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Resident set of a process in bytes (`VmRSS`).
fn process_rss_bytes(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024.0
}

#[test]
fn stream_events_are_all_received() {
    let e = Exporter::start(&[]);
    let target = format!("unix://{}", e.path("unix").display());
    let url = format!("http://{}", e.web);
    let pid = e.pid().to_string();
    // Work before the run, which the report must not count.
    send_unix(
        &e.path("unix"),
        "{\"model\":\"warm-up\"}\n".repeat(50_000).as_bytes(),
    );
    e.wait_sample(
        r#"model_requests_total{model="warm-up",outcome="ok",version=""}"#,
        50_000.0,
    );
    let cpu_before = process_cpu_seconds(e.pid());
    assert!(cpu_before > 0.02, "the warm-up took {cpu_before} s of CPU");
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
    let cpu_after = process_cpu_seconds(e.pid());
    let sent = r["sent_events"];
    // 2,000 a second for a second, give or take the scheduling of a loaded
    // machine.
    assert!(sent > 100.0 && sent <= 2000.0, "{r:?}");
    // A stream loses nothing: loadgen waits until the exporter counted all.
    assert_eq!(r["exporter_received"], sent, "{r:?}");
    assert_eq!(r["exporter_rejected"], 0.0, "{r:?}");
    assert_eq!(r["send_drops"], 0.0, "{r:?}");
    // The exporter's CPU time during the run: no more than the process used
    // in all from before the run until after it (read here independently),
    // to the 0.01 s resolution of the report.
    let cpu = r["exporter_cpu_seconds"];
    assert!(
        cpu >= 0.0 && cpu <= cpu_after - cpu_before + 0.011,
        "{cpu} outside [0, {cpu_after} - {cpu_before}]: {r:?}"
    );
    // Its largest resident set: at least what it holds once idle again.
    let rss = r["exporter_max_rss_bytes"];
    let idle_rss = process_rss_bytes(e.pid());
    assert!(rss > 1e6 && rss < 1e9, "{r:?}");
    assert!(rss >= idle_rss * 0.5, "{rss} vs idle {idle_rss}");
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
    // A datagram is either queued in the exporter's socket (sent) or
    // refused at once (a drop): every one sent is received.
    let sent = r["sent_events"];
    assert!(sent > 0.0, "{r:?}");
    assert!(sent + r["send_drops"] <= 500.0 + 64.0, "{r:?}");
    assert_eq!(r["exporter_received"], sent, "{r:?}");
    assert_eq!(r["exporter_rejected"], 0.0, "{r:?}");
    e.wait_sample(
        r#"model_requests_total{model="fraud",outcome="ok",version="v3"}"#,
        sent,
    );
}

#[test]
fn bad_targets_are_refused() {
    // A transport loadgen does not drive (status 1), and no transport at
    // all (a bad flag value: clap's status 2), each saying why.
    for (target, status, says) in [
        (
            "tcp://127.0.0.1:1",
            1,
            "only unix:// and unixgram:// targets are supported",
        ),
        ("ftp://x", 2, "unknown scheme \"ftp\""),
    ] {
        let out = Command::new(binary())
            .args(["loadgen", "--target", target, "--duration", "10ms"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(status), "{target}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(target) && err.contains(says), "{err}");
    }
}
