//! Alert rules: the expression language ([`expr`]), annotation templates
//! ([`template`]), their export as Prometheus alerting rules ([`export`])
//! and, later, their evaluation.
//!
//! A rule compares one windowed signal of a model (latency quantile, error
//! rate, feature drift, ...) with a threshold; see `docs/rules.md`.

pub mod api;
pub mod eval;
pub mod export;
pub mod expr;
pub(crate) mod suggest;
pub mod template;
