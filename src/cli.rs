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

use crate::aggregate::Limits;
use crate::export::metrics::Buckets;
use crate::export::prediction_log::PredictionLogOptions;
use crate::http_client::config::{BasicAuth, ClientCert, Secret};
use crate::http_client::{ClientOptions, ConfigFileError, HttpClientConfig};
use crate::ingest::{IngestOptions, ListenAddr};
use crate::rules::export::{ExportFormat, check_namespace, check_object_name};
use crate::rules::notify::NotifierOptions;

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
    Check {
        /// The file to check.
        file: PathBuf,
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

/// Flags of the running exporter, one group per concern; `--help` shows
/// each group under its own heading.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Where events come from.
    #[command(flatten)]
    pub events: EventsArgs,
    /// The HTTP server.
    #[command(flatten)]
    pub web: WebArgs,
    /// rules.yaml and Alertmanager.
    #[command(flatten)]
    pub rules: RulesArgs,
    /// Aggregator threads, history and feedback.
    #[command(flatten)]
    pub aggregation: AggregationArgs,
    /// Histogram buckets and series expiry.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Caps on distinct label values.
    #[command(flatten)]
    pub limits: LimitsArgs,
    /// State kept across restarts.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The sample of received events written to a file.
    #[command(flatten)]
    pub prediction_log: PredictionLogArgs,
    /// The exporter's own log.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Defaults owned by other modules, written as flag values: clap keeps a
/// default as `'static` text, so each is rendered once, from its owner.
mod shown {
    use std::sync::LazyLock;

    use crate::config::format_duration;
    use crate::ingest::IngestOptions;
    use crate::rules::notify::NotifierOptions;

    pub static SOCKET_MODE: LazyLock<String> =
        LazyLock::new(|| format!("{:04o}", IngestOptions::default().socket_mode));
    pub static IDLE_TIMEOUT: LazyLock<String> = LazyLock::new(|| {
        format_duration(IngestOptions::default().idle_timeout.unwrap_or_default())
    });
    pub static ALERTMANAGER_TIMEOUT: LazyLock<String> =
        LazyLock::new(|| format_duration(NotifierOptions::default().timeout));
    pub static ALERTMANAGER_RESEND_DELAY: LazyLock<String> =
        LazyLock::new(|| format_duration(NotifierOptions::default().resend_delay));
}

/// Where events come from (`--events.*`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Events")]
pub struct EventsArgs {
    /// Where events are received: unix:///PATH, unixgram:///PATH, tcp://HOST:PORT,
    /// udp://HOST:PORT, or file:///PATH (a JSON-lines file followed like tail -F). Repeatable. Default: a unix stream socket and a unix
    /// datagram socket in the temporary directory.
    #[arg(
        long = "events.listen",
        env = "MODEL_EXPORTER_EVENTS_LISTEN",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub listen: Vec<ListenAddr>,

    /// Mode of the socket files created for unix:// and unixgram:// listeners (octal).
    #[arg(
        value_name = "MODE",
        long = "events.socket-mode",
        env = "MODEL_EXPORTER_EVENTS_SOCKET_MODE",
        default_value = shown::SOCKET_MODE.as_str(),
        value_parser = parse_mode
    )]
    pub socket_mode: u32,

    /// Longest accepted event line, and datagram, in bytes.
    #[arg(
        value_name = "BYTES",
        long = "events.max-line-bytes",
        env = "MODEL_EXPORTER_EVENTS_MAX_LINE_BYTES",
        default_value_t = IngestOptions::default().max_line_bytes,
        value_parser = parse_line_bytes
    )]
    pub max_line_bytes: usize,

    /// A stream connection that sends nothing for this long is closed (0: never).
    #[arg(
        value_name = "DURATION",
        long = "events.idle-timeout",
        env = "MODEL_EXPORTER_EVENTS_IDLE_TIMEOUT",
        default_value = shown::IDLE_TIMEOUT.as_str(),
        value_parser = parse_duration
    )]
    pub idle_timeout: Duration,

    /// file:// listeners read the file's existing content first, instead of
    /// only what is appended after start-up.
    #[arg(
        long = "events.file-from-beginning",
        env = "MODEL_EXPORTER_EVENTS_FILE_FROM_BEGINNING"
    )]
    pub file_from_beginning: bool,

    /// Stream connections open at once, per listener; more are closed at
    /// once (model_exporter_connections_closed_total{reason="limit"}).
    #[arg(
        value_name = "N",
        long = "events.max-connections",
        env = "MODEL_EXPORTER_EVENTS_MAX_CONNECTIONS",
        default_value_t = IngestOptions::default().max_connections,
        value_parser = at_least_one
    )]
    pub max_connections: usize,

    /// Batches of events queued between the listeners and the aggregator. A
    /// batch holds at most 1,024 events (one read's or one burst's), so this
    /// bounds the parsed events waiting: 256 × 1,024 at most, about 150 MiB
    /// in the worst case, a few MiB in practice.
    #[arg(
        value_name = "N",
        long = "events.queue-batches",
        env = "MODEL_EXPORTER_EVENTS_QUEUE_BATCHES",
        default_value_t = 256,
        value_parser = at_least_one
    )]
    pub queue_batches: usize,
}

