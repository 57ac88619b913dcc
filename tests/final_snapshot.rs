//! A final snapshot that cannot be written at shutdown is an error: logged
//! whatever the rate limit on snapshot failures, with exit status 1, and the
//! older file there is not claimed as written.

mod common;

use common::*;

#[test]
fn a_full_disk_at_shutdown_fails_the_exit_and_keeps_the_old_snapshot() {
    let storage = tempfile::tempdir().unwrap();
    let args = [
        "--storage.path",
        storage.path().to_str().unwrap(),
        "--storage.snapshot-interval",
        "0s",
    ];
    // A first run writes its snapshot at shutdown.
    let e = Exporter::start(&args);
    send_unix(&e.path("unix"), b"{\"model\":\"fraud\"}\n");
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        1.0,
    );
    let (status, log) = e.stop();
    assert_eq!(status.code(), Some(0));
    assert!(
        log.iter()
            .any(|l| l["fields"]["message"] == "wrote the final snapshot")
    );
    let file = storage.path().join("snapshot.json");
    let old = std::fs::read(&file).unwrap();

    // The second run's disk is full when it stops: its temporary file is
    // /dev/full, where every write fails with ENOSPC.
    let e = Exporter::start(&args);
    send_unix(
        &e.path("unix"),
        b"{\"model\":\"fraud\"}\n{\"model\":\"reco\"}\n",
    );
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        2.0,
    );
    std::os::unix::fs::symlink("/dev/full", storage.path().join("snapshot.json.tmp")).unwrap();
    let (status, log) = e.stop();
    let text: Vec<String> = log.iter().map(|l| l.to_string()).collect();
    assert_eq!(status.code(), Some(1), "{text:#?}");
    let errors: Vec<&serde_json::Value> = log
        .iter()
        .filter(|l| l["level"] == "ERROR")
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("cannot write the final snapshot"))
        })
        .collect();
    assert!(!errors.is_empty(), "{text:#?}");
    let message = errors[0]["fields"]["message"].as_str().unwrap();
    assert!(message.contains("No space left on device"), "{message}");
    assert!(message.contains(file.to_str().unwrap()), "{message}");
    assert!(
        !log.iter()
            .any(|l| l["fields"]["message"] == "wrote the final snapshot"),
        "{text:#?}"
    );
    // The file there is the first run's, untouched.
    assert_eq!(std::fs::read(&file).unwrap(), old);
}
