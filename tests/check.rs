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

fn check(dir: &std::path::Path, rules: &str) -> (Option<i32>, String, String) {
    let file = dir.join("rules.yaml");
    std::fs::write(&file, rules).unwrap();
    let out = Command::new(binary())
        .arg("check")
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The mistakes a new user makes, each located and saying what to do.
#[test]
fn first_mistakes_are_located_and_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let name = dir.path().join("rules.yaml").display().to_string();
    let rule = |expr: &str| {
        format!("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: {expr}\n")
    };
    // (rules.yaml, expected fragment of the error)
    let cases = [
        (
            rule("error_rate > 5"),
            format!(
                "{name}:5:28: in expr: 'error_rate' is a fraction between 0 and 1, so a threshold of 5 can never be crossed; did you mean 5%?"
            ),
        ),
        (
            rule("psi(feature.mean radius) > 0.2"),
            format!(
                "{name}:5:32: in expr: unexpected 'radius)' in the arguments of psi(): a name with spaces must be quoted, e.g. feature.\"mean radius\""
            ),
        ),
        (
            "models:\n  *:\n    positive_threshold: 0.5\n".to_owned(),
            format!(
                "{name}:2:3: YAML syntax error: while parsing node, found unknown anchor; a '*' at the start of a value or key begins a YAML alias: to mean every model, quote it (\"*\":)"
            ),
        ),
    ];
    for (rules, want) in cases {
        let (code, _, err) = check(dir.path(), &rules);
        assert_eq!(code, Some(1), "{rules}\n{err}");
        assert!(err.contains(&want), "{rules}\nwant {want:?}\ngot:\n{err}");
    }
    // Quoted, the same name and key load.
    let (code, _, err) = check(
        dir.path(),
        "models:\n  \"*\":\n    positive_threshold: 0.5\ngroups:\n  - name: g\n    rules:\n      - alert: A\n        expr: psi(feature.\"mean radius\") > 0.2\n      - alert: B\n        expr: error_rate > 5%\n",
    );
    assert_eq!(code, Some(0), "{err}");
}

/// A rule naming a feature that the baseline of its model does not have
/// loads (the model may send it), with a located warning and a suggestion.
#[test]
fn a_feature_missing_from_the_baseline_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("train.csv"),
        "amount,age\n1,20\n2,30\n3,40\n",
    )
    .unwrap();
    let out = Command::new(binary())
        .current_dir(dir.path())
        .args(["baseline", "--input", "train.csv", "--out", "fraud.json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = dir.path().join("rules.yaml").display().to_string();
    let (code, out, err) = check(
        dir.path(),
        "models:\n  fraud:\n    baseline: fraud.json\n  other: {}\ngroups:\n  - name: g\n    rules:\n      - alert: A\n        expr: psi(feature.amout) > 0.2\n      - alert: B\n        expr: mean(feature.age) > 3\n      - alert: C\n        expr: mean(feature.size) > 3\n        match: {model: other}\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(": OK (1 groups, 3 rules, 2 models)"), "{out}");
    assert_eq!(
        err,
        format!(
            "{name}:9:27: warning: feature 'amout' is not in the baseline of 'fraud' (fraud.json): this rule has no reference to compare it with; did you mean 'amount'?\n"
        ),
        "only the misspelt name is warned of: 'age' is in the baseline, and 'other' has none"
    );
}