impl EventsArgs {
    /// The listeners to bind: the given ones, or the defaults.
    pub fn listeners(&self) -> Vec<ListenAddr> {
        if self.listen.is_empty() {
            ListenAddr::defaults()
        } else {
            self.listen.clone()
        }
    }

    /// Settings shared by every listener.
    pub fn ingest_options(&self) -> IngestOptions {
        IngestOptions {
            max_line_bytes: self.max_line_bytes,
            socket_mode: self.socket_mode,
            idle_timeout: (!self.idle_timeout.is_zero()).then_some(self.idle_timeout),
            file_from_beginning: self.file_from_beginning,
            max_connections: self.max_connections,
        }
    }
}

/// The HTTP server (`--web.*`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Web")]
pub struct WebArgs {
    /// Address of the HTTP server (/metrics); repeatable. `:PORT` means every interface.
    #[arg(
        long = "web.listen-address",
        env = "MODEL_EXPORTER_WEB_LISTEN_ADDRESS",
        value_name = "ADDR",
        value_delimiter = ',',
        default_value = DEFAULT_WEB_LISTEN_ADDRESS
    )]
    pub listen_address: Vec<String>,

    /// TLS and basic authentication for the HTTP server, in the Prometheus
    /// exporter-toolkit format (see docs/security.md).
    #[arg(
        long = "web.config.file",
        id = "web_config_file",
        env = "MODEL_EXPORTER_WEB_CONFIG_FILE",
        value_name = "PATH"
    )]
    pub config_file: Option<PathBuf>,

    /// Path under which metrics are served.
    #[arg(
        value_name = "PATH",
        long = "web.telemetry-path",
        env = "MODEL_EXPORTER_WEB_TELEMETRY_PATH",
        default_value = "/metrics",
        value_parser = parse_path
    )]
    pub telemetry_path: String,

    /// Enable POST /-/reload (reloads rules.yaml).
    #[arg(
        long = "web.enable-lifecycle",
        env = "MODEL_EXPORTER_WEB_ENABLE_LIFECYCLE"
    )]
    pub enable_lifecycle: bool,

    /// The URL under which this exporter is reached, used as the alerts'
    /// generatorURL (its /api/v1/rules page).
    #[arg(
        long = "web.external-url",
        env = "MODEL_EXPORTER_WEB_EXTERNAL_URL",
        value_name = "URL"
    )]
    pub external_url: Option<String>,
}

