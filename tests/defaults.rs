//! The built-in rules (the rules.yaml compiled into the binary, evaluated
//! here with a shorter evaluation interval) are right for any model: a
//! healthy classifier raises nothing whatever its normal positive rate, and a
//! real shift of its predictions away from its baseline does fire.
//! The fraud model's own thresholds live in examples/fraud/rules.yaml.

mod common;

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The built-in rules, evaluated every 200 ms of real time, with `models`
/// added (as the demo adds its own).
fn builtin_with(models: &str) -> String {
    let rules = std::fs::read_to_string(format!("{ROOT}/rules.yaml")).unwrap();
    assert!(rules.contains("  evaluation_interval: 10s\n"));
    rules
        .replacen(
            "  evaluation_interval: 10s\n",
            "  evaluation_interval: 200ms\n",
            1,
        )
        .replacen("\nmodels:\n", &format!("\nmodels:\n{models}"), 1)
}

/// One inference event of a binary classifier that predicts 1 with
/// probability `positive`, sending the probability of the predicted class
/// as its confidence (between 0.5 and 1), as docs/events.md asks.
fn classifier_event(g: &mut Gen, model: &str, positive: f64) -> String {
    let prediction = u8::from(g.uniform() < positive);
    let confidence = 0.5 + 0.49 * g.uniform();
    format!(
        "{{\"model\":\"{model}\",\"latency_ms\":{:.2},\"prediction\":{prediction},\"confidence\":{confidence:.3},\"features\":{{\"x\":{:.3}}}}}\n",
        1.0 + g.uniform(),
        g.normal(0.0, 1.0)
    )
}

/// Alerts (pending or firing) from `/api/v1/alerts`, as (alertname, model, state).
fn alerts(e: &InProcess) -> Vec<(String, String, String)> {
    let (_, _, body) = e.get("/api/v1/alerts");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
            (
                s(&a["labels"]["alertname"]),
                s(&a["labels"]["model"]),
                s(&a["state"]),
            )
        })
        .collect()
}

/// The simulation: every simulated minute each model sends 120 events, the
/// clock moves a minute and two evaluation rounds see it.
struct Sim {
    e: InProcess,
    g: Gen,
    sent: u64,
}

