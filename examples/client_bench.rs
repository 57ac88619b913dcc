//! The Rust client's cost per event, and its loss at a sustained rate,
//! against the real exporter (the same measurements as
//! clients/python/bench.py).
//!
//! ```text
//! cargo build --release
//! cargo run --release --example client_bench -- [EXPORTER] [EVENTS] [RATE] [SECONDS]
//! ```
//!
//! `EXPORTER` defaults to target/release/model-exporter, `EVENTS` (per
//! cost loop) to 200000, `RATE` to 50000 events a second for `SECONDS`
//! (60) over unixgram.
//!
//! Cost: loops of `client.inference(..)` with a latency, a prediction, a
//! confidence and 3 or 30 features, timed with `Instant` (wall) and
//! `getrusage` (the CPU of this process, flusher thread included), for no
//! listener, a hung exporter (a socket nobody reads), and the exporter over
//! unixgram and the unix stream. Rate: events sent at `RATE` a second,
//! paced every millisecond, each with its own id; then what the client
//! counts against what the exporter counts as received.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use model_exporter::client::Client;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn send(c: &Client, features: &[(String, f64)], id: Option<&str>) {
    let mut b = c
        .inference("fraud")
        .version("v3")
        .latency(Duration::from_micros(12_500))
        .prediction(1i64)
        .confidence(0.91);
    if let Some(id) = id {
        b = b.id(id);
    }
    for (name, v) in features {
        b = b.feature(name, *v);
    }
    b.send();
}

fn features(n: usize) -> Vec<(String, f64)> {
    (0..n)
        .map(|i| (format!("feature_{i:02}"), 0.5 + i as f64 * 1.37))
        .collect()
}

struct Exporter {
    child: Child,
    web: String,
}

impl Exporter {
    fn start(binary: &str, dir: &Path) -> Exporter {
        let mut child = Command::new(binary)
            .args([
                "--web.listen-address",
                "127.0.0.1:0",
                "--log.format",
                "json",
            ])
            .arg("--events.listen")
            .arg(format!("unixgram://{}", dir.join("d.sock").display()))
            .arg("--events.listen")
            .arg(format!("unix://{}", dir.join("e.sock").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the exporter");
        let mut web = None;
        let lines = BufReader::new(child.stderr.take().expect("stderr"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                let f = &v["fields"];
                let _ = tx.send((
                    f["message"].as_str().unwrap_or("").to_owned(),
                    f["address"].as_str().unwrap_or("").to_owned(),
                ));
            }
        });
        while let Ok((message, address)) = rx.recv_timeout(Duration::from_secs(30)) {
            if message == "serving HTTP" {
                web = Some(address);
            }
            if message == "model-exporter started" {
                break;
            }
        }
        Exporter {
            child,
            web: web.expect("the exporter did not start"),
        }
    }

    fn received(&self) -> f64 {
        let mut s = TcpStream::connect(&self.web).expect("connect");
        write!(s, "GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n", self.web).expect("request");
        let mut body = String::new();
        s.read_to_string(&mut body).expect("response");
        body.lines()
            .find_map(|l| {
                l.strip_prefix(r#"model_exporter_events_received_total{type="inference"} "#)
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn cost(name: &str, c: &Client, n: usize, feats: &[(String, f64)]) {
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for _ in 0..n {
        send(c, feats, None);
    }
    let wall = t0.elapsed().as_secs_f64() / n as f64 * 1e6;
    let cpu = (cpu_seconds() - c0) / n as f64 * 1e6;
    c.flush();
    let s = c.stats();
    println!(
        "{:2} features {name:<22} wall {wall:5.2} us  cpu {cpu:5.2} us  sent {}, dropped {} (queue_full {}, no_exporter {})",
        feats.len(),
        s.sent,
        s.dropped,
        s.queue_full,
        s.no_exporter
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let binary = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "target/release/model-exporter".into());
    let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let rate: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let seconds: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(60);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average {}",
        load.split(' ').take(3).collect::<Vec<_>>().join(" ")
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let e = Exporter::start(&binary, dir.path());
    let hung = dir.path().join("hung.sock");
    let _hung = UnixDatagram::bind(&hung).expect("bind");
    for nf in [3, 30] {
        let feats = features(nf);
        for (name, c) in [
            (
                "no listener",
                Client::unixgram(dir.path().join("nothing.sock")),
            ),
            ("hung exporter", Client::unixgram(&hung)),
            (
                "exporter, unixgram",
                Client::unixgram(dir.path().join("d.sock")),
            ),
            (
                "exporter, unix stream",
                Client::unix_stream(dir.path().join("e.sock")),
            ),
        ] {
            cost(name, &c, n, &feats);
        }
    }
    drop(e);

    let e = Exporter::start(&binary, dir.path());
    let c = Client::unixgram(dir.path().join("d.sock"));
    let feats = features(3);
    let per_ms = rate / 1000;
    let total = rate * seconds;
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut in_calls = Duration::ZERO;
    let (mut sent, mut late) = (0u64, 0u64);
    while sent < total {
        let due = t0 + Duration::from_micros((sent / per_ms + 1) * 1000);
        let a = Instant::now();
        for i in sent..sent + per_ms {
            send(&c, &feats, Some(&format!("r-{i}")));
        }
        in_calls += a.elapsed();
        sent += per_ms;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else {
            late += 1;
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.stats().pending > 0 && Instant::now() < deadline {
        c.flush();
        std::thread::sleep(Duration::from_millis(10));
    }
    let s = c.stats();
    let mut got = e.received();
    while got < s.sent as f64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        got = e.received();
    }
    println!(
        "rate: {total} events in {elapsed:.1} s ({:.0}/s), {late} late milliseconds; in the calls {:.2} us/event; process CPU {:.2} us/event",
        total as f64 / elapsed,
        in_calls.as_secs_f64() / total as f64 * 1e6,
        cpu / total as f64 * 1e6
    );
    println!(
        "   client: sent {}, dropped {} (queue_full {}, no_exporter {}); exporter received {got}; lost {} ({:.3}%)",
        s.sent,
        s.dropped,
        s.queue_full,
        s.no_exporter,
        total as f64 - got,
        100.0 * (total as f64 - got) / total as f64
    );
}