/// The rules and where their alerts go (`--config.*`, `--alertmanager.*`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Rules and alerting")]
pub struct RulesArgs {
    /// rules.yaml to load; without it the rules.yaml compiled into the binary is used.
    #[arg(
        long = "config.file",
        id = "config_file",
        env = "MODEL_EXPORTER_CONFIG_FILE",
        value_name = "PATH"
    )]
    pub config_file: Option<PathBuf>,

    /// How often --config.file is checked for changes, e.g. a Kubernetes
    /// ConfigMap update (0: never; SIGHUP and POST /-/reload still work).
    #[arg(
        value_name = "DURATION",
        long = "config.watch-interval",
        env = "MODEL_EXPORTER_CONFIG_WATCH_INTERVAL",
        default_value = "5s",
        value_parser = parse_duration
    )]
    pub config_watch_interval: Duration,

    /// Alertmanager to push alerts to, e.g. http://127.0.0.1:9093 or
    /// https://am:9093; repeatable. Without it, alerts are only shown on
    /// /metrics and the API.
    #[arg(
        long = "alertmanager.url",
        env = "MODEL_EXPORTER_ALERTMANAGER_URL",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub alertmanager_urls: Vec<String>,

    /// Timeout of one request to Alertmanager.
    #[arg(
        value_name = "DURATION",
        long = "alertmanager.timeout",
        env = "MODEL_EXPORTER_ALERTMANAGER_TIMEOUT",
        default_value = shown::ALERTMANAGER_TIMEOUT.as_str(),
        value_parser = parse_duration
    )]
    pub alertmanager_timeout: Duration,

    /// How often a firing alert is sent again while it keeps firing.
    #[arg(
        value_name = "DURATION",
        long = "alertmanager.resend-delay",
        env = "MODEL_EXPORTER_ALERTMANAGER_RESEND_DELAY",
        default_value = shown::ALERTMANAGER_RESEND_DELAY.as_str(),
        value_parser = parse_duration
    )]
    pub alertmanager_resend_delay: Duration,

    /// Alerts queued per Alertmanager while it is slow or down; the oldest
    /// are dropped (and counted) past this.
    #[arg(
        value_name = "N",
        long = "alertmanager.queue-capacity",
        env = "MODEL_EXPORTER_ALERTMANAGER_QUEUE_CAPACITY",
        default_value_t = NotifierOptions::default().queue_capacity,
        value_parser = at_least_one
    )]
    pub alertmanager_queue_capacity: usize,

    /// TLS settings and credentials for Alertmanager: a Prometheus-style
    /// http_config file (basic_auth, authorization, tls_config; see
    /// docs/security.md). Read at start-up.
    #[arg(
        long = "alertmanager.http-config.file",
        env = "MODEL_EXPORTER_ALERTMANAGER_HTTP_CONFIG_FILE",
        value_name = "PATH"
    )]
    pub alertmanager_http_config_file: Option<PathBuf>,
}

/// Aggregator threads, history and feedback (`--aggregate.*`,
/// `--history.*`, `--feedback.*`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Aggregation")]
pub struct AggregationArgs {
    /// Aggregator threads, each owning the models hashed to it (`auto`: one
    /// per available core). Each has its own queue of --events.queue-batches.
    #[arg(
        long = "aggregate.shards",
        env = "MODEL_EXPORTER_AGGREGATE_SHARDS",
        default_value = "1",
        value_name = "N|auto",
        value_parser = crate::aggregate::shards::parse_shard_count
    )]
    pub shards: crate::aggregate::ShardCount,

    /// Resolution of the in-memory history behind the dashboard and
    /// /api/v1/history.
    #[arg(
        value_name = "DURATION",
        long = "history.resolution",
        env = "MODEL_EXPORTER_HISTORY_RESOLUTION",
        default_value = "10s",
        value_parser = parse_duration
    )]
    pub history_resolution: Duration,

    /// How far back the in-memory history reaches.
    #[arg(
        value_name = "DURATION",
        long = "history.retention",
        env = "MODEL_EXPORTER_HISTORY_RETENTION",
        default_value = "1h",
        value_parser = parse_duration
    )]
    pub history_retention: Duration,

    /// How long a prediction waits for its label (feedback) before it is
    /// counted as expired.
    #[arg(
        value_name = "DURATION",
        long = "feedback.ttl",
        env = "MODEL_EXPORTER_FEEDBACK_TTL",
        default_value = "24h",
        value_parser = parse_duration
    )]
    pub feedback_ttl: Duration,

    /// Most predictions waiting for their label, over all models; the
    /// oldest are evicted (and counted) past it.
    #[arg(
        value_name = "N",
        long = "feedback.capacity",
        env = "MODEL_EXPORTER_FEEDBACK_CAPACITY",
        default_value_t = 100_000
    )]
    pub feedback_capacity: usize,
}

