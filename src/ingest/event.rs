//! Parsed events (wire protocol v1), owned and ready for the aggregator.

pub use super::name::Name;

/// One parsed event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Model name (label `model`); `"default"` when the client sent none.
    pub model: Name,
    /// Model version (label `version`); empty when the client sent none.
    pub version: Name,
    /// When it happened, seconds since the epoch; `None` means "at receipt".
    pub ts: Option<f64>,
    /// The type-specific part.
    pub body: Body,
}

/// The event types.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// One served request.
    Inference(Inference),
    /// Ground truth for an earlier request.
    Feedback(Feedback),
    /// A model version was loaded.
    Model(ModelLoaded),
    /// A structured log line from the model process.
    Log(LogLine),
    /// A client library's report of what it dropped (an extension of
    /// protocol v1, see docs/events.md).
    Client(ClientReport),
}

impl Body {
    /// The event type as it appears on the wire and in the `type` label.
    pub fn kind(&self) -> EventKind {
        match self {
            Body::Inference(_) => EventKind::Inference,
            Body::Feedback(_) => EventKind::Feedback,
            Body::Model(_) => EventKind::Model,
            Body::Log(_) => EventKind::Log,
            Body::Client(_) => EventKind::Client,
        }
    }
}

/// Event type tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `inference`
    Inference,
    /// `feedback`
    Feedback,
    /// `model`
    Model,
    /// `log`
    Log,
    /// `client`
    Client,
}

impl EventKind {
    /// Every kind, in label order.
    pub const ALL: [EventKind; 5] = [
        EventKind::Inference,
        EventKind::Feedback,
        EventKind::Model,
        EventKind::Log,
        EventKind::Client,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Inference => "inference",
            EventKind::Feedback => "feedback",
            EventKind::Model => "model",
            EventKind::Log => "log",
            EventKind::Client => "client",
        }
    }
}

/// A model output or a ground-truth value: a number or a class label.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A numeric output (score, probability, regression value, 0/1 label).
    Number(f64),
    /// A class label.
    Class(String),
}

/// The value of one feature.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureValue {
    /// A numeric value.
    Number(f64),
    /// A categorical value.
    Category(String),
    /// A boolean, treated as 0 or 1 in numeric statistics.
    Bool(bool),
    /// JSON `null`: the value is missing.
    Missing,
}

/// An `inference` event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inference {
    /// Request id, used to join feedback; never a label.
    pub id: Option<Name>,
    /// Serving latency in seconds (the wire carries milliseconds).
    pub latency_seconds: Option<f64>,
    /// Whether the request succeeded.
    pub ok: bool,
    /// Error class when the request failed.
    pub error: Option<String>,
    /// The model output.
    pub prediction: Option<Outcome>,
    /// Confidence of the output, in [0, 1].
    pub confidence: Option<f64>,
    /// Feature values in the order the client sent them.
    pub features: Vec<(Name, FeatureValue)>,
    /// Business counts, e.g. `shown`, `clicked`.
    pub counters: Vec<(String, f64)>,
    /// CPU utilisation seen by the model process, as a ratio in [0, 1].
    pub cpu_ratio: Option<f64>,
    /// Memory utilisation seen by the model process, as a ratio in [0, 1].
    pub memory_ratio: Option<f64>,
}

/// A `feedback` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    /// Id of the inference this is the ground truth of.
    pub id: Option<Name>,
    /// The true value.
    pub actual: Outcome,
    /// The prediction, when the client sends it along (no join needed).
    pub prediction: Option<Outcome>,
}

/// A `model` event.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelLoaded {
    /// When the model was trained, seconds since the epoch.
    pub trained_at: Option<f64>,
    /// When it was loaded, seconds since the epoch; `None` means "at receipt".
    pub loaded_at: Option<f64>,
}

/// Log severity of a `log` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogLevel {
    /// `debug`
    Debug,
    /// `info`
    Info,
    /// `warning`
    Warning,
    /// `error`
    Error,
    /// `critical`
    Critical,
}

impl LogLevel {
    /// Every level, lowest first.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warning,
        LogLevel::Error,
        LogLevel::Critical,
    ];

    /// The wire and label name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }

    /// Parses a level name, ignoring ASCII case.
    pub fn parse(s: &str) -> Option<LogLevel> {
        LogLevel::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
    }
}

/// A `log` event.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// Component of the model process that logged it.
    pub component: String,
    /// The message (kept for the optional re-emission in the exporter's log).
    pub message: String,
}

/// Why a client library dropped events: the `reason` label of
/// `model_exporter_client_dropped_total`. The set is fixed; a reason this
/// exporter does not know (a newer client's) is counted as `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The client's buffer was full: the exporter did not keep up.
    QueueFull,
    /// Nothing listened at the client's socket path.
    NoExporter,
    /// Any other socket error.
    SocketError,
    /// An event longer than the largest datagram the client makes.
    TooLarge,
    /// A call that made no event (a required value missing).
    InvalidEvent,
    /// A reason this exporter does not know.
    Other,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 6] = [
        DropReason::QueueFull,
        DropReason::NoExporter,
        DropReason::SocketError,
        DropReason::TooLarge,
        DropReason::InvalidEvent,
        DropReason::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::NoExporter => "no_exporter",
            DropReason::SocketError => "socket_error",
            DropReason::TooLarge => "too_large",
            DropReason::InvalidEvent => "invalid_event",
            DropReason::Other => "other",
        }
    }

    /// The reason named `s` on the wire; unknown names are [`DropReason::Other`].
    pub fn parse(s: &str) -> DropReason {
        DropReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .unwrap_or(DropReason::Other)
    }
}

/// What a client dropped since its previous report (counts are deltas).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientReport {
    /// Events lost, indexed like [`DropReason::ALL`].
    pub dropped: [u64; 6],
    /// Values left out of events that were still sent.
    pub values_omitted: u64,
}
