//! What stands in the place of rules.yaml cannot hang or bloat the
//! exporter: a FIFO or a symlink to /dev/zero is refused (a failed reload,
//! told and counted, the running rules kept) while /metrics, /-/healthy and
//! SIGTERM keep working; a file past --config.max-bytes is refused too.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const RULES: &str = "
defaults: {evaluation_interval: 100ms}
groups:
  - name: ops
    rules:
      - alert: HighErrorRate
        expr: error_rate > 5%
";

const FAILURES: &str = r#"model_exporter_config_reloads_total{result="failure"}"#;

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Puts `replace` in the place of the rules file of a running exporter and
/// checks it survives it: `what` is how the error names it.
fn survives(replace: impl FnOnce(&Path), what: &str) {
    let e = Exporter::start_with_rules(RULES, &["--config.watch-interval", "100ms"]);
    let rules = e.rules_path();
    std::fs::remove_file(&rules).unwrap();
    replace(&rules);
    // The watcher notices, reloads and fails: told once, counted.
    wait_until("the watcher's failed reload", || {
        e.sample(FAILURES) == Some(1.0)
    });
    let m = e.metrics();
    assert_eq!(
        sample(&m, "model_exporter_config_last_reload_successful"),
        Some(0.0)
    );
    let told = format!("it is {what}, not a regular file");
    let find = || {
        e.log_lines().into_iter().find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("reloading rules failed"))
        })
    };
    wait_until("the reload error in the log", || find().is_some());
    let line = find().unwrap();
    let message = line["fields"]["message"].as_str().unwrap();
    assert!(message.contains(&told), "{message}");
    assert!(message.contains(rules.to_str().unwrap()), "{message}");
    assert_eq!(line["level"], "ERROR");
    // SIGHUP tries again, and fails again without waiting on the file.
    unsafe { libc::kill(e.pid(), libc::SIGHUP) };
    wait_until("the SIGHUP's failed reload", || {
        e.sample(FAILURES) == Some(2.0)
    });
    // Everything still answers; the running rules are kept.
    assert_eq!(e.get("/-/healthy").0, 200);
    assert_eq!(e.get("/-/ready").0, 200);
    let (status, _, body) = e.get("/api/v1/rules");
    assert_eq!(status, 200);
    assert!(body.contains("HighErrorRate"), "{body}");
    let rss = e.sample("process_resident_memory_bytes").unwrap();
    assert!(rss < 200.0 * 1024.0 * 1024.0, "RSS {rss}");
    // And SIGTERM stops it.
    let (status, _) = e.stop();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_fifo_in_place_of_the_rules_file() {
    survives(mkfifo, "a FIFO");
}

#[test]
fn a_symlink_to_dev_zero_in_place_of_the_rules_file() {
    survives(
        |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
        "a character device",
    );
}

#[test]
fn a_directory_in_place_of_the_rules_file() {
    survives(|p| std::fs::create_dir(p).unwrap(), "a directory");
}

#[test]
fn rules_past_the_size_limit_or_not_a_file_do_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let run = |path: &Path, extra: &[&str]| {
        let out = Command::new(binary())
            .args(["--config.file", path.to_str().unwrap()])
            .args(["--web.listen-address", "127.0.0.1:0"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&rules, &["--config.max-bytes", "100"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{}: cannot read the rules file: it is larger than the limit of 100 bytes",
            rules.display()
        )),
        "{err}"
    );
    let fifo = dir.path().join("fifo.yaml");
    mkfifo(&fifo);
    let (code, err) = run(&fifo, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("it is a FIFO, not a regular file"), "{err}");
}
