//! file:// listeners follow a JSON-lines file like `tail -F`: appends,
//! rotation by rename, truncation, and a file that appears later.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use common::*;

fn append(path: &Path, models: &[&str]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for m in models {
        writeln!(f, "{{\"model\":\"{m}\"}}").unwrap();
    }
}

fn count(e: &Exporter, model: &str, n: f64) {
    e.wait_sample(
        &format!(r#"model_requests_total{{model="{model}",outcome="ok",version=""}}"#),
        n,
    );
}

#[test]
fn follows_appends_rotation_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("predictions.jsonl");
    append(&path, &["before", "before", "before"]);
    let url = format!("file://{}", path.display());
    let e = Exporter::start_with(&["--events.listen", &url], false);

    // Only what is appended after start-up counts.
    append(&path, &["a"; 5]);
    count(&e, "a", 5.0);
    assert_eq!(
        e.sample(r#"model_requests_total{model="before",outcome="ok",version=""}"#),
        None
    );

    // Rotation by rename: the old file's last lines, then the new file.
    append(&path, &["old"; 2]);
    std::fs::rename(&path, dir.path().join("predictions.jsonl.1")).unwrap();
    append(&path, &["new"; 4]);
    count(&e, "new", 4.0);
    count(&e, "old", 2.0);

    // Truncation in place (copytruncate).
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    // Appending before the poll has seen the truncation could make the file
    // as long as before, and the new lines would be taken for read: append
    // once the exporter says it saw it.
    let seen = e.wait_log("file truncated; reading from its start");
    assert!(seen.is_some(), "truncation not seen:\n{}", e.log_text());
    append(&path, &["truncated"; 3]);
    count(&e, "truncated", 3.0);
    assert_eq!(
        e.sample(r#"model_exporter_events_received_total{type="inference"}"#),
        Some(14.0)
    );

    // Bad lines in the file are rejected like any other.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"not json\n").unwrap();
    e.wait_sample(
        r#"model_exporter_events_rejected_total{reason="invalid_json"}"#,
        1.0,
    );
}

#[test]
fn a_file_that_appears_later_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.jsonl");
    let url = format!("file://{}", path.display());
    let e = Exporter::start_with(&["--events.listen", &url], false);
    append(&path, &["late"; 3]);
    count(&e, "late", 3.0);
}

#[test]
fn from_beginning_reads_existing_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.jsonl");
    append(&path, &["old"; 7]);
    let url = format!("file://{}", path.display());
    let e = Exporter::start_with(
        &["--events.listen", &url, "--events.file-from-beginning"],
        false,
    );
    count(&e, "old", 7.0);
}

#[test]
fn a_large_append_is_sent_in_bounded_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let url = format!("file://{}", path.display());
    let e = Exporter::start_with(&["--events.listen", &url], false);
    // 100,000 events (1.6 MB) appended at once must reach the aggregator in
    // batches of at most 1,024 events plus one 64 KiB read's worth (about
    // 4,000 of these 16-byte lines), not as one batch of all of them.
    let batches = |e: &Exporter| {
        e.sample("model_exporter_event_batches_total")
            .unwrap_or(0.0)
    };
    let before = batches(&e);
    let line = "{\"model\":\"big\"}\n";
    std::fs::write(&path, line.repeat(100_000)).unwrap();
    count(&e, "big", 100_000.0);
    let sent = batches(&e) - before;
    assert!(sent >= 20.0, "100,000 events came in {sent} batches");
}
