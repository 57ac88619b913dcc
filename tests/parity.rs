//! Alerting parity, end to end: one rules.yaml drives the sidecar, and its
//! export (`model-exporter rules export`) drives a real Prometheus scraping
//! that sidecar; each sends its alerts to a real Alertmanager of its own.
//! Phases of traffic make every rule fire and resolve, and the test checks
//! that the sidecar and Prometheus agree: the same alerts, with the same
//! labels, firing and resolving within one evaluation interval of each
//! other plus one scrape interval (Prometheus reads the sidecar's counters
//! as of its last scrape, up to a scrape interval old). The sidecar's
//! Alertmanager is made unreachable while an alert resolves: the
//! resolution arrives once it is reachable again.
//!
//! The rules cover an error rate, a p99 latency threshold (300 ms) between
//! the default buckets (0.25 s and 0.5 s), a ratio of business counters, a
//! named feature's drift over the whole window and over its newest 50
//! values (`max_samples`, read from the sidecar's own value), and a silence
//! rule over a rollout from v1 to v2.
//! See docs/rules.md, "The sidecar and Prometheus".

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use common::alerting::{Alertmanager, Gate, get};
use common::*;

/// Evaluation interval of both the sidecar and Prometheus.
const EVALUATION: f64 = 1.0;
/// Prometheus' scrape interval.
const SCRAPE: f64 = 1.0;
/// How often the test reads both alert lists.
const POLL: Duration = Duration::from_millis(100);
/// The allowed gap between the sidecar and Prometheus for one transition:
/// an evaluation interval, a scrape interval, and the test's polling.
const TOLERANCE: f64 = EVALUATION + SCRAPE + 0.2;
/// How long the sidecar's Alertmanager stays unreachable after the first
/// failed delivery of a resolution: longer than a few quick retries.
const OUTAGE: Duration = Duration::from_secs(5);

const RULES: &str = "\
defaults: {window: 10s, evaluation_interval: 1s, min_samples: 20}
models:
  fraud:
    features:
      amount: {mean: 100, std: 10}
groups:
  - name: parity
    interval: 1s
    rules:
      - alert: HighErrorRate
        expr: error_rate > 20%
        for: 2s
        severity: critical
      - alert: SlowRequests
        expr: p99(latency) > 300ms
        for: 2s
      - alert: LowClickThrough
        expr: ratio(counter.clicked, counter.shown) < 10%
        for: 2s
      - alert: AmountDrift
        expr: psi(feature.amount) > 0.5
        for: 2s
        annotations:
          summary: 'feature {{ $labels.feature }} of {{ $labels.model }} drifted'
      - alert: RecentAmountDrift
        expr: psi(feature.amount) > 0.5
        max_samples: 50
        for: 2s
      - alert: ModelSilent
        expr: time_since_last_event > 4s
        min_samples: 0
        severity: info
";

/// The traffic phases.
const HEALTHY: u8 = 0;
const DEGRADED: u8 = 1;
const RECOVERED: u8 = 2;
const RESUMED: u8 = 3;

/// One batch of each model's events for a phase; `i` counts batches.
fn traffic(phase: u8, i: u64, rng: &mut Gen) -> String {
    let mut out = String::new();
    let bad = phase == DEGRADED;
    for k in 0..10u64 {
        let n = i * 10 + k;
        // checkout: every other request fails while degraded.
        let error = if bad && n.is_multiple_of(2) {
            r#","error":"timeout""#
        } else {
            ""
        };
        out += &format!("{{\"model\":\"checkout\",\"version\":\"v1\",\"latency_ms\":20{error}}}\n");
        // search: 1.5% of requests at 280 ms (p99 = 280 ms, under the
        // 300 ms threshold, though interpolating between the default
        // 0.25 s and 0.5 s buckets would read 0.33 s); degraded: 5% at 400 ms.
        let slow = match (bad, n % 200) {
            (false, 0..3) => 280,
            (true, _) if n.is_multiple_of(20) => 400,
            _ => 50,
        };
        out += &format!("{{\"model\":\"search\",\"version\":\"v1\",\"latency_ms\":{slow}}}\n");
        // feed: a click-through rate of 20%, 2% while degraded.
        let clicked = if bad {
            u64::from(n.is_multiple_of(5))
        } else {
            2
        };
        out += &format!(
            "{{\"model\":\"feed\",\"version\":\"v1\",\"latency_ms\":30,\"counters\":{{\"shown\":10,\"clicked\":{clicked}}}}}\n"
        );
        // fraud: amount drifts from N(100, 10) to N(150, 10).
        let amount = rng.normal(if bad { 150.0 } else { 100.0 }, 10.0);
        out += &format!(
            "{{\"model\":\"fraud\",\"version\":\"v1\",\"latency_ms\":40,\"features\":{{\"amount\":{amount:.2}}}}}\n"
        );
        // ranker: v1 until the rollout to v2; v2 falls silent after it,
        // then comes back.
        match phase {
            HEALTHY => out += "{\"model\":\"ranker\",\"version\":\"v1\",\"latency_ms\":10}\n",
            DEGRADED | RESUMED => {
                out += "{\"model\":\"ranker\",\"version\":\"v2\",\"latency_ms\":10}\n"
            }
            _ => {}
        }
    }
    out
}

