//! Command-line flags and subcommands.
//!
//! Flags use Prometheus-style dotted names (`--web.listen-address`); each can
//! also be set from the environment as `MODEL_EXPORTER_` followed by the flag
//! name in upper case with dots and dashes turned into underscores
//! (`MODEL_EXPORTER_WEB_LISTEN_ADDRESS`). List flags take a comma-separated
//! value from the environment.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::http_client::config::{BasicAuth, ClientCert, Secret};
use crate::http_client::{ClientOptions, ConfigFileError, HttpClientConfig};
use crate::ingest::ListenAddr;
use crate::rules::export::{ExportFormat, check_namespace, check_object_name};

mod run;

pub use run::{
    AggregationArgs, EventsArgs, LimitsArgs, LogArgs, MetricsArgs, PredictionLogArgs, RulesArgs,
    RunArgs, StorageArgs, WebArgs,
};

/// A Prometheus exporter sidecar for machine-learning models.
#[derive(Debug, Parser)]
#[command(
    name = "model-exporter",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = DEVELOPER_TOOLS
)]
pub struct Cli {
    /// What to do; running the exporter is the default.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of the exporter when no subcommand is given.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter (the default).
    Run(Box<RunArgs>),
    /// Run the exporter with simulated traffic that replays two failure
    /// stories (a drifting fraud model, a degrading recommender), faster
    /// than real time, printing alerts as they fire.
    Demo(DemoArgs),
    /// Print the monitoring report (latency, errors, predictions,
    /// confidence, alerts) of a running exporter.
    Report(ReportArgs),
    /// Validate a rules.yaml without starting anything; every error is
    /// printed as FILE:LINE:COLUMN: MESSAGE and the exit status is 1.
    /// Warnings (FILE:LINE:COLUMN: warning: MESSAGE) leave it at 0.
    Check {
        /// The file to check.
        file: PathBuf,
        /// The latency bucket bounds the exporter runs with (its
        /// --metrics.latency-buckets), against which latency thresholds
        /// are checked; the default buckets when not given.
        #[arg(
            long = "metrics.latency-buckets",
            value_delimiter = ',',
            value_name = "SECONDS"
        )]
        latency_buckets: Vec<f64>,
    },
    /// Work with rule files.
    Rules {
        /// What to do with the rules.
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Make a reference baseline from training data (CSV or JSON lines),
    /// against which the exporter measures drift. See docs/baseline.md.
    Baseline(BaselineArgs),
    /// Send a fixed inference event to a running exporter's socket at a
    /// given rate, and report what was sent and what the exporter counted,
    /// with its CPU time and memory. For benchmarks; see bench/README.md.
    /// A developer tool: listed apart from the commands above in `--help`.
    #[command(hide = true)]
    Loadgen(LoadgenArgs),
}

/// The developer tools, listed after the flags in `--help` so that the list
/// of commands holds only what a user of the exporter runs.
const DEVELOPER_TOOLS: &str = "\
Developer tools:
  loadgen   Send events to a running exporter at a given rate and report what it counted,
            with its CPU time and memory (benchmarks; see bench/README.md)";

/// Flags of `model-exporter report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The exporter's base URL (a trailing /metrics is ignored).
    #[arg(
        long,
        default_value = "http://127.0.0.1:9877",
        env = "MODEL_EXPORTER_URL"
    )]
    pub url: String,
    /// How to reach the exporter: TLS and credentials.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// How `report` and `loadgen` reach an exporter served with
