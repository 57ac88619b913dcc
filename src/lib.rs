//! model-exporter: a Prometheus exporter sidecar that watches machine-learning
//! models in production.
//!
//! A model server sends one small JSON event per request to a local socket;
//! the sidecar turns the stream into operational and ML metrics, evaluates
//! alert rules, and serves everything on `/metrics`.
//!
//! # Map of the crate
//!
//! The modules follow the data flow, left to right:
//!
//! ```text
//!  sockets ──► ingest ──(batches)──► aggregate ──► export (/metrics, HTTP)
//!                                        │
//!                        config ──► rules (evaluate, notify)
//! ```
//!
//! * [`ingest`]: listener addresses, socket files, stream and datagram framing,
//!   and the event parser (wire protocol v1). Listeners parse in parallel and
//!   hand batches of events to the single aggregator. The `http://`
//!   listener ([`ingest::cloudevents`]) makes events of the CloudEvents of
//!   KServe's and Seldon Core's inference loggers.
//! * [`aggregate`]: the one writer that owns all metric state. It receives
//!   batches over a channel and applies each event once to its model
//!   version, whose cached metric handles and windows live side by side
//!   ([`aggregate::store`]). With `--aggregate.shards N`, N writers each own
//!   the models routed to them ([`aggregate::shards`]).
//! * [`rules`]: the alert rule language and its evaluation.
//! * [`export`]: the Prometheus registry, the metric families, what is
//!   rendered from the aggregate state (rule families, the `/api/v1` JSON
//!   API and its history, read through [`export::render::StateView`]), and
//!   the HTTP server (`/metrics`, health, landing page).
//! * [`baseline`]: reference baselines made from training data
//!   (`model-exporter baseline`): the versioned file format and the
//!   streaming builder. Drift is measured against them.
//! * [`config`]: `rules.yaml`, loaded strictly with every error located by
//!   file, line and column.
//! * [`server`]: wires the pieces together: [`server::start`] returns a
//!   [`server::Running`] exporter with its bound addresses; [`server::run`]
//!   (start, wait for the signal, stop) is what `main` calls.
//! * [`cli`]: command-line flags and subcommands.
//! * [`http_client`]: the one HTTP client (TLS, authentication, timeouts)
//!   of `report`, `loadgen` and the Alertmanager notifier.
//! * [`report`]: the text monitoring report of a running exporter.
//! * [`demo`]: simulated traffic replaying classic failure stories.
//! * [`loadgen`]: the load generator of `model-exporter loadgen`.
//! * [`client`]: the client library for Rust model servers.
//! * [`stats`]: the statistics windows are made of (quantile sketch, time
//!   slices, moments, drift maths, reference distributions), used by both
//!   `aggregate` and `baseline`; it imports nothing else from the crate.
//! * [`shutdown`]: the signal every task watches to stop cleanly.
//! * [`storage`]: snapshots of the state, so that a restart keeps windows,
//!   alert states and pending feedback (`--storage.path`).
//! * [`clock`]: the time source, injected so that windows and durations are
//!   tested without sleeping.

pub mod aggregate;
pub mod baseline;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod demo;
pub mod export;
pub mod http_client;
pub mod ingest;
pub mod loadgen;
pub mod report;
pub mod rules;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod storage;

/// The rules.yaml compiled into the binary, used when `--config.file` is not given.
pub const DEFAULT_RULES_YAML: &str = include_str!("../rules.yaml");

/// Name under which the compiled-in rules are reported in messages.
pub const DEFAULT_RULES_NAME: &str = "<built-in rules.yaml>";

/// This build's version (from Cargo.toml).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The source revision this build was made from, or `unknown`.
pub const REVISION: &str = match option_env!("MODEL_EXPORTER_REVISION") {
    Some(r) => r,
    None => "unknown",
};
