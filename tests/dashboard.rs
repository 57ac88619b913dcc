//! The dashboard page in a real browser (headless Chromium, Debian package
//! `chromium`), read from the DOM it renders: against a running demo (the
//! charts and the alert table render with data, values in their units, the
//! drift table ranked and coloured by the rule, the exporter's clock in the
//! header, the label join, a model without reference told what to do), and
//! against a model with 50 features and a 1 ms latency. The page's script
//! logs no error; screenshots are saved to target/dashboard.png and
//! target/dashboard-50-features.png.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chromium(args: &[&str], profile: &std::path::Path) -> std::process::Output {
    chromium_sized(args, profile, "1400,2600")
}

fn chromium_sized(args: &[&str], profile: &std::path::Path, size: &str) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=8000",
        ])
        .arg(format!("--window-size={size}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("chromium not found: install the Debian package `chromium` (.ci/run does)")
}

#[test]
fn the_dashboard_renders_the_demo() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut demo = Command::new(binary())
        .args([
            "demo",
            "--speed",
            "120",
            "--duration",
            "40m",
            "--quiet",
            "--web.listen-address",
            &addr,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the story has alerts firing.
    let web: std::net::SocketAddr = addr.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(web).is_ok() {
            let (_, _, body) = http_get(web, "/api/v1/alerts");
            if body.matches("\"firing\"").count() >= 3 {
                break;
            }
        }
        if let Ok(Some(status)) = demo.try_wait() {
            panic!("the demo exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the demo never fired three alerts"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A client library reports it lost events: the model gets a badge.
    let socket = std::env::temp_dir()
        .join(format!("model-exporter-demo-{}", demo.id()))
        .join("events.sock");
    send_unix(
        &socket,
        br#"{"type":"client","model":"fraud","dropped":{"queue_full":12},"values_omitted":2}
"#,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http_get(web, "/api/v1/summary")
        .2
        .contains("\"queue_full\":12")
    {
        assert!(Instant::now() < deadline, "the client report never arrived");
        std::thread::sleep(Duration::from_millis(50));
    }

    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/");
    let dom = chromium(&["--dump-dom", &url], profile.path());
    let html = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    // The page's own sections, filled in by its script.
    assert!(
        html.contains("data-model=\"fraud\""),
        "no fraud section:\n{html}"
    );
    assert!(html.contains("data-model=\"reco\""), "no reco section");
    for title in [
        "Latency",
        "Requests",
        "Error rate",
        "Positive prediction rate",
        "Confidence",
        "Click-through rate",
        "Feature drift",
        "Distribution: age",
        "Drift over time",
        "Accuracy and labels",
    ] {
        assert!(html.contains(&format!("<h3>{title}")), "no {title} chart");
    }
    // Charts with data: drawn lines, and bars of the distributions.
    assert!(
        html.matches("<path d=\"M").count() >= 10,
        "too few lines drawn"
    );
    assert!(html.matches("<rect ").count() >= 20, "no distribution bars");
    // The alert table has firing rows.
    assert!(
        html.matches("class=\"state-firing\"").count() >= 3,
        "alerts not rendered"
    );
    assert!(
        html.contains("client lost events: 12 queue full, 2 values left out"),
        "no badge for the client's losses"
    );
    assert!(
        html.contains("<span id=\"status\">exporter time "),
        "the page did not load its data"
    );
    // The rendered page, without the script's source.
    let html = &html[..html.find("<script").unwrap_or(html.len())];
    let fraud = section(html, "fraud");
    let reco = section(html, "reco");
    // The drift table: most drifted first, coloured by the built-in rule's
    // own threshold (psi > 0.2).
    let drift = drift_values(fraud);
    assert_eq!(drift.len(), 3, "{fraud}");
    assert!(drift.windows(2).all(|w| w[0].1 >= w[1].1), "{drift:?}");
    for (color, v) in &drift {
        assert_eq!(color == "#cf222e", *v > 0.2, "{v} coloured {color}");
    }
    assert!(fraud.contains("FeatureDrift: psi &gt; 0.2"), "{fraud}");
    // The label join: accuracy and counts.
    let labels = card_of(fraud, "Accuracy and labels");
    assert!(labels.contains("labels matched in 5m"), "{labels}");
    assert!(labels.contains(" pending"), "{labels}");
    assert!(labels.contains("<path d=\"M"), "no accuracy line: {labels}");
    // Drift over time, with the rule's threshold line.
    let over_time = card_of(fraud, "Drift over time");
    assert!(over_time.matches("<path d=\"M").count() >= 2, "{over_time}");
    assert!(
        over_time.contains("FeatureDrift, PredictionDrift &gt; 0.2"),
        "{over_time}"
    );
    // The recommender has no reference: the page says how to make one.
    assert!(
        reco.contains("class=\"no-reference\"") && reco.contains("model-exporter baseline --input"),
        "{reco}"
    );
    // Bin labels are slanted, short, and fewer than the bins when crowded.
    let bins = texts(fraud, "class=\"bin\"");
    assert!(!bins.is_empty());
    assert!(bins.iter().all(|b| b.chars().count() <= 14), "{bins:?}");
    assert!(
        fraud.contains("transform=\"rotate(-40"),
        "labels not slanted"
    );
    // Alert values in their signal's unit, never raw exponents.
    let values = texts(html, "class=\"value\"");
    assert!(values.len() >= 3, "{values:?}");
    for v in &values {
        assert!(!v.contains('e'), "raw value {v}");
    }
    assert!(
        values.iter().any(|v| v.ends_with(" ms")),
        "no latency in ms: {values:?}"
    );
    assert!(
        values.iter().any(|v| v.ends_with('%')),
        "no rate in %: {values:?}"
    );
    // The header shows the exporter's clock (the demo's, 120 times faster
    // than the wall clock), as the axes do, not the time of day.
    let status = texts(html, "id=\"status\"").remove(0);
    let (_, _, body) = http_get(web, "/api/v1/summary");
    let summary: serde_json::Value = serde_json::from_str(&body).unwrap();
    let demo_now = seconds_of_day(summary["data"]["time"].as_str().unwrap());
    let shown = clock_seconds(status.strip_prefix("exporter time ").unwrap());
    let gap = |a: f64, b: f64| ((a - b).rem_euclid(86_400.0)).min((b - a).rem_euclid(86_400.0));
    assert!(gap(shown, demo_now) < 600.0, "{status} vs {demo_now}");
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        % 86_400.0;
    // The demo's clock starts at the wall clock and runs ahead of it by
    // 119 s every second, so how far apart the two are depends on how long
    // the demo has run: the header must be nearer the exporter's clock.
    assert!(
        gap(shown, wall) > gap(shown, demo_now),
        "{status} is the wall clock ({demo_now} s of day on the exporter's clock)"
    );

    // No script error in the console.
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("Error")))
        .collect();
    assert!(errors.is_empty(), "console errors:\n{}", errors.join("\n"));

    let shot = concat!(env!("CARGO_MANIFEST_DIR"), "/target/dashboard.png");
    let out = chromium(&[&format!("--screenshot={shot}"), &url], profile.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(shot).unwrap().len() > 10_000);

    let _ = demo.kill();
    let _ = demo.wait();
}

/// Rules of the wide model: a drift rule at 0.5, not the customary 0.2, so
/// that the colours can only come from the rule.
const WIDE_RULES: &str = "
defaults: {window: 5m, evaluation_interval: 200ms, min_samples: 10}
models:
  wide:
    baseline: wide.json
groups:
  - name: g
    rules:
      - alert: HighLatency
        expr: p99(latency) > 500ms
      - alert: FeatureDrift
        expr: psi(feature.*) > 0.5
      - alert: AccuracyDrop
        expr: accuracy < 80%
";

#[test]
fn the_dashboard_stays_readable_with_fifty_features() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..50).map(|i| format!("f{i:02}")).collect();
    let mut g = Gen(23);
    let mut csv = names.join(",") + ",prediction\n";
    for r in 0..3000 {
        let row: Vec<String> = names
            .iter()
            .map(|_| format!("{:.3}", g.normal(0.0, 1.0)))
            .collect();
        csv += &format!("{},{}\n", row.join(","), r % 2);
    }
    baseline_from_csv(dir.path(), "wide", &csv, &[]);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, WIDE_RULES).unwrap();
    let e = Exporter::start(&[
        "--config.file",
        rules.to_str().unwrap(),
        "--history.resolution",
        "200ms",
    ]);
    // Feature i is shifted by i/25 of its standard deviation: drift from
    // none to about two standard deviations. Latency 1 to 2 ms. Labels for
    // every request, right nine times in ten.
    let send = |g: &mut Gen, n: usize, from: usize| {
        let mut lines = String::new();
        for k in from..from + n {
            let features: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, f)| format!("\"{f}\":{:.3}", g.normal(i as f64 / 25.0, 1.0)))
                .collect();
            let p = k % 2;
            lines += &format!(
                "{{\"model\":\"wide\",\"id\":\"w-{k}\",\"latency_ms\":{:.3},\"prediction\":{p},\"confidence\":0.8,\"features\":{{{}}}}}\n",
                1.0 + g.uniform(),
                features.join(",")
            );
            let actual = if k % 10 == 0 { 1 - p } else { p };
            lines += &format!(
                "{{\"type\":\"feedback\",\"model\":\"wide\",\"id\":\"w-{k}\",\"actual\":{actual}}}\n"
            );
        }
        send_unix(&e.path("unix"), lines.as_bytes());
    };
    let mut sent = 0;
    for _ in 0..5 {
        send(&mut g, 400, sent);
        sent += 400;
        std::thread::sleep(Duration::from_millis(300));
    }
    e.wait_sample(
        r#"model_requests_total{model="wide",outcome="ok",version=""}"#,
        sent as f64,
    );
    // Several history points with the drift in them.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, _, body) = e.get("/api/v1/history");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let points = v["data"]["series"][0]["feature_drift"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|x| x.is_number()).count());
        if points >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no drift history: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", e.web);
    let dom = chromium_sized(&["--dump-dom", &url], profile.path(), "1400,1800");
    let full = String::from_utf8_lossy(&dom.stdout).into_owned();
    let html = &full[..full.find("<script").unwrap_or(full.len())];
    let wide = section(html, "wide");

    // Every feature in one table, in a card that scrolls on its own and
    // spans two rows of the grid instead of stretching one.
    let drift = drift_values(wide);
    assert_eq!(drift.len(), 50, "{wide}");
    let table = card_of(wide, "Feature drift");
    assert!(table.contains("class=\"card drift tall\""), "{table}");
    assert!(table.contains("<div class=\"scroll\">"), "{table}");
    assert!(table.contains("50 features, most drifted first · FeatureDrift: psi &gt; 0.5"));
    // Most drifted first: the most shifted feature on top.
    assert!(drift.windows(2).all(|w| w[0].1 >= w[1].1), "{drift:?}");
    let at = table.find("<tr data-feature=\"").unwrap() + 18;
    let first = &table[at..at + 3];
    assert!(["f49", "f48", "f47"].contains(&first), "{first}");
    // Coloured by the rule's 0.5: red only above it, amber from half-way,
    // green below; so values between 0.2 and 0.5 are not red.
    for (color, v) in &drift {
        let want = if *v > 0.5 {
            "#cf222e"
        } else if *v >= 0.25 {
            "#bf8700"
        } else {
            "#2da44e"
        };
        assert_eq!(color, want, "{v}");
    }
    assert!(
        drift.iter().any(|(_, v)| *v > 0.2 && *v < 0.5),
        "no value between the customary 0.2 and the rule's 0.5: {drift:?}"
    );
    // Six distributions, the most drifted, not fifty.
    assert_eq!(wide.matches("<h3>Distribution: ").count(), 6);
    assert!(wide.contains("the 6 most drifted of 50"));
    // The latency axis is scaled to the 1-2 ms the model takes; the 500 ms
    // threshold is named as off the scale, not drawn.
    let latency = card_of(wide, "Latency");
    let ticks: Vec<String> = texts(latency, "class=\"ytick\"");
    let top = ticks.last().unwrap();
    assert!(top.ends_with(" ms"), "{ticks:?}");
    let top_ms: f64 = top.trim_end_matches(" ms").parse().unwrap();
    assert!((1.0..10.0).contains(&top_ms), "{ticks:?}");
    assert!(!latency.contains("class=\"threshold\""), "{latency}");
    assert!(
        latency.contains("HighLatency &gt; 500 ms: off the scale"),
        "{latency}"
    );
    // The label join: accuracy 90%, every label matched, none pending.
    let labels = card_of(wide, "Accuracy and labels");
    assert!(labels.contains("accuracy 90%"), "{labels}");
    assert!(
        labels.contains("2000 labels matched in 5m · 0 pending"),
        "{labels}"
    );
    // Drift over time: the worst feature's line, and the rule's threshold.
    let over_time = card_of(wide, "Drift over time");
    assert!(over_time.contains("<path d=\"M"), "{over_time}");
    assert!(over_time.contains("FeatureDrift &gt; 0.5"), "{over_time}");
    let log = String::from_utf8_lossy(&dom.stderr);
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("Error")))
        .collect();
    assert!(errors.is_empty(), "console errors:\n{}", errors.join("\n"));

    let shot = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/dashboard-50-features.png"
    );
    let out = chromium_sized(
        &[&format!("--screenshot={shot}"), &url],
        profile.path(),
        "1400,1800",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(shot).unwrap().len() > 10_000);
}