/// `--web.config.file`: a Prometheus-style `http_config` file, and flags
/// that take precedence over it (see docs/security.md).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Connection")]
pub struct ClientArgs {
    /// A Prometheus-style http_config file: basic_auth, authorization,
    /// tls_config (paths in it are relative to it).
    #[arg(
        long = "http-config.file",
        env = "MODEL_EXPORTER_HTTP_CONFIG_FILE",
        value_name = "PATH"
    )]
    pub http_config_file: Option<PathBuf>,
    /// Basic-auth user name.
    #[arg(long, env = "MODEL_EXPORTER_USERNAME", value_name = "NAME")]
    pub username: Option<String>,
    /// File holding the basic-auth password (white space around it is
    /// dropped).
    #[arg(
        long = "password-file",
        env = "MODEL_EXPORTER_PASSWORD_FILE",
        value_name = "PATH",
        requires = "username"
    )]
    pub password_file: Option<PathBuf>,
    /// CA certificate(s), PEM, that the exporter's certificate must chain
    /// to, instead of the system's.
    #[arg(long = "ca-file", env = "MODEL_EXPORTER_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), for an exporter that requires one.
    #[arg(
        long = "cert-file",
        env = "MODEL_EXPORTER_CERT_FILE",
        value_name = "PATH",
        requires = "key_file"
    )]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long = "key-file",
        env = "MODEL_EXPORTER_KEY_FILE",
        value_name = "PATH",
        requires = "cert_file"
    )]
    pub key_file: Option<PathBuf>,
    /// The name the exporter's certificate must be valid for, instead of
    /// the URL's host.
    #[arg(
        long = "server-name",
        env = "MODEL_EXPORTER_SERVER_NAME",
        value_name = "NAME"
    )]
    pub server_name: Option<String>,
    /// Accept any certificate from the exporter (for tests: the traffic is
    /// encrypted, but to whoever answers).
    #[arg(
        long = "insecure-skip-verify",
        env = "MODEL_EXPORTER_INSECURE_SKIP_VERIFY"
    )]
    pub insecure_skip_verify: bool,
    /// Longest wait for one request, connecting included.
    #[arg(
        long,
        env = "MODEL_EXPORTER_TIMEOUT",
        default_value = "10s",
        value_name = "DURATION",
        value_parser = parse_positive_duration
    )]
    pub timeout: Duration,
}

impl ClientArgs {
    /// The client's settings: the file's, then the flags'.
    pub fn options(&self) -> Result<ClientOptions, ConfigFileError> {
        let mut config = match &self.http_config_file {
            Some(path) => HttpClientConfig::load(path)?,
            None => HttpClientConfig::default(),
        };
        if let Some(username) = &self.username {
            config.basic_auth = Some(BasicAuth {
                username: username.clone(),
                password: self.password_file.clone().map(Secret::File),
            });
            config.authorization = None;
        }
        let tls = &mut config.tls_config;
        if let Some(ca) = &self.ca_file {
            tls.ca_file = Some(ca.clone());
        }
        if let (Some(cert_file), Some(key_file)) = (&self.cert_file, &self.key_file) {
            tls.client_cert = Some(ClientCert {
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
            });
        }
        if let Some(name) = &self.server_name {
            tls.server_name = Some(name.clone());
        }
        tls.insecure_skip_verify |= self.insecure_skip_verify;
        Ok(ClientOptions {
            connect_timeout: self.timeout.min(ClientOptions::default().connect_timeout),
            request_timeout: self.timeout,
            config,
            ..ClientOptions::default()
        })
    }
}

/// Flags of `model-exporter loadgen`.
#[derive(Debug, Clone, Args)]
pub struct LoadgenArgs {
    /// The exporter's socket: unix:///PATH or unixgram:///PATH.
    #[arg(long, value_name = "URL")]
    pub target: ListenAddr,
    /// Events per second over all connections (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// How long to send.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stream connections (datagram senders), one thread each.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub connections: u32,
    /// Model names the events take turns among (fraud-0, fraud-1, ...), to
    /// spread them over --aggregate.shards; 1 sends the model `fraud`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub models: u32,
    /// The exporter's base URL, e.g. http://127.0.0.1:9877 (a trailing
    /// /metrics is ignored), to report the events it received and
    /// rejected during the run.
    #[arg(long = "metrics-url", value_name = "URL")]
    pub metrics_url: Option<String>,
    /// How to reach --metrics-url: TLS and credentials.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The exporter's process id, to report its CPU seconds and largest
    /// resident memory during the run (Linux /proc).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Bind the target socket and discard what arrives instead of sending
    /// to an exporter: the do-nothing reader the exporter is compared with.
    #[arg(long = "null-reader")]
    pub null_reader: bool,
    /// Run the sending threads on this CPU only (Linux), e.g. to keep them
    /// off the CPU the exporter is pinned to with `taskset`.
    #[arg(long = "sender-cpu", value_name = "CPU")]
    pub sender_cpu: Option<usize>,
    /// Run the do-nothing reader's threads on this CPU only (Linux).
    #[arg(long = "reader-cpu", value_name = "CPU", requires = "null_reader")]
    pub reader_cpu: Option<usize>,
    /// Give every event its own request id (stream targets), as real
    /// traffic has, so that the feedback join remembers (and, past its
    /// capacity, evicts) one prediction per event.
    #[arg(long = "unique-ids")]
    pub unique_ids: bool,
}

