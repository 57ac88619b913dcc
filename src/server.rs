//! Wiring: binds every listener, starts the aggregator, the ingest tasks and
//! the HTTP server, and tears them down in order on shutdown.
//!
//! [`start`] binds and spawns everything and returns a [`Running`] exporter
//! with its bound addresses (port 0 resolved), so that a test can run the
//! exporter inside the test's process with an injected clock
//! ([`start_with_clock`]); [`Running::stop`] shuts it down and waits. [`run`]
//! is what the binary calls: start, wait for the shutdown signal, stop.
//!
//! Shutdown order: stop accepting events, drain what clients already sent,
//! let the aggregator apply every queued batch, remove socket files, then stop
//! the HTTP server, so that a final scrape can still see every event.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::aggregate::{self, Aggregator, Control, ControlSender, ShardSlot};
use crate::cli::RunArgs;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{self, Config, ConfigErrors};
use crate::export::api::ApiView;
use crate::export::conns::{WebConnMetrics, WebLimits};
use crate::export::http::{self, HttpState};
use crate::export::metrics::{Metrics, MetricsError};
use crate::http_client::{ConfigFileError, HttpClientConfig};
use crate::ingest::prediction_log::{PredictionLog, PredictionLogOptions};
use crate::ingest::rejects::Rejects;
use crate::ingest::{BatchSink, BindError, IngestContext, IngestOptions, ListenAddr, Listener};
use crate::rules::export::buckets::{
    latency_layout, latency_thresholds, off_bucket, unreachable_thresholds,
};
use crate::rules::notify::{Notifier, NotifierOptions, NotifyError};
use crate::shutdown::{self, Shutdown, Trigger};

