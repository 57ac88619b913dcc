//! Data quality driven by the baseline, through the real binary: without
//! expectations in rules.yaml, the baseline's type, range, categories and
//! features decide what is invalid (`wrong_type`), out of range, unseen and
//! missing; expectations written in rules.yaml still win.

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::*;

/// Training data: `age` from 18 to 80, `country` among three values (all
/// of them kept by `--top-k 3`: a closed set), `city` among five values of
/// which the top 3 are kept (the rest folded into `other`), `score`
/// sometimes missing.
fn training() -> String {
    let mut csv = String::from("age,country,city,score\n");
    for i in 0..400 {
        let age = 18 + (i * 13) % 63;
        let country = ["DE", "FR", "US"][i % 3];
        let city = [
            "Berlin", "Berlin", "Berlin", "Berlin", "Lyon", "Lyon", "Lyon", "Munich", "Munich",
            "Hamburg", "Nice",
        ][i % 11];
        let score = if i % 10 == 0 {
            String::new()
        } else {
            format!("{}", i % 5)
        };
        writeln!(csv, "{age},{country},{city},{score}").unwrap();
    }
    csv
}

/// Twenty events: ages 20..=35 plus two above the training maximum, one
/// string and one event without `age`; one unseen country and one null
/// country; cities the baseline does not list (`Hamburg` was in training,
/// `Paris` was not); `score` always sent.
fn traffic() -> String {
    let mut lines = String::new();
    for i in 0..20 {
        let age = match i {
            0 | 1 => "200".to_owned(),
            2 => "\"old\"".to_owned(),
            _ => format!("{}", 20 + i),
        };
        let country = match i {
            4 => "\"BR\"".to_owned(),
            5 => "null".to_owned(),
            _ => format!("\"{}\"", ["DE", "FR", "US"][i % 3]),
        };
        let city = ["Berlin", "Lyon", "Hamburg", "Paris"][i % 4];
        let age = if i == 3 {
            String::new()
        } else {
            format!(r#""age":{age},"#)
        };
        writeln!(
            lines,
            r#"{{"model":"fraud","features":{{{age}"country":{country},"city":"{city}","score":2}}}}"#
        )
        .unwrap();
    }
    lines
}

/// Every data-quality signal of every feature, as rules.
const RULES: &str = "
groups:
  - name: quality
    rules:
      - {alert: Invalid, expr: 'invalid_rate(feature.*) > 0.9'}
      - {alert: OutOfRange, expr: 'out_of_range_rate(feature.*) > 0.9'}
      - {alert: Unseen, expr: 'unseen_rate(feature.*) > 0.9'}
      - {alert: Missing, expr: 'missing_rate(feature.*) > 0.9'}
";

/// Starts the exporter with `models` (YAML of the `models:` key) and the
/// rules above, next to a baseline of [`training`] made with `--top-k 3`,
/// and sends [`traffic`]; returns it once every signal is computed.
fn run(models: &str) -> Exporter {
    let dir = tempfile::tempdir().unwrap();
    baseline_from_csv(dir.path(), "fraud", &training(), &["--top-k", "3"]);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "defaults: {{evaluation_interval: 200ms, min_samples: 1}}\nmodels:\n{models}{RULES}"
        ),
    )
    .unwrap();
    let e = Exporter::start(&["--config.file", rules.to_str().unwrap()]);
    // The exporter reads the files at start; the directory may go.
    drop(dir);
    send_unix(&e.path("unix"), traffic().as_bytes());
    let deadline = Instant::now() + PATIENCE;
    while signal(&e, "Missing", "age").is_none() {
        assert!(Instant::now() < deadline, "{}", e.metrics());
        std::thread::sleep(Duration::from_millis(50));
    }
    e
}

/// The value of rule `alert`'s signal for `feature` of `fraud`.
fn signal(e: &Exporter, alert: &str, feature: &str) -> Option<f64> {
    e.sample(&format!(
        r#"model_rule_signal_value{{alertname="{alert}",feature="{feature}",model="fraud",version=""}}"#
    ))
}

fn invalid_total(e: &Exporter, feature: &str, reason: &str) -> Option<f64> {
    e.sample(&format!(
        r#"model_feature_invalid_total{{feature="{feature}",model="fraud",reason="{reason}",version=""}}"#
    ))
}

#[test]
fn the_baseline_decides_what_is_invalid_out_of_range_unseen_and_missing() {
    let e = run("  fraud:\n    baseline: fraud.json\n");
    let rate = |alert: &str, feature: &str| signal(&e, alert, feature).unwrap_or(f64::NAN);
    // age: 2 above the maximum and 1 string in 20 events, 1 event without it.
    assert_eq!(rate("OutOfRange", "age"), 2.0 / 20.0);
    assert_eq!(rate("Invalid", "age"), 3.0 / 20.0);
    assert_eq!(rate("Missing", "age"), 1.0 / 20.0);
    assert_eq!(rate("Unseen", "age"), 0.0);
    assert_eq!(invalid_total(&e, "age", "out_of_range"), Some(2.0));
    assert_eq!(invalid_total(&e, "age", "wrong_type"), Some(1.0));
    assert_eq!(
        e.sample(r#"model_feature_missing_total{feature="age",model="fraud",version=""}"#),
        Some(1.0)
    );
    // Out-of-range values are still observed; the string is not.
    assert_eq!(
        e.sample(r#"model_feature_value_count{feature="age",model="fraud",version=""}"#),
        Some(18.0)
    );
    // country: a closed set; BR was never seen in training.
    assert_eq!(rate("Unseen", "country"), 1.0 / 20.0);
    assert_eq!(rate("Invalid", "country"), 1.0 / 20.0);
    assert_eq!(rate("Missing", "country"), 1.0 / 20.0);
    assert_eq!(invalid_total(&e, "country", "unseen_category"), Some(1.0));
    // city: the baseline kept only its top 3, so nothing is unseen.
    assert_eq!(rate("Unseen", "city"), 0.0);
    assert_eq!(rate("Invalid", "city"), 0.0);
    // score: numbers as in training.
    assert_eq!(rate("Invalid", "score"), 0.0);
    assert_eq!(rate("Missing", "score"), 0.0);
}

#[test]
fn expectations_in_rules_yaml_win_over_the_baseline() {
    let e = run(
        "  fraud:\n    baseline: fraud.json\n    features:\n      age: {min: 0, max: 300}\n      country: {categories: [DE, FR, US, BR]}\n      city: {categories: [Berlin, Lyon, Hamburg]}\n",
    );
    let rate = |alert: &str, feature: &str| signal(&e, alert, feature).unwrap_or(f64::NAN);
    assert_eq!(rate("OutOfRange", "age"), 0.0);
    assert_eq!(rate("Invalid", "age"), 1.0 / 20.0);
    assert_eq!(rate("Unseen", "country"), 0.0);
    // Paris is not in the categories rules.yaml lists.
    assert_eq!(rate("Unseen", "city"), 5.0 / 20.0);
    assert_eq!(invalid_total(&e, "age", "out_of_range"), None);
    // The baseline still describes the features: an absent one is missing.
    assert_eq!(rate("Missing", "age"), 1.0 / 20.0);
}
