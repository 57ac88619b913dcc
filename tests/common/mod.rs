//! Test harness: starts the real binary on temporary sockets and port 0,
//! learns the bound addresses from its JSON log, and scrapes /metrics; or
//! runs the exporter inside the test ([`InProcess`]) on a manual clock, for
//! tests about the passage of time.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use serde_json::Value;

pub mod alerting;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Upper bound for waiting on the exporter; generous, never a performance claim.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_model-exporter")
}

#[derive(Default)]
struct Log {
    lines: Vec<serde_json::Value>,
    closed: bool,
}

/// `--events.listen` flags for one listener of each transport: socket
/// files in `dir`, TCP and UDP on port 0.
pub fn listener_flags(dir: &Path) -> Vec<String> {
    [
        format!("unix://{}", dir.join("events.sock").display()),
        format!("unixgram://{}", dir.join("events.dgram.sock").display()),
        "tcp://127.0.0.1:0".into(),
        "udp://127.0.0.1:0".into(),
    ]
    .into_iter()
    .flat_map(|l| ["--events.listen".to_owned(), l])
    .collect()
}

/// A running exporter.
pub struct Exporter {
    child: Option<Child>,
    log: Arc<(Mutex<Log>, Condvar)>,
    pub dir: tempfile::TempDir,
    pub web: SocketAddr,
    /// Bound event listeners by transport ("unix", "unixgram", "tcp", "udp").
    pub events: HashMap<String, String>,
}

impl Exporter {
    /// Starts the exporter with listeners of every transport.
    pub fn start(extra: &[&str]) -> Exporter {
        Self::start_with(extra, true)
    }

    /// Starts the exporter with listeners of every transport and these
    /// rules, written to `rules.yaml` in its directory (so a test can change
    /// them there later).
    pub fn start_with_rules(rules: &str, extra: &[&str]) -> Exporter {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, rules).unwrap();
        let mut args = vec!["--config.file", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        Self::start_in(dir, &args, true)
    }

    /// Where [`Exporter::start_with_rules`] wrote the rules.
    pub fn rules_path(&self) -> PathBuf {
        self.dir.path().join("rules.yaml")
    }

    /// Starts the exporter; with `all_listeners`, one of each transport in a
    /// temporary directory is added to `extra`.
    pub fn start_with(extra: &[&str], all_listeners: bool) -> Exporter {
        Self::start_in(tempfile::tempdir().unwrap(), extra, all_listeners)
    }