/// Histogram buckets and series expiry (`--metrics.*`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Metrics")]
pub struct MetricsArgs {
    /// Bucket bounds of model_request_duration_seconds, in seconds.
    #[arg(
        long = "metrics.latency-buckets",
        env = "MODEL_EXPORTER_METRICS_LATENCY_BUCKETS",
        value_delimiter = ',',
        value_name = "SECONDS"
    )]
    pub latency_buckets: Vec<f64>,

    /// Bucket bounds of model_prediction_value.
    #[arg(
        long = "metrics.prediction-buckets",
        env = "MODEL_EXPORTER_METRICS_PREDICTION_BUCKETS",
        value_delimiter = ',',
        value_name = "BOUNDS"
    )]
    pub prediction_buckets: Vec<f64>,

    /// Bucket bounds of model_prediction_confidence.
    #[arg(
        long = "metrics.confidence-buckets",
        env = "MODEL_EXPORTER_METRICS_CONFIDENCE_BUCKETS",
        value_delimiter = ',',
        value_name = "BOUNDS"
    )]
    pub confidence_buckets: Vec<f64>,

    /// Bucket bounds of model_feature_value for features without a reference.
    #[arg(
        long = "metrics.feature-buckets",
        env = "MODEL_EXPORTER_METRICS_FEATURE_BUCKETS",
        value_delimiter = ',',
        value_name = "BOUNDS",
        allow_negative_numbers = true
    )]
    pub feature_buckets: Vec<f64>,

    /// Forget series that received no event for this long, like
    /// statsd_exporter's ttl (0: never). See docs/metrics.md.
    #[arg(
        value_name = "DURATION",
        long = "metrics.ttl",
        env = "MODEL_EXPORTER_METRICS_TTL",
        default_value = "0",
        value_parser = parse_duration
    )]
    pub ttl: Duration,
}

impl MetricsArgs {
    /// Histogram buckets: the defaults, overridden where a flag is given.
    pub fn buckets(&self) -> Buckets {
        let d = Buckets::default();
        let pick = |given: &Vec<f64>, default: Vec<f64>| {
            if given.is_empty() {
                default
            } else {
                given.clone()
            }
        };
        Buckets {
            latency: pick(&self.latency_buckets, d.latency),
            prediction: pick(&self.prediction_buckets, d.prediction),
            confidence: pick(&self.confidence_buckets, d.confidence),
            feature: pick(&self.feature_buckets, d.feature),
        }
    }
}

/// Caps on distinct label values (`--limits.*`); the defaults are those of
/// [`Limits::default`].
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitsArgs {
    /// Distinct models; more are counted under __other__.
    #[arg(value_name = "N", long = "limits.models", env = "MODEL_EXPORTER_LIMITS_MODELS", default_value_t = Limits::default().models, value_parser = at_least_one)]
    pub models: usize,

    /// Distinct versions per model; more are counted under __other__.
    #[arg(value_name = "N", long = "limits.versions", env = "MODEL_EXPORTER_LIMITS_VERSIONS", default_value_t = Limits::default().versions, value_parser = at_least_one)]
    pub versions: usize,

    /// Distinct features per model version; more are counted under __other__.
    #[arg(value_name = "N", long = "limits.features", env = "MODEL_EXPORTER_LIMITS_FEATURES", default_value_t = Limits::default().features, value_parser = at_least_one)]
    pub features: usize,

    /// Distinct prediction classes per model version.
    #[arg(value_name = "N", long = "limits.classes", env = "MODEL_EXPORTER_LIMITS_CLASSES", default_value_t = Limits::default().classes, value_parser = at_least_one)]
    pub classes: usize,

    /// Distinct error classes per model version.
    #[arg(value_name = "N", long = "limits.errors", env = "MODEL_EXPORTER_LIMITS_ERRORS", default_value_t = Limits::default().errors, value_parser = at_least_one)]
    pub errors: usize,

    /// Distinct categories per categorical feature.
    #[arg(value_name = "N", long = "limits.categories", env = "MODEL_EXPORTER_LIMITS_CATEGORIES", default_value_t = Limits::default().categories, value_parser = at_least_one)]
    pub categories: usize,

    /// Distinct business counter names per model version.
    #[arg(value_name = "N", long = "limits.counters", env = "MODEL_EXPORTER_LIMITS_COUNTERS", default_value_t = Limits::default().counters, value_parser = at_least_one)]
    pub counters: usize,

    /// Distinct log components per model version.
    #[arg(value_name = "N", long = "limits.components", env = "MODEL_EXPORTER_LIMITS_COMPONENTS", default_value_t = Limits::default().components, value_parser = at_least_one)]
    pub components: usize,

    /// Longest label value in bytes; longer values are cut.
    #[arg(value_name = "N", long = "limits.label-length", env = "MODEL_EXPORTER_LIMITS_LABEL_LENGTH", default_value_t = Limits::default().label_length, value_parser = at_least_one)]
    pub label_length: usize,
}

