//! Alert rules: the signals a rule can measure ([`signal`]) and what reads
//! them ([`source`]), the expression language ([`expr`]), durations
//! ([`duration`]), annotation templates ([`template`]), the rule and group
//! definitions ([`rule`]), evaluation and the alert lifecycle ([`eval`]),
//! their export as Prometheus alerting rules ([`export`]) and pushing
//! alerts to Alertmanager ([`notify`]).
//!
//! A rule compares one windowed signal of a model (latency quantile, error
//! rate, feature drift, ...) with a threshold; see `docs/rules.md`.

pub mod duration;
pub mod eval;
pub mod export;
pub mod expr;
pub mod notify;
pub mod rule;
pub mod signal;
pub mod source;
pub mod suggest;
pub mod template;
