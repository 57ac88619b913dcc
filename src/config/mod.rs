//! rules.yaml, loaded strictly with every error located.
//!
//! [`load`] parses the text into a positioned YAML tree ([`yaml`]), then
//! walks it once, building the typed [`Config`] and collecting every problem
//! (unknown keys with a "did you mean", wrong types, bad durations, bad
//! expressions and templates, violated constraints) as a [`ConfigError`]
//! with file, line and column. Errors are sorted by position. The format is
//! described in `docs/rules.md`.
//!
//! The module's files: `types` (what a rules file holds), `load` (the walk:
//! one function per key), `reader` (typed values and positions out of the
//! YAML tree), `error` and `duration`; `inference_logger` reads a model's
//! `inference_logger` block.

mod duration;
mod error;
mod inference_logger;
mod load;
mod reader;
mod types;
pub mod yaml;

pub use duration::{DurationError, format_duration, parse_duration};
pub use error::{ConfigError, ConfigErrors};
pub use load::{load, load_file};
pub use types::{
    Config, Defaults, FeatureSpec, Group, InferenceLogger, Matchers, ModelConfig, Rule, Severity,
};
