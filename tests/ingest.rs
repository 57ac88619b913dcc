//! Events in over every transport, metrics out: exact counts, buckets, sums,
//! and bad input contained.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;

fn inference(model: &str, latency_ms: f64) -> String {
    format!(
        r#"{{"model":"{model}","version":"v1","latency_ms":{latency_ms},"prediction":0.7,"confidence":0.8,"features":{{"age":30,"country":"DE"}}}}"#
    )
}

#[test]
fn every_transport_counts_exactly() {
    let e = Exporter::start(&[]);
    // unix stream: 100 events on one connection, latencies 5 ms and 200 ms
    let mut payload = String::new();
    for i in 0..100 {
        payload += &inference("unix", if i % 2 == 0 { 5.0 } else { 200.0 });
        payload.push('\n');
    }
    send_unix(&e.path("unix"), payload.as_bytes());
    // unix datagrams: 40 of one event, 1 of three events
    for _ in 0..40 {
        send_unixgram(&e.path("unixgram"), inference("unixgram", 5.0).as_bytes());
    }
    let three = [0, 1, 2].map(|_| inference("unixgram", 5.0)).join("\n");
    send_unixgram(&e.path("unixgram"), three.as_bytes());
    // tcp: 20 events over two connections
    for _ in 0..2 {
        let p: String = (0..10).map(|_| inference("tcp", 5.0) + "\n").collect();
        send_tcp(&e.events["tcp"], p.as_bytes());
    }
    // udp: 10 datagrams
    for _ in 0..10 {
        send_udp(&e.events["udp"], inference("udp", 5.0).as_bytes());
    }

    for (model, n) in [
        ("unix", 100.0),
        ("unixgram", 43.0),
        ("tcp", 20.0),
        ("udp", 10.0),
    ] {
        e.wait_sample(
            &format!(r#"model_requests_total{{model="{model}",outcome="ok",version="v1"}}"#),
            n,
        );
    }
    let m = e.metrics();
    let s = |series: &str| sample(&m, series).unwrap_or_else(|| panic!("no {series}\n{m}"));
    let unix = r#"model="unix",version="v1""#;
    assert_eq!(
        s(&format!(
            r#"model_request_duration_seconds_bucket{{{unix},le="0.001"}}"#
        )),
        0.0
    );
    assert_eq!(
        s(&format!(
            r#"model_request_duration_seconds_bucket{{{unix},le="0.005"}}"#
        )),
        50.0
    );
    assert_eq!(
        s(&format!(
            r#"model_request_duration_seconds_bucket{{{unix},le="0.1"}}"#
        )),
        50.0
    );
    assert_eq!(
        s(&format!(
            r#"model_request_duration_seconds_bucket{{{unix},le="0.25"}}"#
        )),
        100.0
    );
    assert_eq!(
        s(&format!(
            r#"model_request_duration_seconds_bucket{{{unix},le="+Inf"}}"#
        )),
        100.0
    );
    assert_eq!(
        s(&format!(
            r#"model_request_duration_seconds_count{{{unix}}}"#
        )),
        100.0
    );
    let sum = s(&format!(r#"model_request_duration_seconds_sum{{{unix}}}"#));
    assert!((sum - 10.25).abs() < 1e-9, "sum {sum}");
    assert_eq!(
        s(&format!(
            r#"model_prediction_value_bucket{{{unix},le="0.7"}}"#
        )),
        100.0
    );
    assert_eq!(
        s(&format!(
            r#"model_prediction_value_bucket{{{unix},le="0.6"}}"#
        )),
        0.0
    );
    assert_eq!(
        s(&format!(r#"model_prediction_confidence_count{{{unix}}}"#)),
        100.0
    );
    assert_eq!(
        s(r#"model_feature_value_sum{feature="age",model="unix",version="v1"}"#),
        3000.0
    );
    assert_eq!(
        s(
            r#"model_feature_category_total{category="DE",feature="country",model="unix",version="v1"}"#
        ),
        100.0
    );
    assert_eq!(
        s(r#"model_exporter_events_received_total{type="inference"}"#),
        173.0
    );
    for r in ["invalid_json", "wrong_type", "too_long", "truncated"] {
        assert_eq!(
            s(&format!(
                r#"model_exporter_events_rejected_total{{reason="{r}"}}"#
            )),
            0.0
        );
    }
    assert_eq!(
        s(r#"model_exporter_connections_total{transport="unix"}"#),
        1.0
    );
    assert_eq!(
        s(r#"model_exporter_connections_total{transport="tcp"}"#),
        2.0
    );
}

#[test]
fn every_event_type_over_one_connection() {
    let e = Exporter::start(&[]);
    let lines = [
        r#"{"model":"fraud","version":"v3","id":"r-17","latency_ms":52.3,"ok":true,"prediction":1,"confidence":0.91,"features":{"age":35,"income":51000,"amount":120.5}}"#,
        r#"{"model":"fraud","version":"v3","latency_ms":900,"error":"timeout"}"#,
        r#"{"model":"reco","prediction":"sports","counters":{"shown":10,"clicked":2},"resources":{"cpu_percent":40,"memory_percent":55}}"#,
        r#"{"type":"feedback","model":"fraud","id":"r-17","actual":0}"#,
        r#"{"type":"model","model":"fraud","version":"v3","trained_at":"2026-11-01T00:00:00Z","loaded_at":1793577600}"#,
        r#"{"type":"log","model":"fraud","version":"v3","level":"error","component":"inference","message":"Feature missing","metadata":{"feature":"embedding"}}"#,
    ];
    send_unix(&e.path("unix"), (lines.join("\n") + "\n").as_bytes());
    e.wait_sample(r#"model_exporter_events_received_total{type="log"}"#, 1.0);
    let m = e.metrics();
    for (series, want) in [
        (
            r#"model_requests_total{model="fraud",outcome="ok",version="v3"}"#,
            1.0,
        ),
        (
            r#"model_requests_total{model="fraud",outcome="error",version="v3"}"#,
            1.0,
        ),
        (
            r#"model_request_errors_total{error="timeout",model="fraud",version="v3"}"#,
            1.0,
        ),
        (
            r#"model_predictions_total{class="sports",model="reco",version=""}"#,
            1.0,
        ),
        (
            r#"model_business_counts_total{counter="clicked",model="reco",version=""}"#,
            2.0,
        ),
        (
            r#"model_business_counts_total{counter="shown",model="reco",version=""}"#,
            10.0,
        ),
        (
            r#"model_resource_utilization_ratio{model="reco",resource="memory",version=""}"#,
            0.55,
        ),
        (r#"model_feedback_total{model="fraud",version=""}"#, 1.0),
        (r#"model_info{model="fraud",version="v3"}"#, 1.0),
        (
            r#"model_trained_timestamp_seconds{model="fraud",version="v3"}"#,
            1_793_491_200.0,
        ),
        (
            r#"model_loaded_timestamp_seconds{model="fraud",version="v3"}"#,
            1_793_577_600.0,
        ),
        (
            r#"model_log_events_total{component="inference",level="error",model="fraud",version="v3"}"#,
            1.0,
        ),
        (
            r#"model_exporter_events_received_total{type="inference"}"#,
            3.0,
        ),
        (
            r#"model_exporter_events_received_total{type="feedback"}"#,
            1.0,
        ),
        (r#"model_exporter_events_received_total{type="model"}"#, 1.0),
    ] {
        assert_eq!(sample(&m, series), Some(want), "{series}\n{m}");
    }
}

#[test]
fn bad_input_is_rejected_counted_and_contained() {
    let e = Exporter::start(&["--events.idle-timeout", "1s"]);
    let sock = e.path("unix");

    // A: connects and never writes.
    let idle = UnixStream::connect(&sock).unwrap();
    // F: sends half a line and stalls.
    let mut stall = UnixStream::connect(&sock).unwrap();
    stall.write_all(br#"{"model":"f""#).unwrap();

    // B: valid and invalid lines mixed on one connection.
    send_unix(
        &sock,
        concat!(
            "{\"model\":\"b\"}\n",
            "not json\n",
            "{\"model\":\"b\"}\n",
            "{\"latency_ms\":\"12\"}\n",
            "{\"latency_ms\":NaN}\n",
            "{\"latency_ms\":-5}\n",
            "{\"type\":\"weird\"}\n",
            "\n",
            // Feedback without `actual`, and without either `id` or `prediction`.
            "{\"type\":\"feedback\",\"model\":\"b\",\"id\":\"r1\"}\n",
            "{\"type\":\"feedback\",\"model\":\"b\",\"actual\":1}\n",
            "{\"model\":\"b\"}\n",
        )
        .as_bytes(),
    );
    // C: a 10 MB line without a newline, then a valid event.
    {
        let mut c = UnixStream::connect(&sock).unwrap();
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..10 {
            c.write_all(&chunk).unwrap();
        }
        c.write_all(b"\n{\"model\":\"c\"}\n").unwrap();
    }
    // D: binary garbage, then a valid event.
    send_unix(
        &sock,
        b"\x00\xff\xfe\x01garbage\x80\x81\n{\"model\":\"d\"}\n",
    );
    // E: a valid event, then disconnects in the middle of a line.
    send_unix(&sock, b"{\"model\":\"e\"}\n{\"model\":\"e\",\"lat");
    // G: a whole event without its final newline is still an event.
    send_unix(&sock, b"{\"model\":\"g\"}");
    // Datagrams: one with a bad and a good line, one over the size limit.
    send_unixgram(&e.path("unixgram"), b"bad\n{\"model\":\"u\"}");
    send_unixgram(&e.path("unixgram"), &vec![b'y'; 70 * 1024]);

    // The idle and the stalled connection are closed by the idle timeout.
    e.wait_sample(
        r#"model_exporter_connections_closed_total{reason="idle_timeout",transport="unix"}"#,
        2.0,
    );
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        8.0,
    );
    let m = e.metrics();
    for (reason, n) in [
        ("invalid_json", 3.0),
        ("wrong_type", 1.0),
        ("invalid_value", 1.0),
        ("unknown_type", 1.0),
        ("invalid_utf8", 1.0),
        ("too_long", 2.0),
        ("truncated", 2.0),
        ("missing_field", 2.0),
    ] {
        let series = format!(r#"model_exporter_events_rejected_total{{reason="{reason}"}}"#);
        assert_eq!(sample(&m, &series), Some(n), "{series}\n{m}");
    }
    for (model, n) in [
        ("b", 3.0),
        ("c", 1.0),
        ("d", 1.0),
        ("e", 1.0),
        ("g", 1.0),
        ("u", 1.0),
    ] {
        let series = format!(r#"model_requests_total{{model="{model}",outcome="ok",version=""}}"#);
        assert_eq!(sample(&m, &series), Some(n), "{series}\n{m}");
    }
    assert_eq!(
        sample(&m, r#"model_exporter_connections_open{transport="unix"}"#),
        Some(0.0)
    );
    // The 10 MB line was never held whole.
    let rss = sample(&m, "process_resident_memory_bytes").unwrap();
    assert!(rss < 64.0 * 1024.0 * 1024.0, "RSS {rss}");
    drop((idle, stall));

    // Still serving: a new client is counted as usual.
    send_unix(&sock, b"{\"model\":\"after\"}\n");
    e.wait_sample(
        r#"model_requests_total{model="after",outcome="ok",version=""}"#,
        1.0,
    );
}

#[test]
fn rejects_are_logged_at_a_bounded_rate() {
    let e = Exporter::start(&[]);
    let junk = "junk\n".repeat(5000);
    send_unix(&e.path("unix"), junk.as_bytes());
    e.wait_sample(
        r#"model_exporter_events_rejected_total{reason="invalid_json"}"#,
        5000.0,
    );
    let logged = e
        .log_lines()
        .iter()
        .filter(|v| v["fields"]["message"] == "rejected event")
        .count();
    assert!((1..=10).contains(&logged), "{logged} reject log lines");
    let first = e.wait_log("rejected event").unwrap();
    assert_eq!(first["fields"]["reason"], "invalid_json");
    assert_eq!(first["fields"]["preview"], "junk");
}

#[test]
fn a_stalled_client_does_not_hold_up_others() {
    let e = Exporter::start(&[]);
    let mut stalled = UnixStream::connect(e.path("unix")).unwrap();
    stalled.write_all(b"{\"model\":\"slow\"").unwrap();
    for i in 0..5 {
        send_tcp(
            &e.events["tcp"],
            format!("{{\"model\":\"m{i}\"}}\n").as_bytes(),
        );
    }
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        5.0,
    );
    // The stalled client finishes its line later; nothing was lost.
    std::thread::sleep(Duration::from_millis(50));
    stalled.write_all(b"}\n").unwrap();
    e.wait_sample(
        r#"model_requests_total{model="slow",outcome="ok",version=""}"#,
        1.0,
    );
}

#[test]
fn connections_past_the_limit_are_closed_and_counted() {
    let e = Exporter::start(&["--events.max-connections", "2"]);
    let sock = e.path("unix");
    let held: Vec<UnixStream> = (0..2)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    e.wait_sample(r#"model_exporter_connections_open{transport="unix"}"#, 2.0);
    // The third is accepted and closed at once: its event is not read.
    let mut third = UnixStream::connect(&sock).unwrap();
    let _ = third.write_all(b"{\"model\":\"over\"}\n");
    e.wait_sample(
        r#"model_exporter_connections_closed_total{reason="limit",transport="unix"}"#,
        1.0,
    );
    // The held connections still work, and so do new ones once they close.
    let mut first = &held[0];
    first.write_all(b"{\"model\":\"held\"}\n").unwrap();
    e.wait_sample(
        r#"model_requests_total{model="held",outcome="ok",version=""}"#,
        1.0,
    );
    drop(held);
    e.wait_sample(r#"model_exporter_connections_open{transport="unix"}"#, 0.0);
    send_unix(&sock, b"{\"model\":\"later\"}\n");
    e.wait_sample(
        r#"model_requests_total{model="later",outcome="ok",version=""}"#,
        1.0,
    );
    assert_eq!(
        e.sample(r#"model_requests_total{model="over",outcome="ok",version=""}"#),
        None
    );
    // A connection that has ended no longer counts against the limit: with
    // one held, over and over, close the second, see it gone, open the next.
    // The listener's count falls before the gauge does, so a connection
    // opened as soon as the gauge shows the last one gone is never refused.
    let _keep = UnixStream::connect(&sock).unwrap();
    e.wait_sample(r#"model_exporter_connections_open{transport="unix"}"#, 1.0);
    for i in 0..30 {
        let mut c = UnixStream::connect(&sock).unwrap();
        c.write_all(b"{\"model\":\"again\"}\n").unwrap();
        drop(c);
        e.wait_sample(
            r#"model_requests_total{model="again",outcome="ok",version=""}"#,
            f64::from(i + 1),
        );
        e.wait_sample(r#"model_exporter_connections_open{transport="unix"}"#, 1.0);
    }
    assert_eq!(
        e.sample(r#"model_exporter_connections_closed_total{reason="limit",transport="unix"}"#),
        Some(1.0)
    );
}

#[test]
fn tiny_events_go_to_the_aggregator_in_bounded_batches() {
    // 64 KiB of `{}` lines is about 21,000 events in one read, and a
    // datagram can hold thousands: each is sent in batches of at most 1,024,
    // so that the batch queue bounds the events waiting in memory.
    let e = Exporter::start(&[]);
    let batches = |e: &Exporter| {
        e.sample("model_exporter_event_batches_total")
            .unwrap_or(0.0)
    };
    let before = batches(&e);
    send_unix(&e.path("unix"), "{}\n".repeat(50_000).as_bytes());
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        50_000.0,
    );
    let stream = batches(&e) - before;
    assert!(stream >= 49.0, "50,000 events came in {stream} batches");

    send_unixgram(&e.path("unixgram"), "{}\n".repeat(20_000).as_bytes());
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        70_000.0,
    );
    let datagram = batches(&e) - before - stream;
    assert!(datagram >= 19.0, "20,000 events came in {datagram} batches");
}

/// An event with a key the protocol does not define is accepted (the key
/// ignored), and the key is counted by name and logged once, so a typo such
/// as `latency` for `latency_ms` shows up instead of silently losing the
/// latency.
#[test]
fn unknown_fields_are_counted_by_name_and_logged_once() {
    let e = Exporter::start(&[]);
    let mut payload = String::new();
    for _ in 0..3 {
        payload += r#"{"model":"m","version":"v1","latency":12,"ok":true}"#;
        payload.push('\n');
    }
    payload += r#"{"model":"m","version":"v1","latency_ms":5,"featurs":{"age":3}}"#;
    payload.push('\n');
    send_unix(&e.path("unix"), payload.as_bytes());
    e.wait_sample(
        r#"model_requests_total{model="m",outcome="ok",version="v1"}"#,
        4.0,
    );
    let m = e.metrics();
    let s = |series: &str| sample(&m, series).unwrap_or_else(|| panic!("no {series}\n{m}"));
    assert_eq!(
        s(r#"model_exporter_events_unknown_fields_total{field="latency"}"#),
        3.0
    );
    assert_eq!(
        s(r#"model_exporter_events_unknown_fields_total{field="featurs"}"#),
        1.0
    );
    // Only the event that had latency_ms has a latency.
    assert_eq!(
        s(r#"model_request_duration_seconds_count{model="m",version="v1"}"#),
        1.0
    );
    let logged: Vec<_> = e
        .log_lines()
        .into_iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("event with an unknown field"))
        })
        .map(|l| l["fields"]["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(logged, ["latency", "featurs"]);
}