type Labels = BTreeMap<String, String>;

/// The firing alerts of an `/api/v1/alerts` body (the sidecar's and
/// Prometheus' have the same shape), by label set.
fn firing(body: &str) -> BTreeSet<Labels> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["data"]["alerts"]
        .as_array()
        .unwrap_or_else(|| panic!("not an alert list: {body}"))
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| serde_json::from_value(a["labels"].clone()).unwrap())
        .collect()
}

/// The label sets of an Alertmanager's active alerts.
fn active(am: &Alertmanager) -> BTreeSet<Labels> {
    am.active_alerts()
        .iter()
        .map(|a| serde_json::from_value(a["labels"].clone()).unwrap())
        .collect()
}

/// One period during which an alert fired: seconds since the start.
#[derive(Debug, Clone, Copy)]
struct Episode {
    fired: f64,
    resolved: Option<f64>,
}

/// What each side fired, and when.
#[derive(Default)]
struct Timeline {
    sidecar: BTreeMap<Labels, Vec<Episode>>,
    prometheus: BTreeMap<Labels, Vec<Episode>>,
}

fn update(side: &mut BTreeMap<Labels, Vec<Episode>>, now: BTreeSet<Labels>, t: f64) {
    for (labels, episodes) in side.iter_mut() {
        if let Some(e) = episodes.last_mut()
            && e.resolved.is_none()
            && !now.contains(labels)
        {
            e.resolved = Some(t);
        }
    }
    for labels in now {
        let episodes = side.entry(labels).or_default();
        if episodes.last().is_none_or(|e| e.resolved.is_some()) {
            episodes.push(Episode {
                fired: t,
                resolved: None,
            });
        }
    }
}

fn is_firing(side: &BTreeMap<Labels, Vec<Episode>>, alert: &str, model: &str) -> bool {
    side.iter().any(|(l, e)| {
        l["alertname"] == alert
            && l["model"] == model
            && e.last().is_some_and(|e| e.resolved.is_none())
    })
}

fn fired_and_resolved(side: &BTreeMap<Labels, Vec<Episode>>, alert: &str, model: &str) -> bool {
    side.iter().any(|(l, e)| {
        l["alertname"] == alert && l["model"] == model && e.iter().all(|e| e.resolved.is_some())
    })
}

struct Run {
    exporter: Exporter,
    prometheus: Prometheus,
    start: Instant,
    timeline: Timeline,
}

impl Run {
    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Reads both sides' alerts once.
    fn poll(&mut self) {
        let s = firing(&get(self.exporter.web, "/api/v1/alerts").1);
        let p = firing(&get(self.prometheus.addr, "/api/v1/alerts").1);
        let t = self.now();
        update(&mut self.timeline.sidecar, s, t);
        update(&mut self.timeline.prometheus, p, t);
    }

    /// Polls until `done` holds, at most `limit`.
    fn until(&mut self, what: &str, limit: Duration, done: impl Fn(&Run) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            self.poll();
            if done(self) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "gave up waiting for {what} at {:.1}s\n{}",
                    self.now(),
                    self.report()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Polls for `d`.
    fn watch(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.poll();
            std::thread::sleep(POLL);
        }
    }

    fn report(&self) -> String {
        let mut out = String::new();
        for (name, side) in [
            ("sidecar", &self.timeline.sidecar),
            ("prometheus", &self.timeline.prometheus),
        ] {
            out += &format!("{name}:\n");
            for (l, e) in side {
                out += &format!("  {l:?}: {e:?}\n");
            }
        }
        out
    }

    /// Both sides fire and resolve `alert` for `model`.
    fn both(&self, alert: &str, model: &str, resolved: bool) -> bool {
        [&self.timeline.sidecar, &self.timeline.prometheus]
            .iter()
            .all(|side| {
                if resolved {
                    fired_and_resolved(side, alert, model)
                } else {
                    is_firing(side, alert, model)
                }
            })
    }
}

