//! `--aggregate.shards 3` through the real binary: events of several models
//! over several connections are all counted exactly, alerts of models on
//! different shards are all visible, the exposition stays valid, and
//! SIGTERM drains every shard.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::*;
use model_exporter::aggregate::shard_of;

const SHARDS: usize = 3;

const RULES: &str = "
defaults: {window: 1m, evaluation_interval: 200ms, min_samples: 5}
groups:
  - name: ops
    rules:
      - alert: HighErrorRate
        expr: error_rate > 5%
        severity: critical
";

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Six model names covering every shard; the first two on different shards.
fn models() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for i in 0.. {
        let n = format!("model-{i}");
        let shard = shard_of(&n, SHARDS);
        let covered: Vec<usize> = names.iter().map(|m| shard_of(m, SHARDS)).collect();
        if names.len() < SHARDS && covered.contains(&shard) {
            continue;
        }
        names.push(n);
        if names.len() == 6 {
            break;
        }
    }
    names
}

#[test]
fn shards_count_every_event_and_merge_alerts() {
    let e = Exporter::start_with_rules(RULES, &["--aggregate.shards", "3"]);
    let models = models();
    assert_ne!(shard_of(&models[0], SHARDS), shard_of(&models[1], SHARDS));

    // Four connections at once, each interleaving every model; the first
    // two models also fail (and so fire the alert).
    let per_conn = 250;
    let conns = 4;
    let began = Instant::now();
    let senders: Vec<_> = (0..conns)
        .map(|c| {
            let path = e.path("unix");
            let tcp = e.events["tcp"].clone();
            let models = models.clone();
            std::thread::spawn(move || {
                let mut payload = String::new();
                for i in 0..per_conn {
                    for (k, m) in models.iter().enumerate() {
                        if k < 2 && i % 2 == 0 {
                            payload.push_str(&format!(
                                "{{\"model\":\"{m}\",\"latency_ms\":{i},\"error\":\"timeout\"}}\n"
                            ));
                        } else {
                            payload
                                .push_str(&format!("{{\"model\":\"{m}\",\"latency_ms\":{i}}}\n"));
                        }
                    }
                }
                if c % 2 == 0 {
                    send_unix(&path, payload.as_bytes());
                } else {
                    send_tcp(&tcp, payload.as_bytes());
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let total = (per_conn * conns) as f64;
    for (k, m) in models.iter().enumerate() {
        if k < 2 {
            let half = total / 2.0;
            e.wait_sample(
                &format!(r#"model_requests_total{{model="{m}",outcome="error",version=""}}"#),
                half,
            );
            e.wait_sample(
                &format!(r#"model_requests_total{{model="{m}",outcome="ok",version=""}}"#),
                half,
            );
        } else {
            e.wait_sample(
                &format!(r#"model_requests_total{{model="{m}",outcome="ok",version=""}}"#),
                total,
            );
        }
    }
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        total * models.len() as f64,
    );
    // Every event is applied: the evaluation rounds from here on see them
    // all (the window families below are rebuilt only by evaluations).
    let rounds = || {
        e.sample(r#"model_exporter_rule_evaluations_total{group="ops"}"#)
            .unwrap_or(0.0)
    };
    let applied_at = rounds();

    // Alerts of models on different shards, side by side.
    for m in &models[..2] {
        let firing = format!(
            r#"model_alerts{{alertname="HighErrorRate",alertstate="firing",model="{m}",severity="critical",version=""}}"#
        );
        wait_until("both alerts to fire", || e.sample(&firing) == Some(1.0));
    }
    // The API snapshot is written just after the families: read it until
    // it lists both, then check it lists nothing else.
    let api_firing = || {
        let (status, _, body) = e.get("/api/v1/alerts");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut firing: Vec<String> = v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["labels"]["model"].as_str().unwrap().to_owned())
            .collect();
        firing.sort();
        firing
    };
    wait_until("both alerts in the API", || api_firing().len() >= 2);
    assert_eq!(api_firing(), [models[0].clone(), models[1].clone()]);
    // One rule, healthy, with both alerts.
    let (_, _, body) = e.get("/api/v1/rules");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rule = &v["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["health"], "ok", "{body}");
    assert_eq!(rule["alerts"].as_array().unwrap().len(), 2, "{body}");
    // Every model's summary, whichever its shard (the summary is brought
    // up to date when it is asked for).
    wait_until("every model in the summary", || {
        let (_, _, body) = e.get("/api/v1/summary");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["models"].as_array().unwrap().len() == 6
    });
    // The window families are those of each shard's last evaluation: wait
    // for rounds after every event was applied. Shard 0 counts the rounds;
    // the others evaluate on the same 200 ms interval, so after three of
    // its rounds each of them has had one since.
    wait_until("every shard to evaluate the events", || {
        rounds() >= applied_at + 3.0
    });

    let text = e.metrics();
    // Every request of a model fell within the last `watched` seconds, and
    // the window's rate divides by at most that plus one 6 s slice (the
    // window may reach one slice back): a lower bound on each rate.
    let watched = began.elapsed().as_secs_f64();
    for m in &models {
        let rate = format!(r#"model_window_request_rate{{model="{m}",version="",window="1m"}}"#);
        let got = sample(&text, &rate).unwrap_or_else(|| panic!("missing {rate}\n{text}"));
        assert!(
            got >= total / (watched + 6.0),
            "{rate} {got}: {total} requests in {watched} s"
        );
    }
    promtool_check_metrics(&text);

    // SIGTERM with events still arriving: every shard drains.
    let mut c = UnixStream::connect(e.path("unix")).unwrap();
    let more: String = (0..3000)
        .map(|i| format!("{{\"model\":\"{}\"}}\n", models[i % models.len()]))
        .collect();
    c.write_all(more.as_bytes()).unwrap();
    let (status, log) = e.stop();
    assert!(status.success(), "{status:?}");
    assert!(
        log.iter().any(
            |v| v["fields"]["message"] == "aggregating in shards" && v["fields"]["shards"] == 3
        ),
        "no shards log line"
    );
    let stopped = log
        .iter()
        .find(|v| v["fields"]["message"] == "stopped")
        .expect("no 'stopped' log line");
    assert_eq!(
        stopped["fields"]["events_received"],
        (per_conn * conns * models.len() + 3000) as u64,
        "{stopped}"
    );
    drop(c);
}

/// On the manual clock, the request rate each shard computes for its
/// models is exact: model k sends 10·(k + 1) requests at once, then 5 s of
/// the clock pass (the 1 m window's 6 s slices are aligned with the clock's
/// start), so its rate is 2·(k + 1) a second.
#[test]
fn every_shard_computes_its_models_request_rates() {
    let e = InProcess::start_with_rules(RULES, &["--aggregate.shards", "3"]);
    let models = models();
    let mut payload = String::new();
    for (k, m) in models.iter().enumerate() {
        for _ in 0..10 * (k + 1) {
            payload.push_str(&format!("{{\"model\":\"{m}\"}}\n"));
        }
    }
    send_unix(&e.path("unix"), payload.as_bytes());
    for (k, m) in models.iter().enumerate() {
        e.wait_sample(
            &format!(r#"model_requests_total{{model="{m}",outcome="ok",version=""}}"#),
            (10 * (k + 1)) as f64,
        );
    }
    e.advance(Duration::from_secs(5));
    for (k, m) in models.iter().enumerate() {
        e.wait_sample(
            &format!(r#"model_window_request_rate{{model="{m}",version="",window="1m"}}"#),
            (2 * (k + 1)) as f64,
        );
    }
}

#[test]
fn the_model_cap_holds_over_all_shards() {
    let e = Exporter::start(&["--aggregate.shards", "3", "--limits.models", "2"]);
    let payload: String = (0..8)
        .map(|i| format!("{{\"model\":\"cap-{i}\"}}\n"))
        .collect();
    send_unix(&e.path("unix"), payload.as_bytes());
    e.wait_sample(
        r#"model_exporter_events_received_total{type="inference"}"#,
        8.0,
    );
    let text = e.metrics();
    let mut models: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(r#"model_requests_total{model=""#))
        .filter_map(|l| l.split('"').next())
        .collect();
    // Series come out in creation order: sort before comparing.
    models.sort_unstable();
    models.dedup();
    assert_eq!(models, ["__other__", "cap-0", "cap-1"], "{text}");
    assert_eq!(
        sample(
            &text,
            r#"model_requests_total{model="__other__",outcome="ok",version=""}"#
        ),
        Some(6.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"model_exporter_series_dropped_total{label="model"}"#
        ),
        Some(6.0)
    );
    promtool_check_metrics(&text);
}

#[test]
fn a_bad_shard_count_is_refused_clearly() {
    let out = std::process::Command::new(binary())
        .args(["--aggregate.shards", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--aggregate.shards"), "{err}");
    assert!(err.contains("from 1 to 256"), "{err}");
}

#[test]
fn a_reload_reaches_every_shard() {
    let e = Exporter::start_with_rules(
        RULES,
        &[
            "--aggregate.shards",
            "3",
            "--config.watch-interval",
            "0",
            "--web.enable-lifecycle",
        ],
    );
    // One model on each shard.
    let models: Vec<String> = models().into_iter().take(SHARDS).collect();
    let mut on: Vec<usize> = models.iter().map(|m| shard_of(m, SHARDS)).collect();
    on.sort();
    assert_eq!(on, [0, 1, 2]);
    let send = || {
        let p: String = models
            .iter()
            .map(|m| format!("{{\"model\":\"{m}\"}}\n"))
            .collect();
        send_unix(&e.path("unix"), p.as_bytes());
    };
    send();
    std::fs::write(
        e.rules_path(),
        format!("{RULES}      - alert: Traffic\n        expr: request_rate > 0\n        min_samples: 0\n"),
    )
    .unwrap();
    assert_eq!(post_reload(&e), 200);
    for m in &models {
        let firing = format!(
            r#"model_alerts{{alertname="Traffic",alertstate="firing",model="{m}",severity="warning",version=""}}"#
        );
        wait_until("the new rule to fire on every shard", || {
            send();
            e.sample(&firing) == Some(1.0)
        });
    }
    let (_, _, body) = e.get("/api/v1/rules");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rules = v["data"]["groups"][0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{body}");
    assert_eq!(rules[1]["alerts"].as_array().unwrap().len(), 3, "{body}");
    promtool_check_metrics(&e.metrics());
}

/// `POST /-/reload`; returns the status.
fn post_reload(e: &Exporter) -> u16 {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(e.web).unwrap();
    write!(
        s,
        "POST /-/reload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split(' ').nth(1).unwrap().parse().unwrap()
}
