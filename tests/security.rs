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
    // Plain HTTP is not served on a TLS port.
    assert_eq!(curl(d, &format!("http://{}/metrics", e.web), &[]), 0);
    // The configured header is sent.
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(d.join("ca.crt"))
        .args(["-u", "prometheus:s3cret", &url])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .to_lowercase()
            .contains("x-content-type-options: nosniff")
    );
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
    assert_eq!(
        curl(d, &url, &[]),
        0,
        "no client certificate must fail the handshake"
    );
    let client = [
        "--cert",
        d.join("client.crt").to_str().unwrap().to_owned().leak(),
        "--key",
        d.join("client.key").to_str().unwrap().to_owned().leak(),
    ];
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
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a bcrypt hash"));
}
