//! `model-exporter check FILE`: the built-in rules pass, a broken file lists
//! every error with file:line:column and exits 1.

mod common;

use std::process::Command;

use common::binary;

#[test]
fn the_shipped_rules_file_checks_clean() {
    let out = Command::new(binary())
        .args(["check", concat!(env!("CARGO_MANIFEST_DIR"), "/rules.yaml")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": OK ("));
}

#[test]
fn every_error_is_reported_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(
        &file,
        "defaults:\n  windw: 5m\ngroups:\n  - name: g\n    rules:\n      - alert: A\n        expr: p99(latncy) > 500ms\n      - alert: B\n        expr: error_rate > 5%\n        keep_fireing_for: 1m\n",
    )
    .unwrap();
    let out = Command::new(binary())
        .arg("check")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let name = file.display().to_string();
    for want in [
        format!("{name}:2:3: "),
        "did you mean 'window'".to_string(),
        format!("{name}:7:19: "),
        "did you mean 'latency'".to_string(),
        format!("{name}:10:9: "),
        "did you mean 'keep_firing_for'".to_string(),
        "3 error(s)".to_string(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn a_broken_config_file_stops_the_exporter_with_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, "groups: [\n").unwrap();
    let out = Command::new(binary())
        .args(["--web.listen-address", "127.0.0.1:0", "--events.listen"])
        .arg(format!("unix://{}", dir.path().join("s.sock").display()))
        .arg("--config.file")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:", file.display())), "{err}");
}

#[test]
fn a_missing_file_is_an_error() {
    let out = Command::new(binary())
        .args(["check", "/nonexistent/rules.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rules.yaml"));
}
