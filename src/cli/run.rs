//! The flags of the running exporter, one struct per concern, each shown
//! under its own heading by `--help`. A default owned by another module
//! (the limits, the listeners' settings, the notifier's, the prediction
//! log's sizes) is taken from that module, so it is written once.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{
    DEFAULT_WEB_LISTEN_ADDRESS, LogFormat, LogLevel, at_least_one, parse_duration,
    parse_line_bytes, parse_mode, parse_path, parse_positive_duration, parse_ratio,
};
use crate::aggregate::Limits;
use crate::export::metrics::Buckets;
use crate::ingest::cloudevents::HttpOptions;
use crate::ingest::prediction_log::PredictionLogOptions;
use crate::ingest::{IngestOptions, ListenAddr};
use crate::rules::notify::NotifierOptions;

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

    use crate::ingest::IngestOptions;
    use crate::ingest::cloudevents::HttpOptions;
    use crate::rules::duration::format_duration;
    use crate::rules::notify::NotifierOptions;

    pub static SOCKET_MODE: LazyLock<String> =
        LazyLock::new(|| format!("{:04o}", IngestOptions::default().socket_mode));
    pub static MAX_CLOCK_SKEW: LazyLock<String> = LazyLock::new(|| {
        format_duration(IngestOptions::default().max_clock_skew.unwrap_or_default())
    });
    pub static IDLE_TIMEOUT: LazyLock<String> = LazyLock::new(|| {
        format_duration(IngestOptions::default().idle_timeout.unwrap_or_default())
    });
    pub static WEB_READ_HEADER_TIMEOUT: LazyLock<String> = LazyLock::new(|| {
        format_duration(crate::export::conns::WebLimits::default().read_header_timeout)
    });
    pub static HTTP_READ_TIMEOUT: LazyLock<String> =
        LazyLock::new(|| format_duration(HttpOptions::default().read_timeout));
    pub static HTTP_PENDING_TTL: LazyLock<String> =
        LazyLock::new(|| format_duration(HttpOptions::default().pending_ttl));
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
    /// udp://HOST:PORT, file:///PATH (a JSON-lines file followed like tail -F),
    /// or http://HOST:PORT (CloudEvents of KServe's and Seldon's inference
    /// loggers, see docs/integrations.md). Repeatable. Default: a unix stream
    /// socket and a unix datagram socket in the temporary directory.
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

    /// Events whose `ts` is further than this from the time of receipt, or
    /// whose `trained_at` or `loaded_at` is further than this ahead of it,
    /// are rejected as invalid_value (0: never). See docs/events.md.
    #[arg(
        value_name = "DURATION",
        long = "events.max-clock-skew",
        env = "MODEL_EXPORTER_EVENTS_MAX_CLOCK_SKEW",
        default_value = shown::MAX_CLOCK_SKEW.as_str(),
        value_parser = parse_duration
    )]
    pub max_clock_skew: Duration,

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

    /// Connections open at once, per event listener. A stream listener
    /// closes more at once (model_exporter_connections_closed_total{reason=
    /// "limit"}); an http:// listener closes the one idle longest to make
    /// room (reason="evicted"), and a new one only when every open one is
    /// answering a request.
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

    /// Longest body an http:// listener accepts, in bytes; a longer one is
    /// answered 413 and counted as too_long.
    #[arg(
        value_name = "BYTES",
        long = "events.http.max-body-bytes",
        env = "MODEL_EXPORTER_EVENTS_HTTP_MAX_BODY_BYTES",
        default_value_t = HttpOptions::default().max_body_bytes,
        value_parser = parse_line_bytes
    )]
    pub http_max_body_bytes: usize,

    /// An http:// listener closes a connection whose request headers do not
    /// arrive within this (also between requests), and answers 408 to a body
    /// that does not.
    #[arg(
        value_name = "DURATION",
        long = "events.http.read-timeout",
        env = "MODEL_EXPORTER_EVENTS_HTTP_READ_TIMEOUT",
        default_value = shown::HTTP_READ_TIMEOUT.as_str(),
        value_parser = parse_positive_duration
    )]
    pub http_read_timeout: Duration,

    /// How long a logged request waits for its response (and a response
    /// for its request) before it is taken alone.
    #[arg(
        value_name = "DURATION",
        long = "events.http.pending-ttl",
        env = "MODEL_EXPORTER_EVENTS_HTTP_PENDING_TTL",
        default_value = shown::HTTP_PENDING_TTL.as_str(),
        value_parser = parse_positive_duration
    )]
    pub http_pending_ttl: Duration,

    /// Estimated memory of the requests and responses waiting for their
    /// other half, at most; past it the oldest is taken alone.
    #[arg(
        value_name = "BYTES",
        long = "events.http.pending-max-bytes",
        env = "MODEL_EXPORTER_EVENTS_HTTP_PENDING_MAX_BYTES",
        default_value_t = HttpOptions::default().pending_max_bytes,
        value_parser = at_least_one
    )]
    pub http_pending_max_bytes: usize,

    /// TLS and basic authentication of http:// listeners, in the
    /// --web.config.file format (see docs/security.md). Read at start-up.
    #[arg(
        long = "events.http.web-config.file",
        env = "MODEL_EXPORTER_EVENTS_HTTP_WEB_CONFIG_FILE",
        value_name = "PATH"
    )]
    pub http_web_config_file: Option<PathBuf>,
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
            max_clock_skew: (!self.max_clock_skew.is_zero()).then_some(self.max_clock_skew),
            file_from_beginning: self.file_from_beginning,
            max_connections: self.max_connections,
            http: HttpOptions {
                max_body_bytes: self.http_max_body_bytes,
                read_timeout: self.http_read_timeout,
                pending_ttl: self.http_pending_ttl,
                pending_max_bytes: self.http_pending_max_bytes,
                web_config: self.http_web_config_file.clone(),
            },
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

    /// Connections to the HTTP server open at once, per address. At the cap
    /// a new connection closes the one idle longest (reason="evicted"), or
    /// is closed itself when all are answering requests (reason="limit").
    /// Lowered at start-up if the caps of all servers exceed the file
    /// descriptor limit.
    #[arg(
        value_name = "N",
        long = "web.max-connections",
        id = "web_max_connections",
        env = "MODEL_EXPORTER_WEB_MAX_CONNECTIONS",
        default_value_t = crate::export::conns::WebLimits::default().max_connections,
        value_parser = at_least_one
    )]
    pub max_connections: usize,

    /// Time a connection to the HTTP server has to send a complete request
    /// head, from being accepted (TLS handshake included) or from its
    /// previous response; a connection that reads nothing for this long is
    /// closed too.
    #[arg(
        value_name = "DURATION",
        long = "web.read-header-timeout",
        id = "web_read_header_timeout",
        env = "MODEL_EXPORTER_WEB_READ_HEADER_TIMEOUT",
        default_value = shown::WEB_READ_HEADER_TIMEOUT.as_str(),
        value_parser = parse_positive_duration
    )]
    pub read_header_timeout: Duration,
}

impl WebArgs {
    /// The bounds on the HTTP server's connections.
    pub fn limits(&self) -> crate::export::conns::WebLimits {
        crate::export::conns::WebLimits {
            max_connections: self.max_connections,
            read_header_timeout: self.read_header_timeout,
        }
    }
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

    /// Largest --config.file accepted, in bytes, at start and on reload;
    /// the file must be a regular file (not a FIFO, device or directory).
    #[arg(
        value_name = "BYTES",
        long = "config.max-bytes",
        env = "MODEL_EXPORTER_CONFIG_MAX_BYTES",
        default_value_t = crate::files::DEFAULT_MAX_BYTES,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub config_max_bytes: u64,

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

    /// How often a firing alert is sent again while it keeps firing (and a
    /// resolved one, for 15 minutes after it resolved).
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

impl RunArgs {
    /// Caps on distinct label values.
    pub fn limits(&self) -> Limits {
        self.limits.limits()
    }
}
