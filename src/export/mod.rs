//! Export: the metric registry and the HTTP server that serves it.

pub mod dynamic;
pub mod histograms;
pub mod http;
pub mod metrics;
pub mod prediction_log;
pub mod series;
pub mod webconfig;
