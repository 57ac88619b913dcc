//! Start-up, socket files, HTTP endpoints, environment variables and
//! graceful shutdown of the real binary.

mod common;

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::process::Command;

use common::*;

#[test]
fn http_endpoints() {
    let e = Exporter::start(&[]);
    let (status, ctype, body) = e.get("/metrics");
    assert_eq!(status, 200);
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    assert!(body.contains("# TYPE model_exporter_events_received_total counter"));
    assert!(body.contains("model_exporter_config_last_reload_successful 1"));
    // This build's version, the value always 1.
    let build = body
        .lines()
        .find(|l| l.starts_with("model_exporter_build_info{revision="))
        .unwrap_or_else(|| panic!("no build_info\n{body}"));
    assert!(
        build.ends_with(&format!(",version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))),
        "{build}"
    );
    // The process collector measures this process: at least a megabyte
    // resident, started within the last minute.
    let rss = sample(&body, "process_resident_memory_bytes").unwrap();
    assert!(rss > 1e6 && rss < 1e9, "{rss}");
    let started = sample(&body, "process_start_time_seconds").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        started <= now + 1.0 && started > now - 60.0,
        "{started} vs {now}"
    );
    assert_eq!(e.get("/-/healthy").0, 200);
    assert_eq!(e.get("/-/ready").0, 200);
    let (status, ctype, body) = e.get("/");
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"));
    assert!(body.contains("href=\"/metrics\""));
    assert_eq!(e.get("/nope").0, 404);
}

#[test]
fn telemetry_path_is_configurable() {
    let e = Exporter::start(&["--web.telemetry-path", "/custom"]);
    assert_eq!(e.get("/custom").0, 200);
    assert_eq!(e.get("/metrics").0, 404);
}

#[test]
fn socket_files_get_their_mode_and_are_removed_on_exit() {
    let e = Exporter::start(&[]);
    let (unix, dgram) = (e.path("unix"), e.path("unixgram"));
    for p in [&unix, &dgram] {
        let meta = std::fs::metadata(p).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o660, "{}", p.display());
    }
    let (status, log) = e.stop();
    assert!(status.success(), "{status:?}");
    assert!(
        !unix.exists() && !dgram.exists(),
        "socket files left: {} {}; log: {log:#?}",
        unix.exists(),
        dgram.exists()
    );

    let e = Exporter::start(&["--events.socket-mode", "0600"]);
    let mode = std::fs::metadata(e.path("unix"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    // A socket file left behind by a process that died.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let listen = format!("unix://{}", path.display());
    let first = Exporter::start_with(&["--events.listen", &listen], false);
    send_unix(&path, b"{}\n");
    first.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        1.0,
    );

    // A second exporter on the same path must refuse, not steal it.
    let out = Command::new(binary())
        .args([
            "--events.listen",
            &listen,
            "--web.listen-address",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by a running process"), "{err}");
    // ...and the first one still owns a working socket.
    send_unix(&path, b"{}\n");
    first.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        2.0,
    );
}

#[test]
fn a_file_in_the_way_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notasocket");
    std::fs::write(&path, "data").unwrap();
    let out = Command::new(binary())
        .args([
            "--events.listen",
            &format!("unix://{}", path.display()),
            "--web.listen-address",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a socket"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "data");
}

#[test]
fn flags_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("env.sock");
    let mut cmd = Command::new(binary());
    cmd.env("MODEL_EXPORTER_WEB_LISTEN_ADDRESS", "127.0.0.1:0")
        .env("MODEL_EXPORTER_LOG_FORMAT", "json")
        .env(
            "MODEL_EXPORTER_EVENTS_LISTEN",
            format!("unix://{},tcp://127.0.0.1:0", sock.display()),
        )
        .env("MODEL_EXPORTER_WEB_TELEMETRY_PATH", "/m");
    let e = Exporter::spawn(&mut cmd, dir).unwrap();
    assert!(e.events.contains_key("unix") && e.events.contains_key("tcp"));
    assert_eq!(e.events.len(), 2);
    assert_eq!(e.get("/m").0, 200);
}

#[test]
fn sigterm_drains_buffered_events_and_exits_zero() {
    let e = Exporter::start(&[]);
    // The client keeps its connection open; the exporter must still apply
    // every event it was sent before the signal.
    let mut c = UnixStream::connect(e.path("unix")).unwrap();
    let payload: String = (0..5000)
        .map(|i| format!("{{\"model\":\"m\",\"latency_ms\":{i}}}\n"))
        .collect();
    c.write_all(payload.as_bytes()).unwrap();
    for _ in 0..20 {
        send_unixgram(&e.path("unixgram"), b"{\"model\":\"g\"}");
    }
    let (status, log) = e.stop();
    assert!(status.success(), "{status:?}");
    let stopped = log
        .iter()
        .find(|v| v["fields"]["message"] == "stopped")
        .expect("no 'stopped' log line");
    assert_eq!(stopped["fields"]["events_received"], 5020, "{stopped}");
    drop(c);
}

#[test]
fn listeners_that_cannot_bind_are_reported() {
    let out = Command::new(binary())
        .args([
            "--events.listen",
            "tcp://192.0.2.1:1",
            "--web.listen-address",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen on tcp://192.0.2.1:1"));

    let out = Command::new(binary())
        .args(["--events.listen", "file:///nonexistent/dir/x.jsonl"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir does not exist"));

    let out = Command::new(binary())
        .args(["--events.listen", "ftp://x:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scheme"));
}

#[test]
fn model_log_events_can_be_reemitted() {
    let e = Exporter::start(&["--log.model-events"]);
    send_unix(
        &e.path("unix"),
        b"{\"type\":\"log\",\"model\":\"fraud\",\"level\":\"error\",\"component\":\"inference\",\"message\":\"Feature missing\"}\n",
    );
    let line = e
        .wait_log("Feature missing")
        .expect("the model's log line was not re-emitted");
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["target"], "model");
    assert_eq!(line["fields"]["model"], "fraud");
    assert_eq!(line["fields"]["component"], "inference");
    // Without the flag the model's log stays out of the exporter's.
    let quiet = Exporter::start(&[]);
    send_unix(
        &quiet.path("unix"),
        b"{\"type\":\"log\",\"message\":\"hidden\"}\n",
    );
    quiet.wait_sample(r#"model_exporter_events_received_total{type="log"}"#, 1.0);
    assert!(!quiet.log_text().contains("hidden"));
}

#[test]
fn the_prediction_log_keeps_a_sample_of_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log/predictions.jsonl");
    let e = Exporter::start(&[
        "--prediction-log.path",
        path.to_str().unwrap(),
        "--prediction-log.sample-ratio",
        "1",
    ]);
    let lines: Vec<String> = (0..200)
        .map(|i| format!("{{\"model\":\"fraud\",\"id\":\"r-{i}\",\"latency_ms\":{i}}}"))
        .collect();
    send_unix(
        &e.path("unix"),
        (lines.join("\n") + "\nnot json\n").as_bytes(),
    );
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        200.0,
    );
    let (status, _) = e.stop();
    assert!(status.success());
    let written = std::fs::read_to_string(&path).unwrap();
    let got: Vec<&str> = written.lines().collect();
    assert_eq!(got, lines.iter().map(String::as_str).collect::<Vec<_>>());

    // Sampling: about a tenth by default.
    let path = dir.path().join("sampled.jsonl");
    let e = Exporter::start(&["--prediction-log.path", path.to_str().unwrap()]);
    let many: String = (0..5000).map(|_| "{}\n").collect();
    send_unix(&e.path("unix"), many.as_bytes());
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        5000.0,
    );
    e.stop();
    let n = std::fs::read_to_string(&path).unwrap().lines().count();
    assert!((300..=700).contains(&n), "{n} of 5000 sampled at 0.1");
}

/// A log written to a pipe (a container runtime, `kubectl logs`, a file)
/// carries no colour codes; they would show as `\x1b[2m…` there.
#[test]
fn text_logs_to_a_pipe_have_no_colour_codes() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--web.listen-address".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--log.format".to_owned(),
        "text".to_owned(),
    ];
    args.extend(listener_flags(dir.path()));
    let mut child = Command::new(binary())
        .args(&args)
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let started = line.contains("model-exporter started");
        seen.push(line);
        if started {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.iter().any(|l| l.contains("model-exporter started")),
        "the exporter did not start:\n{}",
        seen.join("\n")
    );
    assert!(
        seen.iter().all(|l| !l.contains('\x1b')),
        "colour codes in a piped log:\n{seen:?}"
    );
}
