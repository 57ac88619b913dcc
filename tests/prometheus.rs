//! The fleet view: a real Prometheus (Debian package `prometheus`) scrapes
//! the exporter and evaluates the rules exported by `rules export`; for the
//! same traffic, Prometheus and the sidecar show the same alert firing.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

const RULES: &str = "
defaults: {window: 10s, evaluation_interval: 1s, min_samples: 5}
groups:
  - name: operational
    interval: 1s
    rules:
      - alert: HighErrorRate
        expr: error_rate > 5%
        for: 2s
        severity: critical
";

fn start_prometheus(target: SocketAddr, rules: &std::path::Path) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: ['{}']\n\
             scrape_configs:\n  - job_name: model-exporter\n    static_configs:\n      - targets: ['{target}']\n",
            rules.display()
        ),
    )
    .unwrap();
    let addr = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus not found: install the Debian package `prometheus` (.ci/run does)");
    let p = Prometheus { child, addr, dir };
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(p.addr).is_err() || http_get(p.addr, "/-/ready").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "Prometheus not ready:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    p
}

fn firing(body: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["data"]["alerts"].as_array().unwrap().iter().any(|a| {
        a["labels"]["alertname"] == "HighErrorRate"
            && a["labels"]["model"] == "fraud"
            && a["state"] == "firing"
    })
}

#[test]
fn prometheus_fires_the_exported_rule_like_the_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let exported = dir.path().join("exported.yml");
    let out = Command::new(binary())
        .args([
            "rules",
            "export",
            rules.to_str().unwrap(),
            "--format",
            "prometheus",
            "--out",
        ])
        .arg(&exported)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let e = Exporter::start(&["--config.file", rules.to_str().unwrap()]);
    let prom = start_prometheus(e.web, &exported);

    // Steady traffic with half of the requests failing, until both fire.
    let stop = Arc::new(AtomicBool::new(false));
    let sock = e.path("unix");
    let feeder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                send_unix(
                    &sock,
                    b"{\"model\":\"fraud\",\"latency_ms\":12}\n{\"model\":\"fraud\",\"latency_ms\":30,\"error\":\"timeout\"}\n",
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut sidecar, mut central) = (false, false);
    while !(sidecar && central) {
        sidecar = sidecar || firing(&e.get("/api/v1/alerts").2);
        central = central || firing(&http_get(prom.addr, "/api/v1/alerts").2);
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
            panic!(
                "sidecar firing: {sidecar}, Prometheus firing: {central}\n{}\n{}",
                http_get(prom.addr, "/api/v1/alerts").2,
                prom.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    // Prometheus' view of the sidecar's own alert agrees as well.
    let (_, _, q) = http_get(
        prom.addr,
        "/api/v1/query?query=model_alerts%7Balertname%3D%22HighErrorRate%22%2Calertstate%3D%22firing%22%7D",
    );
    assert!(q.contains("\"model\":\"fraud\""), "{q}");
}
