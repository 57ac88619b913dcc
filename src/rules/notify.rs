//! Pushing alerts to Alertmanager (API v2, `POST /api/v2/alerts`).
//!
//! After every evaluation round the evaluator hands the [`NotifierHandle`]
//! every alert that is firing or was just resolved. The handle decides which
//! of them need to go out now, as Prometheus does:
//!
//! * a new alert, a resolution, or an alert that fired again (another
//!   `startsAt`) goes out at once;
//! * a firing alert is sent again every `resend_delay`, and only then, even
//!   when its annotations (a `{{ $value }}`) change in between;
//! * a resolved alert is sent again every `resend_delay` for
//!   [`RESOLVED_RETENTION`] (15 minutes) after it resolved, so that an
//!   Alertmanager that missed the resolution (down, restarted, or past a
//!   full queue) still hears of it.
//!
//! The alerts due are serialised once and appended to one bounded queue per
//! Alertmanager, which holds at most one entry per alert (a newer state of
//! an alert replaces the one still waiting) and at most `queue_capacity`
//! entries (past that the oldest are dropped and counted).
//! [`NotifierHandle::send`] never blocks and never fails.
//!
//! [`Notifier::run`] drives one worker per Alertmanager, so an Alertmanager
//! that is slow or down delays nobody but itself. A worker POSTs batches of
//! up to `max_batch` alerts. A POST that fails in a way a retry may mend
//! (connection refused, timeout, 5xx, 429) puts the batch back at the head
//! of the queue and is tried again after an exponential backoff (from
//! 100 ms up to `backoff_max`), for as long as it takes: while Alertmanager
//! is down its alerts wait in the queue, and are delivered once it is back.
//! A batch Alertmanager rejects (another 4xx) is dropped and counted.
//!
//! Firing alerts carry `endsAt` = now + 4 × max(`resend_delay`,
//! `evaluation_interval`), so Alertmanager resolves them by itself if the
//! sidecar stops sending.
//!
//! Requests go through the [`http_client`](crate::http_client): `http://`
//! or `https://`, with the TLS settings and credentials of
//! [`NotifierOptions::http_config`] (`--alertmanager.http-config.file`).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{StatusCode, Uri};
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
use tokio::sync::Notify;

use crate::clock::{SharedClock, SystemClock};
use crate::http_client::{ClientError, ClientOptions, HttpClient, HttpClientConfig, RequestError};
use crate::shutdown::Shutdown;

/// Wait before the first retry; doubled for every further one, up to
/// [`NotifierOptions::backoff_max`].
const BACKOFF_START: Duration = Duration::from_millis(100);
/// How long a resolved alert is sent again (every resend delay) after it
/// resolved, as Prometheus does.
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);
/// Largest response body read from Alertmanager.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// One alert as the evaluator reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identifying labels: `alertname`, `severity`, `model`, `version`, ...
    pub labels: BTreeMap<String, String>,
    /// Annotations (`summary`, `description`, ...), already expanded.
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing, in seconds since the Unix epoch.
    pub starts_at: f64,
    /// When the alert was resolved (seconds since the epoch); `None` while firing.
    pub ends_at: Option<f64>,
    /// Link back to the source of the alert; empty for none.
    pub generator_url: String,
}

impl Alert {
    /// Whether the alert is resolved.
    pub fn is_resolved(&self) -> bool {
        self.ends_at.is_some()
    }

    /// The alert as one Alertmanager API v2 JSON object; `ends_at` is what
    /// `endsAt` becomes for a firing alert.
    fn to_json(&self, firing_ends_at: f64) -> String {
        let mut o = serde_json::Map::new();
        o.insert("labels".into(), string_map(&self.labels));
        o.insert("annotations".into(), string_map(&self.annotations));
        o.insert("startsAt".into(), rfc3339(self.starts_at).into());
        o.insert(
            "endsAt".into(),
            rfc3339(self.ends_at.unwrap_or(firing_ends_at)).into(),
        );
        if !self.generator_url.is_empty() {
            o.insert("generatorURL".into(), self.generator_url.clone().into());
        }
        serde_json::Value::Object(o).to_string()
    }

    /// The identity of the alert: a hash of its labels, as Alertmanager's
    /// fingerprint.
    fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.labels.hash(&mut h);
        h.finish()
    }
}

fn string_map(m: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

/// RFC 3339 in UTC with milliseconds, as Alertmanager expects.
pub use crate::ingest::timestamp::format_rfc3339 as rfc3339;

/// How the notifier behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifierOptions {
    /// Alertmanager base URLs, e.g. `http://127.0.0.1:9093` or
    /// `https://am:9093/prefix` (alerts go to `<base>/api/v2/alerts`).
    pub urls: Vec<String>,
    /// TLS settings and credentials of the requests.
    pub http_config: HttpClientConfig,
    /// Deadline of one POST, response included.
    pub timeout: Duration,
    /// Alerts waiting per Alertmanager; beyond that the oldest are dropped.
    pub queue_capacity: usize,
    /// Alerts per POST.
    pub max_batch: usize,
    /// A firing alert is sent again after this long (and only then, unless
    /// it resolves); a resolved one too, for [`RESOLVED_RETENTION`].
    pub resend_delay: Duration,
    /// Longest wait between two attempts to POST to an Alertmanager that
    /// fails.
    pub backoff_max: Duration,
    /// The evaluator's interval; with `resend_delay` it sets how long
    /// Alertmanager keeps a firing alert without hearing of it again.
    pub evaluation_interval: Duration,
    /// On shutdown, how long queued alerts may take to go out.
    pub flush_timeout: Duration,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            urls: Vec::new(),
            http_config: HttpClientConfig::default(),
            timeout: Duration::from_secs(10),
            queue_capacity: 10_000,
            max_batch: 64,
            resend_delay: Duration::from_secs(60),
            backoff_max: Duration::from_secs(5),
            evaluation_interval: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(5),
        }
    }
}

