//! --web.config.file: TLS, client certificates and basic authentication,
//! checked with curl over real TLS; promtool accepts the file.

mod common;

use std::process::Command;

use common::*;

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn tls_and_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  prometheus: '{hash}'\n\
             http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
        ),
    )
    .unwrap();
    let check = run(Command::new("promtool")
        .args(["check", "web-config"])
        .arg(&web));
    let said = String::from_utf8_lossy(&check.stdout) + String::from_utf8_lossy(&check.stderr);
    assert!(said.contains("SUCCESS"), "{said}");

    let e = Exporter::start(&["--web.config.file", web.to_str().unwrap()]);
    let url = format!("https://{}/metrics", e.web);
    let d = dir.path();
    assert_eq!(curl(d, &url, &["-u", "prometheus:s3cret"]), 200);
    assert_eq!(curl(d, &url, &["-u", "prometheus:wrong"]), 401);
    assert_eq!(curl(d, &url, &["-u", "someone:s3cret"]), 401);
    assert_eq!(curl(d, &url, &[]), 401);
    // Plain HTTP is not served on a TLS port: a plain request gets no HTTP
    // answer (the TLS stack answers with an alert or closes)...
    let plain = plain_request(e.web, "/metrics");
    assert!(
        !plain.starts_with(b"HTTP/"),
        "plain HTTP answered: {}",
        String::from_utf8_lossy(&plain)
    );
    // ...and the server is still there for TLS clients.
    assert_eq!(curl(d, &url, &["-u", "prometheus:s3cret"]), 200);
    // The configured header is sent, with the answer.
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(d.join("ca.crt"))
        .args(["-u", "prometheus:s3cret", &url])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        head.starts_with("http/1.1 200") || head.starts_with("http/2 200"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
}

/// The raw bytes a plain-text HTTP request to `addr` gets back before the
/// connection closes (or 10 s pass).
fn plain_request(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    // The TLS stack may close before the request is even written.
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    );
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

#[test]
fn client_certificates_are_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\n",
    )
    .unwrap();
    run(Command::new("promtool")
        .args(["check", "web-config"])
        .arg(&web));
    let e = Exporter::start(&["--web.config.file", web.to_str().unwrap()]);
    let url = format!("https://{}/-/healthy", e.web);
    let d = dir.path();
    // No client certificate: the handshake fails (curl has no status)...
    assert_eq!(
        curl(d, &url, &[]),
        0,
        "no client certificate must fail the handshake"
    );
    // ...and a plain request gets no HTTP answer either.
    assert!(!plain_request(e.web, "/-/healthy").starts_with(b"HTTP/"));
    let client = [
        "--cert",
        d.join("client.crt").to_str().unwrap().to_owned().leak(),
        "--key",
        d.join("client.key").to_str().unwrap().to_owned().leak(),
    ];
    // The server lived through both refusals.
    assert_eq!(curl(d, &url, &client), 200);
}

#[test]
fn a_bad_web_config_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "basic_auth_users:\n  alice: plaintext\n").unwrap();
    let out = Command::new(binary())
        .args(["--web.listen-address", "127.0.0.1:0", "--events.listen"])
        .arg(format!("unix://{}", dir.path().join("s.sock").display()))
        .arg("--web.config.file")
        .arg(&web)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a bcrypt hash"), "{err}");
    assert!(err.contains("alice"), "{err}");
}
