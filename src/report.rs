//! `model-exporter report`: the monitoring report of a running exporter, as
//! text, from its `/api/v1/summary` and `/api/v1/features`, fetched with the
//! [`http_client`](crate::http_client) (TLS and credentials as configured).
//! The exporter brings the summary up to the events it has applied before
//! it answers, so a report made right after events shows them.

use serde_json::Value;

use crate::http_client::{HttpClient, RequestError};

/// Why the report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The request failed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The answer is not the JSON of `/api/v1/summary`.
    #[error("invalid JSON from {url}: {source}")]
    Json {
        /// The URL asked.
        url: String,
        /// What is wrong with it.
        source: serde_json::Error,
    },
}

/// The exporter's base URL from what a user gives: without a trailing `/`
/// or `/metrics`, so that both `http://host:9877` and
/// `http://host:9877/metrics` work.
pub fn base_url(url: &str) -> &str {
    let url = url.trim().trim_end_matches('/');
    url.strip_suffix("/metrics")
        .filter(|b| b.contains("://") && !b.ends_with('/'))
        .unwrap_or(url)
}

/// Fetches `/api/v1/summary` from the exporter at `base` (see [`base_url`]).
pub async fn fetch(client: &HttpClient, base: &str) -> Result<Value, ReportError> {
    get_json(client, base, "summary").await
}

/// Fetches `/api/v1/summary` and adds the features of `/api/v1/features`
/// as `data.features`: what [`render`] reads.
pub async fn fetch_all(client: &HttpClient, base: &str) -> Result<Value, ReportError> {
    let mut summary = get_json(client, base, "summary").await?;
    let mut features = get_json(client, base, "features").await?;
    summary["data"]["features"] = features["data"]["features"].take();
    Ok(summary)
}

async fn get_json(client: &HttpClient, base: &str, endpoint: &str) -> Result<Value, ReportError> {
    let url = format!("{}/api/v1/{endpoint}", base_url(base));
    let body = client.get(&url).await?;
    serde_json::from_slice(&body).map_err(|source| ReportError::Json { url, source })
}

fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or("n/a".into(), |x| format!("{:.1}%", x * 100.0))
}

fn ms(v: &Value) -> String {
    v.as_f64()
        .map_or("n/a".into(), |x| format!("{:.0}ms", x * 1000.0))
}

fn num(v: &Value, digits: usize) -> String {
    v.as_f64().map_or("n/a".into(), |x| format!("{x:.digits$}"))
}

/// A drift value with three significant digits.
fn drift(v: &Value) -> String {
    v.as_f64().map_or("n/a".into(), |x| {
        if x != 0.0 && x.abs() < 0.001 {
            format!("{x:.2e}")
        } else {
            format!("{x:.3}")
        }
    })
}

/// The first rule on `signal` among `thresholds`, as `NAME OP THRESHOLD`.
fn rule_on(thresholds: &Value, signal: &str) -> Option<(String, String, f64)> {
    thresholds.as_array()?.iter().find_map(|t| {
        (t["signal"] == signal).then(|| {
            (
                t["alert"].as_str().unwrap_or("?").to_owned(),
                t["op"].as_str().unwrap_or("?").to_owned(),
                t["threshold"].as_f64().unwrap_or(f64::NAN),
            )
        })
    })
}

/// Whether `v OP threshold` holds.
fn crosses(v: f64, op: &str, threshold: f64) -> bool {
    match op {
        ">" => v > threshold,
        ">=" => v >= threshold,
        "<" => v < threshold,
        "<=" => v <= threshold,
        "==" => v == threshold,
        "!=" => v != threshold,
        _ => false,
    }
}