impl NotifierOptions {
    /// How long after sending a firing alert Alertmanager should consider it
    /// resolved unless it hears of it again: 4 × max(resend delay, interval).
    pub fn validity(&self) -> Duration {
        self.resend_delay.max(self.evaluation_interval) * 4
    }
}

/// Why a notifier could not be created.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// An Alertmanager URL is unusable.
    #[error("invalid Alertmanager URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An option is out of range.
    #[error("invalid notifier option: {0}")]
    InvalidOption(&'static str),
    /// The self-metrics could not be registered (e.g. registered twice).
    #[error("registering notifier metrics: {0}")]
    Metrics(#[source] prometheus::Error),
    /// The HTTP client could not be made from the TLS settings and
    /// credentials.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Turns an Alertmanager base URL into the URL alerts are POSTed to.
pub fn alerts_endpoint(base: &str) -> Result<Uri, NotifyError> {
    let bad = |reason: &str| NotifyError::InvalidUrl {
        url: base.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = base
        .trim()
        .parse()
        .map_err(|e| bad(&format!("{e} (expected e.g. http://127.0.0.1:9093)")))?;
    let scheme = match uri.scheme_str() {
        Some(s @ ("http" | "https")) => s,
        Some(s) => return Err(bad(&format!("scheme {s:?} is not http or https"))),
        None => return Err(bad("no scheme (expected e.g. http://127.0.0.1:9093)")),
    };
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    if authority.host().is_empty() {
        return Err(bad("no host"));
    }
    let a = authority.as_str();
    let has_port = a.rfind(':').is_some_and(|i| !a[i..].contains(']'));
    if has_port && authority.port_u16().is_none() {
        return Err(bad("the port is not a number from 0 to 65535"));
    }
    if authority.as_str().contains('@') {
        return Err(bad(
            "credentials in the URL are not supported; use --alertmanager.http-config.file",
        ));
    }
    if uri.query().is_some() {
        return Err(bad("a query string is not allowed"));
    }
    let prefix = uri.path().trim_end_matches('/');
    format!("{scheme}://{authority}{prefix}/api/v2/alerts")
        .parse()
        .map_err(|e| bad(&format!("{e}")))
}

/// The notifier's self-metrics.
#[derive(Clone)]
struct NotifyMetrics {
    sent: IntCounterVec,
    errors: IntCounterVec,
    dropped: IntCounter,
    queue_length: IntGauge,
    latency: HistogramVec,
}

impl NotifyMetrics {
    fn register(
        r: &Registry,
        options: &NotifierOptions,
        labels: &[String],
    ) -> prometheus::Result<Self> {
        let am = &["alertmanager"];
        let sent = IntCounterVec::new(
            Opts::new(
                "model_exporter_notifications_sent_total",
                "Alerts successfully sent to Alertmanager.",
            ),
            am,
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "model_exporter_notifications_errors_total",
                "POSTs of alerts to Alertmanager that failed.",
            ),
            am,
        )?;
        let dropped = IntCounter::new(
            "model_exporter_notifications_dropped_total",
            "Alerts dropped from a full queue, rejected by Alertmanager, or left unsent at shutdown (once per Alertmanager).",
        )?;
        let queue_length = IntGauge::new(
            "model_exporter_notifications_queue_length",
            "Alerts waiting to be sent, summed over Alertmanagers.",
        )?;
        let capacity = IntGauge::new(
            "model_exporter_notifications_queue_capacity",
            "Capacity of the alert queue of each Alertmanager.",
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "model_exporter_notifications_latency_seconds",
                "Duration of POSTs of alerts to Alertmanager.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            am,
        )?;
        let alertmanagers = IntGauge::new(
            "model_exporter_alertmanagers",
            "Alertmanagers alerts are sent to.",
        )?;
        r.register(Box::new(sent.clone()))?;
        r.register(Box::new(errors.clone()))?;
        r.register(Box::new(dropped.clone()))?;
        r.register(Box::new(queue_length.clone()))?;
        r.register(Box::new(capacity.clone()))?;
        r.register(Box::new(latency.clone()))?;
        r.register(Box::new(alertmanagers.clone()))?;
        capacity.set(i64::try_from(options.queue_capacity).unwrap_or(i64::MAX));
        alertmanagers.set(i64::try_from(labels.len()).unwrap_or(i64::MAX));
        for l in labels {
            // Series exist at zero from the start.
            sent.with_label_values(&[l]);
            errors.with_label_values(&[l]);
            latency.with_label_values(&[l]);
        }
        Ok(NotifyMetrics {
            sent,
            errors,
            dropped,
            queue_length,
            latency,
        })
    }
}

/// Which alerts are due, remembering what was sent when.
///
/// A firing alert's entry is forgotten once it has not been reported for
/// the validity period; a resolved one's [`RESOLVED_RETENTION`] after it
/// resolved. So the table holds at most the alerts reported recently.
#[derive(Debug, Default)]
struct Resender {
    entries: HashMap<BTreeMap<String, String>, Sent>,
}

#[derive(Debug, Clone)]
struct Sent {
    /// `startsAt` of what was last sent: another one is another alert.
    starts_at: u64,
    resolved: bool,
    last_sent: f64,
    last_seen: f64,
    /// The resolution, sent again until [`RESOLVED_RETENTION`] after it.
    resolution: Option<Alert>,
}

impl Resender {
    /// Keeps the alerts due at `now`: new ones, state changes (a resolution,
    /// another `startsAt`), alerts last sent at least `resend_delay` seconds
    /// ago, and, among the resolved alerts not reported this time, those
    /// whose resend is due.
    fn due(
        &mut self,
        alerts: Vec<Alert>,
        now: f64,
        resend_delay: f64,
        forget_after: f64,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        for a in alerts {
            let starts_at = a.starts_at.to_bits();
            let resolved = a.is_resolved();
            let resolution = resolved.then(|| a.clone());
            let send = match self.entries.get_mut(&a.labels) {
                Some(e) => {
                    e.last_seen = now;
                    let due = e.starts_at != starts_at
                        || e.resolved != resolved
                        || now - e.last_sent >= resend_delay
                        // A clock that went backwards must not silence an alert.
                        || now < e.last_sent;
                    if due {
                        e.starts_at = starts_at;
                        e.resolved = resolved;
                        e.last_sent = now;
                        e.resolution = resolution;
                    }
                    due
                }
                None => {
                    self.entries.insert(
                        a.labels.clone(),
                        Sent {
                            starts_at,
                            resolved,
                            last_sent: now,
                            last_seen: now,
                            resolution,
                        },
                    );
                    true
                }
            };
            if send {
                out.push(a);
            }
        }
        let retention = RESOLVED_RETENTION.as_secs_f64();
        for e in self.entries.values_mut() {
            let Some(r) = &e.resolution else { continue };
            // Reported in this call (or in another shard's at this time).
            if e.last_seen == now {
                continue;
            }
            let ended = r.ends_at.unwrap_or(e.last_sent);
            if now - ended <= retention && (now - e.last_sent >= resend_delay || now < e.last_sent)
            {
                e.last_sent = now;
                out.push(r.clone());
            }
        }
        // Forget what has not been reported for a while (also on a clock
        // that went backwards, which would otherwise pin entries forever),
        // and resolutions past their retention.
        self.entries.retain(|_, e| match &e.resolution {
            Some(r) => {
                let ended = r.ends_at.unwrap_or(e.last_seen);
                now - ended <= retention && e.last_seen <= now
            }
            None => now - e.last_seen <= forget_after && e.last_seen <= now,
        });
        out
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// One serialised alert, shared by every Alertmanager's queue.
type Payload = Arc<str>;

/// One alert waiting to be sent: its fingerprint and its JSON.
#[derive(Debug, Clone)]
struct Queued {
    key: u64,
    payload: Payload,
}

/// The alerts waiting for one Alertmanager, oldest first, at most one per
/// alert.
#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Queued>,
    /// How many entries each fingerprint has (0 or 1 but while putting back).
    keys: HashMap<u64, usize>,
}

impl Queue {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn holds(&self, key: u64) -> bool {
        self.keys.get(&key).is_some_and(|n| *n > 0)
    }

    fn forget(&mut self, key: u64) {
        if let Some(n) = self.keys.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.keys.remove(&key);
            }
        }
    }

    /// Appends `q`, replacing the entry of the same alert if one waits.
    fn push_back(&mut self, q: Queued) {
        if self.holds(q.key)
            && let Some(i) = self.items.iter().position(|x| x.key == q.key)
        {
            self.items.remove(i);
            self.forget(q.key);
        }
        *self.keys.entry(q.key).or_default() += 1;
        self.items.push_back(q);
    }

    /// Puts `q` back at the head, unless a newer state of the alert waits.
    fn push_front(&mut self, q: Queued) {
        if !self.holds(q.key) {
            *self.keys.entry(q.key).or_default() += 1;
            self.items.push_front(q);
        }
    }

    /// Takes up to `n` entries from the head.
    fn take(&mut self, n: usize) -> Vec<Queued> {
        let n = n.min(self.items.len());
        let batch: Vec<Queued> = self.items.drain(..n).collect();
        for q in &batch {
            self.forget(q.key);
        }
        batch
    }

    /// Drops the oldest entries beyond `capacity`; returns how many.
    fn trim(&mut self, capacity: usize) -> usize {
        let over = self.items.len().saturating_sub(capacity);
        for q in self.items.drain(..over).collect::<Vec<_>>() {
            self.forget(q.key);
        }
        over
    }

    fn clear(&mut self) -> usize {
        let n = self.items.len();
        self.items.clear();
        self.keys.clear();
        n
    }
}

/// One Alertmanager: its endpoint and its queue.
struct Target {
    label: String,
    endpoint: Uri,
    queue: Mutex<Queue>,
    wake: Notify,
}

/// State shared by the handle and the workers.
struct Inner {
    options: NotifierOptions,
    clock: SharedClock,
    targets: Vec<Target>,
    resender: Mutex<Resender>,
    metrics: NotifyMetrics,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hands alerts to the notifier; cheap to clone.
#[derive(Clone)]
pub struct NotifierHandle {
    inner: Arc<Inner>,
}

impl fmt::Debug for NotifierHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifierHandle")
            .field("urls", &self.inner.options.urls)
            .finish_non_exhaustive()
    }
}

