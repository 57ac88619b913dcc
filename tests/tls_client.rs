//! The HTTP client against TLS and basic authentication: `report` and
//! `loadgen --metrics-url` reach an exporter served with `--web.config.file`,
//! and alerts reach an Alertmanager over TLS with basic auth.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// A web config `name` in `dir` serving TLS with the server certificate
/// and requiring `user` with `password`, which is also written to the file
/// `password_file`; returns the web config's path.
fn web_config(dir: &Path, name: &str, user: &str, password: &str, password_file: &str) -> PathBuf {
    let hash = bcrypt::hash(password, 4).unwrap();
    let web = dir.join(name);
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  {user}: '{hash}'\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join(password_file), format!("{password}\n")).unwrap();
    web
}

/// TLS material, a web config with TLS and the user `prometheus`, the
/// user's password in `password` and a wrong one in `wrong`; returns the
/// web config's path.
fn tls_exporter_files(dir: &Path) -> PathBuf {
    certificates(dir);
    std::fs::write(dir.join("wrong"), "guess\n").unwrap();
    web_config(dir, "web.yml", "prometheus", "s3cret", "password")
}

/// Rules evaluated often, so that the summary the report reads is soon
/// published.
const RULES: &str = "defaults: {window: 1m, evaluation_interval: 200ms, min_samples: 1}\n\
    groups:\n  - name: g\n    rules:\n      - alert: Errors\n        expr: error_rate > 50%\n";