/// The drift lines of one model: prediction drift against its rule, and its
/// features ranked by the method of the feature drift rule, worst first.
fn drift_lines(d: &Value, m: &Value, out: &mut Vec<String>) {
    let (name, version) = (&m["model"], &m["version"]);
    let method = d["drift"]["method"].as_str().unwrap_or("psi");
    let larger_is_worse = d["drift"]["larger_is_worse"].as_bool().unwrap_or(true);
    let mut features: Vec<(&str, f64)> = d["features"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| &f["model"] == name && &f["version"] == version)
        .filter_map(|f| Some((f["feature"].as_str()?, f["drift"][method].as_f64()?)))
        .collect();
    let has_references = d["features"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| &f["model"] == name && &f["version"] == version);
    if !has_references && m["prediction_drift"].is_null() {
        out.push(
            "  Drift: no reference to compare with; make a baseline of the training data with `model-exporter baseline` and name it in rules.yaml (docs/baseline.md)".into(),
        );
        return;
    }
    let mut parts = Vec::new();
    if !m["prediction_drift"].is_null() {
        let rule = rule_on(&d["thresholds"], "prediction_psi")
            .map(|(a, op, t)| format!(" ({a} {op} {t})"))
            .unwrap_or_default();
        parts.push(format!(
            "prediction PSI={}{rule}",
            drift(&m["prediction_drift"])
        ));
    }
    if has_references {
        features.sort_by(|a, b| {
            let o = a.1.total_cmp(&b.1);
            if larger_is_worse { o.reverse() } else { o }
        });
        let rule = rule_on(&d["feature_thresholds"], method);
        let above = rule
            .as_ref()
            .map(|(_, op, t)| features.iter().filter(|f| crosses(f.1, op, *t)).count());
        let shown: Vec<String> = features
            .iter()
            .take(5)
            .map(|(f, v)| format!("{f}={}", drift(&Value::from(*v))))
            .collect();
        let more = features.len().saturating_sub(5);
        // The values the rule reads: its newest `max_samples` of the window.
        let over = d["drift"]["max_samples"]
            .as_u64()
            .map_or(String::new(), |n| format!(" over the newest {n} values"));
        let mut line = format!(
            "features by {method}{over}: {}{}",
            if shown.is_empty() {
                "no values yet".to_owned()
            } else {
                shown.join(", ")
            },
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
        if let (Some((a, op, t)), Some(n)) = (rule, above) {
            line.push_str(&format!(" ({n} of {} {op} {t}, {a})", features.len()));
        }
        parts.push(line);
    }
    out.push(format!("  Drift: {}", parts.join("; ")));
}

/// The label line of one model: accuracy (or MAE) of the predictions
/// joined with their labels, and how many wait for one.
fn label_line(d: &Value, m: &Value) -> String {
    let joined = m["labels_joined"].as_f64().unwrap_or(0.0);
    let pending = m["labels_pending"].as_f64().unwrap_or(0.0);
    let window = d["window"].as_str().unwrap_or("?");
    if joined == 0.0 && pending == 0.0 {
        return "  Labels: none received (send feedback events: docs/feedback.md)".into();
    }
    let mut parts = Vec::new();
    if !m["accuracy"].is_null() {
        parts.push(format!("Accuracy={}", pct(&m["accuracy"])));
    }
    if !m["mae"].is_null() {
        parts.push(format!("MAE={}", num(&m["mae"], 3)));
    }
    parts.push(format!(
        "{joined:.0} joined in the last {window}, {pending:.0} waiting for their label"
    ));
    format!("  Labels: {}", parts.join(", "))
}

/// Renders the report from a `/api/v1/summary` body, with the features of
/// `/api/v1/features` in `data.features` ([`fetch_all`]).
pub fn render(summary: &Value, source: &str) -> String {
    let d = &summary["data"];
    let rule = "=".repeat(60);
    let mut out = vec![
        rule.clone(),
        "ML SYSTEM MONITORING REPORT".to_owned(),
        rule,
        format!(
            "{} at {}, over the last {}",
            source,
            d["time"].as_str().unwrap_or("?"),
            d["window"].as_str().unwrap_or("?")
        ),
    ];
    let models = d["models"].as_array().cloned().unwrap_or_default();
    if models.is_empty() {
        out.push(String::new());
        out.push("No model has sent events yet.".into());
    }
    for m in &models {
        out.push(String::new());
        let version = m["version"].as_str().unwrap_or("");
        let name = m["model"].as_str().unwrap_or("?");
        out.push(if version.is_empty() {
            format!("Model {name}")
        } else {
            format!("Model {name} (version {version})")
        });
        out.push(format!(
            "  Operational: P50={}, P95={}, P99={}, Error={}, Requests={}/s",
            ms(&m["p50"]),
            ms(&m["p95"]),
            ms(&m["p99"]),
            pct(&m["error_rate"]),
            num(&m["request_rate"], 1)
        ));
        out.push(format!(
            "  ML: Positive={}, Confidence={}, Low confidence={}",
            pct(&m["positive_rate"]),
            num(&m["confidence_mean"], 2),
            pct(&m["low_confidence_rate"])
        ));
        drift_lines(d, m, &mut out);
        out.push(label_line(d, m));
        if !m["click_through_rate"].is_null() {
            out.push(format!(
                "  Business: Click-through={}",
                pct(&m["click_through_rate"])
            ));
        }
        if !m["cpu"].is_null() || !m["memory"].is_null() {
            out.push(format!(
                "  Resources: CPU={}, Memory={}",
                pct(&m["cpu"]),
                pct(&m["memory"])
            ));
        }
    }
    let alerts = d["alerts"].as_array().cloned().unwrap_or_default();
    let count = |state: &str| alerts.iter().filter(|a| a["state"] == state).count();
    out.push(String::new());
    out.push(format!(
        "Alerts: {} firing, {} pending",
        count("firing"),
        count("pending")
    ));
    for a in &alerts {
        let l = &a["labels"];
        let mut line = format!(
            "  [{}] {} {} {}",
            l["severity"].as_str().unwrap_or("").to_uppercase(),
            a["state"].as_str().unwrap_or(""),
            l["alertname"].as_str().unwrap_or("?"),
            l["model"].as_str().unwrap_or("")
        );
        if let Some(f) = l["feature"].as_str() {
            line.push_str(&format!(" feature={f}"));
        }
        if let Some(s) = a["annotations"]["summary"].as_str() {
            line.push_str(&format!(": {s}"));
        }
        out.push(line);
    }
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_models_and_alerts() {
        let v: Value = serde_json::from_str(
            r#"{"data":{"time":"2026-11-29T12:00:00.000Z","window":"5m",
            "models":[{"model":"fraud","version":"v3","p50":0.05,"p95":0.2,"p99":0.42,
              "error_rate":0.021,"request_rate":10.04,"positive_rate":0.105,
              "confidence_mean":0.623,"low_confidence_rate":0.12,"click_through_rate":null,"cpu":null,"memory":null},
              {"model":"reco","version":"","p50":null,"p95":null,"p99":null,"error_rate":null,
              "request_rate":0,"positive_rate":null,"confidence_mean":null,"low_confidence_rate":null,
              "click_through_rate":0.05,"cpu":0.4,"memory":0.55}],
            "alerts":[{"labels":{"alertname":"HighLatency","severity":"warning","model":"fraud"},
              "annotations":{"summary":"p99 high"},"state":"firing"}]}}"#,
        )
        .unwrap();
        let text = render(&v, "http://x:9877");
        for want in [
            "ML SYSTEM MONITORING REPORT",
            "http://x:9877 at 2026-11-29T12:00:00.000Z, over the last 5m",
            "Model fraud (version v3)",
            "  Operational: P50=50ms, P95=200ms, P99=420ms, Error=2.1%, Requests=10.0/s",
            "  ML: Positive=10.5%, Confidence=0.62, Low confidence=12.0%",
            "Model reco\n",
            "  Operational: P50=n/a, P95=n/a, P99=n/a, Error=n/a, Requests=0.0/s",
            "  Business: Click-through=5.0%",
            "  Resources: CPU=40.0%, Memory=55.0%",
            "Alerts: 1 firing, 0 pending",
            "  [WARNING] firing HighLatency fraud: p99 high",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("Business: Click-through=n/a"));
    }

    /// With the feature drift rule's `max_samples`, the drift line says the
    /// values are the newest N, as the rule reads them.
    #[test]
    fn drift_over_the_newest_values_says_so() {
        let body = |cap: &str| {
            format!(
                r#"{{"data":{{"time":"2026-12-06T03:00:00.000Z","window":"15m",
                "models":[{{"model":"m","version":"","prediction_drift":null}}],
                "drift":{{"method":"psi","larger_is_worse":true,"max_samples":{cap}}},
                "feature_thresholds":[{{"alert":"FeatureDrift","signal":"psi","op":">","threshold":0.2}}],
                "features":[{{"model":"m","version":"","feature":"f0","drift":{{"psi":0.61}}}},
                  {{"model":"m","version":"","feature":"f1","drift":{{"psi":0.01}}}}],
                "alerts":[]}}}}"#
            )
        };
        let text = render(&serde_json::from_str(&body("300")).unwrap(), "http://x");
        assert!(
            text.contains("features by psi over the newest 300 values: f0=0.610, f1=0.010 (1 of 2 > 0.2, FeatureDrift)"),
            "{text}"
        );
        let text = render(&serde_json::from_str(&body("null")).unwrap(), "http://x");
        assert!(text.contains("features by psi: f0=0.610"), "{text}");
    }

    #[tokio::test]
    async fn bad_urls_are_refused() {
        let client = HttpClient::new(&Default::default()).unwrap();
        let err = |url: &'static str| {
            let client = client.clone();
            async move { fetch(&client, url).await.unwrap_err().to_string() }
        };
        assert!(err("ftp://x").await.contains("is not http or https"));
        assert!(err("http://127.0.0.1:1").await.contains("cannot connect"));
    }

    #[test]
    fn the_base_url_is_given_with_or_without_metrics() {
        for (given, base) in [
            ("http://x:9877", "http://x:9877"),
            ("http://x:9877/", "http://x:9877"),
            ("http://x:9877/metrics", "http://x:9877"),
            ("https://x:9877/metrics/", "https://x:9877"),
            ("http://x/prefix/metrics", "http://x/prefix"),
            ("http://x/prefix", "http://x/prefix"),
        ] {
            assert_eq!(base_url(given), base, "{given}");
        }
    }
}
