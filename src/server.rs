//! Wiring: binds every listener, starts the aggregator, the ingest tasks and
//! the HTTP server, and tears them down in order on shutdown.
//!
//! Shutdown order: stop accepting events, drain what clients already sent,
//! let the aggregator apply every queued batch, remove socket files, then stop
//! the HTTP server, so that a final scrape can still see every event.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::aggregate::{self, Aggregator, ApiView, BatchSink, Control, ControlSender, ShardSlot};
use crate::cli::RunArgs;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{self, Config, ConfigErrors};
use crate::export::http::{self, HttpState};
use crate::export::metrics::Metrics;
use crate::export::prediction_log::{PredictionLog, PredictionLogOptions};
use crate::ingest::rejects::Rejects;
use crate::ingest::{BindError, IngestContext, Listener};
use crate::rules::notify::{Notifier, NotifierOptions};
use crate::shutdown::{self, Shutdown};

/// How long draining may take before the process exits anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the exporter could not start.
#[derive(Debug)]
pub enum RunError {
    /// rules.yaml did not load.
    Config(ConfigErrors),
    /// An event listener could not be bound.
    Bind(BindError),
    /// The HTTP server could not be bound.
    Web(String),
    /// Invalid histogram buckets.
    Buckets(String),
    /// Invalid Alertmanager settings.
    Alertmanager(String),
    /// The prediction log could not be started.
    PredictionLog(String),
    /// `--storage.path` is not usable.
    Storage(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Config(e) => write!(f, "rules.yaml has errors:\n{e}"),
            RunError::Bind(e) => e.fmt(f),
            RunError::Web(e) => f.write_str(e),
            RunError::Buckets(e) => write!(f, "invalid histogram buckets: {e}"),
            RunError::Alertmanager(e) => write!(f, "invalid Alertmanager settings: {e}"),
            RunError::PredictionLog(e) => write!(f, "cannot start the prediction log: {e}"),
            RunError::Storage(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for RunError {}

/// Loads `--config.file`, or the built-in rules when none is given.
pub fn load_config(args: &RunArgs) -> Result<Config, ConfigErrors> {
    match &args.config_file {
        Some(path) => config::load_file(path),
        None => config::load(crate::DEFAULT_RULES_NAME, crate::DEFAULT_RULES_YAML),
    }
}

/// Runs the exporter until `shutdown` fires, then drains and returns.
pub async fn run(args: RunArgs, shutdown: Shutdown) -> Result<(), RunError> {
    run_with_clock(args, shutdown, Arc::new(SystemClock)).await
}

/// [`run`] with an injected clock.
pub async fn run_with_clock(
    args: RunArgs,
    mut shutdown: Shutdown,
    clock: SharedClock,
) -> Result<(), RunError> {
    // The file as first loaded: the watcher compares with it, so a change
    // written while the exporter starts is not missed.
    let first_text = args
        .config_file
        .as_ref()
        .and_then(|p| std::fs::read(p).ok());
    let config = load_config(&args).map_err(RunError::Config)?;
    let web_config = match &args.web_config_file {
        Some(p) => crate::export::webconfig::WebConfig::load(p).map_err(RunError::Web)?,
        None => crate::export::webconfig::WebConfig::open(),
    };
    let metrics = Metrics::new(&args.buckets()).map_err(|e| RunError::Buckets(e.to_string()))?;
    metrics.config_last_reload_successful.set(1);
    metrics.config_reloads.with_label_values(&["success"]).inc();
    metrics.config_last_reload_success.set(clock.now());
    let source = config_source(&args);
    tracing::info!(%source, groups = config.groups.len(), "loaded rules");

    let options = args.ingest_options();
    let mut listeners = Vec::new();
    for addr in args.listeners() {
        let l = Listener::bind(&addr, &options)
            .await
            .map_err(RunError::Bind)?;
        tracing::info!(address = %l.local_addr(), "listening for events");
        listeners.push(l);
    }
    let mut web = Vec::new();
    for a in &args.web_listen {
        let addr = http::parse_listen_address(a).map_err(RunError::Web)?;
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| RunError::Web(format!("cannot listen on {a}: {e}")))?;
        let bound = l.local_addr().map_or_else(|_| a.clone(), |a| a.to_string());
        tracing::info!(address = %bound, "serving HTTP");
        web.push(l);
    }

    let (control, control_rx) = mpsc::unbounded_channel();
    let shards = args.aggregate_shards.resolve();
    let limits = match shards {
        1 => args.limits(),
        _ => aggregate::shards::shard_limits(args.limits()),
    };
    let config = Arc::new(config);
    let mut shard_options: Vec<aggregate::Options> = ShardSlot::all(shards)
        .into_iter()
        .map(|shard| aggregate::Options {
            source: source.clone(),
            limits,
            history_resolution: args.history_resolution,
            history_retention: args.history_retention,
            ttl: args.metrics_ttl,
            reemit_logs: args.log_model_events,
            shard,
            feedback_ttl: args.feedback_ttl,
            feedback_capacity: aggregate::shards::share(args.feedback_capacity, shards),
            ..aggregate::Options::new(metrics.clone(), clock.clone(), config.clone())
        })
        .collect();
    let notifier = if args.alertmanager_urls.is_empty() {
        None
    } else {
        let options = NotifierOptions {
            urls: args.alertmanager_urls.clone(),
            timeout: args.alertmanager_timeout,
            queue_capacity: args.alertmanager_queue_capacity as usize,
            resend_delay: args.alertmanager_resend_delay,
            evaluation_interval: shard_options[0].tick(),
            ..NotifierOptions::default()
        };
        let (handle, task) = Notifier::new(options, &metrics.registry, shutdown.clone())
            .map_err(|e| RunError::Alertmanager(e.to_string()))?;
        let url = args
            .external_url
            .as_deref()
            .map(|u| format!("{}/api/v1/rules", u.trim_end_matches('/')))
            .unwrap_or_default();
        for o in &mut shard_options {
            o.notifier = Some((handle.clone(), url.clone()));
        }
        for u in &args.alertmanager_urls {
            tracing::info!(url = %u, "sending alerts to Alertmanager");
        }
        Some(tokio::spawn(task.run()))
    };
    if let Some(dir) = &args.storage_path {
        if shards > 1 {
            // One snapshot holds one aggregator's state; which shard a model
            // lands on depends on the shard count, so a snapshot per shard
            // would not survive a change of it.
            return Err(RunError::Storage(format!(
                "--storage.path works with one aggregator shard only (--aggregate.shards is {shards})"
            )));
        }
        let storage =
            crate::storage::Storage::open(dir, args.storage_snapshot_interval, &metrics.registry)
                .map_err(|e| RunError::Storage(e.to_string()))?;
        tracing::info!(path = %storage.path().display(), interval = ?args.storage_snapshot_interval, "saving the state");
        shard_options[0].storage = Some(storage);
    }
    let mut aggs: Vec<Aggregator> = shard_options.into_iter().map(Aggregator::new).collect();
    let api = ApiView::new(aggs.iter().map(Aggregator::api).collect());
    let queue = args.queue_batches as usize;
    let (tx, aggregators): (BatchSink, Vec<_>) = if shards == 1 {
        let (tx, rx) = mpsc::channel(queue);
        let agg = aggs.pop().expect("one aggregator");
        (tx.into(), vec![aggregate::spawn(agg, rx, control_rx)])
    } else {
        tracing::info!(shards, "aggregating in shards");
        aggregate::shards::spawn_all(aggs, queue, control_rx, args.limits(), &metrics)
    };

    let (prediction_log, prediction_log_writer) = match &args.prediction_log_path {
        Some(path) => {
            let options = PredictionLogOptions {
                path: path.clone(),
                sample_ratio: args.prediction_log_sample_ratio,
                max_bytes: args.prediction_log_max_bytes,
                max_files: args.prediction_log_max_files,
                ..PredictionLogOptions::default()
            };
            let (log, writer) = PredictionLog::start(options, &metrics.registry)
                .map_err(|e| RunError::PredictionLog(e.to_string()))?;
            tracing::info!(path = %path.display(), ratio = args.prediction_log_sample_ratio, "writing the prediction log");
            (Some(log), Some(writer))
        }
        None => (None, None),
    };
    let (ingest_stop, ingest_shutdown) = shutdown::channel();
    let ctx = IngestContext {
        tx,
        rejects: Arc::new(Rejects::new(&metrics)),
        metrics: metrics.clone(),
        options,
        shutdown: ingest_shutdown,
        prediction_log,
    };
    let mut ingest = JoinSet::new();
    for l in listeners {
        ingest.spawn(l.serve(ctx.clone()));
    }
    drop(ctx);

    let (reload_tx, reload_rx) = mpsc::channel(4);
    let reloader = Reloader {
        args: args.clone(),
        control,
        metrics: metrics.clone(),
        clock,
        last_text: first_text,
    };
    let reloads = tokio::spawn(reloader.run(reload_rx, shutdown.clone()));
    let state = Arc::new(HttpState {
        api,
        reload: args.enable_lifecycle.then_some(reload_tx),
        metrics: metrics.clone(),
        telemetry_path: args.telemetry_path.clone(),
        ready: true.into(),
        web: web_config,
    });
    let (http_stop, http_shutdown) = shutdown::channel();
    let mut servers = JoinSet::new();
    for l in web {
        servers.spawn(http::serve(l, state.clone(), http_shutdown.clone()));
    }
    tracing::info!(version = crate::VERSION, "model-exporter started");

    shutdown.wait().await;
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
    Ok(())
}

fn config_source(args: &RunArgs) -> String {
    args.config_file.as_ref().map_or_else(
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
    metrics: Metrics,
    clock: SharedClock,
    /// The file's content at the last load attempt, to notice changes.
    last_text: Option<Vec<u8>>,
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
        let watch = self.args.config_watch_interval;
        let watching = self.args.config_file.is_some() && !watch.is_zero();
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

    fn read_file(&self) -> Option<Vec<u8>> {
        std::fs::read(self.args.config_file.as_ref()?).ok()
    }

    fn reload(&mut self, trigger: &str) -> Result<(), String> {
        self.last_text = self.read_file();
        match load_config(&self.args) {
            Ok(config) => {
                let source = config_source(&self.args);
                tracing::info!(trigger, %source, groups = config.groups.len(), "reloaded rules");
                let _ = self.control.send(Control::Reload(Arc::new(config), source));
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
                Err(errors.to_string())
            }
        }
    }
}