impl LimitsArgs {
    /// The caps as the aggregator takes them.
    pub fn limits(&self) -> Limits {
        Limits {
            errors: self.errors,
            classes: self.classes,
            features: self.features,
            categories: self.categories,
            counters: self.counters,
            components: self.components,
            models: self.models,
            versions: self.versions,
            label_length: self.label_length,
        }
    }
}

/// State kept across restarts (`--storage.*`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Storage")]
pub struct StorageArgs {
    /// Directory where the state (windows, alert states, feedback awaiting
    /// its join) is saved, so that a restart resumes it; off when not
    /// given. See docs/storage.md.
    #[arg(
        long = "storage.path",
        id = "storage_path",
        env = "MODEL_EXPORTER_STORAGE_PATH",
        value_name = "DIR"
    )]
    pub path: Option<PathBuf>,

    /// How often the state is saved to --storage.path (0: only at
    /// shutdown); it is always saved at shutdown too.
    #[arg(
        value_name = "DURATION",
        long = "storage.snapshot-interval",
        env = "MODEL_EXPORTER_STORAGE_SNAPSHOT_INTERVAL",
        default_value = "30s",
        value_parser = parse_duration
    )]
    pub snapshot_interval: Duration,
}

/// The sample of received events written to a file (`--prediction-log.*`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Prediction log")]
pub struct PredictionLogArgs {
    /// Write a sample of the events received to this JSON-lines file (for
    /// debugging and retraining); off when not given.
    #[arg(
        long = "prediction-log.path",
        id = "prediction_log_path",
        env = "MODEL_EXPORTER_PREDICTION_LOG_PATH",
        value_name = "PATH"
    )]
    pub path: Option<PathBuf>,

    /// Fraction of events written to the prediction log.
    #[arg(
        value_name = "RATIO",
        long = "prediction-log.sample-ratio",
        env = "MODEL_EXPORTER_PREDICTION_LOG_SAMPLE_RATIO",
        default_value_t = 0.1,
        value_parser = parse_ratio
    )]
    pub sample_ratio: f64,

    /// Size in bytes at which the prediction log is rotated.
    #[arg(
        value_name = "BYTES",
        long = "prediction-log.max-bytes",
        env = "MODEL_EXPORTER_PREDICTION_LOG_MAX_BYTES",
        default_value_t = PredictionLogOptions::default().max_bytes
    )]
    pub max_bytes: u64,

    /// Rotated prediction log files kept (path.1 ... path.N).
    #[arg(
        value_name = "N",
        long = "prediction-log.max-files",
        env = "MODEL_EXPORTER_PREDICTION_LOG_MAX_FILES",
        default_value_t = PredictionLogOptions::default().max_files
    )]
    pub max_files: usize,
}

/// The exporter's own log (`--log.*`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Least severe log level written.
    #[arg(long = "log.level", env = "MODEL_EXPORTER_LOG_LEVEL", value_enum, default_value_t = LogLevel::Info)]
    pub level: LogLevel,

    /// Log line format.
    #[arg(long = "log.format", env = "MODEL_EXPORTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub format: LogFormat,

    /// Also write the model's own `log` events into this log (target `model`).
    #[arg(long = "log.model-events", env = "MODEL_EXPORTER_LOG_MODEL_EVENTS")]
    pub model_events: bool,
}

/// The HTTP server's address unless `--web.listen-address` says otherwise.
pub const DEFAULT_WEB_LISTEN_ADDRESS: &str = ":9877";

/// Flags of `model-exporter demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 30.0, value_parser = parse_speed)]
    pub speed: f64,
    /// Simulated length of the story.
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

impl RunArgs {
    /// Caps on distinct label values.
    pub fn limits(&self) -> Limits {
        self.limits.limits()
    }
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
    crate::config::parse_duration(s)
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
