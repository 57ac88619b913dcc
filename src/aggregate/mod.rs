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
//! Windowed aggregation: [`sketch`] is a mergeable relative-error quantile
//! sketch for latencies, [`window`] a ring of fixed-width time slices that
//! answers "what happened in the last N minutes" by merging slices.
//! [`drift`] compares a window's binned distribution with a baseline's.

mod aggregator;
pub mod drift;
pub mod feedback;
mod hash;
pub mod history;
pub mod quality;
pub mod reference;
pub mod shards;
pub mod signals;
pub mod sketch;
pub mod window;

pub use aggregator::{
    Aggregator, Batch, BatchSender, Control, ControlSender, Limits, OVERFLOW_LABEL, spawn,
};
pub use shards::{ApiView, BatchSink, Router, ShardCount, ShardSlot, shard_of};
