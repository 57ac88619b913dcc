//! CloudEvents of KServe's and Seldon Core's inference loggers, read into
//! inference events (docs/integrations.md).
//!
//! A CloudEvent goes through, in order: [`envelope`] (attributes from
//! `ce-*` headers or a structured event, the payload as JSON), [`mapping`]
//! (which model, from rules.yaml), [`payload`] (rows of features, or of
//! predictions), [`pairing`] (a request waits for its response, or the
//! other way round) and [`emit`] (one inference event per row).

pub mod emit;
pub mod envelope;
pub mod mapping;
pub mod pairing;
pub mod payload;

pub use mapping::ModelMap;
