//! Alert rules: the expression language ([`expr`]), annotation templates
//! ([`template`]), pushing alerts to Alertmanager ([`notify`]) and, later,
//! their evaluation.
//!
//! A rule compares one windowed signal of a model (latency quantile, error
//! rate, feature drift, ...) with a threshold; see `docs/rules.md`.

pub mod expr;
pub mod notify;
pub(crate) mod suggest;
pub mod template;