/// Flags of `model-exporter baseline`.
#[derive(Debug, Clone, Args)]
pub struct BaselineArgs {
    /// Training data: CSV with a header row, or JSON lines (flat rows or
    /// inference events). Read twice.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Where to write the baseline (JSON).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// Input format [default: from the extension: .csv, or .jsonl/.ndjson/.json].
    #[arg(long, value_enum)]
    pub format: Option<crate::baseline::InputFormat>,
    /// Quantile bins per numeric feature.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub bins: u32,
    /// Most frequent values kept per categorical feature.
    #[arg(long = "top-k", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub top_k: u32,
    /// Column holding the model output [default: `prediction` if present].
    #[arg(long = "prediction-column", value_name = "NAME")]
    pub prediction_column: Option<String>,
    /// Leave a column out (ids, labels, ...); repeatable.
    #[arg(long, value_name = "COLUMN")]
    pub exclude: Vec<String>,
    /// Count and skip malformed rows instead of stopping at the first.
    #[arg(long = "skip-bad-rows")]
    pub skip_bad_rows: bool,
    /// Report progress on standard error every 5 s even when it is not a
    /// terminal.
    #[arg(long)]
    pub progress: bool,
}

/// Subcommands of `model-exporter rules`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Write the alert rules of a rules.yaml as Prometheus alerting rules
    /// (YAML) over the metrics the exporter serves, so a fleet of sidecars
    /// can be alerted on centrally. Errors in the file are printed as
    /// FILE:LINE:COLUMN: MESSAGE and the exit status is 1.
    Export {
        /// The rules.yaml to export (or --builtin).
        #[arg(required_unless_present = "builtin", conflicts_with = "builtin")]
        file: Option<PathBuf>,
        /// Export the rules.yaml compiled into the binary instead of FILE.
        #[arg(long)]
        builtin: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Prometheus)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o', value_name = "PATH")]
        out: Option<PathBuf>,
        /// metadata.name of the PrometheusRule [default: model-exporter-rules]
        /// (prometheus-operator format only).
        #[arg(long, value_parser = check_object_name)]
        name: Option<String>,
        /// metadata.namespace of the PrometheusRule (prometheus-operator
        /// format only); omitted by default.
        #[arg(long, value_parser = check_namespace)]
        namespace: Option<String>,
    },
}

/// The HTTP server's address unless `--web.listen-address` says otherwise.
pub const DEFAULT_WEB_LISTEN_ADDRESS: &str = ":9877";

/// Flags of `model-exporter demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 30.0, value_parser = parse_speed)]
    pub speed: f64,
    /// Simulated length of the story: the fraud features drift at 20% of
    /// it, the recommender degrades at 70%. Shorter than 30m, the story ends
    /// before some of its alerts fire. The demo keeps serving after the
    /// story until interrupted.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub duration: Duration,
    /// Address of the HTTP server (dashboard, /metrics); repeatable.
    #[arg(
        long = "web.listen-address",
        value_name = "ADDR",
        default_value = DEFAULT_WEB_LISTEN_ADDRESS,
        value_delimiter = ','
    )]
    pub web_listen: Vec<String>,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 10_000.0 => Ok(v),
        _ => Err(format!("{s:?} is not a speed between 0 and 10000")),
    }
}

/// `--log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything, including per-connection details.
    Debug,
    /// Start-up, shutdown, reloads.
    Info,
    /// Rejected events and failures that are survived.
    Warn,
    /// Only failures.
    Error,
}

/// `--log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a ratio between 0 and 1")),
    }
}

fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!("{s:?} is not an octal file mode such as 0660")),
    }
}

fn parse_path(s: &str) -> Result<String, String> {
    if s.starts_with('/') && s.len() > 1 && !s.starts_with("/-/") {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} must start with / and not be / or under /-/"))
    }
}

/// Parses a duration such as `10m`, `1h30m`, `500ms` or `0`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::rules::duration::parse_duration(s).map_err(|e| e.to_string())
}

/// A duration longer than zero.
fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("{s:?} must be longer than 0")),
        d => Ok(d),
    }
}

/// A count of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number of at least 1")),
    }
}

