//! `model-exporter report`: the monitoring report of a running exporter, as
//! text, from its `/api/v1/summary`, fetched with the
//! [`http_client`](crate::http_client) (TLS and credentials as configured).

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
    let url = format!("{}/api/v1/summary", base_url(base));
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

/// Renders the report from a `/api/v1/summary` body.
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
