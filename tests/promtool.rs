//! `promtool check metrics` (from the Debian package `prometheus`) reports
//! nothing on a /metrics page that has every metric family populated.

mod common;

use common::*;

#[test]
fn promtool_accepts_the_exposition() {
    let e = Exporter::start(&[]);
    let lines = [
        r#"{"model":"fraud","version":"v3","id":"r-1","latency_ms":52.3,"prediction":1,"confidence":0.91,"features":{"age":35,"flag":true,"country":"DE","gone":null},"counters":{"shown":10,"clicked":2},"resources":{"cpu_percent":40,"memory_percent":55}}"#,
        r#"{"model":"fraud","version":"v3","latency_ms":900,"error":"timeout","prediction":"cat"}"#,
        r#"{"type":"feedback","model":"fraud","id":"r-1","actual":0}"#,
        r#"{"type":"model","model":"fraud","version":"v3","trained_at":"2026-11-01T00:00:00Z"}"#,
        r#"{"type":"log","model":"fraud","level":"warning","component":"loader"}"#,
        "not json",
    ];
    send_unix(&e.path("unix"), (lines.join("\n") + "\n").as_bytes());
    e.wait_sample(
        r#"model_exporter_events_rejected_total{reason="invalid_json"}"#,
        1.0,
    );
    e.wait_sample(r#"model_exporter_events_received_total{type="log"}"#, 1.0);
    let text = e.metrics();

    promtool_check_metrics(&text);
}
