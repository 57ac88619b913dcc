//! `model-exporter demo`: the exporter with its built-in rules, fed by
//! simulated traffic that replays two classic failure stories, with time
//! running faster so that the whole story fits in about a minute.
//!
//! * **fraud** (v3, trained 40 days ago): lognormal latency around 50 ms with
//!   5% slow spikes, 2% errors, features age, income and amount that drift by
//!   +20% of their means from 20% of the run on, when the share of fraud it
//!   predicts also rises from about 10% to about 35%, and labels that arrive a
//!   minute later. Its baseline is made at start, with
//!   [`crate::baseline`], from simulated training data of the healthy model
//!   (features and predictions), so feature and prediction drift are
//!   measured the way a user's model's are. It sends, as `confidence`, the
//!   probability of the class it predicted (docs/events.md).
//! * **reco** (v7): a recommender whose latency triples and whose
//!   click-through rate falls from 15% to 5% from 70% of the run on.
//!
//! Events go through the real path: a unix stream socket, the parser, the
//! aggregator. The demo prints alerts as they fire and the monitoring report
//! when the story ends; then it keeps serving (the traffic goes on as at the
//! end of the story) until it is interrupted.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;

use crate::cli::Cli;
use crate::client::Client;
use crate::clock::{Clock, ScaledClock, SharedClock};

/// The built-in rules with the demo's model expectations added: the fraud
/// model's baseline (the file at `baseline`) and its features' valid ranges.
pub fn demo_rules(baseline: &Path) -> String {
    let models = format!(
        "\n  fraud:\n    baseline: {}\n    features:\n      age: {{min: 0, max: 120, required: true}}\n      income: {{min: 0}}\n      amount: {{min: 0}}\n",
        serde_json::Value::from(baseline.display().to_string())
    );
    crate::DEFAULT_RULES_YAML.replacen("\nmodels:\n", &format!("\nmodels:{models}"), 1)
}

/// Rows of simulated training data of the healthy fraud model, as CSV.
pub fn training_csv(seed: u64, rows: usize) -> String {
    let mut rng = Rng::new(seed ^ 0x7261_696e);
    let mut csv = String::from("age,income,amount,prediction\n");
    for _ in 0..rows {
        let f = FraudRequest::sample(&mut rng, false);
        csv.push_str(&format!(
            "{},{},{},{}\n",
            f.age, f.income, f.amount, f.prediction
        ));
    }
    csv
}

/// Makes the fraud model's baseline from [`training_csv`] with the
/// baseline builder, as `model-exporter baseline` would.
pub fn fraud_baseline(seed: u64) -> Result<crate::baseline::format::Baseline, DemoError> {
    use crate::baseline::build::{BuildOptions, InputFormat, build};
    let csv = training_csv(seed, 5000);
    let (b, _) = build(
        || Ok(csv.as_bytes()),
        BuildOptions::new("demo training data", InputFormat::Csv),
        None,
        None,
    )?;
    Ok(b)
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
    /// After the story the exporter keeps serving until this is triggered
    /// (by SIGINT or SIGTERM in the binary).
    pub until: crate::shutdown::Shutdown,
}

/// The simulated time the whole story needs at the default speed: the
/// fraud drift starts at 20% of it and its alerts need a 15 minute window and
/// 5 minutes of `for`; a shorter `--duration` ends the story before some of
/// them fire.
pub const FULL_STORY: Duration = Duration::from_secs(30 * 60);

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

/// One simulated input of the fraud model and its answer.
struct FraudRequest {
    age: f64,
    income: f64,
    amount: f64,
    /// P(fraud) the model computes.
    p: f64,
    /// 1 (fraud) or 0.
    prediction: u8,
    /// The probability of the predicted class.
    confidence: f64,
}

