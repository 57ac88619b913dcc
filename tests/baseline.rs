//! `model-exporter baseline` end to end: the real binary on generated files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use model_exporter::baseline::{Baseline, FeatureBaseline};
use serde_json::Value;

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_model-exporter")
}

fn run(args: &[&str]) -> Output {
    Command::new(binary())
        .arg("baseline")
        .args(args)
        .output()
        .expect("running model-exporter")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Seeded xorshift64* with Box-Muller normals.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
    fn normal(&mut self, mean: f64, std: f64) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        mean + std * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    fn country(&mut self) -> &'static str {
        match self.uniform() {
            u if u < 0.4 => "US",
            u if u < 0.7 => "DE",
            u if u < 0.9 => "FR",
            _ => "IT",
        }
    }
}

const ROWS: usize = 20_000;

/// A fraud-like CSV: id, age, income, amount, country, label, prediction.
fn fraud_csv(dir: &Path) -> PathBuf {
    let mut r = Rng(42);
    let mut text = String::from("id,age,income,amount,country,label,prediction\n");
    for i in 0..ROWS {
        // Every 50th amount is missing.
        let amount = if i % 50 == 0 {
            String::new()
        } else {
            format!("{:.2}", r.normal(100.0, 50.0))
        };
        let label = u8::from(r.uniform() < 0.05);
        text.push_str(&format!(
            "tx-{i},{:.1},{:.0},{amount},{},{label},{:.4}\n",
            r.normal(35.0, 10.0),
            r.normal(50_000.0, 20_000.0),
            r.country(),
            r.uniform()
        ));
    }
    let path = dir.join("train.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn numeric(v: &Value, name: &str) -> (f64, f64, Vec<f64>, Vec<f64>) {
    let f = &v["features"][name];
    assert_eq!(f["type"], "numeric", "{name}: {f}");
    let nums = |k: &str| -> Vec<f64> {
        f[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    (
        f["mean"].as_f64().unwrap(),
        f["std"].as_f64().unwrap(),
        nums("edges"),
        nums("proportions"),
    )
}

#[test]
fn builds_from_a_fraud_like_csv() {
    let dir = tempfile::tempdir().unwrap();
    let input = fraud_csv(dir.path());
    let out = dir.path().join("fraud.json");
    let o = run(&[
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--exclude",
        "id",
        "--exclude",
        "label",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "{}: {ROWS} rows, 4 features (3 numeric, 1 categorical), prediction: numeric\n",
            out.display()
        )
    );
    // Not a terminal and no --progress: nothing on stderr.
    assert_eq!(stderr(&o), "");

    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["format"], "model-exporter-baseline");
    assert_eq!(v["version"], 2);
    assert_eq!(v["rows"], ROWS as u64);
    assert_eq!(v["source"], input.to_str().unwrap());
    let names: Vec<&String> = v["features"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["age", "amount", "country", "income"]);

    for (name, mean, std) in [
        ("age", 35.0, 10.0),
        ("income", 50_000.0, 20_000.0),
        ("amount", 100.0, 50.0),
    ] {
        let (m, s, edges, proportions) = numeric(&v, name);
        assert!((m - mean).abs() < 0.03 * std, "{name} mean {m}");
        assert!((s - std).abs() < 0.03 * std, "{name} std {s}");
        assert_eq!(edges.len(), 11, "{name}");
        assert_eq!(proportions.len(), 12, "{name}");
        // The first bin, at or below the minimum, holds the minimum alone;
        // none is above the maximum.
        let count = v["features"][name]["count"].as_f64().unwrap();
        assert_eq!(
            (proportions[0], proportions[11]),
            (1.0 / count, 0.0),
            "{name}"
        );
        for p in &proportions[1..11] {
            assert!((p - 0.1).abs() < 0.01, "{name}: {proportions:?}");
        }
        // The deciles of a normal: the 5th edge is near the mean.
        assert!((edges[5] - mean).abs() < 0.05 * std, "{name}: {edges:?}");
    }
    let amount = &v["features"]["amount"];
    assert_eq!(amount["missing"], (ROWS / 50) as u64);
    assert_eq!(amount["missing_rate"], 0.02);

    let country = &v["features"]["country"];
    assert_eq!(country["type"], "categorical");
    for (c, p) in [("US", 0.4), ("DE", 0.3), ("FR", 0.2), ("IT", 0.1)] {
        let got = country["categories"][c].as_f64().unwrap();
        assert!((got - p).abs() < 0.015, "{c}: {got}");
    }
    assert_eq!(country["other"], 0.0);
    assert_eq!(v["prediction"]["type"], "numeric");

    // The library reads what the binary wrote.
    let b = Baseline::load(&out).unwrap();
    assert_eq!(b.rows, ROWS as u64);
    let Some(FeatureBaseline::Numeric(age)) = b.feature("age") else {
        panic!("age");
    };
    assert_eq!(age.bin_of(age.min - 1.0), Some(0));
    assert_eq!(age.bin_of(age.min), Some(0));
    assert_eq!(age.bin_of(age.min.next_up()), Some(1));
    assert_eq!(age.bin_of(age.max + 1.0), Some(11));
}

#[test]
fn builds_from_jsonl_events() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("predictions.jsonl");
    let mut r = Rng(7);
    let mut text = String::from(
        "{\"type\":\"model\",\"model\":\"fraud\",\"version\":\"v3\",\"trained_at\":\"2026-11-01T00:00:00Z\"}\n",
    );
    for i in 0..2000 {
        text.push_str(&format!(
            "{{\"model\":\"fraud\",\"version\":\"v3\",\"id\":\"r-{i}\",\"latency_ms\":52.3,\"prediction\":{},\"confidence\":0.9,\
             \"features\":{{\"age\":{:.1},\"income\":{:.0},\"country\":\"{}\",\"vip\":{}}}}}\n",
            u8::from(i % 4 == 0),
            r.normal(35.0, 10.0),
            r.normal(50_000.0, 20_000.0),
            r.country(),
            i % 2 == 0
        ));
        if i % 10 == 0 {
            text.push_str(&format!(
                "{{\"type\":\"feedback\",\"model\":\"fraud\",\"id\":\"r-{i}\",\"actual\":0}}\n"
            ));
        }
    }
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("b.json");
    let o = run(&[
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--progress",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o)
            .ends_with("2000 rows, 4 features (3 numeric, 1 categorical), prediction: numeric\n")
    );
    assert_eq!(
        stderr(&o),
        "ignored 201 events that are not inferences\n",
        "a small file finishes before the first progress line"
    );
    let b = Baseline::load(&out).unwrap();
    let Some(FeatureBaseline::Numeric(vip)) = b.feature("vip") else {
        panic!("vip");
    };
    assert_eq!(vip.edges, vec![0.0, 1.0]);
    assert_eq!(vip.proportions, vec![0.5, 0.5, 0.0]);
    let Some(FeatureBaseline::Numeric(p)) = &b.prediction else {
        panic!("prediction");
    };
    assert_eq!(p.proportions, vec![0.75, 0.25, 0.0]);
}

#[test]
fn bad_files_exit_1_naming_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.json");
    let case = |name: &str, content: &str, extra: &[&str]| -> Output {
        let input = dir.path().join(name);
        std::fs::write(&input, content).unwrap();
        let mut args = vec![
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let path = |name: &str| dir.path().join(name).display().to_string();

    let o = case("train.csv", "age,country\n30,DE\n31\n32,FR\n", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("{}:3: row has 1 fields, header has 2\n", path("train.csv"))
    );
    assert!(!out.exists(), "nothing is written on failure");

    // The same file with --skip-bad-rows: built, and the skip reported.
    let o = case(
        "train.csv",
        "age,country\n30,DE\n31\n32,FR\n",
        &["--skip-bad-rows"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "skipped 1 bad rows; the first: {}:3: row has 1 fields, header has 2\n",
            path("train.csv")
        )
    );
    assert!(out.exists());
    std::fs::remove_file(&out).unwrap();

    let o = case("mixed.csv", "age\n30\n31\nn/a\n", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "{}:4: column \"age\": text value \"n/a\" in a numeric column (its first value, at line 2, was a number)\n",
            path("mixed.csv")
        )
    );

    let o = case("data.jsonl", "{\"a\":1}\n{\"a\":2}\n{\"a\":\n", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "{}:3: invalid JSON: EOF while parsing a value (at character 5)\n",
            path("data.jsonl")
        )
    );

    let o = case("data.parquet", "x", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "{}: cannot tell the format from the extension; use --format csv|jsonl\n",
            path("data.parquet")
        )
    );
    // --format overrides the extension.
    let o = case("data.txt", "a\n1\n", &["--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = run(&[
        "--input",
        dir.path().join("missing.csv").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with(&format!("{}: ", path("missing.csv"))));

    let o = case("empty.csv", "a,b\n", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("{}: no rows to make a baseline from\n", path("empty.csv"))
    );
}

/// A misspelt `--exclude` would keep the column (a label, an id) as a
/// feature whose "drift" never ends: it is an error naming the closest
/// column, and nothing is written.
#[test]
fn an_exclude_that_names_no_column_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train.csv");
    std::fs::write(&input, "age,label\n30,0\n31,1\n32,0\n").unwrap();
    let out = dir.path().join("b.json");
    let o = run(&[
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--exclude",
        "lable",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "{}: --exclude names no column: \"lable\" (did you mean \"label\"?); nothing was written\n",
            input.display()
        )
    );
    assert!(!out.exists());
    // Spelt right, it is left out.
    let o = run(&[
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--exclude",
        "label",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(v["features"].get("label").is_none());
    assert!(v["features"].get("age").is_some());
}

/// `--out` into a directory that does not exist names that directory.
#[test]
fn an_out_path_in_a_missing_directory_names_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train.csv");
    std::fs::write(&input, "age\n30\n31\n").unwrap();
    let missing = dir.path().join("baselines");
    let out = missing.join("fraud.json");
    let o = run(&[
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "cannot write {}: the directory {} does not exist (create it first)\n",
            out.display(),
            missing.display()
        )
    );
}
