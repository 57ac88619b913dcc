//! The HTTP event listener (`http://HOST:PORT`): CloudEvents of KServe's
//! and Seldon Core's inference loggers become inference events, so that a
//! model they serve is monitored without code. The mapping is documented
//! in docs/integrations.md.
//!
//! A posted CloudEvent goes through, in order:
//! [`envelope`] (attributes from `ce-*` headers or a structured event, the
//! payload as JSON), [`mapping`] (which model, from rules.yaml), [`payload`]
//! (rows of features, or of predictions), [`pairing`] (a request waits for
//! its response, or the other way round) and [`emit`] (one inference event
//! per row). [`listener`] serves HTTP and hands the events to the
//! aggregator like any other listener.

pub mod emit;
pub mod envelope;
pub mod listener;
pub mod mapping;
pub mod pairing;
pub mod payload;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

pub use mapping::{InferenceLogger, Mapping, ModelMap};

use self::envelope::Half;
use self::pairing::Unpaired;
use self::payload::Protocol;

/// Settings of `http://` listeners (`--events.http.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// Longest accepted body, in bytes.
    pub max_body_bytes: usize,
    /// A request's headers, then its body, must arrive within this; a
    /// connection sending no request for this long is closed.
    pub read_timeout: Duration,
    /// How long a request waits for its response (and the other way round).
    pub pending_ttl: Duration,
    /// Estimated memory of the halves waiting, at most.
    pub pending_max_bytes: usize,
    /// TLS and basic authentication (the `--web.config.file` format).
    pub web_config: Option<PathBuf>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_body_bytes: 4 << 20,
            read_timeout: Duration::from_secs(10),
            pending_ttl: Duration::from_secs(60),
            pending_max_bytes: 64 << 20,
            web_config: None,
        }
    }
}

/// What every HTTP listener shares: the model mapping (replaced on reload)
/// and the self-metrics, registered when the first listener starts.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    /// The rules' `inference_logger` blocks.
    pub models: ModelMap,
    metrics: Arc<OnceLock<CloudEventMetrics>>,
}

impl Shared {
    /// Shares `models`.
    pub fn new(models: ModelMap) -> Shared {
        Shared {
            models,
            metrics: Arc::default(),
        }
    }

    /// The self-metrics, registered in `registry` on first use.
    pub fn metrics(&self, registry: &Registry) -> &CloudEventMetrics {
        self.metrics
            .get_or_init(|| CloudEventMetrics::register(registry))
    }
}

/// The listener's self-metrics (docs/metrics.md).
#[derive(Debug, Clone)]
pub struct CloudEventMetrics {
    /// `model_exporter_cloudevents_total{type,protocol}`.
    pub accepted: IntCounterVec,
    /// `model_exporter_cloudevents_paired_total`.
    pub paired: IntCounter,
    /// `model_exporter_cloudevents_unpaired_total{half,reason}`.
    pub unpaired: IntCounterVec,
    /// `model_exporter_cloudevents_pending`.
    pub pending: IntGauge,
    /// `model_exporter_cloudevents_pending_bytes`.
    pub pending_bytes: IntGauge,
}

impl CloudEventMetrics {
    fn register(registry: &Registry) -> CloudEventMetrics {
        let accepted = IntCounterVec::new(
            Opts::new(
                "model_exporter_cloudevents_total",
                "CloudEvents accepted by http:// listeners, by type and payload protocol.",
            ),
            &["type", "protocol"],
        )
        .expect("valid metric");
        let paired = IntCounter::new(
            "model_exporter_cloudevents_paired_total",
            "Requests paired with their responses.",
        )
        .expect("valid metric");
        let unpaired = IntCounterVec::new(
            Opts::new(
                "model_exporter_cloudevents_unpaired_total",
                "Requests and responses taken without their other half, by reason.",
            ),
            &["half", "reason"],
        )
        .expect("valid metric");
        let pending = IntGauge::new(
            "model_exporter_cloudevents_pending",
            "Requests and responses waiting for their other half.",
        )
        .expect("valid metric");
        let pending_bytes = IntGauge::new(
            "model_exporter_cloudevents_pending_bytes",
            "Estimated memory held by the requests and responses waiting.",
        )
        .expect("valid metric");
        for half in [Half::Request, Half::Feedback, Half::Response] {
            for p in Protocol::ALL {
                accepted.with_label_values(&[half.as_str(), p.as_str()]);
            }
        }
        for half in [Half::Request, Half::Response] {
            for r in Unpaired::ALL {
                unpaired.with_label_values(&[half.as_str(), r.as_str()]);
            }
        }
        let m = CloudEventMetrics {
            accepted,
            paired,
            unpaired,
            pending,
            pending_bytes,
        };
        for c in [
            Box::new(m.accepted.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.paired.clone()),
            Box::new(m.unpaired.clone()),
            Box::new(m.pending.clone()),
            Box::new(m.pending_bytes.clone()),
        ] {
            // Registered once (the OnceLock in `Shared`), under names no
            // other part uses: this does not fail.
            if let Err(e) = registry.register(c) {
                tracing::warn!(error = %e, "cannot register a metric of the http listener");
            }
        }
        m
    }
}
