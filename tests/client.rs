//! The Rust client against the real exporter, over both unix transports,
//! including the exporter going away and coming back.

mod common;

use std::time::{Duration, Instant};

use common::*;
use model_exporter::client::Client;

#[test]
fn every_event_type_arrives_over_unixgram() {
    let e = Exporter::start(&[]);
    let c = Client::unixgram(e.path("unixgram"));
    // The kernel queues only a few datagrams per socket: a burst faster than
    // the exporter reads is partly dropped, and the client counts exactly
    // what. Pace the sends a little, then compare the counts.
    for i in 0..100 {
        std::thread::sleep(Duration::from_micros(200));
        c.inference("fraud")
            .version("v3")
            .id(&format!("r-{i}"))
            .latency(Duration::from_millis(20))
            .prediction(1i64)
            .confidence(0.9)
            .feature("age", 35i64)
            .send();
    }
    let sent = c.stats().sent as f64;
    assert_eq!(c.stats().sent + c.stats().dropped, 100);
    assert!(sent > 0.0);
    e.wait_sample(
        r#"model_requests_total{model="fraud",outcome="ok",version="v3"}"#,
        sent,
    );
    e.wait_sample(
        r#"model_request_duration_seconds_count{model="fraud",version="v3"}"#,
        sent,
    );

    let retry = |what: &str, series: &str, want: f64, send: &dyn Fn()| {
        let deadline = Instant::now() + PATIENCE;
        while e.sample(series) != Some(want) {
            assert!(Instant::now() < deadline, "{what} never arrived");
            send();
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    retry(
        "feedback",
        r#"model_feedback_total{model="fraud",version=""}"#,
        1.0,
        &|| c.feedback("fraud", "r-1", 0i64),
    );
    retry(
        "model",
        r#"model_trained_timestamp_seconds{model="fraud",version="v3"}"#,
        1_793_491_200.0,
        &|| c.model_loaded("fraud", "v3", Some(1_793_491_200.0)),
    );
    retry(
        "log",
        r#"model_log_events_total{component="inference",level="error",model="fraud",version=""}"#,
        1.0,
        &|| c.log("fraud", "error", "inference", "Feature missing"),
    );
    let s = c.stats();
    assert_eq!(s.errors, 0);
    // Exactly what the client counts as sent arrived.
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        sent,
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

    // The exporter is gone: sends are counted as errors, never raised.
    let before = c.stats();
    for _ in 0..10 {
        c.inference("m").send();
    }
    assert_eq!(c.stats().sent, before.sent);
    assert_eq!(c.stats().errors, before.errors + 10);

    // A new exporter on the same path: the client reconnects by itself.
    let listen = format!("unix://{}", path.display());
    let _keep = dir;
    let e2 = Exporter::start_with(&["--events.listen", &listen], false);
    let deadline = Instant::now() + PATIENCE;
    loop {
        c.inference("back").send();
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
}
