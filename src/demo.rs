//! `model-exporter demo`: the exporter with its built-in rules, fed by
//! simulated traffic that replays two classic failure stories, with time
//! running faster so that the whole story fits in about a minute.
//!
//! * **fraud** (v3, trained 40 days ago): lognormal latency around 50 ms with
//!   5% slow spikes, 2% errors, features age, income and amount that drift by
//!   +20% of their means from 30% of the run on (which also raises the
//!   positive rate), labels that arrive a minute later.
//! * **reco** (v7): a recommender whose latency triples and whose
//!   click-through rate falls from 15% to 5% from 70% of the run on.
//!
//! Events go through the real path: a unix stream socket, the parser, the
//! aggregator. The demo prints alerts as they fire and the monitoring report
//! at the end.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;

use crate::cli::Cli;
use crate::client::Client;
use crate::clock::{Clock, ScaledClock, SharedClock};

/// What rules.yaml adds for the demo's models: the fraud model's feature
/// expectations (inline references, so drift can be measured).
const DEMO_MODELS: &str = r#"
  fraud:
    positive_threshold: 0.5
    low_confidence_threshold: 0.5
    features:
      age: {min: 0, max: 120, required: true, mean: 35, std: 10}
      income: {min: 0, mean: 50000, std: 20000}
      amount: {min: 0, mean: 100, std: 50}
"#;

/// The built-in rules with the demo's model expectations added.
pub fn demo_rules() -> String {
    crate::DEFAULT_RULES_YAML.replacen("\nmodels:\n", &format!("\nmodels:{DEMO_MODELS}"), 1)
}

/// Settings of a demo run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Simulated length of the story.
    pub duration: Duration,
    /// HTTP listen addresses.
    pub web_listen: Vec<String>,
    /// Seed of the simulation.
    pub seed: u64,
    /// Print alerts and the final report.
    pub verbose: bool,
}

/// A small seeded random source (xorshift64*, seeded by splitmix64).
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Normal with this mean and standard deviation (Box-Muller).
    pub fn normal(&mut self, mean: f64, std: f64) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        mean + std * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Bernoulli with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
}

/// One simulated request of the fraud model at story fraction `at` (0..1).
fn fraud_event(
    c: &Client,
    rng: &mut Rng,
    i: u64,
    at: f64,
    pending: &mut Vec<(f64, String, u8)>,
    now: f64,
) {
    let drifted = at >= 0.3;
    let k = if drifted { 1.2 } else { 1.0 };
    let age = rng.normal(35.0 * k, 10.0).clamp(18.0, 100.0);
    let income = rng.normal(50_000.0 * k, 20_000.0).max(0.0);
    let amount = rng.normal(100.0 * k, 50.0).max(0.0);
    let base = if drifted { 0.15 } else { 0.1 };
    let p = (base + (amount - 100.0) / 500.0).clamp(0.01, 0.99);
    let prediction = u8::from(rng.chance(p));
    let confidence = (p + rng.normal(0.0, 0.1)).clamp(0.1, 0.99);
    let latency_ms = if rng.chance(0.05) {
        50.0 * (5.0 + 15.0 * rng.uniform())
    } else {
        rng.normal(50f64.ln(), 0.5).exp()
    };
    let id = format!("f-{i}");
    let mut req = c
        .inference("fraud")
        .version("v3")
        .id(&id)
        .latency(Duration::from_secs_f64(latency_ms / 1000.0))
        .prediction(i64::from(prediction))
        .confidence(confidence)
        .feature("age", age.round())
        .feature("income", income.round())
        .feature("amount", (amount * 100.0).round() / 100.0);
    if rng.chance(0.02) {
        req = req.error("timeout");
    }
    req.send();
    // The truth is known a minute later; after the drift the world has
    // moved and the model is right less often.
    let actual = if drifted {
        rng.chance(0.3)
    } else {
        rng.chance(p)
    };
    if rng.chance(0.5) {
        pending.push((now + 60.0, id, u8::from(actual)));
    }
}