impl Sim {
    fn minute(&mut self, models: &[(&str, f64)]) {
        let mut lines = String::new();
        for _ in 0..120 {
            for (model, positive) in models {
                lines += &classifier_event(&mut self.g, model, *positive);
            }
        }
        send_unix(&self.e.path("unix"), lines.as_bytes());
        self.sent += 120;
        for (model, _) in models {
            self.e.wait_sample(
                &format!(r#"model_requests_total{{model="{model}",outcome="ok",version=""}}"#),
                self.sent as f64,
            );
        }
        self.e.advance(Duration::from_secs(60));
        let rounds = |t: &str| {
            sample(t, r#"model_exporter_rule_evaluations_total{group="ml"}"#).unwrap_or(0.0)
        };
        let first = rounds(&self.e.metrics());
        let deadline = Instant::now() + PATIENCE;
        while rounds(&self.e.metrics()) < first + 2.0 {
            assert!(Instant::now() < deadline, "the rules are not evaluated");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_healthy_classifier_raises_nothing_and_a_real_shift_fires_prediction_drift() {
    // Training data of a classifier that predicts 1 for 65% of its inputs:
    // its baseline holds that prediction distribution.
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gen(17);
    let mut csv = String::from("x,prediction\n");
    for _ in 0..2000 {
        writeln!(
            csv,
            "{:.3},{}",
            g.normal(0.0, 1.0),
            u8::from(g.uniform() < 0.65)
        )
        .unwrap();
    }
    let baseline = baseline_from_csv(dir.path(), "clf", &csv, &[]);
    let rules = builtin_with(&format!("  clf:\n    baseline: {}\n", baseline.display()));
    let e = InProcess::start_with_rules(&rules, &[]);
    let mut sim = Sim { e, g, sent: 0 };

    // Twelve healthy minutes, longer than every `for` of the ml rules plus
    // their 5 minute windows: `clf` (with its baseline) and `plain` (without
    // one) both predict 1 for 65% of their inputs. Nothing is even pending.
    for minute in 0..12 {
        sim.minute(&[("clf", 0.65), ("plain", 0.65)]);
        let a = alerts(&sim.e);
        assert!(a.is_empty(), "minute {minute}: healthy models raised {a:?}");
    }
    let m = sim.e.metrics();
    let psi = sample(
        &m,
        r#"model_prediction_drift{method="psi",model="clf",version="",window="15m"}"#,
    )
    .unwrap_or_else(|| panic!("no prediction drift of clf:\n{m}"));
    assert!(psi < 0.05, "healthy clf has prediction PSI {psi}");
    assert!(
        !m.contains(r#"model_prediction_drift{method="psi",model="plain""#),
        "plain has no reference, so no prediction drift"
    );

    // Both shift to 90% positives. With a baseline that is drift (PSI about
    // 0.39 once the 15 minute window is past the shift); without one there
    // is nothing to compare with, and no verdict.
    let deadline = 20;
    let mut fired = false;
    for _ in 0..deadline {
        sim.minute(&[("clf", 0.9), ("plain", 0.9)]);
        let a = alerts(&sim.e);
        assert!(
            a.iter()
                .all(|(name, model, _)| name == "PredictionDrift" && model == "clf"),
            "only clf's PredictionDrift may be raised: {a:?}"
        );
        if a.iter().any(|(_, _, state)| state == "firing") {
            fired = true;
            break;
        }
    }
    assert!(fired, "PredictionDrift never fired for clf's shift");
}

#[test]
fn low_confidence_fires_when_a_model_hesitates_on_most_answers() {
    let rules = builtin_with("");
    let e = InProcess::start_with_rules(&rules, &[]);
    let mut g = Gen(5);
    let send = |g: &mut Gen, unsure: f64| {
        let mut lines = String::new();
        for _ in 0..120 {
            // A three-class model: the probability of its answer is at least
            // 1/3; below 0.5 it hesitates between classes.
            let confidence = if g.uniform() < unsure {
                0.34 + 0.15 * g.uniform()
            } else {
                0.5 + 0.49 * g.uniform()
            };
            writeln!(
                lines,
                "{{\"model\":\"tri\",\"latency_ms\":1,\"prediction\":\"b\",\"confidence\":{confidence:.3}}}"
            )
            .unwrap();
        }
        send_unix(&e.path("unix"), lines.as_bytes());
    };
    let mut sent = 0.0;
    let mut step = |g: &mut Gen, unsure: f64| {
        send(g, unsure);
        sent += 120.0;
        e.wait_sample(
            r#"model_requests_total{model="tri",outcome="ok",version=""}"#,
            sent,
        );
        e.advance(Duration::from_secs(60));
        let rounds = |t: &str| {
            sample(t, r#"model_exporter_rule_evaluations_total{group="ml"}"#).unwrap_or(0.0)
        };
        let first = rounds(&e.metrics());
        let deadline = Instant::now() + PATIENCE;
        while rounds(&e.metrics()) < first + 2.0 {
            assert!(Instant::now() < deadline, "the rules are not evaluated");
            std::thread::sleep(Duration::from_millis(50));
        }
        alerts(&e)
    };
    // Unsure of a third of its answers: a normal three-class model.
    for minute in 0..13 {
        let a = step(&mut g, 0.33);
        assert!(a.is_empty(), "minute {minute}: {a:?}");
    }
    // Unsure of 80%: LowConfidence fires after its 10 minutes.
    let fired = (0..20).any(|_| {
        step(&mut g, 0.8)
            .iter()
            .any(|(name, _, state)| name == "LowConfidence" && state == "firing")
    });
    assert!(fired, "LowConfidence never fired");
}

#[test]
fn the_fraud_example_keeps_the_model_specific_thresholds() {
    let file = format!("{ROOT}/examples/fraud/rules.yaml");
    let out = Command::new(binary())
        .args(["check", &file])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A fraud rate of 20% fires the example's own rule, evaluated as the
    // exporter evaluates it.
    let rules = std::fs::read_to_string(&file).unwrap().replacen(
        "  evaluation_interval: 10s\n",
        "  evaluation_interval: 200ms\n",
        1,
    );
    let e = InProcess::start_with_rules(&rules, &[]);
    let mut g = Gen(3);
    let mut sent = 0.0;
    let fired = (0..12).any(|_| {
        let mut lines = String::new();
        for _ in 0..120 {
            lines += &classifier_event(&mut g, "fraud", 0.2);
        }
        send_unix(&e.path("unix"), lines.as_bytes());
        sent += 120.0;
        e.wait_sample(
            r#"model_requests_total{model="fraud",outcome="ok",version=""}"#,
            sent,
        );
        e.advance(Duration::from_secs(60));
        let first = sample(
            &e.metrics(),
            r#"model_exporter_rule_evaluations_total{group="fraud"}"#,
        )
        .unwrap_or(0.0);
        let deadline = Instant::now() + PATIENCE;
        while sample(
            &e.metrics(),
            r#"model_exporter_rule_evaluations_total{group="fraud"}"#,
        )
        .unwrap_or(0.0)
            < first + 2.0
        {
            assert!(Instant::now() < deadline, "the rules are not evaluated");
            std::thread::sleep(Duration::from_millis(50));
        }
        alerts(&e)
            .iter()
            .any(|(name, _, state)| name == "FraudRateHigh" && state == "firing")
    });
    assert!(fired, "FraudRateHigh never fired at a 20% fraud rate");
}
