//! Load for the `http://` listener: KServe-style request and response
//! CloudEvents (binary mode, v1 payloads, laid out as
//! tests/fixtures/cloudevents/kserve-v1-request.http) posted over
//! keep-alive connections, and the exporter's CPU time they cost.
//!
//! ```sh
//! model-exporter --events.listen http://127.0.0.1:9878 &
//! cargo run --release --example cloudevents_load -- \
//!     --target 127.0.0.1:9878 --pid $! --connections 4 --seconds 10 --rows 1
//! ```
//!
//! Prints CloudEvents and inferences (rows) sent, and per exporter
//! CPU-second (from /proc/PID/stat, user and system time).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use model_exporter::loadgen::cpu_seconds;

struct Options {
    target: String,
    pid: Option<u32>,
    connections: usize,
    seconds: f64,
    rows: usize,
}

fn options() -> Options {
    let mut o = Options {
        target: "127.0.0.1:9878".into(),
        pid: None,
        connections: 4,
        seconds: 10.0,
        rows: 1,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or_default();
        fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> T {
            value
                .parse()
                .unwrap_or_else(|_| panic!("bad value for {flag}: {value:?}"))
        }
        let flag = pair[0].as_str();
        match flag {
            "--target" => o.target = value.to_owned(),
            "--pid" => o.pid = Some(parse(flag, value)),
            "--connections" => o.connections = parse(flag, value),
            "--seconds" => o.seconds = parse(flag, value),
            "--rows" => o.rows = parse(flag, value),
            other => panic!(
                "unknown option {other} (--target HOST:PORT, --pid PID, --connections N, --seconds S, --rows N)"
            ),
        }
    }
    o
}

/// One CloudEvent as KServe's agent sends it.
fn event(kind: &str, id: &str, time: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: localhost:9878\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: {}\r\n\
         Ce-Component: predictor\r\nCe-Endpoint: \r\nCe-Id: {id}\r\nCe-Inferenceservicename: fraud\r\n\
         Ce-Metadata: {{}}\r\nCe-Namespace: models\r\nCe-Recordedtime: {time}\r\n\
         Ce-Source: fraud-predictor-6d8f9c7b5-x2x7q\r\nCe-Specversion: 1.0\r\nCe-Time: {time}\r\n\
         Ce-Type: org.kubeflow.serving.inference.{kind}\r\nContent-Type: application/json\r\n\
         Accept-Encoding: gzip\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads one answer; panics unless it is 200.
fn answer(r: &mut BufReader<TcpStream>, line: &mut String) {
    line.clear();
    r.read_line(line).expect("an answer");
    assert!(line.starts_with("HTTP/1.1 200"), "answered {line:?}");
    let mut len = 0usize;
    loop {
        line.clear();
        r.read_line(line).expect("a header");
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line
            .split_once(':')
            .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            len = v.1.trim().parse().expect("a length");
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).expect("the body");
}

fn main() {
    let o = options();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let rows = o.rows;
    // Four features per row, a predict_proba row per prediction.
    let request: String = format!(
        r#"{{"instances": [{}]}}"#,
        vec!["[35.5, 51000, 120.25, 3]"; rows].join(", ")
    );
    let response: String = format!(
        r#"{{"predictions":[{}]}}"#,
        vec!["[0.08,0.92]"; rows].join(",")
    );
    let cpu0 = o
        .pid
        .map(|p| cpu_seconds(p).expect("the exporter's CPU time"));
    let start = Instant::now();
    let threads: Vec<_> = (0..o.connections)
        .map(|c| {
            let (stop, sent) = (stop.clone(), sent.clone());
            let (target, request, response) = (o.target.clone(), request.clone(), response.clone());
            std::thread::spawn(move || {
                let s = TcpStream::connect(&target).expect("connect");
                s.set_nodelay(true).expect("nodelay");
                let mut w = s.try_clone().expect("clone");
                let mut r = BufReader::new(s);
                let mut line = String::new();
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("00000000-0000-4000-{c:04x}-{k:012x}");
                    w.write_all(&event("request", &id, "2026-11-29T12:00:00.1Z", &request))
                        .expect("send");
                    answer(&mut r, &mut line);
                    w.write_all(&event(
                        "response",
                        &id,
                        "2026-11-29T12:00:00.15Z",
                        &response,
                    ))
                    .expect("send");
                    answer(&mut r, &mut line);
                    k += 1;
                    sent.fetch_add(2, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(o.seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a sender");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let events = sent.load(Ordering::Relaxed);
    let inferences = events / 2 * rows as u64;
    println!(
        "connections {} rows_per_event {rows} seconds {elapsed:.1}",
        o.connections
    );
    println!(
        "cloudevents {events} ({:.0}/s), inferences {inferences} ({:.0}/s)",
        events as f64 / elapsed,
        inferences as f64 / elapsed
    );
    if let (Some(pid), Some(c0)) = (o.pid, cpu0) {
        let cpu = cpu_seconds(pid).expect("the exporter's CPU time") - c0;
        println!(
            "exporter_cpu_seconds {cpu:.2}: {:.0} cloudevents and {:.0} inferences per exporter CPU-second",
            events as f64 / cpu,
            inferences as f64 / cpu
        );
    }
}
