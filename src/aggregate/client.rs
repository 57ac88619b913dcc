//! Client libraries' reports of what they dropped (`"type":"client"`
//! events): added to `model_exporter_client_dropped_total{model,reason}`
//! and `model_exporter_client_values_omitted_total{model}`.
//!
//! Reports do not create model state: their model names are capped here,
//! at `--limits.models` distinct names, past which they are counted under
//! the overflow label, like any model label.

use std::collections::HashSet;

use super::limits::{Limits, OVERFLOW_LABEL};
use crate::export::metrics::Metrics;
use crate::ingest::event::{ClientReport, DropReason, Name};

/// The model names seen in client reports.
#[derive(Default)]
pub(super) struct ClientModels {
    seen: HashSet<Name>,
}

impl ClientModels {
    /// Adds a report's counts. A model's series start at 0 for every reason
    /// with its first report, so that a rate over them starts at once.
    pub(super) fn record(
        &mut self,
        metrics: &Metrics,
        limits: &Limits,
        model: &Name,
        report: &ClientReport,
    ) {
        let model = if self.seen.contains(model) {
            model.as_str()
        } else if self.seen.len() < limits.models {
            self.seen.insert(model.clone());
            for r in DropReason::ALL {
                metrics
                    .client_dropped
                    .with_label_values(&[model.as_str(), r.as_str()]);
            }
            metrics
                .client_values_omitted
                .with_label_values(&[model.as_str()]);
            model.as_str()
        } else {
            metrics.series_dropped.with_label_values(&["model"]).inc();
            OVERFLOW_LABEL
        };
        for (r, &n) in DropReason::ALL.iter().zip(&report.dropped) {
            if n > 0 {
                metrics
                    .client_dropped
                    .with_label_values(&[model, r.as_str()])
                    .inc_by(n);
            }
        }
        if report.values_omitted > 0 {
            metrics
                .client_values_omitted
                .with_label_values(&[model])
                .inc_by(report.values_omitted);
        }
    }
}
