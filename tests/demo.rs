//! `model-exporter demo`, the binary: its story fires the alerts it is
//! about and none for the wrong reason, it keeps serving after the story
//! until interrupted, and it says when `--duration` cuts the story off.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the demo; returns it and a channel of its stdout lines.
fn demo(extra: &[&str]) -> (std::process::Child, mpsc::Receiver<String>, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(binary())
        .arg("demo")
        .args(extra)
        .args(["--web.listen-address", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx, addr)
}

/// Reads lines until one contains `want`; returns every line read.
fn until(rx: &mpsc::Receiver<String>, want: &str, lines: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains(want);
                lines.push(line);
                if done {
                    return;
                }
            }
            Err(_) => panic!("no line with {want:?}; got:\n{}", lines.join("\n")),
        }
    }
}

#[test]
fn the_story_fires_for_the_right_reasons_then_the_demo_keeps_serving() {
    let (mut child, rx, addr) = demo(&["--speed", "100"]);
    let mut lines = Vec::new();
    until(&rx, "keeps serving", &mut lines);
    let text = lines.join("\n");
    assert!(!text.contains("shorter than"), "{text}");
    assert!(text.contains("Press Ctrl-C to stop."), "{text}");
    // Its confidence is the probability of the answer: never "low".
    assert!(text.contains("Low confidence=0.0%"), "{text}");

    // The alerts the story is about fire (on a loaded machine, perhaps only
    // after the story's end: the traffic goes on as at its end), and
    // LowConfidence never does.
    let web: std::net::SocketAddr = addr.parse().unwrap();
    let want = ["PredictionDrift", "FeatureDrift", "AccuracyDrop"];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, _, body) = http_get(web, "/api/v1/alerts");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let alerts = v["data"]["alerts"].as_array().unwrap();
        let firing = |name: &str| {
            alerts
                .iter()
                .any(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
        };
        assert!(
            !alerts
                .iter()
                .any(|a| a["labels"]["alertname"] == "LowConfidence"),
            "{body}"
        );
        if want.iter().all(|w| firing(w)) {
            // PredictionDrift is the fraud model's, against its baseline.
            assert!(body.contains("drifted from its baseline"), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all of {want:?} fired:\n{body}\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    while let Ok(line) = rx.try_recv() {
        lines.push(line);
    }
    let text = lines.join("\n");
    assert!(!text.contains("FIRING LowConfidence"), "{text}");

    // After the story: still serving, and the traffic goes on.
    let requests = || {
        sample(
            &metrics(web),
            r#"model_requests_total{model="reco",outcome="ok",version="v7"}"#,
        )
        .unwrap_or(0.0)
    };
    let first = requests();
    let deadline = Instant::now() + PATIENCE;
    while requests() <= first {
        assert!(Instant::now() < deadline, "no traffic after the story");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.try_wait().unwrap().is_none(), "the demo exited");
    let (status, _, body) = http_get(web, "/");
    assert_eq!(status, 200, "{body}");

    // Interrupted, it stops cleanly.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = wait_timeout(&mut child, PATIENCE).expect("the demo did not stop");
    assert!(status.success(), "{status}");
}

#[test]
fn a_short_duration_is_said_to_cut_the_story_off() {
    let (mut child, rx, _) = demo(&["--speed", "600", "--duration", "5m", "--quiet"]);
    // Quiet: nothing on stdout, but still serving after the story.
    assert!(rx.recv_timeout(Duration::from_secs(3)).is_err());
    assert!(child.try_wait().unwrap().is_none());
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(
        wait_timeout(&mut child, PATIENCE)
            .expect("no exit")
            .success()
    );

    let (mut child, rx, _) = demo(&["--speed", "600", "--duration", "5m"]);
    let mut lines = Vec::new();
    until(&rx, "keeps serving", &mut lines);
    let text = lines.join("\n");
    assert!(
        text.contains("note: --duration 05:00 is shorter than the 30:00 the whole story needs"),
        "{text}"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(
        wait_timeout(&mut child, PATIENCE)
            .expect("no exit")
            .success()
    );
}
