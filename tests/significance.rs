//! Significance of drift (docs/drift.md, "Significance"): the p-values on
//! /metrics next to the statistics, the window's and the reference's sizes,
//! the `drift_pvalue` signals, and `significance:` on a drift rule, which
//! keeps a small window's large-looking PSI from raising an alert.

mod common;

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const FEATURES: usize = 8;

/// Training data: `FEATURES` independent N(0, 1) features, 5000 rows.
fn training(g: &mut Gen) -> String {
    let mut csv = (0..FEATURES)
        .map(|i| format!("f{i}"))
        .collect::<Vec<_>>()
        .join(",");
    csv.push('\n');
    for _ in 0..5000 {
        let row: Vec<String> = (0..FEATURES)
            .map(|_| format!("{:.4}", g.normal(0.0, 1.0)))
            .collect();
        writeln!(csv, "{}", row.join(",")).unwrap();
    }
    csv
}

/// `n` events of model `m`, every feature N(0, 1) except `f0`, shifted by
/// `shift` standard deviations.
fn events(g: &mut Gen, n: usize, shift: f64) -> String {
    let mut out = String::new();
    for _ in 0..n {
        let features: Vec<String> = (0..FEATURES)
            .map(|i| {
                let mean = if i == 0 { shift } else { 0.0 };
                format!(r#""f{i}":{:.4}"#, g.normal(mean, 1.0))
            })
            .collect();
        writeln!(
            out,
            r#"{{"model":"m","features":{{{}}}}}"#,
            features.join(",")
        )
        .unwrap();
    }
    out
}

fn alerts<'a>(m: &'a str, alert: &str) -> Vec<&'a str> {
    m.lines()
        .filter(|l| l.starts_with(&format!(r#"model_alerts{{alertname="{alert}""#)))
        .collect()
}

/// Polls /metrics until `done` holds, or fails after [`PATIENCE`]; moves
/// the clock on by an evaluation interval (100 ms) each time, so that the
/// rules are evaluated again.
fn wait_until(e: &InProcess, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let m = e.metrics();
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "{what} never happened:\n{m}");
        e.advance(Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_small_window_is_not_significant_and_a_real_shift_is() {
    let mut g = Gen(11);
    let dir = tempfile::tempdir().unwrap();
    let baseline = make_baseline(dir.path(), &training(&mut g), "m");
    // The same drift rule with and without `significance`; min_samples 0 so
    // that every window, however small, gets a verdict.
    let rules = format!(
        "defaults: {{window: 1m, evaluation_interval: 100ms, min_samples: 0}}\n\
         models:\n  m:\n    baseline: {}\n\
         groups:\n  - name: ml\n    rules:\n\
         \x20     - alert: FeatureDrift\n        expr: psi(feature.*) > 0.2\n        significance: 1%\n\
         \x20     - alert: PsiOnly\n        expr: psi(feature.*) > 0.2\n\
         \x20     - alert: Significant\n        expr: drift_pvalue_adjusted(feature.*, psi) < 1%\n",
        baseline.display()
    );
    let e = InProcess::start_with_rules(&rules, &[]);

    // Ten values of each feature, drawn from the training distribution:
    // PSI looks large on every feature (ten values in twelve bins), but
    // nothing is significant.
    send_unix(&e.path("unix"), events(&mut g, 10, 0.0).as_bytes());
    let series = |name: &str, f: &str, method: Option<&str>| {
        let method = method.map_or(String::new(), |m| format!(r#"method="{m}","#));
        format!(r#"{name}{{feature="{f}",{method}model="m",version="",window="1m"}}"#)
    };
    // The rules are evaluated in the same round as the gauges are rendered:
    // once every window holds the ten values and PsiOnly fires on every
    // feature, FeatureDrift has been evaluated on the same windows.
    let m = wait_until(&e, "ten values in every window, PsiOnly", |m| {
        (0..FEATURES).all(|i| {
            sample(
                m,
                &series("model_feature_drift_samples", &format!("f{i}"), None),
            ) == Some(10.0)
        }) && alerts(m, "PsiOnly").len() == FEATURES
    });
    let psi_only = alerts(&m, "PsiOnly");
    assert_eq!(psi_only.len(), FEATURES, "{psi_only:#?}");
    assert!(alerts(&m, "FeatureDrift").is_empty(), "{m}");
    assert!(alerts(&m, "Significant").is_empty(), "{m}");
    for i in 0..FEATURES {
        let f = format!("f{i}");
        let size = sample(
            &m,
            &format!(r#"model_feature_reference_size{{feature="{f}",model="m",version=""}}"#),
        );
        assert_eq!(size, Some(5000.0), "{f}");
        for method in ["psi", "js", "ks", "wasserstein"] {
            let raw = sample(&m, &series("model_feature_drift_pvalue", &f, Some(method)))
                .unwrap_or_else(|| panic!("no {method} p-value of {f}:\n{m}"));
            let adjusted = sample(
                &m,
                &series("model_feature_drift_pvalue_adjusted", &f, Some(method)),
            )
            .unwrap();
            assert!((0.0..=1.0).contains(&raw), "{f} {method} {raw}");
            assert!(
                adjusted >= raw && adjusted <= 1.0,
                "{f} {method} {raw} {adjusted}"
            );
        }
    }

    // Two minutes later the window holds only what comes next: 400 values, f0
    // shifted by one standard deviation. Only f0 drifts, and significantly.
    e.advance(Duration::from_secs(120));
    send_unix(&e.path("unix"), events(&mut g, 400, 1.0).as_bytes());
    let firing = |m: &str, f: &str| {
        m.contains(&format!(
            r#"model_alerts{{alertname="FeatureDrift",alertstate="firing",feature="{f}",model="m",severity="warning",version=""}} 1"#
        ))
    };
    let m = wait_until(&e, "FeatureDrift on f0", |m| firing(m, "f0"));
    assert_eq!(alerts(&m, "FeatureDrift").len(), 1, "{m}");
    let p0 = sample(
        &m,
        &series("model_feature_drift_pvalue_adjusted", "f0", Some("psi")),
    )
    .unwrap();
    assert!(p0 < 1e-10, "{p0}");
    // The adjusted p-values are Holm's adjustment of the eight raw ones,
    // worked out here from the raw gauges: sorted ascending, the i-th (from
    // 0) becomes the running maximum of min(1, (8 − i)·p).
    for method in ["psi", "js", "ks", "wasserstein"] {
        let raw: Vec<f64> = (0..FEATURES)
            .map(|i| {
                sample(
                    &m,
                    &series("model_feature_drift_pvalue", &format!("f{i}"), Some(method)),
                )
                .unwrap()
            })
            .collect();
        let mut order: Vec<usize> = (0..FEATURES).collect();
        order.sort_by(|a, b| raw[*a].total_cmp(&raw[*b]));
        let mut want = [0.0; FEATURES];
        let mut running: f64 = 0.0;
        for (rank, &i) in order.iter().enumerate() {
            running = running.max(((FEATURES - rank) as f64 * raw[i]).min(1.0));
            want[i] = running;
        }
        for (i, want) in want.iter().enumerate() {
            let got = sample(
                &m,
                &series(
                    "model_feature_drift_pvalue_adjusted",
                    &format!("f{i}"),
                    Some(method),
                ),
            )
            .unwrap();
            assert!(
                (got - want).abs() <= 1e-12 * want.max(1e-300),
                "{method} f{i}: adjusted {got}, Holm of {raw:?} gives {want}"
            );
        }
        // f0's own p-value is multiplied by the number of features.
        let p = raw[0];
        assert!(want[0] > p || p == 0.0, "{method}: {p}");
    }
    assert_eq!(
        sample(&m, &series("model_feature_drift_samples", "f0", None)),
        Some(400.0)
    );
}

fn check(rules: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, rules).unwrap();
    let out = Command::new(binary())
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "R");
    (out.status.code(), err)
}

#[test]
fn significance_is_checked_where_it_is_written() {
    let head = "groups:\n  - name: g\n    rules:\n      - alert: A\n";
    let (code, err) = check(&format!(
        "{head}        expr: error_rate > 5%\n        significance: 1%\n"
    ));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("R:6:23: significance applies to drift rules only"),
        "{err}"
    );
    for bad in ["150%", "0", "-0.1", "often"] {
        let (code, err) = check(&format!(
            "{head}        expr: psi(feature.*) > 0.2\n        significance: {bad}\n"
        ));
        assert_eq!(code, Some(1), "{bad}: {err}");
        assert!(
            err.contains(&format!(
                "R:6:23: significance must be a level between 0 and 1, e.g. 1% or 0.01, found '{bad}'"
            )),
            "{err}"
        );
    }
    let (code, err) = check(&format!(
        "{head}        expr: ks(feature.age) > 0.1\n        significance: 0.001\n"
    ));
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn drift_pvalue_signals_parse_and_their_mistakes_are_located() {
    let head = "groups:\n  - name: g\n    rules:\n      - alert: A\n";
    for ok in [
        "drift_pvalue(feature.*, psi) < 1%",
        "drift_pvalue_adjusted(feature.amount, ks) < 0.001",
        "drift_pvalue(prediction, chi2_pvalue) < 5%",
    ] {
        let (code, err) = check(&format!("{head}        expr: {ok}\n"));
        assert_eq!(code, Some(0), "{ok}: {err}");
    }
    let (code, err) = check(&format!(
        "{head}        expr: drift_pvalue(feature.*, pis) < 1%\n"
    ));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("unknown argument 'pis' for drift_pvalue(), expected psi, ks, js, wasserstein, chi2_pvalue")
            && err.contains("did you mean 'psi'"),
        "{err}"
    );
    let (code, err) = check(&format!(
        "{head}        expr: drift_pvalue(feature.*) < 1%\n"
    ));
    assert_eq!(code, Some(1));
    assert!(err.contains("drift_pvalue() takes 2 arguments"), "{err}");
}

#[test]
fn exported_drift_rules_read_the_sidecars_pvalue() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "groups:\n  - name: g\n    rules:\n\
         \x20     - alert: D\n        expr: psi(feature.*) > 0.2\n        significance: 1%\n        window: 15m\n\
         \x20     - alert: P\n        expr: drift_pvalue_adjusted(feature.*, js) < 0.001\n\
         \x20     - alert: W\n        expr: wasserstein(feature.*) > 0.1\n        significance: 5%\n        window: 10m\n\
         \x20     - alert: R\n        expr: psi(feature.*) > 0.2\n        significance: 1%\n        window: 15m\n        max_samples: 300\n",
    )
    .unwrap();
    let out = export_rules(&rules, &dir.path().join("out.yml"));
    assert!(
        out.contains(r#"> 0.2 and on (model, version, feature) min by (model, version, feature) (model_feature_drift_pvalue_adjusted{method="psi",window="15m",max_samples=""}) < 0.01"#),
        "{out}"
    );
    assert!(
        out.contains(
            r#"max by (model, version, feature) (model_rule_signal_value{alertname="P"}) < 0.001"#
        ),
        "{out}"
    );
    // Wasserstein is computed in the sidecar; its significance is still
    // required.
    assert!(
        out.contains(r#"max by (model, version, feature) (model_rule_signal_value{alertname="W"}) > 0.1 and on (model, version, feature) min by (model, version, feature) (model_feature_drift_pvalue_adjusted{method="wasserstein",window="10m",max_samples=""}) < 0.05"#),
        "{out}"
    );
    // With max_samples, PSI too is each sidecar's own value (PromQL cannot
    // count out the newest values), and so is its p-value, the gauge of
    // the newest 300 values.
    assert!(
        out.contains(r#"max by (model, version, feature) (model_rule_signal_value{alertname="R"}) > 0.2 and on (model, version, feature) min by (model, version, feature) (model_feature_drift_pvalue_adjusted{method="psi",window="15m",max_samples="300"}) < 0.01"#),
        "{out}"
    );
    let o = Command::new("promtool")
        .args(["check", "rules"])
        .arg(dir.path().join("out.yml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

/// `max_samples`: 1,000 undrifted values, then 300 with `f0` shifted by one
/// standard deviation, all in one 15-minute window. The rule over the
/// newest 300 values fires on f0; the same rule over the whole window,
/// where PSI of the mixture stays small, does not. /metrics shows both
/// readings, told apart by the `max_samples` label.
#[test]
fn max_samples_catches_a_shift_the_whole_window_dilutes() {
    let mut g = Gen(23);
    let dir = tempfile::tempdir().unwrap();
    let baseline = make_baseline(dir.path(), &training(&mut g), "m");
    let rules = format!(
        "defaults: {{window: 5m, evaluation_interval: 100ms, min_samples: 30}}\n\
         models:\n  m:\n    baseline: {}\n\
         groups:\n  - name: ml\n    rules:\n\
         \x20     - alert: Recent\n        expr: psi(feature.*) > 0.2\n        window: 15m\n        significance: 1%\n        max_samples: 300\n\
         \x20     - alert: WholeWindow\n        expr: psi(feature.*) > 0.2\n        window: 15m\n        significance: 1%\n",
        baseline.display()
    );
    let e = Exporter::start_with_rules(&rules, &[]);
    let series = |name: &str, f: &str, method: Option<&str>, cap: Option<u32>| {
        let method = method.map_or(String::new(), |m| format!(r#"method="{m}","#));
        let cap = cap.map_or(String::new(), |n| format!(r#"max_samples="{n}","#));
        format!(r#"{name}{{feature="{f}",{cap}{method}model="m",version="",window="15m"}}"#)
    };
    let wait = |what: &str, done: &dyn Fn(&str) -> bool| -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let m = e.metrics();
            if done(&m) {
                return m;
            }
            assert!(Instant::now() < deadline, "{what} never happened:\n{m}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    send_unix(&e.path("unix"), events(&mut g, 1000, 0.0).as_bytes());
    let samples = |m: &str, cap| sample(m, &series("model_feature_drift_samples", "f0", None, cap));
    let m = wait("1,000 values", &|m| samples(m, None) == Some(1000.0));
    assert_eq!(samples(&m, Some(300)), Some(300.0));
    send_unix(&e.path("unix"), events(&mut g, 300, 1.0).as_bytes());
    // A round evaluated after the 300: the gauges and the rules read the
    // same windows.
    let m = wait("1,300 values and the rules evaluated on them", &|m| {
        samples(m, None) == Some(1300.0) && !alerts(m, "Recent").is_empty()
    });
    let psi = |cap| sample(&m, &series("model_feature_drift", "f0", Some("psi"), cap)).unwrap();
    let (recent, whole) = (psi(Some(300)), psi(None));
    assert!(recent > 0.5, "PSI of the newest 300: {recent}");
    assert!(whole < 0.2, "PSI of the whole window: {whole}");
    let p = sample(
        &m,
        &series(
            "model_feature_drift_pvalue_adjusted",
            "f0",
            Some("psi"),
            Some(300),
        ),
    )
    .unwrap();
    assert!(p < 1e-10, "{p}");
    let recent_alerts = alerts(&m, "Recent");
    assert_eq!(recent_alerts.len(), 1, "{m}");
    assert!(recent_alerts[0].contains(r#"feature="f0""#), "{m}");
    // Evaluated in the same round as Recent, on the same 1,300 values.
    assert!(alerts(&m, "WholeWindow").is_empty(), "{m}");
    // Undrifted features read the newest 300 too, and do not fire.
    assert_eq!(samples(&m, Some(300)), Some(300.0));
    promtool_check_metrics(&m);

    // The summary and /api/v1/features (what the dashboard and `report`
    // show) read the feature drift rule's newest 300 values as well, so
    // they show the value Recent fired on, not the whole window's.
    let api = |path: &str| -> serde_json::Value {
        let (status, _, body) = e.get(path);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    let near = |x: &serde_json::Value| (x.as_f64().unwrap() - recent).abs() < 1e-9;
    let features = api("/api/v1/features");
    let f0 = features["data"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "f0")
        .expect("f0 in /api/v1/features")
        .clone();
    // Read as Recent reads: its 15 minutes (not the default 5), capped.
    assert_eq!(features["data"]["window"], "15m", "{features}");
    assert_eq!(features["data"]["max_samples"], 300, "{features}");
    assert_eq!(f0["max_samples"], 300, "{f0}");
    assert_eq!(f0["count"], 300, "{f0}");
    assert!(near(&f0["drift"]["psi"]), "{f0} against {recent}");
    let summary = api("/api/v1/summary");
    assert_eq!(summary["data"]["drift"]["max_samples"], 300, "{summary}");
    assert_eq!(summary["data"]["drift"]["window"], "15m", "{summary}");
    let model = &summary["data"]["models"][0];
    assert_eq!(model["feature_drift_top"], "f0", "{summary}");
    assert!(near(&model["feature_drift"]), "{summary} against {recent}");
}

#[test]
fn max_samples_is_checked_where_it_is_written() {
    let head = "groups:\n  - name: g\n    rules:\n      - alert: A\n";
    // Every mistake of the file is reported, each at its place.
    let (code, err) = check(&format!(
        "{head}        expr: error_rate > 5%\n        max_samples: 300\n\
         \x20     - alert: B\n        expr: psi(feature.*) > 0.2\n        max_samples: 0\n\
         \x20     - alert: C\n        expr: psi(feature.*) > 0.2\n        max_samples: many\n\
         \x20     - alert: D\n        expr: psi(prediction) > 0.2\n        min_samples: 200\n        max_samples: 100\n"
    ));
    assert_eq!(code, Some(1), "{err}");
    for want in [
        "R:6:22: max_samples applies to drift rules only",
        "R:9:22: max_samples must be a whole number from 1 to 1000000, found '0'",
        "R:12:22: max_samples must be a whole number from 1 to 1000000, found 'many'",
        "R:16:22: max_samples (100) is below min_samples (200)",
    ] {
        assert!(err.contains(want), "{want}:\n{err}");
    }
    for ok in [
        "expr: psi(feature.*) > 0.2\n        significance: 1%\n        max_samples: 300\n",
        "expr: drift_pvalue(prediction, ks) < 1%\n        max_samples: 30\n",
    ] {
        let (code, err) = check(&format!("{head}        {ok}"));
        assert_eq!(code, Some(0), "{ok}: {err}");
    }
}