/// The part of the page about one model.
fn section<'a>(html: &'a str, model: &str) -> &'a str {
    let start = html
        .find(&format!("<section class=\"model\" data-model=\"{model}\""))
        .unwrap_or_else(|| panic!("no section of {model}"));
    let end = html[start..]
        .find("</section>")
        .map_or(html.len(), |e| start + e);
    &html[start..end]
}

/// The card with this title.
fn card_of<'a>(html: &'a str, title: &str) -> &'a str {
    let at = html
        .find(&format!("<h3>{title}"))
        .unwrap_or_else(|| panic!("no card {title}"));
    let start = html[..at].rfind("<div class=\"card").unwrap();
    let end = html[at..]
        .find("<div class=\"card")
        .map_or(html.len(), |e| at + e);
    &html[start..end]
}

/// The text of every element whose opening tag contains `attr`.
fn texts(html: &str, attr: &str) -> Vec<String> {
    html.match_indices(attr)
        .filter_map(|(i, _)| {
            let open = html[i..].find('>')? + i + 1;
            let close = html[open..].find('<')? + open;
            Some(html[open..close].replace("&amp;", "&"))
        })
        .collect()
}

/// (colour, value) of each row of a drift table, in order.
fn drift_values(html: &str) -> Vec<(String, f64)> {
    html.match_indices("class=\"drift-value\" style=\"color:")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            let color = rest[..rest.find(';').unwrap()].to_owned();
            let v = &rest[rest.find('>').unwrap() + 1..rest.find('<').unwrap()];
            (color, parse_num(v))
        })
        .collect()
}