impl NotifierHandle {
    /// Reports the alerts of one evaluation round: firing ones and those just
    /// resolved. Queues the ones due (see the module documentation); never
    /// blocks on the network and never fails. Alerts without labels are
    /// ignored (Alertmanager rejects them).
    pub fn send(&self, alerts: Vec<Alert>) {
        let inner = &*self.inner;
        let now = inner.clock.now();
        let validity = inner.options.validity().as_secs_f64();
        let due = lock(&inner.resender).due(
            alerts
                .into_iter()
                .filter(|a| !a.labels.is_empty())
                .collect(),
            now,
            inner.options.resend_delay.as_secs_f64(),
            validity,
        );
        if due.is_empty() || inner.targets.is_empty() {
            return;
        }
        let payloads: Vec<Queued> = due
            .iter()
            .map(|a| Queued {
                key: a.fingerprint(),
                payload: Payload::from(a.to_json(now + validity)),
            })
            .collect();
        for t in &inner.targets {
            let dropped = {
                let mut q = lock(&t.queue);
                for p in &payloads {
                    q.push_back(p.clone());
                }
                q.trim(inner.options.queue_capacity)
            };
            if dropped > 0 {
                inner.metrics.dropped.inc_by(dropped as u64);
                tracing::warn!(alertmanager = %t.label, dropped, "alert queue full, dropped the oldest alerts");
            }
            t.wake.notify_one();
        }
        inner.update_queue_length();
    }

