//! model-exporter: a Prometheus exporter sidecar that watches machine-learning
//! models in production.
//!
//! A model server sends one small JSON event per request to a local socket;
//! the sidecar turns the stream into operational and ML metrics, evaluates
//! alert rules, and serves everything on `/metrics`.
//!
//! # Map of the crate
//!
//! The data flows left to right:
//!
//! ```text
//!  sockets ──► ingest ──(batches)──► aggregate ──► export (/metrics, HTTP)
//!                                        │
//!                        config ──► rules (evaluate, notify)
//! ```
//!
//! and the modules form a DAG in that order: each imports only the modules
//! above it in this list, never one below (checked by
//! `tests/architecture.rs`, which holds the table of allowed imports).
//!
//! * Leaves, importing nothing else from the crate:
//!   [`clock`] (the time source, injected so that windows and durations are
//!   tested without sleeping), [`shutdown`] (the signal every task watches
//!   to stop cleanly), [`stats`] (the statistics windows are made of:
//!   quantile sketch, time slices, moments, drift maths, reference
//!   distributions, used by both `aggregate` and `baseline`),
//!   [`http_client`] (the one HTTP client, with TLS, authentication and
//!   timeouts, of `report`, `loadgen` and the Alertmanager notifier) and
//!   [`webconfig`] (`--web.config.file`: the server side's TLS and basic
//!   auth, shared by the HTTP server and the `http://` event listener) and
//!   [`files`] (reading rules and baseline files: regular files only,
//!   within a size limit, never blocking on a FIFO or a device).
//! * [`ingest`]: the events and their wire protocol (v1), listener
//!   addresses, socket files, stream and datagram framing, the parser, the
//!   listeners, their self-metrics and the prediction log. Listeners parse
//!   in parallel and hand [`ingest::Batch`]es to an [`ingest::BatchSink`]:
//!   the one aggregator's channel, or the router in front of the shards.
//!   The `http://` listener ([`ingest::cloudevents`]) makes events of the
//!   CloudEvents of KServe's and Seldon Core's inference loggers.
//! * [`baseline`]: reference baselines made from training data
//!   (`model-exporter baseline`): the versioned file format and the
//!   streaming builder. Drift is measured against them.
//! * [`rules`]: the alert rule language: the signal vocabulary and what
//!   reads it ([`rules::source::SignalSource`]), expressions, templates,
//!   durations, rule and group definitions, evaluation and the alert
//!   lifecycle, export as Prometheus rules, and the Alertmanager notifier.
//! * [`config`]: `rules.yaml`, loaded strictly with every error located by
//!   file, line and column, into the rules and the per-model expectations.
//! * [`export`]: the Prometheus registry, the metric families, what is
//!   rendered from the aggregate state (rule families, the `/api/v1` JSON
//!   API and its history, read through [`export::render::StateView`]), and
//!   the HTTP server (`/metrics`, health, landing page, dashboard).
//! * [`storage`]: snapshot files (`--storage.path`), generic over what they
//!   hold, written atomically.
//! * [`aggregate`]: the one writer that owns all metric state. It receives
//!   batches over a channel and applies each event once to its model
//!   version, whose cached metric handles and windows live side by side
//!   ([`aggregate::store`]). With `--aggregate.shards N`, N writers each own
//!   the models routed to them ([`aggregate::shards`]). It evaluates the
//!   rules on its windows, publishes through `export`, and defines what its
//!   snapshots hold ([`aggregate::snapshot`]).
//! * At the top, the commands and their wiring: [`client`] (the client
//!   library for Rust model servers), [`report`] (the text monitoring report
//!   of a running exporter), [`loadgen`] (the load generator of
//!   `model-exporter loadgen`), [`cli`] (command-line flags and
//!   subcommands), [`server`] (wires the pieces together:
//!   [`server::start`] returns a [`server::Running`] exporter with its
//!   bound addresses; [`server::run`], start, wait for the signal, stop, is
//!   what `main` calls) and [`demo`] (simulated traffic replaying classic
//!   failure stories).

pub mod aggregate;
pub mod baseline;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod demo;
pub mod export;
pub mod files;
pub mod http_client;
pub mod ingest;
pub mod loadgen;
pub mod report;
pub mod rules;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod storage;
pub mod webconfig;

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