fn model_exporter(args: &[&str]) -> Output {
    Command::new(binary()).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn report_reaches_an_exporter_with_tls_and_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let web = tls_exporter_files(d);
    let e = Exporter::start_with_rules(RULES, &["--web.config.file", web.to_str().unwrap()]);
    send_unix(
        &e.path("unix"),
        b"{\"model\":\"fraud\",\"version\":\"v3\",\"latency_ms\":50,\"prediction\":1,\"confidence\":0.9}\n",
    );
    // The URL as a Prometheus user writes it, with /metrics.
    let url = format!("https://{}/metrics", e.web);
    let (ca, password, wrong) = (d.join("ca.crt"), d.join("password"), d.join("wrong"));
    let (ca, password, wrong) = (
        ca.to_str().unwrap(),
        password.to_str().unwrap(),
        wrong.to_str().unwrap(),
    );
    let report = |flags: &[&str]| model_exporter(&[&["report", "--url", &url], flags].concat());
    // Exit status 1, and what it said.
    let failure = |flags: &[&str]| {
        let out = report(flags);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {}", stderr(&out));
        stderr(&out)
    };
    let credentials = ["--username", "prometheus", "--password-file", password];
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        let out = report(&[&["--ca-file", ca][..], &credentials].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        if text.contains("Model fraud (version v3)") {
            break text;
        }
        assert!(Instant::now() < deadline, "the event never showed:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(text.contains("ML SYSTEM MONITORING REPORT"), "{text}");
    assert!(
        text.contains(&format!("https://{} at ", e.web)),
        "the report names the base URL:\n{text}"
    );

    // The same through a Prometheus-style http_config file, paths relative
    // to it.
    let http = d.join("http.yml");
    std::fs::write(
        &http,
        "basic_auth:\n  username: prometheus\n  password_file: password\ntls_config:\n  ca_file: ca.crt\n",
    )
    .unwrap();
    let out = report(&["--http-config.file", http.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A wrong password: a clear error and exit status 1.
    let err = failure(&[
        "--ca-file",
        ca,
        "--username",
        "prometheus",
        "--password-file",
        wrong,
    ]);
    assert!(
        err.starts_with(&format!(
            "model-exporter report: https://{}/api/v1/summary answered 401 Unauthorized: wrong or missing credentials",
            e.web
        )),
        "{err}"
    );
    // No credentials at all: the same.
    let err = failure(&["--ca-file", ca]);
    assert!(err.contains("401 Unauthorized"), "{err}");

    // A certificate the client cannot verify: refused before any request.
    let err = failure(&credentials);
    assert!(
        err.contains(&format!("cannot connect to {}", e.web)) && err.contains("UnknownIssuer"),
        "{err}"
    );
    // ... or a name the certificate is not for.
    let err = failure(&["--ca-file", ca, "--server-name", "elsewhere.example"]);
    assert!(
        err.contains("certificate not valid for name \"elsewhere.example\""),
        "{err}"
    );
    // Unless told not to verify (tests only).
    let out = report(&[&["--insecure-skip-verify"][..], &credentials].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    // Plain HTTP to the TLS port fails, rather than hanging.
    let plain = format!("http://{}", e.web);
    let out = model_exporter(&["report", "--url", &plain]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn loadgen_reads_the_counts_of_an_exporter_with_tls_and_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let web = tls_exporter_files(d);
    let e = Exporter::start(&["--web.config.file", web.to_str().unwrap()]);
    let http = d.join("http.yml");
    std::fs::write(
        &http,
        "basic_auth: {username: prometheus, password_file: password}\ntls_config: {ca_file: ca.crt}\n",
    )
    .unwrap();
    let out = model_exporter(&[
        "loadgen",
        "--target",
        &format!("unix://{}", e.path("unix").display()),
        "--rate",
        "1000",
        "--duration",
        "300ms",
        "--metrics-url",
        &format!("https://{}", e.web),
        "--http-config.file",
        http.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value = |key: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in\n{stdout}"))
    };
    assert!(value("sent_events") > 0.0, "{stdout}");
    assert_eq!(value("exporter_received"), value("sent_events"), "{stdout}");
}

/// An Alertmanager stand-in over TLS that requires basic auth (the
/// exporter's own web-config code serves both), recording the alerts of
/// authorised POSTs and counting refused ones.
struct TlsReceiver {
    addr: SocketAddr,
    alerts: Arc<Mutex<Vec<serde_json::Value>>>,
    refused: Arc<Mutex<usize>>,
    _runtime: tokio::runtime::Runtime,
}

impl TlsReceiver {
    fn start(web_config: &Path) -> TlsReceiver {
        use http_body_util::{BodyExt, Full};
        use hyper::service::service_fn;
        use hyper_util::rt::TokioIo;

        let web = model_exporter::webconfig::WebConfig::load(web_config).unwrap();
        let acceptor = web.tls.clone().expect("TLS configured");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let alerts: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let refused: Arc<Mutex<usize>> = Arc::default();
        let (a, r) = (alerts.clone(), refused.clone());
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, web, a, r) = (acceptor.clone(), web.clone(), a.clone(), r.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (web, a, r) = (web.clone(), a.clone(), r.clone());
                        async move {
                            let header = req
                                .headers()
                                .get(hyper::header::AUTHORIZATION)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            let path = req.uri().path().to_owned();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let mut resp = hyper::Response::new(Full::new(bytes::Bytes::new()));
                            if !web.authorized(header.as_deref()) {
                                *r.lock().unwrap() += 1;
                                *resp.status_mut() = hyper::StatusCode::UNAUTHORIZED;
                            } else if path != "/am/api/v2/alerts" {
                                *resp.status_mut() = hyper::StatusCode::NOT_FOUND;
                            } else {
                                let v: Vec<serde_json::Value> =
                                    serde_json::from_slice(&body).unwrap();
                                a.lock().unwrap().extend(v);
                            }
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        TlsReceiver {
            addr,
            alerts,
            refused,
            _runtime: runtime,
        }
    }
}

#[test]
fn alerts_reach_an_alertmanager_over_tls_with_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    let am_web = web_config(d, "am-web.yml", "exporter", "am-s3cret", "am-password");
    let am = TlsReceiver::start(&am_web);
    let http = d.join("alertmanager-http.yml");
    std::fs::write(
        &http,
        "basic_auth:\n  username: exporter\n  password_file: am-password\ntls_config:\n  ca_file: ca.crt\n",
    )
    .unwrap();
    let rules = "defaults: {window: 2s, evaluation_interval: 200ms, min_samples: 5}\n\
         groups:\n  - name: ops\n    rules:\n      - alert: HighErrorRate\n\
         \x20       expr: error_rate > 5%\n        severity: critical\n";
    let url = format!("https://{}/am", am.addr);
    let e = Exporter::start_with_rules(
        rules,
        &[
            "--alertmanager.url",
            &url,
            "--alertmanager.http-config.file",
            http.to_str().unwrap(),
        ],
    );
    let errors = "{\"model\":\"fraud\",\"error\":\"timeout\"}\n".repeat(20);
    let deadline = Instant::now() + PATIENCE;
    let alert = loop {
        send_unix(&e.path("unix"), errors.as_bytes());
        let got = am.alerts.lock().unwrap().clone();
        if let Some(a) = got
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "HighErrorRate")
        {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "no alert reached the receiver\n{}",
            e.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(alert["labels"]["model"], "fraud");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(
        *am.refused.lock().unwrap(),
        0,
        "a request without credentials"
    );
    // Counted once the receiver has answered, so possibly just after the
    // alert arrived: wait for it.
    let series = format!(r#"model_exporter_notifications_sent_total{{alertmanager="{url}"}}"#);
    let deadline = Instant::now() + PATIENCE;
    while e.sample(&series).unwrap_or(0.0) < 1.0 {
        assert!(Instant::now() < deadline, "no notification counted as sent");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_bad_alertmanager_http_config_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let http = dir.path().join("http.yml");
    for (text, want) in [
        (
            "tls_config:\n  ca_file: missing.crt\n",
            "invalid Alertmanager settings: tls_config.ca_file ",
        ),
        (
            "basic_auth:\n  username: a\n  password: b\n  password_file: c\n",
            "http.yml:2:3: basic_auth: password and password_file are mutually exclusive",
        ),
    ] {
        std::fs::write(&http, text).unwrap();
        let out = Command::new(binary())
            .args(["--web.listen-address", "127.0.0.1:0", "--events.listen"])
            .arg(format!("unix://{}", dir.path().join("s.sock").display()))
            .args(["--alertmanager.url", "https://127.0.0.1:9093"])
            .arg("--alertmanager.http-config.file")
            .arg(&http)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(want), "{text}: {}", stderr(&out));
    }
}
