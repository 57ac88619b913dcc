//! Aggregate: the single writer that owns all metric state.
//!
//! Listeners send batches of parsed events over a bounded channel; one
//! aggregator thread applies them in order (or, with `--aggregate.shards`,
//! one aggregator per shard, each owning the models routed to it: see
//! [`shards`]). Label handles are resolved once
//! per model, feature, class and so on, and cached, so the steady-state cost
//! of an event is a few hash lookups and atomic adds. `/metrics` reads the
//! same atomics, so a scrape never waits for ingest, nor ingest for a scrape.
//!
//! The windows the rules read are built from the summaries of
//! [`stats`](crate::stats).

mod aggregator;
mod hash;
pub mod history;
pub mod join;
pub mod quality;
pub mod shards;
pub mod signals;
pub mod validity;

/// The statistics modules' former paths, kept for importers not yet moved
/// to [`crate::stats`].
pub use crate::stats::{drift, reference, sketch, window};
pub use aggregator::{
    Aggregator, Batch, BatchSender, Control, ControlSender, Limits, OVERFLOW_LABEL, Options, spawn,
};
pub use shards::{ApiView, BatchSink, Router, ShardCount, ShardSlot, shard_of};