    /// Alerts waiting for the given Alertmanager (by position in `urls`).
    pub fn queued(&self, alertmanager: usize) -> usize {
        self.inner
            .targets
            .get(alertmanager)
            .map_or(0, |t| lock(&t.queue).len())
    }

    /// How many alerts the resend bookkeeping remembers.
    pub fn remembered(&self) -> usize {
        lock(&self.inner.resender).len()
    }
}

impl Inner {
    fn update_queue_length(&self) {
        let n: usize = self.targets.iter().map(|t| lock(&t.queue).len()).sum();
        self.metrics
            .queue_length
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Takes the next batch of up to `max_batch` alerts of target `i`.
    fn take(&self, i: usize) -> Vec<Queued> {
        let batch = lock(&self.targets[i].queue).take(self.options.max_batch);
        self.update_queue_length();
        batch
    }

    /// Puts a batch back at the front of the queue of target `i` (but for
    /// alerts of which a newer state waits), dropping (and counting) the
    /// oldest when it no longer fits.
    fn put_back(&self, i: usize, batch: Vec<Queued>) {
        let dropped = {
            let mut q = lock(&self.targets[i].queue);
            for p in batch.into_iter().rev() {
                q.push_front(p);
            }
            q.trim(self.options.queue_capacity)
        };
        if dropped > 0 {
            self.metrics.dropped.inc_by(dropped as u64);
            tracing::warn!(alertmanager = %self.targets[i].label, dropped, "alert queue full, dropped the oldest alerts");
        }
        self.update_queue_length();
    }
}

/// The JSON array of a batch.
fn batch_body(batch: &[Queued]) -> Bytes {
    let mut s = String::with_capacity(batch.iter().map(|p| p.payload.len() + 1).sum::<usize>() + 2);
    s.push('[');
    for (i, p) in batch.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&p.payload);
    }
    s.push(']');
    Bytes::from(s)
}

/// Why one POST failed.
#[derive(Debug, thiserror::Error)]
enum PostError {
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Request(RequestError),
    #[error("HTTP {0}: {1}")]
    Status(StatusCode, String),
}

impl PostError {
    /// Whether trying again may help (not for requests Alertmanager rejects).
    fn retryable(&self) -> bool {
        match self {
            PostError::Status(s, _) => {
                s.is_server_error()
                    || *s == StatusCode::TOO_MANY_REQUESTS
                    || *s == StatusCode::REQUEST_TIMEOUT
            }
            _ => true,
        }
    }
}

async fn post(client: &HttpClient, uri: &Uri, body: Bytes) -> Result<(), PostError> {
    let resp = client
        .post(uri, "application/json", body)
        .await
        .map_err(|e| match e {
            RequestError::Timeout { .. } => PostError::Timeout,
            e => PostError::Request(e),
        })?;
    if resp.status.is_success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&resp.body);
        Err(PostError::Status(
            resp.status,
            text.trim().chars().take(200).collect(),
        ))
    }
}

/// The background half of the notifier: run it with [`Notifier::run`].
pub struct Notifier {
    inner: Arc<Inner>,
    client: HttpClient,
    shutdown: Shutdown,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("urls", &self.inner.options.urls)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Validates the options, registers the self-metrics on `registry`, and
    /// returns the handle for the evaluator and the notifier to run.
    pub fn new(
        options: NotifierOptions,
        registry: &Registry,
        shutdown: Shutdown,
    ) -> Result<(NotifierHandle, Notifier), NotifyError> {
        Self::with_clock(options, registry, shutdown, Arc::new(SystemClock))
    }

    /// [`Notifier::new`] with a given clock (for tests).
    pub fn with_clock(
        options: NotifierOptions,
        registry: &Registry,
        shutdown: Shutdown,
        clock: SharedClock,
    ) -> Result<(NotifierHandle, Notifier), NotifyError> {
        if options.queue_capacity == 0 {
            return Err(NotifyError::InvalidOption(
                "queue capacity must be at least 1",
            ));
        }
        if options.max_batch == 0 {
            return Err(NotifyError::InvalidOption("batch size must be at least 1"));
        }
        if options.timeout.is_zero() {
            return Err(NotifyError::InvalidOption("timeout must be positive"));
        }
        let mut targets = Vec::with_capacity(options.urls.len());
        for url in &options.urls {
            let endpoint = alerts_endpoint(url)?;
            if targets.iter().any(|t: &Target| t.endpoint == endpoint) {
                return Err(NotifyError::InvalidUrl {
                    url: url.clone(),
                    reason: "given twice".into(),
                });
            }
            targets.push(Target {
                label: url.trim().trim_end_matches('/').to_owned(),
                endpoint,
                queue: Mutex::new(Queue::default()),
                wake: Notify::new(),
            });
        }
        let client = HttpClient::new(&ClientOptions {
            connect_timeout: options
                .timeout
                .min(ClientOptions::default().connect_timeout),
            request_timeout: options.timeout,
            max_body_bytes: MAX_RESPONSE_BYTES,
            config: options.http_config.clone(),
        })?;
        let labels: Vec<String> = targets.iter().map(|t| t.label.clone()).collect();
        let metrics =
            NotifyMetrics::register(registry, &options, &labels).map_err(NotifyError::Metrics)?;
        let inner = Arc::new(Inner {
            options,
            clock,
            targets,
            resender: Mutex::new(Resender::default()),
            metrics,
        });
        Ok((
            NotifierHandle {
                inner: inner.clone(),
            },
            Notifier {
                inner,
                client,
                shutdown,
            },
        ))
    }

    /// Sends queued alerts until shutdown, then flushes what is queued
    /// (within `flush_timeout`) and returns.
    pub async fn run(self) {
        let client = self.client;
        let mut workers = tokio::task::JoinSet::new();
        for i in 0..self.inner.targets.len() {
            workers.spawn(worker(
                self.inner.clone(),
                i,
                client.clone(),
                self.shutdown.clone(),
            ));
        }
        while workers.join_next().await.is_some() {}
    }
}

