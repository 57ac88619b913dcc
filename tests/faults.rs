//! Faults survived: the exporter killed with SIGKILL and restarted, a full
//! disk under the prediction log, a broken rules file reloaded under load.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::*;
use model_exporter::client::Client;

#[test]
fn sigkill_and_restart_on_the_same_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("events.sock");
    let listen = format!("unix://{}", sock.display());
    let e = Exporter::start_with(&["--events.listen", &listen], false);
    let client = Client::unix_stream(&sock);
    for _ in 0..100 {
        client.inference("m").send();
    }
    e.wait_sample(
        r#"model_requests_total{model="m",outcome="ok",version=""}"#,
        100.0,
    );
    // No clean shutdown: the socket file stays behind.
    unsafe { libc::kill(e.pid(), libc::SIGKILL) };
    drop(e);
    assert!(
        sock.exists(),
        "the killed exporter's socket file should remain"
    );
    // Events sent meanwhile are dropped and counted by the client, not raised.
    client.inference("m").send();
    client.flush();
    // A new exporter replaces the stale file and the client reconnects.
    let e2 = Exporter::start_with(&["--events.listen", &listen], false);
    let deadline = Instant::now() + PATIENCE;
    while e2
        .sample(r#"model_requests_total{model="again",outcome="ok",version=""}"#)
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the client never reconnected: {:?}",
            client.stats()
        );
        client.inference("again").send();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(client.stats().no_exporter >= 1, "{:?}", client.stats());
}

#[test]
fn a_full_disk_under_the_prediction_log_costs_nothing_else() {
    // /dev/full fails every write with ENOSPC.
    let e = Exporter::start(&[
        "--prediction-log.path",
        "/dev/full",
        "--prediction-log.sample-ratio",
        "1",
    ]);
    let payload: String = (0..2000)
        .map(|i| format!("{{\"model\":\"m\",\"latency_ms\":{i}}}\n"))
        .collect();
    send_unix(&e.path("unix"), payload.as_bytes());
    e.wait_sample(
        r#"model_requests_total{model="m",outcome="ok",version=""}"#,
        2000.0,
    );
    let deadline = Instant::now() + PATIENCE;
    while e
        .sample("model_exporter_prediction_log_errors_total")
        .unwrap_or(0.0)
        < 1.0
    {
        assert!(Instant::now() < deadline, "write errors were not counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        e.sample("model_exporter_prediction_log_lines_total"),
        Some(0.0)
    );
    // Every sampled line is accounted for: lost to the disk, or dropped.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let m = e.metrics();
        let lost = sample(&m, "model_exporter_prediction_log_errors_total").unwrap_or(0.0)
            + sample(&m, "model_exporter_prediction_log_dropped_total").unwrap_or(0.0);
        if lost == 2000.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{lost} of 2000 lines accounted for"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(e.get("/-/healthy").0, 200);
}

#[test]
fn a_broken_rules_file_reloaded_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    let good = "defaults: {evaluation_interval: 100ms, window: 1s}\ngroups:\n  - name: g\n    rules:\n      - alert: A\n        expr: error_rate > 5%\n";
    std::fs::write(&rules, good).unwrap();
    let e = Exporter::start(&[
        "--config.file",
        rules.to_str().unwrap(),
        "--config.watch-interval",
        "50ms",
    ]);
    let mut conn = UnixStream::connect(e.path("unix")).unwrap();
    let line = b"{\"model\":\"load\",\"latency_ms\":3}\n".repeat(100);
    let reloads = |result: &str| {
        e.sample(&format!(
            r#"model_exporter_config_reloads_total{{result="{result}"}}"#
        ))
        .unwrap_or(0.0)
    };
    let rounds = r#"model_exporter_rule_evaluations_total{group="g"}"#;
    let mut sent = 0u64;
    let (mut failures, mut successes) = (0.0, 1.0);
    for round in 0..20 {
        conn.write_all(&line).unwrap();
        sent += 100;
        // Flip between a broken and a good file while events flow; each
        // file replaced in one step, so that each is read whole, once.
        let text = if round % 2 == 0 {
            failures += 1.0;
            "groups: [\n".to_owned()
        } else {
            successes += 1.0;
            good.replace("5%", &format!("{}%", 5 + round))
        };
        let tmp = dir.path().join("rules.yaml.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &rules).unwrap();
        // More events while the watch is about to read it.
        conn.write_all(&line).unwrap();
        sent += 100;
        let deadline = Instant::now() + PATIENCE;
        while (reloads("failure"), reloads("success")) != (failures, successes) {
            assert!(
                Instant::now() < deadline,
                "round {round}: reloads {} failed, {} succeeded",
                reloads("failure"),
                reloads("success")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Two more evaluation rounds (100 ms apart) give the 50 ms watch
        // time to look again: an unchanged file is not reloaded.
        let evaluated = e.sample(rounds).unwrap_or(0.0);
        while e.sample(rounds).unwrap_or(0.0) < evaluated + 2.0 {
            assert!(Instant::now() < deadline, "round {round}: no evaluation");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            (reloads("failure"), reloads("success")),
            (failures, successes),
            "round {round}: the same file reloaded again"
        );
    }
    drop(conn);
    e.wait_sample(
        r#"model_requests_total{model="load",outcome="ok",version=""}"#,
        sent as f64,
    );
    let m = e.metrics();
    assert_eq!(
        sample(
            &m,
            r#"model_exporter_events_received_total{type="inference"}"#
        ),
        Some(sent as f64),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"model_exporter_events_rejected_total{reason="invalid_json"}"#
        ),
        Some(0.0)
    );
    // The last file was a good one.
    assert_eq!(
        sample(&m, "model_exporter_config_last_reload_successful"),
        Some(1.0)
    );
}