impl FraudRequest {
    /// A request before (`drifted` false) or after the drift.
    fn sample(rng: &mut Rng, drifted: bool) -> FraudRequest {
        let k = if drifted { 1.2 } else { 1.0 };
        let age = rng.normal(35.0 * k, 10.0).clamp(18.0, 100.0).round();
        let income = rng.normal(50_000.0 * k, 20_000.0).max(0.0).round();
        let amount = (rng.normal(100.0 * k, 50.0).max(0.0) * 100.0).round() / 100.0;
        // The model's P(fraud) from a latent risk that grows with the
        // amount; it predicts fraud when P(fraud) >= 0.5: about 10% of
        // requests before the drift, about 35% after.
        let shift = if drifted { -0.59 } else { -1.28 };
        let risk = rng.normal(shift + (amount - 100.0) / 100.0, 1.0);
        let p = 1.0 / (1.0 + (-2.0 * risk).exp());
        let prediction = u8::from(p >= 0.5);
        // How sure it is of the class it gave: P(fraud) for 1, 1 - P(fraud)
        // for 0 (docs/events.md).
        let confidence = if prediction == 1 { p } else { 1.0 - p };
        FraudRequest {
            age,
            income,
            amount,
            p,
            prediction,
            confidence,
        }
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
    let drifted = at >= 0.2;
    let FraudRequest {
        age,
        income,
        amount,
        p,
        prediction,
        confidence,
    } = FraudRequest::sample(rng, drifted);
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
        .feature("age", age)
        .feature("income", income)
        .feature("amount", amount);
    if rng.chance(0.02) {
        req = req.error("timeout");
    }
    req.send();
    // The truth is known a minute later; after the drift the world has
    // moved and the model is right less often.
    let actual = if drifted {
        rng.chance(0.1)
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
        let elapsed = now - start;
        // Past the end of the story the traffic goes on as at its end.
        let at = (elapsed / total).min(1.0);
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
    /// The fraud model's baseline could not be made.
    #[error("cannot make the demo's baseline: {0}")]
    Baseline(#[from] crate::baseline::error::BuildError),
    /// The fraud model's baseline could not be written.
    #[error("cannot write the demo's baseline: {0}")]
    BaselineFile(#[from] crate::baseline::format::BaselineError),
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
    let baseline = dir.join("fraud-baseline.json");
    fraud_baseline(options.seed)?.write(&baseline)?;
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, demo_rules(&baseline)).map_err(files(&rules))?;
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
                mmss(0.2 * options.duration.as_secs_f64()),
                mmss(0.7 * options.duration.as_secs_f64())
            );
            if options.duration < FULL_STORY {
                println!(
                    "  note: --duration {} is shorter than the {} the whole story needs: alerts that need longer do not fire before it ends",
                    mmss(options.duration.as_secs_f64()),
                    mmss(FULL_STORY.as_secs_f64())
                );
            }
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
        while clock.now() - start < options.duration.as_secs_f64() && !options.until.is_triggered() {
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
        let interrupted = options.until.is_triggered();
        if options.verbose
            && !interrupted
            && let Ok(summary) = crate::report::fetch_all(&client, &url).await
        {
            print!("\n{}", crate::report::render(&summary, &url));
        }
        if options.verbose && !interrupted {
            println!(
                "\nThe story is over; the exporter keeps serving {url}/ (the traffic goes on as at its end). Press Ctrl-C to stop."
            );
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let mut until = options.until;
        until.wait().await;
        stop.store(true, Ordering::Relaxed);
        let _ = generator.join();
        running.stop().await;
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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fraud baseline.json");
        fraud_baseline(1).unwrap().write(&path).unwrap();
        let text = demo_rules(&path);
        let c = crate::config::load("demo", &text).unwrap_or_else(|e| panic!("{e}"));
        let fraud = c.models.get("fraud").expect("fraud model");
        assert_eq!(fraud.features["age"].max, Some(120.0));
        let baseline = fraud.reference.as_ref().expect("the baseline is loaded");
        assert!(baseline.prediction.is_some(), "no prediction reference");
        assert_eq!(baseline.features.len(), 3);
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
    fn the_fraud_model_sends_the_probability_of_its_answer() {
        let mut rng = Rng::new(3);
        let (mut before, mut after, mut right) = (0.0, 0.0, 0.0);
        for _ in 0..20_000 {
            let f = FraudRequest::sample(&mut rng, false);
            assert!((0.5..=1.0).contains(&f.confidence), "{}", f.confidence);
            let of_answer = if f.prediction == 1 { f.p } else { 1.0 - f.p };
            assert_eq!(f.confidence, of_answer);
            before += f64::from(f.prediction);
            // Labels drawn from P(fraud): the model is right this often.
            right += f.confidence;
            after += f64::from(FraudRequest::sample(&mut rng, true).prediction);
        }
        let (before, after) = (before / 20_000.0, after / 20_000.0);
        assert!((0.08..0.14).contains(&before), "{before}");
        assert!((0.3..0.4).contains(&after), "{after}");
        // Healthy, it is accurate enough for AccuracyDrop (< 80%) to stay quiet.
        assert!(right / 20_000.0 > 0.85, "{}", right / 20_000.0);
    }

    #[test]
    fn random_source_is_seeded_and_sane() {
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        assert_eq!(a.uniform(), b.uniform());
        let mean: f64 = (0..10_000).map(|_| a.normal(5.0, 2.0)).sum::<f64>() / 10_000.0;
        assert!((mean - 5.0).abs() < 0.1, "{mean}");
    }
}