/// What became of one POST of a batch.
enum Outcome {
    /// Delivered.
    Sent,
    /// Failed in a way a retry may mend: the batch is to be put back.
    Retry,
    /// Rejected: retrying would not help; the batch is dropped.
    Rejected,
}

/// Sends the queue of target `i` until shutdown, then flushes it.
async fn worker(inner: Arc<Inner>, i: usize, client: HttpClient, mut shutdown: Shutdown) {
    let target = &inner.targets[i];
    let mut backoff = BACKOFF_START;
    loop {
        let batch = inner.take(i);
        if batch.is_empty() {
            tokio::select! {
                _ = target.wake.notified() => continue,
                _ = shutdown.wait() => break,
            }
        }
        let outcome = tokio::select! {
            o = post_batch(&inner, i, &client, &batch) => Some(o),
            _ = shutdown.wait() => None,
        };
        match outcome {
            None => {
                // Interrupted by shutdown: the flush below tries once more.
                inner.put_back(i, batch);
                break;
            }
            Some(Outcome::Sent) | Some(Outcome::Rejected) => backoff = BACKOFF_START,
            Some(Outcome::Retry) => {
                inner.put_back(i, batch);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait() => break,
                }
                backoff = (backoff * 2).min(inner.options.backoff_max.max(BACKOFF_START));
            }
        }
    }
    let in_flight = AtomicUsize::new(0);
    let flush = async {
        let mut backoff = BACKOFF_START;
        loop {
            let batch = inner.take(i);
            if batch.is_empty() {
                break;
            }
            in_flight.store(batch.len(), Ordering::Relaxed);
            if let Outcome::Retry = post_batch(&inner, i, &client, &batch).await {
                inner.put_back(i, batch);
                in_flight.store(0, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(inner.options.backoff_max.max(BACKOFF_START));
            }
            in_flight.store(0, Ordering::Relaxed);
        }
    };
    if tokio::time::timeout(inner.options.flush_timeout, flush)
        .await
        .is_err()
    {
        let left = in_flight.load(Ordering::Relaxed) + lock(&target.queue).clear();
        inner.update_queue_length();
        inner.metrics.dropped.inc_by(left as u64);
        tracing::warn!(alertmanager = %target.label, dropped = left, "shutdown: could not flush alerts in time");
    }
}