/// `--events.max-line-bytes`: 64 bytes to 16 MiB.
fn parse_line_bytes(s: &str) -> Result<usize, String> {
    const RANGE: std::ops::RangeInclusive<usize> = 64..=16 * 1024 * 1024;
    match s.parse::<usize>() {
        Ok(n) if RANGE.contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not a number of bytes from {} to {}",
            RANGE.start(),
            RANGE.end()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Limits;
    use crate::export::metrics::Buckets;
    use crate::ingest::IngestOptions;
    use crate::ingest::prediction_log::PredictionLogOptions;
    use crate::rules::notify::NotifierOptions;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_run_flag_has_its_environment_variable_and_a_heading() {
        let cmd = Cli::command();
        let mut headings = Vec::new();
        for a in cmd.get_arguments() {
            let Some(long) = a.get_long() else { continue };
            if long == "help" || long == "version" {
                continue;
            }
            let want = format!(
                "MODEL_EXPORTER_{}",
                long.to_uppercase().replace(['.', '-'], "_")
            );
            assert_eq!(a.get_env(), Some(std::ffi::OsStr::new(&want)), "{long}");
            let heading = a.get_help_heading().unwrap_or_else(|| panic!("{long}"));
            if !headings.contains(&heading) {
                headings.push(heading);
            }
        }
        assert_eq!(
            headings,
            [
                "Events",
                "Web",
                "Rules and alerting",
                "Aggregation",
                "Metrics",
                "Limits",
                "Storage",
                "Prediction log",
                "Logging"
            ]
        );
    }

    #[test]
    fn defaults_are_those_of_the_code_that_owns_them() {
        let r = Cli::try_parse_from(["model-exporter"]).unwrap().run;
        assert_eq!(r.limits(), Limits::default());
        let (given, owned) = (r.events.ingest_options(), IngestOptions::default());
        assert_eq!(given.max_line_bytes, owned.max_line_bytes);
        assert_eq!(given.socket_mode, owned.socket_mode);
        assert_eq!(given.idle_timeout, owned.idle_timeout);
        assert_eq!(given.max_connections, owned.max_connections);
        let notifier = NotifierOptions::default();
        assert_eq!(r.rules.alertmanager_timeout, notifier.timeout);
        assert_eq!(r.rules.alertmanager_resend_delay, notifier.resend_delay);
        assert_eq!(r.rules.alertmanager_queue_capacity, notifier.queue_capacity);
        let log = PredictionLogOptions::default();
        assert_eq!(r.prediction_log.max_bytes, log.max_bytes);
        assert_eq!(r.prediction_log.max_files, log.max_files);
        for bad in [
            &["--limits.models", "0"][..],
            &["--events.max-line-bytes", "63"],
            &["--events.max-connections", "x"],
        ] {
            let args = std::iter::once("model-exporter").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn developer_tools_are_listed_apart() {
        let help = Cli::command().render_help().to_string();
        let (commands, rest) = help.split_once("Options:").unwrap();
        assert!(commands.contains("report") && !commands.contains("loadgen"));
        assert!(rest.contains("Developer tools:\n  loadgen"), "{help}");
        assert!(
            Cli::try_parse_from(["model-exporter", "loadgen", "--target", "unix:///x"]).is_ok()
        );
    }

    #[test]
    fn defaults_need_no_flag() {
        let cli = Cli::try_parse_from(["model-exporter"]).unwrap();
        assert!(cli.command.is_none());
        let r = cli.run;
        assert_eq!(r.events.listeners(), ListenAddr::defaults());
        assert_eq!(r.web.listen_address, vec![":9877"]);
        assert_eq!(r.events.socket_mode, 0o660);
        assert_eq!(r.web.telemetry_path, "/metrics");
        assert_eq!(r.metrics.buckets(), Buckets::default());
        assert_eq!(r.metrics.ttl, Duration::ZERO);
        assert_eq!(
            r.events.ingest_options().idle_timeout,
            Some(Duration::from_secs(600))
        );
        assert_eq!(r.storage.path, None);
        assert_eq!(r.storage.snapshot_interval, Duration::from_secs(30));
    }

    #[test]
    fn storage_flags() {
        let cli = Cli::try_parse_from([
            "model-exporter",
            "--storage.path",
            "/var/lib/model-exporter",
            "--storage.snapshot-interval=0",
        ])
        .unwrap();
        assert_eq!(
            cli.run.storage.path,
            Some(PathBuf::from("/var/lib/model-exporter"))
        );
        assert_eq!(cli.run.storage.snapshot_interval, Duration::ZERO);
        assert!(
            Cli::try_parse_from(["model-exporter", "--storage.snapshot-interval", "30"]).is_err()
        );
    }

    #[test]
    fn flags_and_subcommands() {
        let cli = Cli::try_parse_from([
            "model-exporter",
            "--events.listen",
            "tcp://127.0.0.1:0",
            "--events.listen=unix:///tmp/a.sock",
            "--events.socket-mode",
            "0600",
            "--events.idle-timeout",
            "0",
            "--metrics.feature-buckets=-1,0,1",
            "--log.format",
            "json",
            "--metrics.ttl",
            "90s",
        ])
        .unwrap();
        assert_eq!(cli.run.metrics.ttl, Duration::from_secs(90));
        assert_eq!(cli.run.events.listen.len(), 2);
        assert_eq!(cli.run.events.socket_mode, 0o600);
        assert_eq!(cli.run.events.ingest_options().idle_timeout, None);
        assert_eq!(cli.run.metrics.buckets().feature, vec![-1.0, 0.0, 1.0]);
        assert_eq!(cli.run.log.format, LogFormat::Json);

        let cli = Cli::try_parse_from(["model-exporter", "check", "r.yaml"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Check { .. })));
        assert!(Cli::try_parse_from(["model-exporter", "--events.listen", "ftp://x"]).is_err());
        assert!(Cli::try_parse_from(["model-exporter", "--events.socket-mode", "999"]).is_err());
        assert!(Cli::try_parse_from(["model-exporter", "--web.telemetry-path", "/-/x"]).is_err());
    }

    #[test]
    fn baseline_args() {
        let cli = Cli::try_parse_from([
            "model-exporter",
            "baseline",
            "--input",
            "train.csv",
            "--out",
            "b.json",
        ])
        .unwrap();
        let Some(Command::Baseline(a)) = cli.command else {
            panic!("not baseline: {:?}", cli.command);
        };
        assert_eq!((a.bins, a.top_k), (10, 20));
        assert_eq!((a.format, a.prediction_column), (None, None));
        assert!(a.exclude.is_empty() && !a.skip_bad_rows && !a.progress);
        let cli = Cli::try_parse_from([
            "model-exporter",
            "baseline",
            "--input=x.txt",
            "-o",
            "b.json",
            "--format",
            "jsonl",
            "--bins",
            "20",
            "--top-k",
            "5",
            "--prediction-column",
            "score",
            "--exclude",
            "id",
            "--exclude",
            "label",
            "--skip-bad-rows",
            "--progress",
        ])
        .unwrap();
        let Some(Command::Baseline(a)) = cli.command else {
            panic!("not baseline: {:?}", cli.command);
        };
        assert_eq!(a.format, Some(crate::baseline::InputFormat::Jsonl));
        assert_eq!((a.bins, a.top_k), (20, 5));
        assert_eq!(a.exclude, vec!["id", "label"]);
        for bad in [
            &["baseline", "--input", "a.csv"][..],
            &["baseline", "--out", "b.json"],
            &["baseline", "--input", "a.csv", "--out", "b", "--bins", "0"],
            &[
                "baseline", "--input", "a.csv", "--out", "b", "--format", "xml",
            ],
        ] {
            let args = std::iter::once("model-exporter").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rules_export() {
        let cli = Cli::try_parse_from(["model-exporter", "rules", "export", "r.yaml"]).unwrap();
        let Some(Command::Rules {
            command:
                RulesCommand::Export {
                    file,
                    builtin,
                    format,
                    out,
                    name,
                    namespace,
                },
        }) = cli.command
        else {
            panic!("not rules export: {:?}", cli.command);
        };
        assert_eq!(file, Some(PathBuf::from("r.yaml")));
        assert!(!builtin);
        assert_eq!(format, ExportFormat::Prometheus);
        assert_eq!((out, name, namespace), (None, None, None));

        let cli = Cli::try_parse_from([
            "model-exporter",
            "rules",
            "export",
            "--builtin",
            "--format",
            "prometheus-operator",
            "--out",
            "o.yaml",
            "--name",
            "fraud-rules",
            "--namespace",
            "ml",
        ])
        .unwrap();
        let Some(Command::Rules {
            command:
                RulesCommand::Export {
                    file,
                    builtin,
                    format,
                    ..
                },
        }) = cli.command
        else {
            panic!("not rules export: {:?}", cli.command);
        };
        assert_eq!((file, builtin), (None, true));
        assert_eq!(format, ExportFormat::PrometheusOperator);

        for bad in [
            &["rules", "export"][..],
            &["rules", "export", "r.yaml", "--builtin"],
            &["rules", "export", "r.yaml", "--format", "json"],
            &["rules", "export", "r.yaml", "--name", "Bad_Name"],
            &["rules", "export", "r.yaml", "--namespace", "a.b"],
        ] {
            let args = std::iter::once("model-exporter").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?} accepted");
        }
    }
}