    fn start_in(dir: tempfile::TempDir, extra: &[&str], all_listeners: bool) -> Exporter {
        let mut args: Vec<String> = vec![
            "--web.listen-address".into(),
            "127.0.0.1:0".into(),
            "--log.format".into(),
            "json".into(),
        ];
        if all_listeners {
            args.extend(listener_flags(dir.path()));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(Command::new(binary()).args(&args), dir).expect("exporter did not start")
    }

    /// Spawns a prepared command and waits for it to report that it started.
    pub fn spawn(cmd: &mut Command, dir: tempfile::TempDir) -> Result<Exporter, String> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log: Arc<(Mutex<Log>, Condvar)> = Arc::default();
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "fields": { "message": line } }));
                l2.0.lock().unwrap().lines.push(v);
                l2.1.notify_all();
            }
            l2.0.lock().unwrap().closed = true;
            l2.1.notify_all();
        });
        let mut e = Exporter {
            child: Some(child),
            log,
            dir,
            web: "0.0.0.0:0".parse().unwrap(),
            events: HashMap::new(),
        };
        e.wait_log("model-exporter started")
            .ok_or_else(|| format!("exporter did not start:\n{}", e.log_text()))?;
        for v in e.log_lines() {
            let f = &v["fields"];
            let addr = f["address"].as_str().unwrap_or_default().to_owned();
            match f["message"].as_str() {
                Some("serving HTTP") => e.web = addr.parse().unwrap(),
                Some("listening for events") => {
                    let (scheme, rest) = addr.split_once("://").unwrap();
                    e.events.insert(scheme.to_owned(), rest.to_owned());
                }
                _ => {}
            }
        }
        Ok(e)
    }

    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        self.log.0.lock().unwrap().lines.clone()
    }

    pub fn log_text(&self) -> String {
        self.log_lines()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits for a log line with this message; returns it.
    pub fn wait_log(&self, message: &str) -> Option<serde_json::Value> {
        let deadline = Instant::now() + PATIENCE;
        let mut g = self.log.0.lock().unwrap();
        loop {
            if let Some(v) = g
                .lines
                .iter()
                .find(|v| v["fields"]["message"].as_str() == Some(message))
            {
                return Some(v.clone());
            }
            let now = Instant::now();
            if g.closed || now >= deadline {
                return None;
            }
            g = self.log.1.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    pub fn path(&self, transport: &str) -> PathBuf {
        PathBuf::from(&self.events[transport])
    }

    /// GET a path; returns (status, content type, body).
    pub fn get(&self, path: &str) -> (u16, String, String) {
        http_get(self.web, path)
    }

    pub fn metrics(&self) -> String {
        let (status, _, body) = self.get("/metrics");
        assert_eq!(status, 200);
        body
    }

    /// The value of one sample, `name{labels}` exactly as exposed.
    pub fn sample(&self, series: &str) -> Option<f64> {
        sample(&self.metrics(), series)
    }

    /// Waits until a sample reaches `want` (events are applied asynchronously).
    pub fn wait_sample(&self, series: &str, want: f64) {
        wait_sample(self.web, series, want);
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(mut self) -> (ExitStatus, Vec<serde_json::Value>) {
        let mut child = self.child.take().unwrap();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = wait_timeout(&mut child, PATIENCE).expect("exporter did not exit");
        let deadline = Instant::now() + PATIENCE;
        while !self.log.0.lock().unwrap().closed && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        (status, self.log_lines())
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The /metrics text of the exporter serving at `web`.
pub fn metrics(web: SocketAddr) -> String {
    let (status, _, body) = http_get(web, "/metrics");
    assert_eq!(status, 200);
    body
}

/// Waits until a sample of the exporter at `web` reaches `want`.
pub fn wait_sample(web: SocketAddr, series: &str, want: f64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = metrics(web);
        let got = sample(&text, series);
        if got == Some(want) {
            return;
        }
        if Instant::now() > deadline {
            panic!("{series} is {got:?}, wanted {want}\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exporter run inside the test process by `server::start_with_clock`,
/// on a [`ManualClock`](model_exporter::clock::ManualClock) that moves only
/// when the test says, with listeners of every transport on temporary
/// sockets and port 0. The aggregator still evaluates on its real-time tick
/// (the rules' evaluation interval): a test moves the clock, then waits for
/// the next tick, instead of sleeping until time has passed.
pub struct InProcess {
    runtime: tokio::runtime::Runtime,
    running: Option<model_exporter::server::Running>,
    pub clock: model_exporter::clock::ManualClock,
    pub dir: tempfile::TempDir,
    pub web: SocketAddr,
    /// Bound event listeners by transport ("unix", "unixgram", "tcp", "udp").
    pub events: HashMap<String, String>,
}

impl InProcess {
    /// When the manual clock starts: 2026-11-29T12:00:00Z.
    pub const START: f64 = 1_795_953_600.0;

    /// Starts the exporter with these rules (written to `rules.yaml` in its
    /// directory) and flags.
    pub fn start_with_rules(rules: &str, extra: &[&str]) -> InProcess {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, rules).unwrap();
        let mut argv: Vec<String> = vec![
            "model-exporter".into(),
            "--config.file".into(),
            path.display().to_string(),
            "--web.listen-address".into(),
            "127.0.0.1:0".into(),
        ];
        argv.extend(listener_flags(dir.path()));
        argv.extend(extra.iter().map(|s| s.to_string()));
        let args = model_exporter::cli::Cli::try_parse_from(&argv).unwrap().run;
        let clock = model_exporter::clock::ManualClock::new(Self::START);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = runtime
            .block_on(model_exporter::server::start_with_clock(
                args,
                std::sync::Arc::new(clock.clone()),
            ))
            .unwrap_or_else(|e| panic!("exporter did not start: {e}"));
        let web = running.web_addrs()[0];
        let events = running
            .event_addrs()
            .iter()
            .map(|a| {
                let a = a.to_string();
                let (scheme, rest) = a.split_once("://").unwrap();
                (scheme.to_owned(), rest.to_owned())
            })
            .collect();
        InProcess {
            runtime,
            running: Some(running),
            clock,
            dir,
            web,
            events,
        }
    }

    /// Moves the exporter's clock forward.
    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    pub fn path(&self, transport: &str) -> PathBuf {
        PathBuf::from(&self.events[transport])
    }

    /// GET a path; returns (status, content type, body).
    pub fn get(&self, path: &str) -> (u16, String, String) {
        http_get(self.web, path)
    }

    pub fn metrics(&self) -> String {
        metrics(self.web)
    }

    /// Waits until a sample reaches `want` (events are applied asynchronously).
    pub fn wait_sample(&self, series: &str, want: f64) {
        wait_sample(self.web, series, want);
    }

    /// Shuts down in order and waits until it has stopped.
    pub fn stop(mut self) {
        if let Some(r) = self.running.take() {
            self.runtime.block_on(r.stop());
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.runtime.block_on(r.stop());
        }
    }
}

/// A throwaway CA (`ca.crt`, `ca.key`) in `dir`, a server certificate for
/// 127.0.0.1 (`server.crt`, `server.key`) and a client certificate
/// (`client.crt`, `client.key`), made with openssl.
pub fn certificates(dir: &Path) {
    let sh = |script: &str| {
        let out = Command::new("sh")
            .arg("-ec")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca 2>/dev/null",
    );
    sh("printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext");
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null",
    );
    sh(
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext 2>/dev/null",
    );
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=prometheus 2>/dev/null",
    );
    sh("printf 'extendedKeyUsage=clientAuth\\n' > client.ext");
    sh(
        "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 -extfile client.ext 2>/dev/null",
    );
}

/// curl's HTTP status for a request trusting `dir`/ca.crt, or 0 when the
/// connection failed.
pub fn curl(dir: &Path, url: &str, extra: &[&str]) -> u16 {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
            "--cacert",
        ])
        .arg(dir.join("ca.crt"))
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// A minimal HTTP/1.1 GET.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, ctype, body.to_owned())
}

/// The value of `series` (name and labels as exposed) in a text exposition.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        let v = rest.strip_prefix(' ')?;
        v.split(' ').next()?.parse().ok()
    })
}

