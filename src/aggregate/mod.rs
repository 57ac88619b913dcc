//! (filled in below)
//!
//! Windowed aggregation: [`sketch`] is a mergeable relative-error quantile
//! sketch for latencies, [`window`] a ring of fixed-width time slices that
//! answers "what happened in the last N minutes" by merging slices.

pub mod sketch;
pub mod window;
