//! The dashboard page in a real browser (headless Chromium, Debian package
//! `chromium`) against a running demo: the charts and the alert table render
//! with data, the page's script logs no error, and a screenshot is saved to
//! target/dashboard.png.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chromium(args: &[&str], profile: &std::path::Path) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,2600",
            "--virtual-time-budget=8000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("chromium not found: install the Debian package `chromium` (.ci/run does)")
}

#[test]
fn the_dashboard_renders_the_demo() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut demo = Command::new(binary())
        .args([
            "demo",
            "--speed",
            "120",
            "--duration",
            "40m",
            "--quiet",
            "--web.listen-address",
            &addr,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the story has alerts firing.
    let web: std::net::SocketAddr = addr.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(web).is_ok() {
            let (_, _, body) = http_get(web, "/api/v1/alerts");
            if body.matches("\"firing\"").count() >= 3 {
                break;
            }
        }
        if let Ok(Some(status)) = demo.try_wait() {
            panic!("the demo exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the demo never fired three alerts"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A client library reports it lost events: the model gets a badge.
    let socket = std::env::temp_dir()
        .join(format!("model-exporter-demo-{}", demo.id()))
        .join("events.sock");
    send_unix(
        &socket,
        br#"{"type":"client","model":"fraud","dropped":{"queue_full":12},"values_omitted":2}
"#,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http_get(web, "/api/v1/summary")
        .2
        .contains("\"queue_full\":12")
    {
        assert!(Instant::now() < deadline, "the client report never arrived");
        std::thread::sleep(Duration::from_millis(50));
    }

    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/");
    let dom = chromium(&["--dump-dom", &url], profile.path());
    let html = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    // The page's own sections, filled in by its script.
    assert!(
        html.contains("data-model=\"fraud\""),
        "no fraud section:\n{html}"
    );
    assert!(html.contains("data-model=\"reco\""), "no reco section");
    for title in [
        "Latency",
        "Requests",
        "Error rate",
        "Positive prediction rate",
        "Confidence",
        "Click-through rate",
        "Feature drift",
        "Distribution: age",
    ] {
        assert!(html.contains(&format!("<h3>{title}")), "no {title} chart");
    }
    // Charts with data: drawn lines, and bars of the distributions.
    assert!(
        html.matches("<path d=\"M").count() >= 10,
        "too few lines drawn"
    );
    assert!(html.matches("<rect ").count() >= 20, "no distribution bars");
    // The alert table has firing rows.
    assert!(
        html.matches("class=\"state-firing\"").count() >= 3,
        "alerts not rendered"
    );
    assert!(
        html.contains("client lost events: 12 queue full, 2 values left out"),
        "no badge for the client's losses"
    );
    assert!(
        html.contains("<span id=\"status\">updated "),
        "the page did not load its data"
    );
    // No script error in the console.
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("Error")))
        .collect();
    assert!(errors.is_empty(), "console errors:\n{}", errors.join("\n"));

    let shot = concat!(env!("CARGO_MANIFEST_DIR"), "/target/dashboard.png");
    let out = chromium(&[&format!("--screenshot={shot}"), &url], profile.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(shot).unwrap().len() > 10_000);

    let _ = demo.kill();
    let _ = demo.wait();
}