/// Deterministic normal-ish values: the sum of 12 uniforms (Irwin-Hall).
pub struct Gen(pub u64);

impl Gen {
    pub fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn normal(&mut self, mean: f64, std: f64) -> f64 {
        let z: f64 = (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0;
        mean + std * z
    }
}

/// Writes training data (`csv`, with a header row) to `train.csv` in `dir`
/// and makes its baseline, `NAME.json` there, with `model-exporter
/// baseline`; returns the baseline's path.
pub fn make_baseline(dir: &Path, csv: &str, name: &str) -> PathBuf {
    let train = dir.join("train.csv");
    std::fs::write(&train, csv).unwrap();
    let out = dir.join(format!("{name}.json"));
    let o = Command::new(binary())
        .args(["baseline", "--input"])
        .arg(&train)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// Sends lines over a unix stream socket and closes it.
pub fn send_unix(path: &Path, payload: &[u8]) {
    let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
    s.write_all(payload).unwrap();
}

/// Sends one datagram over a unix datagram socket.
pub fn send_unixgram(path: &Path, payload: &[u8]) {
    let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
    s.send_to(payload, path).unwrap();
}

pub fn send_tcp(addr: &str, payload: &[u8]) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(payload).unwrap();
}

pub fn send_udp(addr: &str, payload: &[u8]) {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(payload, addr).unwrap();
}

/// A real Prometheus (Debian package `prometheus`) scraping given targets
/// every second and evaluating a rule file; killed when dropped.
pub struct Prometheus {
    child: Child,
    /// Its HTTP address.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts it and waits until it is ready.
    pub fn start(targets: &[SocketAddr], rules: &Path) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: ['{}']\n\
                 scrape_configs:\n  - job_name: model-exporter\n    static_configs:\n      - targets: [{}]\n",
                rules.display(),
                targets.join(", ")
            ),
        )
        .unwrap();
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
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
        while std::net::TcpStream::connect(p.addr).is_err() || http_get(p.addr, "/-/ready").0 != 200
        {
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The result vector of an instant query.
    /// The result vector of an instant query.
    pub fn query(&self, q: &str) -> Vec<Value> {
        let enc: String = q
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, _, body) = http_get(self.addr, &format!("/api/v1/query?query={enc}"));
        assert_eq!(status, 200, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"].as_array().unwrap().clone()
    }
}

/// Runs `promtool check metrics` on an exposition and asserts it reports
/// nothing.
pub fn promtool_check_metrics(text: &str) {
    use std::io::Write as _;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: install the Debian package `prometheus` (.ci/run does)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool failed:\n{report}\n{text}");
    assert!(report.trim().is_empty(), "promtool reported:\n{report}");
}

/// Writes `csv` (training data with a header row) to `dir/NAME.csv` and
/// makes a baseline of it with the real `model-exporter baseline` and the
/// options `extra`, written to `dir/NAME.json`; returns the baseline's path.
pub fn baseline_from_csv(dir: &Path, name: &str, csv: &str, extra: &[&str]) -> PathBuf {
    let train = dir.join(format!("{name}.csv"));
    std::fs::write(&train, csv).unwrap();
    let out_path = dir.join(format!("{name}.json"));
    run_ok(
        Command::new(binary())
            .arg("baseline")
            .args(extra)
            .arg("--input")
            .arg(&train)
            .arg("--out")
            .arg(&out_path),
    );
    out_path
}

/// Runs `model-exporter rules export RULES --out OUT`; returns what it wrote.
pub fn export_rules(rules: &Path, out: &Path) -> String {
    run_ok(
        Command::new(binary())
            .args(["rules", "export"])
            .arg(rules)
            .arg("--out")
            .arg(out),
    );
    std::fs::read_to_string(out).unwrap()
}

/// Runs a command to its end and asserts that it succeeded.
fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
