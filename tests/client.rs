//! The Rust client against the real exporter, over both unix transports,
//! including the exporter going away and coming back, and the client's
//! reports of what it dropped as the exporter exports them.

mod common;

use std::time::{Duration, Instant};

use common::*;
use model_exporter::client::{Client, Options};

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn every_event_type_arrives_over_unixgram_without_loss() {
    let e = Exporter::start(&[]);
    let c = Client::unixgram(e.path("unixgram"));
    // As fast as the loop goes: the kernel queues few datagrams, but each
    // holds many events and what does not fit waits in the client.
    let n = 5_000u64;
    for i in 0..n {
        c.inference("fraud")
            .version("v3")
            .id(&format!("r-{i}"))
            .latency(Duration::from_millis(20))
            .prediction(1i64)
            .confidence(0.9)
            .feature("age", 35i64)
            .send();
    }
    c.feedback("fraud", "r-1", 0i64);
    c.model_loaded("fraud", "v3", Some(1_793_491_200.0));
    c.log("fraud", "error", "inference", "Feature missing");
    wait_until("events still held", || {
        c.flush();
        c.stats().pending == 0
    });
    let s = c.stats();
    assert_eq!((s.sent, s.dropped), (n + 3, 0), "{s:?}");
    e.wait_sample(
        r#"model_requests_total{model="fraud",outcome="ok",version="v3"}"#,
        n as f64,
    );
    e.wait_sample(
        r#"model_request_duration_seconds_count{model="fraud",version="v3"}"#,
        n as f64,
    );
    e.wait_sample(r#"model_feedback_total{model="fraud",version=""}"#, 1.0);
    e.wait_sample(
        r#"model_trained_timestamp_seconds{model="fraud",version="v3"}"#,
        1_793_491_200.0,
    );
    e.wait_sample(
        r#"model_log_events_total{component="inference",level="error",model="fraud",version=""}"#,
        1.0,
    );
    // The client's first report: nothing lost, the series at 0.
    e.wait_sample(
        r#"model_exporter_client_dropped_total{model="default",reason="queue_full"}"#,
        0.0,
    );
    e.wait_sample(
        r#"model_exporter_events_received_total{type="client"}"#,
        1.0,
    );
}

#[test]
fn a_stream_client_survives_the_exporter_restarting() {
    let e = Exporter::start(&[]);
    let path = e.path("unix");
    let c = Client::unix_stream(&path);
    for _ in 0..1000 {
        c.inference("m").send();
    }
    e.wait_sample(
        r#"model_requests_total{model="m",outcome="ok",version=""}"#,
        1000.0,
    );
    let dir = e.dir.path().to_owned();
    let (status, _) = e.stop();
    assert!(status.success());

    // The exporter is gone: events are dropped and counted, never raised.
    let before = c.stats();
    for _ in 0..10 {
        c.inference("m").send();
    }
    c.flush();
    assert_eq!(c.stats().sent, before.sent);
    assert_eq!(c.stats().no_exporter, before.no_exporter + 10);

    // A new exporter on the same path: the client reconnects by itself,
    // and reports what it dropped meanwhile.
    let listen = format!("unix://{}", path.display());
    let _keep = dir;
    let e2 = Exporter::start_with(&["--events.listen", &listen], false);
    let deadline = Instant::now() + PATIENCE;
    loop {
        c.inference("back").send();
        c.flush();
        let got = e2.sample(r#"model_requests_total{model="back",outcome="ok",version=""}"#);
        if got.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the client did not reconnect: {:?}",
            c.stats()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let lost = c.stats().no_exporter as f64;
    c.close();
    e2.wait_sample(
        r#"model_exporter_client_dropped_total{model="default",reason="no_exporter"}"#,
        lost,
    );
}

#[test]
fn drops_while_no_exporter_listens_are_reported_when_it_comes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.sock");
    let options = Options {
        model: "fraud".into(),
        report_interval: Duration::ZERO,
        ..Options::default()
    };
    let c = Client::unixgram_with(&path, options);
    for _ in 0..25 {
        c.inference("fraud")
            .confidence(3.0) // left out, counted
            .send();
    }
    c.flush();
    assert_eq!(c.stats().no_exporter, 25);
    assert_eq!(c.stats().values_omitted, 25);
    let listen = format!("unixgram://{}", path.display());
    let e = Exporter::start_with(&["--events.listen", &listen], false);
    // Reconnection attempts are at most once a second.
    wait_until("the client never reconnected", || {
        c.inference("fraud").send();
        c.flush();
        e.sample(r#"model_requests_total{model="fraud",outcome="ok",version=""}"#)
            .is_some()
    });
    e.wait_sample(
        r#"model_exporter_client_dropped_total{model="fraud",reason="no_exporter"}"#,
        c.stats().no_exporter as f64,
    );
    e.wait_sample(
        r#"model_exporter_client_values_omitted_total{model="fraud"}"#,
        25.0,
    );
    // The dashboard's data carries them too.
    let (_, _, body) = e.get("/api/v1/summary");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let d = &v["data"]["client_drops"]["fraud"];
    assert_eq!(d["dropped"]["no_exporter"], c.stats().no_exporter);
    assert_eq!(d["values_omitted"], 25);
}

#[test]
fn malformed_client_reports_are_rejected_and_counted() {
    let e = Exporter::start(&["--limits.models", "2"]);
    let gram = e.path("unixgram");
    for line in [
        r#"{"type":"client","model":"a","dropped":{"queue_full":-1}}"#,
        r#"{"type":"client","model":"a","dropped":{"queue_full":"3"}}"#,
        r#"{"type":"client","model":"a","dropped":{"queue_full":0.5}}"#,
    ] {
        send_unixgram(&gram, line.as_bytes());
    }
    e.wait_sample(
        r#"model_exporter_events_rejected_total{reason="invalid_value"}"#,
        2.0,
    );
    e.wait_sample(
        r#"model_exporter_events_rejected_total{reason="wrong_type"}"#,
        1.0,
    );
    // Reasons it does not know are "other"; model names are capped.
    for m in ["a", "b", "c", "d"] {
        let line = format!(
            r#"{{"type":"client","model":"{m}","dropped":{{"queue_full":2,"from_the_future":1}}}}"#
        );
        send_unixgram(&gram, line.as_bytes());
    }
    e.wait_sample(
        r#"model_exporter_events_received_total{type="client"}"#,
        4.0,
    );
    let text = e.metrics();
    let at = |s: &str| sample(&text, s);
    assert_eq!(
        at(r#"model_exporter_client_dropped_total{model="a",reason="queue_full"}"#),
        Some(2.0)
    );
    assert_eq!(
        at(r#"model_exporter_client_dropped_total{model="b",reason="other"}"#),
        Some(1.0)
    );
    assert_eq!(
        at(r#"model_exporter_client_dropped_total{model="__other__",reason="queue_full"}"#),
        Some(4.0)
    );
    assert_eq!(
        at(r#"model_exporter_client_dropped_total{model="c",reason="queue_full"}"#),
        None
    );
}
