//! Alerting harness: a real Alertmanager (Debian package
//! `prometheus-alertmanager`), a real Prometheus that sends its alerts to
//! one, and a [`Gate`] that makes an Alertmanager unreachable and
//! reachable again without losing its state.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{PATIENCE, Prometheus, http_get};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// An HTTP/1.0 GET (never a chunked answer, whatever its size): status
/// and body.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// A free port on the loopback interface.
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A running Alertmanager with a null receiver, killed when dropped.
pub struct Alertmanager {
    child: Child,
    /// Its HTTP address.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    /// Starts one and waits until it is ready.
    pub fn start() -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
        )
        .unwrap();
        let addr = free_port();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{ALERTMANAGER}: {e}; install the Debian package prometheus-alertmanager (.ci/run does)")
            });
        let mut am = Alertmanager { child, addr, dir };
        let deadline = Instant::now() + PATIENCE;
        loop {
            if TcpStream::connect(am.addr).is_ok() && http_get(am.addr, "/-/ready").0 == 200 {
                return am;
            }
            if let Ok(Some(status)) = am.child.try_wait() {
                panic!("Alertmanager exited ({status}):\n{}", am.log());
            }
            assert!(
                Instant::now() < deadline,
                "Alertmanager not ready:\n{}",
                am.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// The alerts `GET /api/v2/alerts?active=true` lists (resolved ones are
    /// never listed).
    pub fn active_alerts(&self) -> Vec<Value> {
        let (status, body) = get(self.addr, "/api/v2/alerts?active=true");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

/// A TCP forwarder in front of a server: while closed, connections to it
/// are refused and those open are cut, as if the server were down; the
/// server itself keeps running and keeps its state.
pub struct Gate {
    /// The address clients connect to.
    pub addr: SocketAddr,
    state: Arc<GateState>,
}

struct GateState {
    target: SocketAddr,
    open: AtomicBool,
    stop: AtomicBool,
    /// Both ends of every forwarded connection, cut when the gate closes.
    conns: Mutex<Vec<TcpStream>>,
}

impl Gate {
    /// An open gate to `target` on a free port.
    pub fn open_to(target: SocketAddr) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(GateState {
            target,
            open: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let s = state.clone();
        std::thread::spawn(move || s.serve(listener, addr));
        Gate { addr, state }
    }

    /// Refuses new connections and cuts the open ones.
    pub fn close(&self) {
        self.state.open.store(false, Ordering::SeqCst);
        for c in self.state.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Accepts connections again.
    pub fn reopen(&self) {
        self.state.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.close();
    }
}

impl GateState {
    /// Accepts while open; while closed, the port is not listened on, so
    /// connecting is refused.
    fn serve(self: Arc<Self>, first: TcpListener, addr: SocketAddr) {
        let mut listener = Some(first);
        while !self.stop.load(Ordering::SeqCst) {
            let open = self.open.load(Ordering::SeqCst);
            match (&listener, open) {
                (Some(_), false) => listener = None,
                (None, true) => match TcpListener::bind(addr) {
                    Ok(l) => listener = Some(l),
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                },
                _ => {}
            }
            let Some(l) = &listener else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            l.set_nonblocking(true).unwrap();
            match l.accept() {
                Ok((client, _)) => {
                    client.set_nonblocking(false).unwrap();
                    if let Ok(server) = TcpStream::connect(self.target) {
                        self.forward(client, server);
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn forward(&self, client: TcpStream, server: TcpStream) {
        {
            let mut conns = self.conns.lock().unwrap();
            conns.push(client.try_clone().unwrap());
            conns.push(server.try_clone().unwrap());
        }
        for (mut from, mut to) in [
            (client.try_clone().unwrap(), server.try_clone().unwrap()),
            (server, client),
        ] {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(Shutdown::Write);
            });
        }
    }
}

impl Prometheus {
    /// Starts a Prometheus scraping `targets` and evaluating `rules` every
    /// second, and sending its alerts to the Alertmanager at `alertmanager`.
    pub fn start_alerting(
        targets: &[SocketAddr],
        rules: &Path,
        alertmanager: SocketAddr,
    ) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: ['{}']\n\
                 alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager}']\n\
                 scrape_configs:\n  - job_name: model-exporter\n    static_configs:\n      - targets: [{}]\n",
                rules.display(),
                targets.join(", ")
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
        while TcpStream::connect(p.addr).is_err() || http_get(p.addr, "/-/ready").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }
}
