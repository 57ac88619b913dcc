//! Reference baselines: `model-exporter baseline` turns training data into
//! a versioned JSON file ([`format`](mod@format)) against which the sidecar measures
//! drift.
//!
//! * [`format`](mod@format): the file format, its validation, loading and writing.
//! * [`build`]: the two-pass streaming builder over CSV and JSON lines.
//! * [`rows`]: its input readers, CSV and JSON lines.
//! * [`summary`]: its column summaries, and the bins chosen from them.
//! * [`csv`]: the CSV reader it uses.
//! * [`stats`]: the bounded per-column summaries of the first pass.
//! * [`error`]: what can go wrong building one ([`BuildError`]).
//!
//! The command is described in `docs/baseline.md`.

pub mod build;
pub mod csv;
pub mod error;
pub mod format;
pub mod rows;
pub mod stats;
pub mod summary;

pub use build::{BuildOptions, BuildReport, Builder, InputFormat};
pub use error::BuildError;
pub use format::{Baseline, BaselineError, CategoricalBaseline, FeatureBaseline, NumericBaseline};
