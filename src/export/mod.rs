//! Export: the metric registry, what is rendered from the aggregators'
//! state (the rule families, the JSON API and its history), and the HTTP
//! server that serves it.

pub mod api;
pub mod compress;
pub mod conns;
pub mod dynamic;
pub mod histograms;
pub mod history;
pub mod http;
pub mod metrics;
pub mod openmetrics;
pub mod references;
pub mod render;
pub mod series;
