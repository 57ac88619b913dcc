//! The `http://` listener against the real binary: the inference loggers'
//! requests of tests/fixtures/cloudevents, posted byte for byte, become
//! the expected metrics; generated KServe traffic drifts from a baseline
//! and fires alerts; bad events are refused with a 4xx and counted.

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cloudevents")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A keep-alive HTTP/1.1 connection, as the loggers' Go client keeps one.
struct Conn(BufReader<TcpStream>);

impl Conn {
    fn open(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        Conn(BufReader::new(s))
    }

    /// Sends one whole request and reads the answer: (status, body).
    fn post(&mut self, request: &[u8]) -> (u16, String) {
        self.0.get_mut().write_all(request).unwrap();
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        let status: u16 = line
            .split(' ')
            .nth(1)
            .unwrap_or_else(|| panic!("no status line: {line:?}"))
            .parse()
            .unwrap();
        let mut len = 0;
        loop {
            line.clear();
            self.0.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.0.read_exact(&mut body).unwrap();
        (status, String::from_utf8(body).unwrap())
    }
}

/// A KServe (0.18 and later) logger request, laid out as its Go client
/// writes it; checked against the fixtures below.
fn kserve(kind: &str, id: &str, time: &str, recorded: &str, body: &str, isvc: &str) -> Vec<u8> {
    let mut r = String::new();
    write!(
        r,
        "POST / HTTP/1.1\r\nHost: localhost:9878\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: {}\r\n\
         Ce-Component: predictor\r\nCe-Endpoint: \r\nCe-Id: {id}\r\nCe-Inferenceservicename: {isvc}\r\n\
         Ce-Metadata: {{}}\r\nCe-Namespace: models\r\nCe-Recordedtime: {recorded}\r\n\
         Ce-Source: {isvc}-predictor-6d8f9c7b5-x2x7q\r\nCe-Specversion: 1.0\r\nCe-Time: {time}\r\n\
         Ce-Type: org.kubeflow.serving.inference.{kind}\r\nContent-Type: application/json\r\n\
         Accept-Encoding: gzip\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    r.into_bytes()
}

#[test]
fn the_generator_writes_what_the_fixtures_hold() {
    assert_eq!(
        String::from_utf8(kserve(
            "request",
            "6c1f5a7e-0b3d-4d8e-9f21-3a4b5c6d7e80",
            "2026-11-29T12:00:00.012345678Z",
            "2026-11-29T12:00:00.012401233Z",
            r#"{"instances": [[35, 120.5]]}"#,
            "fraud"
        ))
        .unwrap(),
        String::from_utf8(fixture("kserve-v1-request.http")).unwrap()
    );
    assert_eq!(
        kserve(
            "response",
            "6c1f5a7e-0b3d-4d8e-9f21-3a4b5c6d7e80",
            "2026-11-29T12:00:00.054345678Z",
            "2026-11-29T12:00:00.054399012Z",
            r#"{"predictions":[[0.08,0.92]]}"#,
            "fraud"
        ),
        fixture("kserve-v1-response.http")
    );
    let id = "3f2a9c1e-7d4b-4e8a-b6c5-1d0e9f8a7b6c";
    assert_eq!(
        kserve(
            "request",
            id,
            "2026-11-29T12:00:06.000200Z",
            "2026-11-29T12:00:06.000251Z",
            r#"{"instances": [[41, 87.25], [19, 15000.0]]}"#,
            "fraud"
        ),
        fixture("kserve-v1-error-request.http")
    );
    assert_eq!(
        kserve(
            "response",
            id,
            "2026-11-29T12:00:06.250200Z",
            "2026-11-29T12:00:06.250262Z",
            r#"{"error":"Failed to predict: could not convert string to float: 'n/a'"}"#,
            "fraud"
        ),
        fixture("kserve-v1-error-response.http")
    );
}

const RULES: &str = "defaults: {evaluation_interval: 200ms, window: 1m}
models:
  fraud:
    inference_logger: {features: [age, amount], classes: [legit, fraud]}
  iris-model:
    inference_logger: {service: iris/classifier, classes: [setosa, versicolor, virginica]}
";

fn start(rules: &str, extra: &[&str]) -> Exporter {
    let mut args = vec!["--events.listen", "http://127.0.0.1:0"];
    args.extend_from_slice(extra);
    Exporter::start_with_rules(rules, &args)
}

#[test]
fn logged_requests_and_responses_become_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("predictions.jsonl");
    let e = start(
        RULES,
        &[
            "--events.http.pending-ttl",
            "1s",
            "--prediction-log.path",
            log.to_str().unwrap(),
            "--prediction-log.sample-ratio",
            "1",
        ],
    );
    let mut c = Conn::open(&e.events["http"]);
    for name in [
        // A request before its response, alone and as a batch.
        "kserve-v1-request.http",
        "kserve-v1-response.http",
        "kserve-v1-batch-request.http",
        "kserve-v1-batch-response.http",
        // A v2 response before its request.
        "kserve-v2-response.http",
        "kserve-v2-request.http",
        // A response whose request was never logged, a request whose
        // response never comes.
        "kserve-v1-lone-response.http",
        "structured-request.http",
        // Seldon Core 1.
        "seldon-request.http",
        "seldon-response.http",
        "seldon-feedback.http",
    ] {
        assert_eq!(c.post(&fixture(name)), (200, String::new()), "{name}");
    }
    // The lone halves are taken after the 1s pending ttl; the request then
    // counts as failed, since this InferenceService logs its responses.
    e.wait_sample(
        r#"model_exporter_cloudevents_unpaired_total{half="request",reason="expired"}"#,
        1.0,
    );
    e.wait_sample(
        r#"model_requests_total{model="fraud",outcome="error",version=""}"#,
        1.0,
    );
    let m = e.metrics();
    let s = |series: &str| sample(&m, series).unwrap_or_else(|| panic!("no {series}\n{m}"));
    // fraud: 1 + 3 paired rows, the lone response, the failed request.
    assert_eq!(
        s(r#"model_requests_total{model="fraud",outcome="ok",version=""}"#),
        5.0
    );
    assert_eq!(
        s(r#"model_request_errors_total{error="no_response",model="fraud",version=""}"#),
        1.0
    );
    // Latency from the events' times: 42 ms, and 150 ms for each row of the batch.
    assert_eq!(
        s(r#"model_request_duration_seconds_count{model="fraud",version=""}"#),
        4.0
    );
    let sum = s(r#"model_request_duration_seconds_sum{model="fraud",version=""}"#);
    assert!((sum - 0.492).abs() < 1e-6, "{sum}");
    // predict_proba rows: the top class, named; its probability.
    assert_eq!(
        s(r#"model_predictions_total{class="fraud",model="fraud",version=""}"#),
        3.0
    );
    assert_eq!(
        s(r#"model_predictions_total{class="legit",model="fraud",version=""}"#),
        2.0
    );
    assert_eq!(
        s(r#"model_prediction_confidence_count{model="fraud",version=""}"#),
        5.0
    );
    // Features named by the configured list, or by the structured event's
    // object row.
    assert_eq!(
        s(r#"model_feature_value_count{feature="age",model="fraud",version=""}"#),
        5.0
    );
    assert_eq!(
        s(r#"model_feature_value_sum{feature="age",model="fraud",version=""}"#),
        181.0
    );
    // v2: the model_version of the response, features by tensor column.
    assert_eq!(
        s(r#"model_requests_total{model="fraud-v2",outcome="ok",version="3"}"#),
        2.0
    );
    assert_eq!(
        s(r#"model_feature_value_sum{feature="input-0.1",model="fraud-v2",version="3"}"#),
        1245.5
    );
    assert_eq!(
        s(r#"model_prediction_value_sum{model="fraud-v2",version="3"}"#),
        1.0
    );
    // Seldon: the graph node's model, mapped; the predictor is the version.
    assert_eq!(
        s(r#"model_predictions_total{class="setosa",model="iris-model",version="default"}"#),
        1.0
    );
    assert_eq!(
        s(
            r#"model_feature_value_sum{feature="petal_length",model="iris-model",version="default"}"#
        ),
        1.4
    );
    let lat = s(r#"model_request_duration_seconds_sum{model="iris-model",version="default"}"#);
    assert!((lat - 0.012).abs() < 1e-6, "{lat}");
    // Self-metrics.
    assert_eq!(s("model_exporter_cloudevents_paired_total"), 4.0);
    assert_eq!(
        s(r#"model_exporter_cloudevents_unpaired_total{half="response",reason="expired"}"#),
        1.0
    );
    assert_eq!(
        s(r#"model_exporter_cloudevents_total{protocol="v1",type="request"}"#),
        3.0
    );
    assert_eq!(
        s(r#"model_exporter_cloudevents_total{protocol="v2",type="response"}"#),
        1.0
    );
    assert_eq!(
        s(r#"model_exporter_cloudevents_total{protocol="seldon",type="feedback"}"#),
        1.0
    );
    assert_eq!(s("model_exporter_cloudevents_pending"), 0.0);
    assert_eq!(
        s(r#"model_exporter_connections_total{transport="http"}"#),
        1.0
    );
    promtool_check_metrics(&m);
    // The Seldon feedback carried its prediction (counted at the next
    // rule evaluation).
    e.wait_sample(r#"model_exporter_feedback_total{result="carried"}"#, 1.0);
    // The prediction log has every event made, as event lines.
    let (status, _) = e.stop();
    assert!(status.success());
    let written = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10, "{written}");
    let first = lines
        .iter()
        .find(|l| l["id"] == "6c1f5a7e-0b3d-4d8e-9f21-3a4b5c6d7e80")
        .unwrap();
    assert_eq!(
        (&first["model"], &first["prediction"], &first["confidence"]),
        (&"fraud".into(), &"fraud".into(), &0.92.into())
    );
    assert_eq!(
        first["features"],
        serde_json::json!({"age": 35.0, "amount": 120.5})
    );
    // 42 ms, to the precision of times as seconds since the epoch.
    assert!((first["latency_ms"].as_f64().unwrap() - 42.0).abs() < 1e-3);
    assert_eq!(lines.iter().filter(|l| l["type"] == "feedback").count(), 1);
}

#[test]
fn error_responses_count_as_failed_with_their_latency() {
    let e = start(RULES, &[]);
    let mut c = Conn::open(&e.events["http"]);
    for name in [
        // KServe v1: a batch of two rows, answered with an error 250 ms
        // later.
        "kserve-v1-error-request.http",
        "kserve-v1-error-response.http",
        // Seldon: a FAILURE status, the response first, 30 ms after its
        // request.
        "seldon-failure-response.http",
        "seldon-failure-request.http",
    ] {
        assert_eq!(c.post(&fixture(name)), (200, String::new()), "{name}");
    }
    e.wait_sample(
        r#"model_requests_total{model="iris-model",outcome="error",version="default"}"#,
        1.0,
    );
    e.wait_sample(
        r#"model_requests_total{model="fraud",outcome="error",version=""}"#,
        2.0,
    );
    let m = e.metrics();
    let s = |series: &str| sample(&m, series).unwrap_or_else(|| panic!("no {series}\n{m}"));
    // Each row of the failed batch is one failed request, none served.
    assert_eq!(
        s(r#"model_request_errors_total{error="model_error",model="fraud",version=""}"#),
        2.0
    );
    assert_eq!(
        s(
            r#"model_request_errors_total{error="model_error",model="iris-model",version="default"}"#
        ),
        1.0
    );
    for model in [
        r#"model="fraud",outcome="ok",version="""#,
        r#"model="iris-model",outcome="ok",version="default""#,
    ] {
        let ok = sample(&m, &format!("model_requests_total{{{model}}}")).unwrap_or(0.0);
        assert_eq!(ok, 0.0, "{model}: an error response counted as served\n{m}");
    }
    // Paired: the latency of the events' times, for every row.
    assert_eq!(s("model_exporter_cloudevents_paired_total"), 2.0);
    assert_eq!(
        s(r#"model_request_duration_seconds_count{model="fraud",version=""}"#),
        2.0
    );
    let sum = s(r#"model_request_duration_seconds_sum{model="fraud",version=""}"#);
    assert!((sum - 0.5).abs() < 1e-6, "{sum}");
    let sum = s(r#"model_request_duration_seconds_sum{model="iris-model",version="default"}"#);
    assert!((sum - 0.03).abs() < 1e-6, "{sum}");
    // The features of the failed requests are still taken; no prediction.
    assert_eq!(
        s(r#"model_feature_value_sum{feature="age",model="fraud",version=""}"#),
        60.0
    );
    assert!(!m.contains(r#"model_predictions_total{class="#), "{m}");
}

#[test]
fn bad_events_are_refused_with_why() {
    let e = start("", &["--events.http.max-body-bytes", "4096"]);
    let addr = e.events["http"].clone();
    let request = String::from_utf8(fixture("kserve-v1-request.http")).unwrap();
    let mut c = Conn::open(&addr);
    let cases: Vec<(String, u16, &str)> = vec![
        (
            request.replace("inference.request", "inference.started"),
            400,
            "rejected: unknown_type: CloudEvent type \"org.kubeflow.serving.inference.started\" is not",
        ),
        (
            request.replace("Ce-Inferenceservicename: fraud\r\n", ""),
            400,
            "rejected: missing_field: no header ce-inferenceservicename",
        ),
        (
            request.replace("Ce-Specversion: 1.0\r\n", ""),
            400,
            "rejected: missing_field: no header ce-specversion: not a CloudEvent",
        ),
        (
            request
                .replace("[[35, 120.5]]", "[[35, 120.5]")
                .replace("Content-Length: 28", "Content-Length: 27"),
            400,
            "rejected: invalid_json: the payload is not JSON",
        ),
        (
            request
                .replace("[[35, 120.5]]", r#"{"a":1} "#)
                .replace("Content-Length: 28", "Content-Length: 23"),
            400,
            "rejected: wrong_type: instances must be a list, found an object",
        ),
    ];
    for (req, status, why) in &cases {
        let (got, body) = c.post(req.as_bytes());
        assert_eq!(got, *status, "{body}");
        assert!(body.starts_with(why), "{body}");
    }
    // Too long: refused before the body is read.
    let big = format!(
        "{}{}",
        request
            .replace("Content-Length: 28", "Content-Length: 5000")
            .trim_end_matches(r#"{"instances": [[35, 120.5]]}"#),
        "x".repeat(5000)
    );
    let (status, body) = Conn::open(&addr).post(big.as_bytes());
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("--events.http.max-body-bytes"), "{body}");
    // Not a POST.
    let (status, _) = Conn::open(&addr).post(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 405);
    let m = e.metrics();
    for (reason, n) in [
        ("unknown_type", 1.0),
        ("missing_field", 2.0),
        ("invalid_json", 1.0),
        ("wrong_type", 1.0),
        ("too_long", 1.0),
    ] {
        assert_eq!(
            sample(
                &m,
                &format!(r#"model_exporter_events_rejected_total{{reason="{reason}"}}"#)
            ),
            Some(n),
            "{reason}"
        );
    }
    // Nothing became an event, and the other listeners are unaffected.
    send_unix(&e.path("unix"), b"{\"model\":\"m\"}\n");
    e.wait_sample(
        r#"model_requests_total{model="m",outcome="ok",version=""}"#,
        1.0,
    );
    assert!(!e.metrics().contains(r#"model="fraud""#));
}

/// Reads until the peer closes the connection or `PATIENCE` passes; what
/// was read.
fn read_to_close(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("not closed within {PATIENCE:?}: {e}; read {got:?}"),
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn stalled_requests_are_timed_out_and_others_still_served() {
    let e = start(RULES, &["--events.http.read-timeout", "1s"]);
    let addr = e.events["http"].clone();
    let request = fixture("kserve-v1-request.http");
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let served = |n: f64| {
        assert_eq!(
            Conn::open(&addr).post(&request),
            (200, String::new()),
            "a stalled request held up another"
        );
        e.wait_sample(
            r#"model_exporter_cloudevents_total{protocol="v1",type="request"}"#,
            n,
        );
    };
    // Part of the headers, then nothing: the connection is closed (hyper
    // answers nothing to a head that never ends) and counted, while
    // another connection is served.
    let mut half_head = TcpStream::connect(&addr).unwrap();
    half_head.write_all(&request[..head_end / 2]).unwrap();
    served(1.0);
    assert_eq!(read_to_close(&mut half_head), "");
    e.wait_sample(
        r#"model_exporter_connections_closed_total{reason="idle_timeout",transport="http"}"#,
        1.0,
    );
    // The headers and half the body, then nothing: answered 408 and
    // counted.
    let mut half_body = TcpStream::connect(&addr).unwrap();
    half_body
        .write_all(&request[..head_end + (request.len() - head_end) / 2])
        .unwrap();
    served(2.0);
    let answer = read_to_close(&mut half_body);
    assert!(
        answer.starts_with("HTTP/1.1 408 "),
        "no 408 for a stalled body: {answer:?}"
    );
    assert!(
        answer.contains("rejected: truncated: the body did not arrive within 1s"),
        "{answer:?}"
    );
    e.wait_sample(
        r#"model_exporter_events_rejected_total{reason="truncated"}"#,
        1.0,
    );
    // Only the whole requests were read.
    assert_eq!(
        e.sample(r#"model_exporter_cloudevents_total{protocol="v1",type="request"}"#),
        Some(2.0)
    );
}

#[test]
fn idle_connections_make_room_for_a_poster() {
    // A cap of 4 against 20 connections that send nothing: each past the
    // cap closes the one idle longest, so the logger still gets through.
    let e = start(
        RULES,
        &[
            "--events.max-connections",
            "4",
            "--events.http.read-timeout",
            "1m",
        ],
    );
    let addr = e.events["http"].clone();
    let mut idle: Vec<TcpStream> = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(&addr).unwrap());
        // Accepted in this order (the next connect waits for the count).
        e.wait_sample(
            r#"model_exporter_connections_total{transport="http"}"#,
            idle.len() as f64,
        );
    }
    let mut logger = Conn::open(&addr);
    assert_eq!(
        logger.post(&fixture("kserve-v1-request.http")),
        (200, String::new())
    );
    assert_eq!(
        logger.post(&fixture("kserve-v1-response.http")),
        (200, String::new())
    );
    // The 17 idlest were closed, oldest first; the newest 3 are open.
    for s in &mut idle[..17] {
        assert_eq!(read_to_close(s), "");
    }
    // Counted as each connection task ends, just after its socket closes.
    e.wait_sample(
        r#"model_exporter_connections_closed_total{reason="evicted",transport="http"}"#,
        17.0,
    );
    e.wait_sample(r#"model_exporter_connections_open{transport="http"}"#, 4.0);
    e.wait_sample(
        r#"model_requests_total{model="fraud",outcome="ok",version=""}"#,
        1.0,
    );
    assert_eq!(
        e.sample(r#"model_exporter_connections_closed_total{reason="limit",transport="http"}"#)
            .unwrap_or(0.0),
        0.0
    );
}

#[test]
fn a_large_batch_is_read_whole() {
    // 500 rows of 40 values (about 100 KiB): read on the blocking pool.
    let e = start("", &[]);
    let mut c = Conn::open(&e.events["http"]);
    let data = vec!["0.25"; 500 * 40].join(",");
    let req = format!(
        r#"{{"inputs": [{{"name": "x", "shape": [500, 40], "datatype": "FP32", "data": [{data}]}}]}}"#
    );
    assert!(req.len() > 64 * 1024);
    let labels = vec!["1"; 500].join(",");
    let resp = format!(
        r#"{{"model_name":"big","model_version":null,"outputs":[{{"name":"y","shape":[500],"datatype":"INT64","data":[{labels}]}}]}}"#
    );
    let t = "2026-11-29T12:00:00Z";
    assert_eq!(
        c.post(&kserve("request", "big-1", t, t, &req, "big")).0,
        200
    );
    assert_eq!(
        c.post(&kserve("response", "big-1", t, t, &resp, "big")).0,
        200
    );
    e.wait_sample(
        r#"model_requests_total{model="big",outcome="ok",version=""}"#,
        500.0,
    );
    assert_eq!(
        e.sample(r#"model_feature_value_sum{feature="x.39",model="big",version=""}"#),
        Some(125.0)
    );
}

#[test]
fn tls_with_client_certificates_from_the_events_web_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    let web = d.join("events-web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    )
    .unwrap();
    let e = start(
        "",
        &["--events.http.web-config.file", web.to_str().unwrap()],
    );
    let addr = e.events["http"].clone();
    // The headers of kserve-v1-request.http, posted with curl over TLS.
    let fixture = String::from_utf8(fixture("kserve-v1-request.http")).unwrap();
    let (head, body) = fixture.split_once("\r\n\r\n").unwrap();
    let mut post: Vec<&str> = Vec::new();
    for h in head
        .lines()
        .filter(|l| l.starts_with("Ce-") || l.starts_with("Content-Type"))
    {
        post.extend(["-H", h]);
    }
    post.extend(["--data-binary", body]);
    let curl = |url: &str, extra: &[&str]| -> u16 {
        let mut args = post.clone();
        args.extend_from_slice(extra);
        curl(d, url, &args)
    };
    let url = format!("https://{addr}/");
    let cert = [
        "--cert",
        d.join("client.crt").to_str().unwrap(),
        "--key",
        d.join("client.key").to_str().unwrap(),
    ]
    .map(str::to_owned);
    let cert: Vec<&str> = cert.iter().map(String::as_str).collect();
    assert_eq!(curl(&url, &cert), 200);
    assert_eq!(curl(&url, &[]), 0, "accepted without a client certificate");
    assert_eq!(
        curl(&format!("http://{addr}/"), &[]),
        0,
        "plain HTTP accepted"
    );
    assert_eq!(e.get("/metrics").0, 200, "/metrics keeps its own settings");
}

#[test]
fn basic_auth_from_the_events_web_config() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let web = dir.path().join("events-web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  kserve: '{hash}'\n")).unwrap();
    let e = start(
        "",
        &["--events.http.web-config.file", web.to_str().unwrap()],
    );
    let mut c = Conn::open(&e.events["http"]);
    let request = String::from_utf8(fixture("kserve-v1-request.http")).unwrap();
    assert_eq!(c.post(request.as_bytes()).0, 401);
    // kserve:s3cret
    let authed = request.replace(
        "Accept-Encoding: gzip\r\n",
        "Accept-Encoding: gzip\r\nAuthorization: Basic a3NlcnZlOnMzY3JldA==\r\n",
    );
    assert_eq!(c.post(authed.as_bytes()), (200, String::new()));
    // The metrics endpoint keeps its own settings (none here).
    assert_eq!(e.get("/metrics").0, 200);
}

#[test]
fn logged_traffic_drifts_from_its_baseline_and_fires_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gen(11);
    let mut csv = String::from("age,amount\n");
    for _ in 0..5000 {
        writeln!(
            csv,
            "{:.2},{:.2}",
            g.normal(35.0, 10.0),
            g.normal(100.0, 50.0)
        )
        .unwrap();
    }
    let baseline = make_baseline(dir.path(), &csv, "fraud");
    let rules = format!(
        "defaults: {{window: 3s, evaluation_interval: 200ms, min_samples: 200}}\n\
         models:\n  fraud:\n    baseline: {}\n    inference_logger: {{features: [age, amount]}}\n\
         groups:\n  - name: ml\n    rules:\n      - alert: FeatureDrift\n        expr: psi(feature.*) > 0.2\n\
         \x20     - alert: SlowModel\n        expr: p99(latency) > 100ms\n",
        baseline.display()
    );
    let e = start(&rules, &[]);
    let mut c = Conn::open(&e.events["http"]);
    let firing = |m: &str, alert: &str, feature: Option<&str>| {
        let f = feature.map_or(String::new(), |f| format!(r#"feature="{f}","#));
        m.contains(&format!(
            r#"model_alerts{{alertname="{alert}",alertstate="firing",{f}model="fraud",severity="warning",version=""}} 1"#
        ))
    };
    let deadline = Instant::now() + PATIENCE;
    let mut k = 0u32;
    let m = loop {
        // Batches of 50 rows whose age is shifted by half its mean; each
        // answered 250 ms after it came in, by the events' times.
        let mut rows = Vec::new();
        for _ in 0..50 {
            rows.push(format!(
                "[{:.2}, {:.2}]",
                g.normal(52.5, 10.0),
                g.normal(100.0, 50.0)
            ));
        }
        let id = format!("00000000-0000-4000-8000-{k:012}");
        let (t0, t1) = (
            format!("2026-11-29T12:{:02}:{:02}.1Z", k / 60 % 60, k % 60),
            format!("2026-11-29T12:{:02}:{:02}.35Z", k / 60 % 60, k % 60),
        );
        let req = format!(r#"{{"instances": [{}]}}"#, rows.join(", "));
        let resp = format!(r#"{{"predictions":[{}]}}"#, vec!["0"; 50].join(","));
        assert_eq!(
            c.post(&kserve("request", &id, &t0, &t0, &req, "fraud")).0,
            200
        );
        assert_eq!(
            c.post(&kserve("response", &id, &t1, &t1, &resp, "fraud")).0,
            200
        );
        k += 1;
        let m = e.metrics();
        if firing(&m, "FeatureDrift", Some("age")) && firing(&m, "SlowModel", None) {
            break m;
        }
        assert!(Instant::now() < deadline, "the alerts never fired:\n{m}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!firing(&m, "FeatureDrift", Some("amount")), "{m}");
    let psi = |f: &str| {
        sample(
            &m,
            &format!(
                r#"model_feature_drift{{feature="{f}",method="psi",model="fraud",version="",window="3s"}}"#
            ),
        )
        .unwrap()
    };
    assert!(psi("age") > 0.5, "age {}", psi("age"));
    assert!(psi("amount") < 0.1, "amount {}", psi("amount"));
}
