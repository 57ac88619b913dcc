//! docs/walkthrough.md, run: its `sh` blocks in order as one script, its
//! blocks marked `<!-- file: NAME -->` written as files first, in a
//! temporary directory with the built binary on PATH. The page cannot
//! drift from the product without this test failing.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the page holds: files to write, and the shell script.
struct Page {
    files: Vec<(String, String)>,
    script: String,
}

/// Reads fenced blocks: a block right after `<!-- file: NAME -->` is a
/// file; a `sh` block is part of the script; others are left alone.
fn read_page(text: &str) -> Page {
    let mut page = Page {
        files: Vec::new(),
        script: String::new(),
    };
    let mut file: Option<String> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(name) = line
            .strip_prefix("<!-- file: ")
            .and_then(|r| r.strip_suffix(" -->"))
        {
            file = Some(name.to_owned());
            continue;
        }
        let Some(lang) = line.strip_prefix("```") else {
            if !line.trim().is_empty() {
                file = None;
            }
            continue;
        };
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        match (file.take(), lang) {
            (Some(name), _) => page.files.push((name, body)),
            (None, "sh") => page.script.push_str(&body),
            _ => {}
        }
    }
    page
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_walkthrough_runs_as_written() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/walkthrough.md")).unwrap();
    let port = free_port().to_string();
    let page = read_page(&text.replace("9877", &port));
    let names: Vec<&str> = page.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["make_data.py", "rules.yaml", "serve.py"]);
    for command in [
        "model-exporter baseline",
        "model-exporter check",
        "model-exporter rules export",
        "model-exporter --config.file",
        "python3 serve.py healthy",
        "model-exporter report",
        "kill $EXPORTER",
    ] {
        assert!(page.script.contains(command), "{command} not in the script");
    }

    let dir = tempfile::tempdir().unwrap();
    for (name, body) in &page.files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let bin = Path::new(common::binary()).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut child = Command::new("bash")
        // The background jobs (the exporter) end with the script, however
        // it ends.
        .args([
            "-c",
            &format!(
                "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}",
                page.script
            ),
        ])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("TMPDIR", dir.path())
        .env("PYTHONPATH", root.join("clients/python/src"))
        .env_remove("MODEL_EXPORTER_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // On a timeout: SIGTERM lets the script's EXIT trap stop its jobs;
    // then the whole process group, in case.
    if status.is_none() {
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let waited = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() && Instant::now() < waited {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-9", "--", &format!("-{}", child.id())])
            .status();
        let _ = child.kill();
    }
    let _ = child.wait();
    let stdout = reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    let status = status.unwrap_or_else(|| panic!("timed out:\n{stdout}\n{stderr}"));
    assert!(
        status.success(),
        "the walkthrough failed ({status}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );

    // What the page says the reader will see.
    assert!(
        stdout.contains("rules.yaml: OK (1 groups, 2 rules, 1 models)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("baselines/churn.json: 5000 rows, 3 features (2 numeric, 1 categorical)"),
        "{stdout}"
    );
    let alerts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("model_alerts{alertname=\"FeatureDrift\""))
        .collect();
    assert!(
        alerts
            .iter()
            .any(|l| l.contains("alertstate=\"firing\"")
                && l.contains("feature=\"monthly_charges\"")),
        "{stdout}"
    );
    assert!(
        alerts
            .iter()
            .all(|l| l.contains("feature=\"monthly_charges\"")),
        "only the shifted feature alerts: {alerts:?}"
    );
}

#[test]
fn the_page_reader_finds_files_and_script() {
    let page = read_page(
        "<!-- file: a.py -->\n```python\nprint(1)\n```\n\n```sh\necho hi\n```\n```python\nnot run\n```\n<!-- file: b -->\n\ntext\n```sh\necho two\n```\n",
    );
    assert_eq!(page.files, [("a.py".to_owned(), "print(1)\n".to_owned())]);
    // A marker followed by prose marks nothing.
    assert_eq!(page.script, "echo hi\necho two\n");
}