/// The five alerts of the degraded phase: (alertname, model).
const DEGRADED_ALERTS: [(&str, &str); 5] = [
    ("HighErrorRate", "checkout"),
    ("SlowRequests", "search"),
    ("LowClickThrough", "feed"),
    ("AmountDrift", "fraud"),
    ("RecentAmountDrift", "fraud"),
];

#[test]
fn the_sidecar_and_prometheus_fire_and_resolve_the_same_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let exported = dir.path().join("exported.yml");
    export_rules(&rules, &exported);

    let am_sidecar = Alertmanager::start();
    let am_prometheus = Alertmanager::start();
    let gate = Gate::open_to(am_sidecar.addr);
    let am_url = format!("http://{}", gate.addr);
    let exporter = Exporter::start(&[
        "--config.file",
        rules.to_str().unwrap(),
        "--alertmanager.url",
        &am_url,
    ]);
    let prometheus = Prometheus::start_alerting(&[exporter.web], &exported, am_prometheus.addr);

    let phase = Arc::new(AtomicU8::new(HEALTHY));
    let stop = Arc::new(AtomicU8::new(0));
    let feeder = {
        let (phase, stop) = (phase.clone(), stop.clone());
        let sock = exporter.path("unix");
        std::thread::spawn(move || {
            let mut rng = Gen(7);
            let mut announced = false;
            let mut i = 0u64;
            while stop.load(Ordering::Relaxed) == 0 {
                let p = phase.load(Ordering::Relaxed);
                let mut batch = String::new();
                if p == DEGRADED && !announced {
                    // The rollout: v2 is announced, then serves.
                    batch += "{\"type\":\"model\",\"model\":\"ranker\",\"version\":\"v2\"}\n";
                    announced = true;
                }
                batch += &traffic(p, i, &mut rng);
                // The exporter is gone once a failed test drops it.
                if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&sock) {
                    let _ = std::io::Write::write_all(&mut s, batch.as_bytes());
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let mut run = Run {
        exporter,
        prometheus,
        start: Instant::now(),
        timeline: Timeline::default(),
    };
    let limit = Duration::from_secs(40);

    // Healthy traffic, the p99 between buckets included: nothing fires.
    run.watch(Duration::from_secs(12));
    let early = run.report();
    assert!(
        run.timeline.sidecar.is_empty() && run.timeline.prometheus.is_empty(),
        "alerts fired on healthy traffic:\n{early}"
    );

    // Degraded, and the rollout of ranker to v2.
    phase.store(DEGRADED, Ordering::Relaxed);
    run.until("the degraded alerts to fire", limit, |r| {
        DEGRADED_ALERTS.iter().all(|(a, m)| r.both(a, m, false))
    });
    // Alertmanager holds the same alerts from both.
    let ours = |s: BTreeSet<Labels>| -> BTreeSet<Labels> {
        s.into_iter()
            .filter(|l| DEGRADED_ALERTS.iter().any(|(a, _)| l["alertname"] == *a))
            .collect()
    };
    let mut problems = Vec::new();
    let pairs = |s: &BTreeSet<Labels>| -> BTreeSet<(String, String)> {
        s.iter()
            .map(|l| (l["alertname"].clone(), l["model"].clone()))
            .collect()
    };
    let want_pairs: BTreeSet<(String, String)> = DEGRADED_ALERTS
        .iter()
        .map(|(a, m)| (a.to_string(), m.to_string()))
        .collect();
    let deadline = Instant::now() + PATIENCE;
    while !(pairs(&ours(active(&am_sidecar))).is_superset(&want_pairs)
        && pairs(&ours(active(&am_prometheus))).is_superset(&want_pairs))
    {
        assert!(
            Instant::now() < deadline,
            "the alerts did not reach the Alertmanagers:\nsidecar's: {:?}\nPrometheus': {:?}",
            active(&am_sidecar),
            active(&am_prometheus)
        );
        run.poll();
        std::thread::sleep(POLL);
    }
    let (from_sidecar, from_prometheus) = (ours(active(&am_sidecar)), ours(active(&am_prometheus)));
    if from_sidecar != from_prometheus {
        problems.push(format!(
            "the Alertmanagers hold different alerts:\n  from the sidecar: {from_sidecar:?}\n  from Prometheus:  {from_prometheus:?}"
        ));
    }

    // Recovery; v2 falls silent (v1, retired by the rollout, stays quiet).
    phase.store(RECOVERED, Ordering::Relaxed);
    run.until("recovery, and v2's silence", limit, |r| {
        DEGRADED_ALERTS.iter().all(|(a, m)| r.both(a, m, true))
            && r.both("ModelSilent", "ranker", false)
    });
    let silent = |l: &Labels| l["alertname"] == "ModelSilent" && l["model"] == "ranker";
    let deadline = Instant::now() + PATIENCE;
    while !active(&am_sidecar).iter().any(silent) {
        assert!(
            Instant::now() < deadline,
            "ModelSilent never reached the sidecar's Alertmanager"
        );
        run.poll();
        std::thread::sleep(POLL);
    }

    // The sidecar's Alertmanager becomes unreachable; v2 resumes, so
    // ModelSilent resolves while it is down.
    let errors = format!(r#"model_exporter_notifications_errors_total{{alertmanager="{am_url}"}}"#);
    let errors_before = run.exporter.sample(&errors).unwrap_or(0.0);
    gate.close();
    phase.store(RESUMED, Ordering::Relaxed);
    run.until("ModelSilent to resolve on both sides", limit, |r| {
        r.both("ModelSilent", "ranker", true)
    });
    // The resolution was attempted, and failed; the outage goes on for
    // a while longer (Prometheus would keep a resolution for 15 minutes).
    let deadline = Instant::now() + PATIENCE;
    while run.exporter.sample(&errors).unwrap_or(0.0) <= errors_before {
        assert!(
            Instant::now() < deadline,
            "no delivery failed while unreachable"
        );
        run.poll();
        std::thread::sleep(POLL);
    }
    run.watch(OUTAGE);
    assert!(
        active(&am_sidecar).iter().any(silent),
        "the resolution reached the Alertmanager through a closed gate"
    );
    gate.reopen();
    // It arrives once Alertmanager is reachable: well before the alert's
    // endsAt (4 x the 1m resend delay) would end it.
    let deadline = Instant::now() + PATIENCE;
    while active(&am_sidecar).iter().any(silent) {
        if Instant::now() > deadline {
            problems.push(format!(
                "the resolution of ModelSilent, sent while the sidecar's Alertmanager was unreachable, never reached it after it came back ({PATIENCE:?})"
            ));
            break;
        }
        run.poll();
        std::thread::sleep(POLL);
    }
    run.watch(Duration::from_secs(2));
    stop.store(1, Ordering::Relaxed);
    feeder.join().unwrap();

    // Every alert of either side, on both, at the same times.
    let report = run.report();
    let t = &run.timeline;
    let all: BTreeSet<&Labels> = t.sidecar.keys().chain(t.prometheus.keys()).collect();
    let mut largest_gap: f64 = 0.0;
    for labels in all {
        let (s, p) = (
            t.sidecar.get(labels).cloned().unwrap_or_default(),
            t.prometheus.get(labels).cloned().unwrap_or_default(),
        );
        if s.len() != p.len() {
            problems.push(format!(
                "{labels:?}: {} episodes in the sidecar, {} in Prometheus",
                s.len(),
                p.len()
            ));
            continue;
        }
        for (a, b) in s.iter().zip(&p) {
            largest_gap = largest_gap.max((a.fired - b.fired).abs());
            if let (Some(x), Some(y)) = (a.resolved, b.resolved) {
                largest_gap = largest_gap.max((x - y).abs());
            }
            if (a.fired - b.fired).abs() > TOLERANCE {
                problems.push(format!(
                    "{labels:?}: fired at {:.1}s in the sidecar, {:.1}s in Prometheus",
                    a.fired, b.fired
                ));
            }
            match (a.resolved, b.resolved) {
                (Some(x), Some(y)) if (x - y).abs() > TOLERANCE => problems.push(format!(
                    "{labels:?}: resolved at {x:.1}s in the sidecar, {y:.1}s in Prometheus"
                )),
                (Some(_), Some(_)) => {}
                (x, y) => problems.push(format!(
                    "{labels:?}: resolved at {x:?} in the sidecar, {y:?} in Prometheus"
                )),
            }
        }
    }
    for (a, m) in DEGRADED_ALERTS.iter().chain(&[("ModelSilent", "ranker")]) {
        if !t
            .sidecar
            .keys()
            .any(|l| l["alertname"] == *a && l["model"] == *m)
        {
            problems.push(format!("{a} never fired for {m}"));
        }
    }
    // The retired v1 never counts as silent.
    for side in [&t.sidecar, &t.prometheus] {
        for l in side.keys() {
            if l["alertname"] == "ModelSilent" && l.get("version").map(String::as_str) != Some("v2")
            {
                problems.push(format!("ModelSilent fired for {l:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}\n{report}", problems.join("\n"));
    eprintln!("{report}largest gap between the sidecar and Prometheus: {largest_gap:.2}s");
}
