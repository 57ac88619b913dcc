//! What the evaluator reads: a [`SignalSource`] (the aggregator's windows)
//! gives a [`Reading`] of a rule's signal for a model version over a window.

use std::time::Duration;

use super::signal::Signal;

/// Where the evaluator reads signals from.
pub trait SignalSource {
    /// Every (model, version) with data.
    fn series(&self) -> Vec<(String, String)>;
    /// The features a model version has sent.
    fn features(&self, model: &str, version: &str) -> Vec<String>;
    /// A signal over a window ending at `now`.
    fn read(
        &self,
        model: &str,
        version: &str,
        signal: &Signal,
        feature: Option<&str>,
        window: Duration,
        now: f64,
    ) -> Reading {
        self.read_capped(model, version, signal, feature, (window, None), now)
    }
    /// A signal over a window ending at `now`, with a rule's
    /// `max_samples`: drift signals (and their p-values) then read only
    /// the newest `max_samples` values of the window; other signals read
    /// the whole window.
    fn read_capped(
        &self,
        model: &str,
        version: &str,
        signal: &Signal,
        feature: Option<&str>,
        window: (Duration, Option<u64>),
        now: f64,
    ) -> Reading;
}

/// A signal's value over a window, and how many samples it rests on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The value; `None` when there is nothing to compute it from.
    pub value: Option<f64>,
    /// Samples behind it, compared with the rule's `min_samples`.
    /// [`u64::MAX`] for signals that need no samples (rates, ages).
    pub samples: u64,
}

impl Reading {
    /// No data: no verdict.
    pub const NONE: Reading = Reading {
        value: None,
        samples: 0,
    };

    /// A value that needs no samples (rates, ages): always a verdict.
    pub fn always(value: Option<f64>) -> Reading {
        Reading {
            value,
            samples: u64::MAX,
        }
    }

    /// A value computed from `samples` samples.
    pub fn of(value: Option<f64>, samples: u64) -> Reading {
        Reading { value, samples }
    }
}
