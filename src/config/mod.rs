//! rules.yaml, loaded strictly with every error located.
//!
//! [`load`] parses the text into a positioned YAML tree ([`yaml`]), then
//! walks it once, building the typed [`Config`] and collecting every problem
//! (unknown keys with a "did you mean", wrong types, bad durations, bad
//! expressions and templates, violated constraints) as a [`ConfigError`]
//! with file, line and column. Errors are sorted by position. The format is
//! described in `docs/rules.md`.
//!
//! The module's files: `types` (what a rules file holds besides the rule
//! definitions, which [`rules::rule`](crate::rules::rule) owns), `load` (the
//! walk: one function per key), `reader` (typed values and positions out of
//! the YAML tree) and `error`. Durations are the rule language's
//! ([`rules::duration`](crate::rules::duration)). `inference_logger` reads a
//! model's `inference_logger` block. [`expect`] derives each model's
//! data-quality expectations from its `features` and its baseline.

mod error;
pub mod expect;
mod inference_logger;
mod load;
mod reader;
mod types;
pub mod yaml;

pub use error::{ConfigError, ConfigErrors};
pub use expect::{Expectation, Expectations, Expected};
pub use load::{load, load_file, load_file_limited};
pub use types::{Config, Defaults, FeatureSpec, ModelConfig};
