//! What a snapshot of the aggregator holds (`--storage.path`): the windows
//! of every model version with the feedback awaiting its join, and the
//! alert states. [`crate::storage`] writes and reads it inside its envelope;
//! the JSON is described in docs/storage.md.

use serde::{Deserialize, Serialize};

use super::signals::{StoreCapture, StoreState};
use crate::rules::eval::AlertRecord;

/// The body of the aggregator's snapshot file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotBody {
    /// The windows of every model version, and the feedback awaiting its join.
    pub windows: StoreState,
    /// Pending and firing alerts.
    pub alerts: Vec<AlertRecord>,
}

/// A snapshot file of the aggregator, as read back.
pub type Snapshot = crate::storage::Snapshot<SnapshotBody>;

/// Where the aggregator's snapshots are written.
pub type Storage = crate::storage::Storage<StateCapture>;

/// What the aggregator thread copies out of its state for one snapshot;
/// turned into a [`SnapshotBody`] on the writer thread.
pub struct StateCapture {
    /// When it was taken.
    pub written_at: f64,
    /// A copy of the windows.
    pub windows: StoreCapture,
    /// The alert states.
    pub alerts: Vec<AlertRecord>,
}

impl crate::storage::Capture for StateCapture {
    type Body = SnapshotBody;

    fn written_at(&self) -> f64 {
        self.written_at
    }

    fn into_body(self) -> SnapshotBody {
        SnapshotBody {
            windows: self.windows.to_state(),
            alerts: self.alerts,
        }
    }
}

/// What restoring a snapshot brought back, and what it left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestoreReport {
    /// Model versions whose windows were restored.
    pub series: usize,
    /// Non-empty window slices restored.
    pub slices: usize,
    /// Predictions awaiting their label.
    pub pending_feedback: usize,
    /// Pending and firing alerts restored.
    pub alerts: usize,
    /// Alerts dropped because their rule is gone or changed.
    pub alerts_dropped: usize,
    /// What was left out and why (the first [`RestoreReport::MAX_NOTES`]).
    pub dropped: Vec<String>,
    /// Further notes not kept.
    pub more_dropped: usize,
}

impl RestoreReport {
    /// Most notes kept.
    pub const MAX_NOTES: usize = 20;

    /// Notes that something was left out.
    pub fn drop_note(&mut self, note: String) {
        if self.dropped.len() < Self::MAX_NOTES {
            self.dropped.push(note);
        } else {
            self.more_dropped += 1;
        }
    }
}
