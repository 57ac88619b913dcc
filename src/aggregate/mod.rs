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
//! * [`aggregator`](Aggregator): the apply loop and the tick (expiry, rule
//!   evaluation, snapshots).
//! * [`store`]: the state, one tree of model → [`version`] → label values,
//!   each holding its series (cached handles) and its windows side by side
//!   in a [`capped`] map; [`expiry`] sweeps it under `--metrics.ttl`.
//! * [`signals`]: the windows and what the rules read from them, built from
//!   the summaries of [`stats`](crate::stats).
//! * `client` counts the client libraries' reports of what they dropped.
//! * [`declared`]: the names rules.yaml declares, which the caps never
//!   fold into `__other__`.
//! * [`join`] joins labels to predictions; [`quality`] is the prediction
//!   quality of the joined pairs; [`validity`] checks feature values against
//!   rules.yaml.
//! * [`snapshot`]: what a snapshot of the state holds (`--storage.path`),
//!   written and read by [`storage`](crate::storage).

mod aggregator;
pub mod capped;
mod client;
pub mod declared;
pub mod expiry;
mod hash;
pub mod join;
mod limits;
pub mod quality;
pub mod shards;
pub mod signals;
mod slot;
pub mod snapshot;
pub mod store;
pub mod validity;
pub mod version;

pub use aggregator::{Aggregator, Control, ControlSender, Options, spawn};
pub use limits::{Limits, OVERFLOW_LABEL};
pub use shards::{Router, ShardCount, shard_of};
pub use slot::ShardSlot;