/// A number as the page writes it (three digits, k/M suffixes).
fn parse_num(s: &str) -> f64 {
    let (n, k) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1e3),
        Some('M') => (&s[..s.len() - 1], 1e6),
        _ => (s, 1.0),
    };
    n.parse::<f64>()
        .unwrap_or_else(|_| panic!("not a number: {s}"))
        * k
}

/// Seconds since midnight (UTC) of an RFC 3339 time.
fn seconds_of_day(t: &str) -> f64 {
    let time = t.split('T').nth(1).unwrap();
    let p: Vec<f64> = time[..8].split(':').map(|x| x.parse().unwrap()).collect();
    p[0] * 3600.0 + p[1] * 60.0 + p[2]
}

/// Seconds since midnight of the time of day at the start of `t`, as
/// headless Chromium writes it (en-US, UTC on this machine): `8:49:36 AM`,
/// `12:58:10 PM` or `20:49:36`, followed by anything.
fn clock_seconds(t: &str) -> f64 {
    let mut words = t.split_whitespace();
    let hms = words.next().unwrap();
    let half = words.next().filter(|w| *w == "AM" || *w == "PM");
    let p: Vec<f64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let h = match half {
        Some("AM") => p[0] % 12.0,
        Some(_) => p[0] % 12.0 + 12.0,
        None => p[0],
    };
    h * 3600.0 + p[1] * 60.0 + p[2]
}