/// POSTs one batch to target `i` once; counts the outcome (a rejected batch
/// as dropped).
async fn post_batch(inner: &Inner, i: usize, client: &HttpClient, batch: &[Queued]) -> Outcome {
    let target = &inner.targets[i];
    let label = target.label.as_str();
    let m = &inner.metrics;
    let started = Instant::now();
    // The client bounds the whole request by `options.timeout`.
    let result = post(client, &target.endpoint, batch_body(batch)).await;
    m.latency
        .with_label_values(&[label])
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(()) => {
            m.sent
                .with_label_values(&[label])
                .inc_by(batch.len() as u64);
            Outcome::Sent
        }
        Err(e) if e.retryable() => {
            m.errors.with_label_values(&[label]).inc();
            tracing::warn!(alertmanager = label, alerts = batch.len(), error = %e,
                "sending alerts to Alertmanager failed; keeping them to try again");
            Outcome::Retry
        }
        Err(e) => {
            m.errors.with_label_values(&[label]).inc();
            m.dropped.inc_by(batch.len() as u64);
            tracing::warn!(alertmanager = label, alerts = batch.len(), error = %e,
                "Alertmanager rejected the alerts; dropping them");
            Outcome::Rejected
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use http_body_util::{BodyExt, Full};
    use hyper::Request;
    use std::net::SocketAddr;

    /// Generous bound for waiting on background work; never a speed claim.
    const PATIENCE: Duration = Duration::from_secs(20);

    fn alert(name: &str, starts_at: f64, ends_at: Option<f64>) -> Alert {
        Alert {
            labels: [
                ("alertname", name),
                ("model", "fraud"),
                ("severity", "warning"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            annotations: BTreeMap::from([("summary".to_owned(), format!("{name} is bad"))]),
            starts_at,
            ends_at,
            generator_url: String::new(),
        }
    }

    fn options(urls: &[String]) -> NotifierOptions {
        NotifierOptions {
            urls: urls.to_vec(),
            timeout: Duration::from_secs(5),
            ..NotifierOptions::default()
        }
    }

    fn notifier(
        opts: NotifierOptions,
        clock: &ManualClock,
    ) -> (NotifierHandle, Notifier, crate::shutdown::Trigger) {
        let (trigger, shutdown) = crate::shutdown::channel();
        let (h, n) =
            Notifier::with_clock(opts, &Registry::new(), shutdown, Arc::new(clock.clone()))
                .unwrap();
        (h, n, trigger)
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_953_600.0), "2026-11-29T12:00:00.000Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_709_164_800.001_4), "2024-02-29T00:00:00.001Z");
        // Rounding to the millisecond carries into the next day.
        assert_eq!(rfc3339(1_709_164_799.999_6), "2024-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_709_164_799.25), "2024-02-28T23:59:59.250Z");
        assert_eq!(rfc3339(4_107_542_400.0), "2100-03-01T00:00:00.000Z");
        // Out of range: clamped, never a panic.
        assert_eq!(rfc3339(f64::NAN), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(-5.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(f64::INFINITY), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(1e300), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn endpoints_from_base_urls() {
        let e = |s: &str| alerts_endpoint(s).map(|u| u.to_string());
        assert_eq!(
            e("http://127.0.0.1:9093").unwrap(),
            "http://127.0.0.1:9093/api/v2/alerts"
        );
        assert_eq!(
            e("http://am:9093/").unwrap(),
            "http://am:9093/api/v2/alerts"
        );
        assert_eq!(
            e("http://am:9093/prefix").unwrap(),
            "http://am:9093/prefix/api/v2/alerts"
        );
        assert_eq!(e("http://am/a/b//").unwrap(), "http://am/a/b/api/v2/alerts");
        for bad in [
            "",
            "am:9093",
            "127.0.0.1:9093",
            "ftp://am",
            "http://am:9093/?x=1",
            "http://user:pw@am:9093",
            "http://am:99999",
            "http://am:",
            "http://[::1]:70000",
            "not a url",
        ] {
            let err = alerts_endpoint(bad).expect_err(bad);
            assert!(
                err.to_string().contains("invalid Alertmanager URL"),
                "{err}"
            );
        }
        // TLS: the scheme is kept.
        assert_eq!(
            e("https://am:9093/prefix").unwrap(),
            "https://am:9093/prefix/api/v2/alerts"
        );
    }

    #[test]
    fn invalid_options_are_errors() {
        let clock = ManualClock::new(0.0);
        let (_t, s) = crate::shutdown::channel();
        let r = Registry::new();
        let mk = |o: NotifierOptions| {
            Notifier::with_clock(o, &r, s.clone(), Arc::new(clock.clone())).map(|_| ())
        };
        let err = mk(options(&["localhost:9093".into()])).unwrap_err();
        assert!(matches!(err, NotifyError::InvalidUrl { .. }), "{err}");
        let dup = ["http://am:9093".to_owned(), "http://am:9093/".to_owned()];
        assert!(matches!(
            mk(options(&dup)),
            Err(NotifyError::InvalidUrl { .. })
        ));
        let o = NotifierOptions {
            max_batch: 0,
            ..options(&[])
        };
        assert!(matches!(mk(o), Err(NotifyError::InvalidOption(_))));
        let o = NotifierOptions {
            queue_capacity: 0,
            ..options(&[])
        };
        assert!(matches!(mk(o), Err(NotifyError::InvalidOption(_))));
        // Registering twice on one registry is reported, not a panic.
        mk(options(&[])).unwrap();
        assert!(matches!(mk(options(&[])), Err(NotifyError::Metrics(_))));
    }

    #[test]
    fn alert_json_follows_api_v2() {
        let mut a = alert("HighLatency", 1_795_953_600.0, None);
        a.generator_url = "http://sidecar:9877/".into();
        let v: serde_json::Value = serde_json::from_str(&a.to_json(1_795_953_840.0)).unwrap();
        assert_eq!(v["labels"]["alertname"], "HighLatency");
        assert_eq!(v["annotations"]["summary"], "HighLatency is bad");
        assert_eq!(v["startsAt"], "2026-11-29T12:00:00.000Z");
        assert_eq!(v["endsAt"], "2026-11-29T12:04:00.000Z");
        assert_eq!(v["generatorURL"], "http://sidecar:9877/");
        let r = alert("HighLatency", 1_795_953_600.0, Some(1_795_953_660.0));
        let v: serde_json::Value = serde_json::from_str(&r.to_json(9e9)).unwrap();
        assert_eq!(v["endsAt"], "2026-11-29T12:01:00.000Z");
        assert!(v.get("generatorURL").is_none());
        let q = |p: &str| Queued {
            key: 0,
            payload: Payload::from(p),
        };
        let body = batch_body(&[q("{}"), q("[1]")]);
        assert_eq!(&body[..], b"[{},[1]]");
        assert_eq!(&batch_body(&[])[..], b"[]");
    }

    #[test]
    fn resend_bookkeeping() {
        let mut r = Resender::default();
        let (resend, forget) = (60.0, 240.0);
        let names = |v: Vec<Alert>| -> Vec<String> {
            v.iter().map(|a| a.labels["alertname"].clone()).collect()
        };
        let a = alert("A", 100.0, None);
        let b = alert("B", 100.0, None);
        // New alerts go out at once.
        assert_eq!(
            names(r.due(vec![a.clone(), b.clone()], 100.0, resend, forget)),
            ["A", "B"]
        );
        // Unchanged: not before the resend delay.
        assert!(
            r.due(vec![a.clone(), b.clone()], 110.0, resend, forget)
                .is_empty()
        );
        // Changed annotations (a `$value`) wait for the resend delay too.
        let mut b2 = b.clone();
        b2.annotations.insert("summary".into(), "worse".into());
        assert!(
            r.due(vec![a.clone(), b2.clone()], 150.0, resend, forget)
                .is_empty()
        );
        assert!(
            r.due(vec![a.clone(), b2.clone()], 159.9, resend, forget)
                .is_empty()
        );
        // Resend delay elapsed: both, B with its new annotations.
        let due = r.due(vec![a.clone(), b2.clone()], 160.0, resend, forget);
        assert_eq!(names(due.clone()), ["A", "B"]);
        assert_eq!(due[1].annotations["summary"], "worse");
        // A resolution goes out at once.
        let a_res = alert("A", 100.0, Some(165.0));
        assert_eq!(
            names(r.due(vec![a_res.clone(), b2.clone()], 170.0, resend, forget)),
            ["A"]
        );
        // Not reported any more (the evaluator reports it once), it is
        // sent again every resend delay...
        assert!(r.due(vec![b2.clone()], 180.0, resend, forget).is_empty());
        assert_eq!(
            names(r.due(vec![b2.clone()], 230.0, resend, forget)),
            ["B", "A"]
        );
        let again = r.due(vec![b2.clone()], 290.0, resend, forget);
        assert_eq!(names(again.clone()), ["B", "A"]);
        assert_eq!(again[1].ends_at, Some(165.0));
        // ...for 15 minutes after it resolved, then forgotten.
        let mut t = 290.0;
        let mut resent = 2;
        while t < 1200.0 {
            t += 10.0;
            resent += r
                .due(vec![b2.clone()], t, resend, forget)
                .iter()
                .filter(|x| x.labels["alertname"] == "A")
                .count();
        }
        // Sent at 170, then again every 60 s from 230 to 1010 (the last
        // before 165 + 900 = 1065).
        assert_eq!(resent, 14, "resends of A");
        assert_eq!(r.len(), 1, "A is forgotten");
        // Firing again later is new; another startsAt is another alert.
        assert_eq!(
            names(r.due(vec![alert("A", 1300.0, None)], 1300.0, resend, forget)),
            ["A"]
        );
        assert_eq!(
            names(r.due(vec![alert("A", 1305.0, None)], 1310.0, resend, forget)),
            ["A"]
        );
        // A firing alert no longer reported is forgotten after the
        // validity period.
        assert!(r.due(vec![], 1400.0, resend, forget).is_empty());
        assert_eq!(r.len(), 2);
        r.due(vec![], 1441.0, resend, forget);
        assert_eq!(r.len(), 1, "B, last seen at 1200, is forgotten");
        r.due(vec![], 10_000.0, resend, forget);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn a_resolution_while_alertmanager_is_down_is_kept_then_replaces_the_firing_alert() {
        let clock = ManualClock::new(1000.0);
        let (h, _n, _t) = notifier(options(&["http://127.0.0.1:1".into()]), &clock);
        h.send(vec![alert("A", 990.0, None), alert("B", 990.0, None)]);
        assert_eq!(h.queued(0), 2);
        // A resolves while both still wait: the resolution takes A's place.
        clock.advance(Duration::from_secs(10));
        h.send(vec![alert("A", 990.0, Some(1010.0))]);
        assert_eq!(h.queued(0), 2);
        let batch = h.inner.take(0);
        let got: Vec<(String, String)> = batch
            .iter()
            .map(|q| {
                let v: serde_json::Value = serde_json::from_str(&q.payload).unwrap();
                (
                    v["labels"]["alertname"].as_str().unwrap().to_owned(),
                    v["endsAt"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("B".to_owned(), rfc3339(1000.0 + 240.0)),
                ("A".to_owned(), rfc3339(1010.0))
            ]
        );
        // Put back after a failed POST, behind nothing newer: both kept.
        h.inner.put_back(0, batch.clone());
        assert_eq!(h.queued(0), 2);
        // A newer state that arrived meanwhile wins over the batch put back.
        let batch = h.inner.take(0);
        clock.advance(Duration::from_secs(30));
        h.send(vec![alert("B", 990.0, Some(1040.0))]);
        h.inner.put_back(0, batch);
        let names: Vec<String> = h
            .inner
            .take(0)
            .iter()
            .map(|q| {
                let v: serde_json::Value = serde_json::from_str(&q.payload).unwrap();
                format!("{}@{}", v["labels"]["alertname"], v["endsAt"])
            })
            .collect();
        assert_eq!(
            names,
            [
                format!("\"A\"@\"{}\"", rfc3339(1010.0)),
                format!("\"B\"@\"{}\"", rfc3339(1040.0))
            ]
        );
        assert_eq!(h.inner.metrics.dropped.get(), 0);
    }

    #[test]
    fn handle_resends_with_injected_time() {
        let clock = ManualClock::new(1000.0);
        let (h, _n, _t) = notifier(options(&["http://127.0.0.1:1".into()]), &clock);
        let ends_at = |h: &NotifierHandle| {
            let batch = h.inner.take(0);
            assert_eq!(batch.len(), 1);
            let v: serde_json::Value = serde_json::from_str(&batch[0].payload).unwrap();
            h.inner.put_back(0, batch);
            v["endsAt"].as_str().unwrap().to_owned()
        };
        h.send(vec![alert("A", 990.0, None)]);
        assert_eq!(h.queued(0), 1);
        assert_eq!(ends_at(&h), rfc3339(1240.0));
        clock.advance(Duration::from_secs(10));
        h.send(vec![alert("A", 990.0, None)]);
        assert_eq!(ends_at(&h), rfc3339(1240.0), "not due yet");
        clock.advance(Duration::from_secs(50));
        h.send(vec![alert("A", 990.0, None)]);
        // endsAt of a firing alert: now + 4 * max(resend, interval) = 1060 + 240.
        assert_eq!(ends_at(&h), rfc3339(1300.0), "resend delay elapsed");
        assert_eq!(h.queued(0), 1, "the resend replaces the one waiting");
        h.send(vec![alert("A", 990.0, Some(1060.0))]);
        assert_eq!(ends_at(&h), rfc3339(1060.0), "resolution at once");
        assert_eq!(h.queued(0), 1);
    }

    #[test]
    fn full_queue_drops_oldest_and_batches() {
        let clock = ManualClock::new(1000.0);
        let urls = [
            "http://127.0.0.1:1".to_owned(),
            "http://127.0.0.1:2/am".to_owned(),
        ];
        let o = NotifierOptions {
            queue_capacity: 4,
            max_batch: 3,
            ..options(&urls)
        };
        let (h, _n, _t) = notifier(o, &clock);
        h.send((0..3).map(|i| alert(&format!("A{i}"), 1.0, None)).collect());
        h.send(
            (3..10)
                .map(|i| alert(&format!("A{i}"), 1.0, None))
                .collect(),
        );
        assert_eq!((h.queued(0), h.queued(1)), (4, 4));
        assert_eq!(h.inner.metrics.dropped.get(), 12, "6 per Alertmanager");
        assert_eq!(h.inner.metrics.queue_length.get(), 8);
        let name = |p: &Queued| {
            let v: serde_json::Value = serde_json::from_str(&p.payload).unwrap();
            v["labels"]["alertname"].as_str().unwrap().to_owned()
        };
        let first: Vec<String> = h.inner.take(0).iter().map(name).collect();
        assert_eq!(first, ["A6", "A7", "A8"]);
        let second: Vec<String> = h.inner.take(0).iter().map(name).collect();
        assert_eq!(second, ["A9"]);
        assert!(h.inner.take(0).is_empty());
        assert_eq!(h.inner.metrics.queue_length.get(), 4);
        // Putting a batch back never exceeds the capacity either.
        let extra = (0..3)
            .map(|k| Queued {
                key: 1000 + k,
                payload: Payload::from("{}"),
            })
            .collect();
        h.inner.put_back(1, extra);
        assert_eq!(h.queued(1), 4);
        assert_eq!(h.inner.metrics.dropped.get(), 15);
    }

    /// A fake Alertmanager that answers 503 to the first `fail_first`
    /// requests and 200 afterwards, recording the alerts it accepted.
    async fn fake_am(fail_first: usize) -> (SocketAddr, Arc<Mutex<Vec<serde_json::Value>>>) {
        use hyper::server::conn::http1;
        use hyper::service::service_fn;
        use hyper_util::rt::TokioIo;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let seen = Arc::new(AtomicUsize::new(0));
        let g = got.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (g, seen) = (g.clone(), seen.clone());
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (g, seen) = (g.clone(), seen.clone());
                    async move {
                        assert_eq!(req.uri().path(), "/prefix/api/v2/alerts");
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let mut r = hyper::Response::new(Full::new(Bytes::new()));
                        if seen.fetch_add(1, Ordering::SeqCst) < fail_first {
                            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                        } else {
                            let v: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
                            lock(&g).extend(v);
                        }
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
            }
        });
        (addr, got)
    }

    async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !cond() {
            assert!(Instant::now() < deadline, "gave up waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn retries_until_delivered() {
        let (addr, got) = fake_am(2).await;
        let url = format!("http://{addr}/prefix/");
        let clock = ManualClock::new(1000.0);
        let (h, n, trigger) = notifier(options(std::slice::from_ref(&url)), &clock);
        let task = tokio::spawn(n.run());
        h.send(vec![alert("A", 990.0, None), alert("B", 990.0, None)]);
        let m = h.inner.metrics.clone();
        let label = url.trim_end_matches('/');
        eventually("delivery", || m.sent.with_label_values(&[label]).get() == 2).await;
        assert_eq!(m.errors.with_label_values(&[label]).get(), 2);
        assert_eq!(m.dropped.get(), 0);
        assert_eq!(m.latency.with_label_values(&[label]).get_sample_count(), 3);
        let names: Vec<_> = lock(&got)
            .iter()
            .map(|v| v["labels"]["alertname"].clone())
            .collect();
        assert_eq!(names, ["A", "B"]);
        trigger.trigger();
        tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_closed_port_costs_errors_not_memory() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let (addr, got) = fake_am(0).await;
        let (dead, good) = (format!("http://{closed}"), format!("http://{addr}/prefix"));
        let clock = ManualClock::new(1000.0);
        let o = NotifierOptions {
            queue_capacity: 5,
            max_batch: 2,
            backoff_max: Duration::from_millis(200),
            ..options(&[dead.clone(), good.clone()])
        };
        let (h, n, trigger) = notifier(o, &clock);
        let task = tokio::spawn(n.run());
        for i in 0..50 {
            h.send(vec![alert(&format!("A{i}"), 1.0, None)]);
            assert!(h.queued(0) <= 5 && h.queued(1) <= 5);
        }
        let m = h.inner.metrics.clone();
        // Every alert is delivered to the good Alertmanager or dropped from
        // its full queue; the dead one keeps the newest (its queue, and at
        // most one batch in flight) and drops the older ones, counted.
        eventually("the good Alertmanager's queue to drain", || {
            let accounted =
                m.dropped.get() + m.sent.with_label_values(&[&good]).get() + h.queued(0) as u64;
            h.queued(1) == 0
                && m.errors.with_label_values(&[&dead]).get() >= 3
                && (98..=100).contains(&accounted)
        })
        .await;
        assert!(h.queued(0) <= 5);
        assert_eq!(m.sent.with_label_values(&[&dead]).get(), 0);
        assert_eq!(
            lock(&got).len() as u64,
            m.sent.with_label_values(&[&good]).get()
        );
        trigger.trigger();
        tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    }

    /// Alertmanager down for a while: the alerts wait, retried with
    /// backoff, and arrive once it answers again.
    #[tokio::test]
    async fn alerts_wait_while_alertmanager_is_down() {
        let (addr, got) = fake_am(12).await;
        let url = format!("http://{addr}/prefix");
        let clock = ManualClock::new(1000.0);
        let o = NotifierOptions {
            backoff_max: Duration::from_millis(50),
            ..options(std::slice::from_ref(&url))
        };
        let (h, n, trigger) = notifier(o, &clock);
        let task = tokio::spawn(n.run());
        h.send(vec![alert("A", 990.0, None)]);
        let m = h.inner.metrics.clone();
        eventually("a few failed attempts", || {
            m.errors.with_label_values(&[&url]).get() >= 4
        })
        .await;
        // Resolved while Alertmanager is still down.
        clock.advance(Duration::from_secs(10));
        h.send(vec![alert("A", 990.0, Some(1010.0))]);
        eventually("delivery", || !lock(&got).is_empty()).await;
        assert_eq!(m.errors.with_label_values(&[&url]).get(), 12);
        assert_eq!(m.dropped.get(), 0);
        let got = lock(&got).clone();
        assert_eq!(got.len(), 1, "only the latest state: {got:?}");
        assert_eq!(got[0]["endsAt"], rfc3339(1010.0));
        trigger.trigger();
        tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn shutdown_flushes_the_queue() {
        let (addr, got) = fake_am(0).await;
        let url = format!("http://{addr}/prefix");
        let clock = ManualClock::new(1000.0);
        let (h, n, trigger) = notifier(options(&[url]), &clock);
        h.send(
            (0..100)
                .map(|i| alert(&format!("A{i}"), 1.0, None))
                .collect(),
        );
        // Shut down before the notifier ever ran: it still flushes.
        trigger.trigger();
        tokio::time::timeout(PATIENCE, n.run()).await.unwrap();
        assert_eq!(lock(&got).len(), 100);
        assert_eq!(h.queued(0), 0);
        assert_eq!(h.inner.metrics.queue_length.get(), 0);
    }
}