/// One simulated request of the recommender.
fn reco_event(c: &Client, rng: &mut Rng, at: f64) {
    let degraded = at >= 0.7;
    let median = if degraded { 100.0 } else { 30.0 };
    let latency_ms = rng.normal(f64::ln(median), 0.5).exp();
    let ctr = if degraded { 0.05 } else { 0.15 };
    let shown = 5 + (rng.uniform() * 6.0) as u32;
    let clicked = (0..shown).filter(|_| rng.chance(ctr)).count();
    c.inference("reco")
        .version("v7")
        .latency(Duration::from_secs_f64(latency_ms / 1000.0))
        .prediction("sports")
        .confidence(0.5 + 0.5 * rng.uniform())
        .counter("shown", f64::from(shown))
        .counter("clicked", clicked as f64)
        .send();
}

/// Feeds both stories until `stop`, pacing events by the (fast) clock.
pub fn generate(
    socket: &Path,
    clock: SharedClock,
    duration: Duration,
    seed: u64,
    stop: Arc<AtomicBool>,
) {
    let c = Client::unix_stream(socket);
    let mut rng = Rng::new(seed);
    let start = clock.now();
    c.model_loaded("fraud", "v3", Some(start - 40.0 * 86_400.0));
    c.model_loaded("reco", "v7", Some(start - 2.0 * 86_400.0));
    let (fraud_rate, reco_rate) = (20.0, 10.0);
    let (mut fraud_sent, mut reco_sent) = (0u64, 0u64);
    let mut pending: Vec<(f64, String, u8)> = Vec::new();
    let total = duration.as_secs_f64();
    while !stop.load(Ordering::Relaxed) {
        let now = clock.now();
        let elapsed = (now - start).min(total);
        let at = elapsed / total;
        while (fraud_sent as f64) < elapsed * fraud_rate {
            fraud_event(&c, &mut rng, fraud_sent, at, &mut pending, now);
            fraud_sent += 1;
            if fraud_sent % 500 == 0 {
                c.send_line(
                    br#"{"type":"log","model":"fraud","version":"v3","level":"error","component":"inference","message":"Feature missing: embedding"}"#,
                );
            }
        }
        while (reco_sent as f64) < elapsed * reco_rate {
            reco_event(&c, &mut rng, at);
            reco_sent += 1;
        }
        pending.retain(|(due, id, actual)| {
            if *due <= now {
                c.feedback("fraud", id, i64::from(*actual));
                false
            } else {
                true
            }
        });
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn mmss(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Its temporary directory or rules file could not be written.
    #[error("{}: {source}", path.display())]
    Files {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The exporter's flags were refused.
    #[error(transparent)]
    Flags(#[from] clap::Error),
    /// The async runtime could not be built.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The exporter did not start.
    #[error(transparent)]
    Exporter(#[from] crate::server::RunError),
    /// The client that reads the exporter's summary could not be made.
    #[error(transparent)]
    Client(#[from] crate::http_client::ClientError),
}

/// The URL a browser on this machine reaches the exporter at.
fn local_url(addr: std::net::SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, addr.port()))
}

/// Runs the demo: the exporter plus simulated traffic, for `duration` of
/// simulated time.
pub fn run(options: DemoOptions) -> Result<(), DemoError> {
    let dir = std::env::temp_dir().join(format!("model-exporter-demo-{}", std::process::id()));
    let files = |path: &Path| {
        let path = path.to_owned();
        move |source| DemoError::Files { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(files(&dir))?;
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, demo_rules()).map_err(files(&rules))?;
    let socket = dir.join("events.sock");
    let mut argv: Vec<String> = vec![
        "model-exporter".into(),
        "--config.file".into(),
        rules.display().to_string(),
        "--config.watch-interval".into(),
        "0".into(),
        "--events.listen".into(),
        format!("unix://{}", socket.display()),
    ];
    for a in &options.web_listen {
        argv.push("--web.listen-address".into());
        argv.push(a.clone());
    }
    let args = Cli::try_parse_from(&argv)?.run;
    let clock = Arc::new(ScaledClock::new(options.speed));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(DemoError::Runtime)?;
    let result = runtime.block_on(async {
        let running = crate::server::start_with_clock(args, clock.clone()).await?;
        let url = running
            .web_addrs()
            .first()
            .map_or_else(|| "http://127.0.0.1:9877".to_owned(), |a| local_url(*a));
        let real = options.duration.as_secs_f64() / clock.speed();
        if options.verbose {
            println!(
                "model-exporter demo: {} of simulated traffic in {real:.0} s ({}x)",
                mmss(options.duration.as_secs_f64()),
                options.speed
            );
            println!("  dashboard:  {url}/");
            println!("  metrics:    {url}/metrics");
            println!("  alerts:     {url}/api/v1/alerts");
            println!("  report:     model-exporter report --url {url}");
            println!(
                "  story: fraud features drift at {}, reco degrades at {}",
                mmss(0.3 * options.duration.as_secs_f64()),
                mmss(0.7 * options.duration.as_secs_f64())
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let generator = {
            let (socket, clock, stop) =
                (socket.clone(), clock.clone() as SharedClock, stop.clone());
            let (duration, seed) = (options.duration, options.seed);
            std::thread::spawn(move || generate(&socket, clock, duration, seed, stop))
        };
        let client = crate::http_client::HttpClient::new(&Default::default())?;
        let start = clock.now();
        let mut seen: Vec<String> = Vec::new();
        while clock.now() - start < options.duration.as_secs_f64() {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if !options.verbose {
                continue;
            }
            let Ok(summary) = crate::report::fetch(&client, &url).await else {
                continue;
            };
            for a in summary["data"]["alerts"].as_array().into_iter().flatten() {
                if a["state"] != "firing" {
                    continue;
                }
                let l = &a["labels"];
                let key = format!("{} {} {}", l["alertname"], l["model"], l["feature"]);
                if !seen.contains(&key) {
                    seen.push(key);
                    let feature = l["feature"]
                        .as_str()
                        .map(|f| format!(" feature={f}"))
                        .unwrap_or_default();
                    println!(
                        "[{}] FIRING {} ({}) {}{feature}: {}",
                        mmss(clock.now() - start),
                        l["alertname"].as_str().unwrap_or("?"),
                        l["severity"].as_str().unwrap_or(""),
                        l["model"].as_str().unwrap_or(""),
                        a["annotations"]["summary"].as_str().unwrap_or("")
                    );
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let _ = generator.join();
        if options.verbose
            && let Ok(summary) = crate::report::fetch(&client, &url).await
        {
            print!("\n{}", crate::report::render(&summary, &url));
        }
        running.stop().await?;
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_rules_load_and_add_the_fraud_model() {
        let c = crate::config::load("demo", &demo_rules()).unwrap_or_else(|e| panic!("{e}"));
        let fraud = c.models.get("fraud").expect("fraud model");
        assert_eq!(fraud.features["age"].mean, Some(35.0));
        assert!(c.models.contains_key("*"));
        assert_eq!(
            c.groups.iter().map(|g| g.rules.len()).sum::<usize>(),
            crate::config::Config::default_rules()
                .groups
                .iter()
                .map(|g| g.rules.len())
                .sum::<usize>()
        );
    }

    #[test]
    fn random_source_is_seeded_and_sane() {
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        assert_eq!(a.uniform(), b.uniform());
        let mean: f64 = (0..10_000).map(|_| a.normal(5.0, 2.0)).sum::<f64>() / 10_000.0;
        assert!((mean - 5.0).abs() < 0.1, "{mean}");
    }
}
