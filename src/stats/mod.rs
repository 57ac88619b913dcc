//! Statistics: the summaries the windows are made of, and the maths that
//! reads them. A leaf module: it imports nothing else from the crate, so
//! that both [`aggregate`](crate::aggregate) (live windows) and
//! [`baseline`](crate::baseline) (training data) build on it.
//!
//! * [`sketch`]: a mergeable relative-error quantile sketch for latencies.
//! * [`window`]: a ring of fixed-width time slices answering "what happened
//!   in the last N minutes" by merging slices, and the slices themselves
//!   (counts, moments).
//! * [`drift`]: drift statistics of a live binned distribution against a
//!   reference one, and the drift methods.
//! * [`reference`](mod@reference): reference distributions, binned, against which drift is
//!   measured.
//! * [`significance`]: p-values of the drift statistics under no drift, at
//!   the window's and the reference's sizes, and their adjustment across
//!   a model's features.
//! * [`float`]: the serde helper that keeps non-finite floats in snapshots.

pub mod drift;
pub mod float;
pub mod reference;
pub mod significance;
pub mod sketch;
pub mod window;

pub use drift::DriftMethod;
pub use float::F64;