/// How long draining may take before the process exits anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// rules.yaml did not load.
    #[error("rules.yaml has errors:\n{0}")]
    Config(ConfigErrors),
    /// An event listener could not be bound.
    #[error("{0}")]
    Bind(BindError),
    /// `--web.config.file` did not load.
    #[error(transparent)]
    WebConfig(#[from] crate::webconfig::WebConfigError),
    /// A `--web.listen-address` is not an address.
    #[error(transparent)]
    ListenAddress(#[from] http::ListenAddressError),
    /// The HTTP server could not be bound.
    #[error("cannot listen on {address}: {source}")]
    WebBind {
        /// The address as given.
        address: String,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// A self-metric could not be registered.
    #[error("cannot register self-metrics: {0}")]
    Metrics(#[source] prometheus::Error),
    /// Invalid histogram buckets.
    #[error("invalid histogram buckets: {0}")]
    Buckets(#[source] crate::export::metrics::MetricsError),
    /// Invalid Alertmanager settings.
    #[error("invalid Alertmanager settings: {0}")]
    Alertmanager(#[source] NotifyError),
    /// `--alertmanager.http-config.file` did not load.
    #[error("invalid Alertmanager settings: {0}")]
    AlertmanagerHttpConfig(#[source] ConfigFileError),
    /// The prediction log could not be started.
    #[error("cannot start the prediction log: {0}")]
    PredictionLog(#[source] crate::ingest::prediction_log::PredictionLogError),
    /// `--storage.path` is not usable.
    #[error(transparent)]
    Storage(crate::storage::StorageError),
    /// `--storage.path` was given with several aggregator shards.
    #[error("--storage.path works with one aggregator shard only (--aggregate.shards is {0})")]
    StorageWithShards(usize),
}

/// Raises the soft limit on open files to the hard one and, if the caps on
/// connections of the web server and of the stream and `http://` event
/// listeners together exceed it (less a reserve), lowers them in
/// proportion, so that idle connections can never take the descriptors
/// that `/metrics` and new event connections need.
fn fit_fd_limit(args: &RunArgs, options: &mut IngestOptions, web: &mut WebLimits) {
    let Some(limit) = crate::ingest::accept::raise_fd_limit() else {
        return;
    };
    let servers = args.web.listen_address.len();
    let event_servers = args
        .events
        .listeners()
        .iter()
        .filter(|l| {
            matches!(
                l,
                ListenAddr::Unix(_) | ListenAddr::Tcp(_) | ListenAddr::Http(_)
            )
        })
        .count();
    let mut caps = vec![web.max_connections; servers];
    caps.extend(std::iter::repeat_n(options.max_connections, event_servers));
    let fitted = crate::ingest::accept::fd_budget(limit, &caps);
    if fitted == caps {
        return;
    }
    web.max_connections = fitted.first().copied().unwrap_or(web.max_connections);
    options.max_connections = fitted
        .get(servers)
        .copied()
        .unwrap_or(options.max_connections);
    tracing::warn!(
        fd_limit = limit,
        web_max_connections = web.max_connections,
        events_max_connections = options.max_connections,
        "the connection caps exceed the open-file limit; lowered to fit (raise `ulimit -n` to keep them)"
    );
}

/// Loads `--config.file`, or the built-in rules when none is given.
///
/// Its warnings (see [`Config::warnings`]) are logged, once per load.
pub fn load_config(args: &RunArgs) -> Result<Config, ConfigErrors> {
    let config = match &args.rules.config_file {
        Some(path) => config::load_file(path),
        None => config::load(crate::DEFAULT_RULES_NAME, crate::DEFAULT_RULES_YAML),
    }?;
    for w in &config.warnings {
        tracing::warn!(warning = %w, "rules file warning");
    }
    Ok(config)
}

/// A started exporter: its bound addresses, and what stops it.
///
/// Dropping it shuts the exporter down too, in the background.
#[derive(Debug)]
pub struct Running {
    web: Vec<SocketAddr>,
    events: Vec<ListenAddr>,
    stop: Trigger,
    stopped: JoinHandle<()>,
}

impl Running {
    /// The HTTP server's addresses, with the real port where port 0 was
    /// asked for.
    pub fn web_addrs(&self) -> &[SocketAddr] {
        &self.web
    }

    /// The event listeners' addresses, with the real port where port 0 was
    /// asked for.
    pub fn event_addrs(&self) -> &[ListenAddr] {
        &self.events
    }

    /// Starts the shutdown (in the order of the module documentation)
    /// without waiting for it.
    pub fn shutdown(&self) {
        self.stop.trigger();
    }

    /// Waits until the exporter has stopped: after [`Running::shutdown`]
    /// (without it, this waits for ever; [`Running::stop`] does both).
    pub async fn wait(self) {
        let Running { stop, stopped, .. } = self;
        if let Err(e) = stopped.await {
            tracing::error!(error = %e, "the shutdown did not complete");
        }
        drop(stop);
    }

    /// Shuts down and waits until every event received was applied and
    /// every server stopped.
    pub async fn stop(self) {
        self.shutdown();
        self.wait().await;
    }
}

/// Runs the exporter until `shutdown` fires, then drains and returns.
pub async fn run(args: RunArgs, mut shutdown: Shutdown) -> Result<(), RunError> {
    let running = start(args).await?;
    shutdown.wait().await;
    running.stop().await;
    Ok(())
}

/// Binds every listener and starts the exporter on the system clock.
pub async fn start(args: RunArgs) -> Result<Running, RunError> {
    start_with_clock(args, Arc::new(SystemClock)).await
}

/// [`start`] with an injected clock.
pub async fn start_with_clock(args: RunArgs, clock: SharedClock) -> Result<Running, RunError> {
    let (stop, shutdown) = shutdown::channel();
    // The file as first loaded: the watcher compares with it, so a change
    // written while the exporter starts is not missed.
    let first_text = args
        .rules
        .config_file
        .as_ref()
        .and_then(|p| std::fs::read(p).ok());
    let config = load_config(&args).map_err(RunError::Config)?;
    let web_config = match &args.web.config_file {
        Some(p) => crate::webconfig::WebConfig::load(p).map_err(RunError::WebConfig)?,
        None => crate::webconfig::WebConfig::open(),
    };
    let mut buckets = args.metrics.buckets();
    crate::export::metrics::validate_buckets(&buckets.latency).map_err(|error| {
        RunError::Buckets(MetricsError::Buckets {
            name: "latency",
            error,
        })
    })?;
    // Every latency threshold of the rules is a bound, so that Prometheus'
    // histogram_quantile decides exactly at it (docs/rules.md).
    buckets.latency = latency_layout(&buckets.latency, &config.groups);
    for u in unreachable_thresholds(&buckets.latency, &config.groups) {
        tracing::warn!(line = u.at.0, column = u.at.1, "{u}");
    }
    let metrics = Metrics::new(&buckets).map_err(RunError::Buckets)?;
    metrics
        .rule_thresholds_not_bucket_bounds
        .set(off_bucket(&buckets.latency, &config.groups) as i64);
    web_config.count_into(&metrics.ingest.auth, "web");
    metrics.config_last_reload_successful.set(1);
    metrics.config_reloads.with_label_values(&["success"]).inc();
    metrics.config_last_reload_success.set(clock.now());
    let source = config_source(&args);
    tracing::info!(%source, groups = config.groups.len(), "loaded rules");
    rule_series_at_zero(&metrics, &config);

    let mut options = args.events.ingest_options();
    let mut web_limits = args.web.limits();
    fit_fd_limit(&args, &mut options, &mut web_limits);
    let listeners = bind_events(&args.events.listeners(), &options).await?;
    let web = bind_web(&args.web.listen_address).await?;

    let (control, control_rx) = mpsc::unbounded_channel();
    let shards = args.aggregation.shards.resolve();
    let limits = match shards {
        1 => args.limits(),
        _ => aggregate::shards::shard_limits(args.limits()),
    };
    let config = Arc::new(config);
    // The http:// listeners' view of the rules, replaced on every reload.
    let models = crate::ingest::cloudevents::ModelMap::new(config.inference_loggers());
    let mut shard_options: Vec<aggregate::Options> = ShardSlot::all(shards)
        .into_iter()
        .map(|shard| aggregate::Options {
            source: source.clone(),
            limits,
            history_resolution: args.aggregation.history_resolution,
            history_retention: args.aggregation.history_retention,
            ttl: args.metrics.ttl,
            reemit_logs: args.log.model_events,
            shard,
            feedback_ttl: args.aggregation.feedback_ttl,
            feedback_capacity: aggregate::shards::share(args.aggregation.feedback_capacity, shards),
            ..aggregate::Options::new(metrics.clone(), clock.clone(), config.clone())
        })
        .collect();
    let notifier = start_notifier(&args, &metrics, &shutdown, &clock, &mut shard_options)?;
    if let Some(dir) = &args.storage.path {
        if shards > 1 {
            // One snapshot holds one aggregator's state; which shard a model
            // lands on depends on the shard count, so a snapshot per shard
            // would not survive a change of it.
            return Err(RunError::StorageWithShards(shards));
        }
        let storage = aggregate::snapshot::Storage::open(
            dir,
            args.storage.snapshot_interval,
            &metrics.registry,
        )
        .map_err(RunError::Storage)?;
        tracing::info!(path = %storage.path().display(), interval = ?args.storage.snapshot_interval, "saving the state");
        shard_options[0].storage = Some(storage);
    }
    let mut aggs: Vec<Aggregator> = shard_options.into_iter().map(Aggregator::new).collect();
    let api = ApiView::new(aggs.iter().map(Aggregator::api).collect());
    let queue = args.events.queue_batches;
    let (tx, aggregators): (BatchSink, Vec<_>) = if shards == 1 {
        let (tx, rx) = mpsc::channel(queue);
        let agg = aggs.pop().expect("one aggregator");
        (tx.into(), vec![aggregate::spawn(agg, rx, control_rx)])
    } else {
        tracing::info!(shards, "aggregating in shards");
        aggregate::shards::spawn_all(aggs, queue, control_rx, args.limits(), &metrics)
    };

    let (prediction_log, prediction_log_writer) = start_prediction_log(&args, &metrics)?;
    let (ingest_stop, ingest_shutdown) = shutdown::channel();
    let ctx = IngestContext {
        tx,
        rejects: Arc::new(Rejects::new(&metrics.ingest)),
        metrics: metrics.ingest.clone(),
        options,
        shutdown: ingest_shutdown,
        prediction_log,
        cloudevents: crate::ingest::cloudevents::Shared::new(models.clone()),
        clock: clock.clone(),
    };
    let events = listeners.iter().map(Listener::local_addr).collect();
    let mut ingest = JoinSet::new();
    for l in listeners {
        ingest.spawn(l.serve(ctx.clone()));
    }
    drop(ctx);

    // `/api/v1/summary` asks every aggregator for its current state.
    let (refresh, requests) = crate::export::api::Refresh::new(shards);
    {
        let control = control.clone();
        tokio::spawn(requests.serve(move |ack| control.send(Control::Refresh(ack)).is_ok()));
    }
    let (reload_tx, reload_rx) = mpsc::channel(4);
    let reloader = Reloader {
        args: args.clone(),
        control,
        models,
        metrics: metrics.clone(),
        clock,
        last_text: first_text,
        latency_bounds: buckets.latency.clone(),
    };
    let reloads = tokio::spawn(reloader.run(reload_rx, shutdown.clone()));
    let state = Arc::new(HttpState {
        api,
        refresh: Some(refresh),
        reload: args.web.enable_lifecycle.then_some(reload_tx),
        metrics: metrics.clone(),
        telemetry_path: args.web.telemetry_path.clone(),
        ready: true.into(),
        web: web_config,
        limits: web_limits,
        conns: WebConnMetrics::new(&metrics.registry).map_err(RunError::Metrics)?,
    });
    let (http_stop, http_shutdown) = shutdown::channel();
    let mut servers = JoinSet::new();
    let mut web_addrs = Vec::new();
    for l in web {
        if let Ok(a) = l.local_addr() {
            web_addrs.push(a);
        }
        servers.spawn(http::serve(l, state.clone(), http_shutdown.clone()));
    }
    tracing::info!(version = crate::VERSION, "model-exporter started");

    let tasks = Tasks {
        state,
        ingest_stop,
        ingest,
        aggregators,
        prediction_log_writer,
        reloads,
        notifier,
        http_stop,
        servers,
        metrics,
    };
    let stopped = tokio::spawn(async move {
        let mut shutdown = shutdown;
        shutdown.wait().await;
        tasks.shut_down().await;
    });
    Ok(Running {
        web: web_addrs,
        events,
        stop,
        stopped,
    })
}

/// Binds the event listeners.
async fn bind_events(
    addrs: &[ListenAddr],
    options: &IngestOptions,
) -> Result<Vec<Listener>, RunError> {
    let mut listeners = Vec::new();
    for addr in addrs {
        let l = Listener::bind(addr, options)
            .await
            .map_err(RunError::Bind)?;
        tracing::info!(address = %l.local_addr(), "listening for events");
        listeners.push(l);
    }
    Ok(listeners)
}

/// Binds the HTTP server's sockets.
async fn bind_web(addrs: &[String]) -> Result<Vec<TcpListener>, RunError> {
    let mut web = Vec::new();
    for a in addrs {
        let addr = http::parse_listen_address(a)?;
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::WebBind {
                address: a.clone(),
                source,
            })?;
        let bound = l.local_addr().map_or_else(|_| a.clone(), |a| a.to_string());
        tracing::info!(address = %bound, "serving HTTP");
        web.push(l);
    }
    Ok(web)
}

/// Makes the per-group rule counters exist at 0 for every group of
/// `config` (and for `*`, the rounds that failed as a whole), so that
/// `increase()` and the dashboard see the first failure.
fn rule_series_at_zero(metrics: &Metrics, config: &Config) {
    for group in config.groups.iter().map(|g| g.name.as_str()).chain(["*"]) {
        metrics.rule_evaluation_failures.with_label_values(&[group]);
        if group != "*" {
            metrics.rule_evaluations.with_label_values(&[group]);
        }
    }
}

/// Starts pushing alerts to `--alertmanager.url`, if given, and hands the
/// aggregators the notifier.
fn start_notifier(
    args: &RunArgs,
    metrics: &Metrics,
    shutdown: &Shutdown,
    clock: &SharedClock,
    shard_options: &mut [aggregate::Options],
) -> Result<Option<JoinHandle<()>>, RunError> {
    let rules = &args.rules;
    if rules.alertmanager_urls.is_empty() {
        return Ok(None);
    }
    let http_config = match &rules.alertmanager_http_config_file {
        Some(path) => HttpClientConfig::load(path).map_err(RunError::AlertmanagerHttpConfig)?,
        None => HttpClientConfig::default(),
    };
    let options = NotifierOptions {
        urls: rules.alertmanager_urls.clone(),
        http_config,
        timeout: rules.alertmanager_timeout,
        queue_capacity: rules.alertmanager_queue_capacity,
        resend_delay: rules.alertmanager_resend_delay,
        evaluation_interval: shard_options[0].tick(),
        ..NotifierOptions::default()
    };
    // On the exporter's clock, like the alerts' times it sends.
    let (handle, task) =
        Notifier::with_clock(options, &metrics.registry, shutdown.clone(), clock.clone())
            .map_err(RunError::Alertmanager)?;
    let url = args
        .web
        .external_url
        .as_deref()
        .map(|u| format!("{}/api/v1/rules", u.trim_end_matches('/')))
        .unwrap_or_default();
    for o in shard_options {
        o.notifier = Some((handle.clone(), url.clone()));
    }
    for u in &rules.alertmanager_urls {
        tracing::info!(url = %u, "sending alerts to Alertmanager");
    }
    Ok(Some(tokio::spawn(task.run())))
}

/// The prediction log's handle and its writer thread, when
/// `--prediction-log.path` is given.
fn start_prediction_log(
    args: &RunArgs,
    metrics: &Metrics,
) -> Result<(Option<PredictionLog>, Option<std::thread::JoinHandle<()>>), RunError> {
    let a = &args.prediction_log;
    let Some(path) = &a.path else {
        return Ok((None, None));
    };
    let options = PredictionLogOptions {
        path: path.clone(),
        sample_ratio: a.sample_ratio,
        max_bytes: a.max_bytes,
        max_files: a.max_files,
        ..PredictionLogOptions::default()
    };
    let (log, writer) =
        PredictionLog::start(options, &metrics.registry).map_err(RunError::PredictionLog)?;
    tracing::info!(path = %path.display(), ratio = a.sample_ratio, "writing the prediction log");
    Ok((Some(log), Some(writer)))
}

/// What a running exporter is made of, torn down in order by
/// [`Tasks::shut_down`].
struct Tasks {
    state: Arc<HttpState>,
    ingest_stop: Trigger,
    ingest: JoinSet<()>,
    aggregators: Vec<std::thread::JoinHandle<Aggregator>>,
    prediction_log_writer: Option<std::thread::JoinHandle<()>>,
    reloads: JoinHandle<()>,
    notifier: Option<JoinHandle<()>>,
    http_stop: Trigger,
    servers: JoinSet<()>,
    metrics: Metrics,
}

impl Tasks {
    /// Stops accepting, drains, lets the aggregators apply what is queued,
    /// flushes alerts, and stops the HTTP server last.
    async fn shut_down(self) {
        let Tasks {
            state,
            ingest_stop,
            mut ingest,
            aggregators,
            prediction_log_writer,
            reloads,
            notifier,
            http_stop,
            mut servers,
            metrics,
        } = self;
        tracing::info!("shutting down: draining events");
        state.ready.store(false, Ordering::Relaxed);
        ingest_stop.trigger();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while ingest.join_next().await.is_some() {}
            // Every sender is gone once the listeners are: the aggregator (each
            // shard) applies what is queued and stops.
            let _ = tokio::task::spawn_blocking(move || {
                for a in aggregators {
                    let _ = a.join();
                }
            })
            .await;
            // The listeners held the last handles: the writer flushes and stops.
            if let Some(w) = prediction_log_writer {
                let _ = tokio::task::spawn_blocking(move || w.join()).await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("draining took longer than {DRAIN_TIMEOUT:?}; exiting anyway");
            ingest.abort_all();
        }
        reloads.abort();
        if let Some(n) = notifier {
            // It flushes what is queued, within its own deadline.
            let _ = n.await;
        }
        http_stop.trigger();
        while servers.join_next().await.is_some() {}
        let events_received: u64 = crate::ingest::event::EventKind::ALL
            .iter()
            .map(|k| {
                metrics
                    .events_received
                    .with_label_values(&[k.as_str()])
                    .get()
            })
            .sum();
        tracing::info!(events_received, "stopped");
    }
}

fn config_source(args: &RunArgs) -> String {
    args.rules.config_file.as_ref().map_or_else(
        || crate::DEFAULT_RULES_NAME.to_owned(),
        |p| p.display().to_string(),
    )
}

/// Reloads rules.yaml on SIGHUP, on `POST /-/reload`, and when the file's
/// content changes. A file that fails to load leaves the running rules in
/// force.
struct Reloader {
    args: RunArgs,
    control: ControlSender,
    /// The http:// listeners' view of the rules.
    models: crate::ingest::cloudevents::ModelMap,
    metrics: Metrics,
    clock: SharedClock,
    /// The file's content at the last load attempt, to notice changes.
    last_text: Option<Vec<u8>>,
    /// The latency histogram's bucket bounds, set at start.
    latency_bounds: Vec<f64>,
}

impl Reloader {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<http::ReloadRequest>,
        mut shutdown: Shutdown,
    ) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload by HTTP or file change only");
                None
            }
        };
        let watch = self.args.rules.config_watch_interval;
        let watching = self.args.rules.config_file.is_some() && !watch.is_zero();
        let mut poll = tokio::time::interval(if watching {
            watch
        } else {
            Duration::from_secs(3600)
        });
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    let _ = self.reload("SIGHUP");
                }
                Some(done) = requests.recv() => {
                    let _ = done.send(self.reload("HTTP"));
                }
                _ = poll.tick(), if watching => {
                    let text = self.read_file();
                    if text.is_some() && text != self.last_text {
                        let _ = self.reload("file change");
                    }
                }
            }
        }
    }

    /// The latency buckets are fixed when the exporter starts: changing a
    /// histogram's bounds would reset its series. A threshold a reload adds
    /// is counted and logged; a restart makes it a bound.
    fn check_latency_bounds(&self, config: &Config) {
        let off = off_bucket(&self.latency_bounds, &config.groups);
        self.metrics
            .rule_thresholds_not_bucket_bounds
            .set(off as i64);
        for (rule, t) in latency_thresholds(&config.groups) {
            if !self.latency_bounds.contains(&t) {
                tracing::warn!(
                    alert = %rule.alert,
                    threshold = t,
                    "the latency threshold is not a bucket bound of model_request_duration_seconds: the buckets are set when the exporter starts, so Prometheus interpolates between buckets until a restart"
                );
            }
        }
        for u in unreachable_thresholds(&self.latency_bounds, &config.groups) {
            tracing::warn!(line = u.at.0, column = u.at.1, "{u}");
        }
    }

    fn read_file(&self) -> Option<Vec<u8>> {
        std::fs::read(self.args.rules.config_file.as_ref()?).ok()
    }

    fn reload(&mut self, trigger: &str) -> Result<(), ConfigErrors> {
        self.last_text = self.read_file();
        match load_config(&self.args) {
            Ok(config) => {
                let source = config_source(&self.args);
                tracing::info!(trigger, %source, groups = config.groups.len(), "reloaded rules");
                self.check_latency_bounds(&config);
                let config = Arc::new(config);
                self.models.set(config.inference_loggers());
                rule_series_at_zero(&self.metrics, &config);
                let _ = self.control.send(Control::Reload(config, source));
                self.metrics.config_last_reload_successful.set(1);
                self.metrics
                    .config_reloads
                    .with_label_values(&["success"])
                    .inc();
                self.metrics
                    .config_last_reload_success
                    .set(self.clock.now());
                Ok(())
            }
            Err(errors) => {
                tracing::error!(
                    trigger,
                    "reloading rules failed; keeping the running rules:\n{errors}"
                );
                self.metrics.config_last_reload_successful.set(0);
                self.metrics
                    .config_reloads
                    .with_label_values(&["failure"])
                    .inc();
                Err(errors)
            }
        }
    }
}
