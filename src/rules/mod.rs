//! Alert rules: the signals a rule can measure ([`signal`]), the expression
//! language ([`expr`]), annotation templates
//! ([`template`]), evaluation and the alert lifecycle ([`eval`]), the HTTP
//! API's view of them ([`api`]), their export as Prometheus alerting rules
//! ([`export`]) and pushing alerts to Alertmanager ([`notify`]).
//!
//! A rule compares one windowed signal of a model (latency quantile, error
//! rate, feature drift, ...) with a threshold; see `docs/rules.md`.

pub mod api;
pub mod eval;
pub mod export;
pub mod expr;
pub mod notify;
pub mod signal;
pub(crate) mod suggest;
pub mod template;
