//! Ingest: listener addresses, socket files, framing and event parsing.
//!
//! Each listener task reads bytes, cuts them into lines with a bounded
//! [`framing::LineFramer`], parses each line with [`parse::parse_event`], and
//! hands the events of one read to the aggregator as a single batch.
//! Rejected lines are counted by reason and logged at a bounded rate.
//!
//! [`listen`] binds a listener and hands it to its transport: `stream`
//! (`unix://`, `tcp://`), `datagram` (`unixgram://`, `udp://`), [`tail`]
//! (`file://`) or [`cloudevents`] (`http://`: inference-logger CloudEvents,
//! which are not lines). The transports share only the listener's context
//! ([`IngestContext`]) and the batch helpers of [`batch`], never each other.
//! Batches go to a [`BatchSink`]: the one aggregator's channel, or a
//! [`Deliver`] (the aggregators' router) that spreads them.

pub mod accept;
pub mod addr;
pub mod batch;
pub mod cloudevents;
mod context;
pub(crate) mod datagram;
pub mod event;
pub mod framing;
pub mod listen;
pub mod metrics;
pub mod name;
pub mod parse;
pub mod prediction_log;
pub mod rejects;
pub mod sink;
pub mod socket_file;
mod stream;
pub mod tail;
pub mod timestamp;
pub mod unknown;

pub use addr::ListenAddr;
pub use batch::Batch;
pub use context::{IngestContext, IngestOptions};
pub use listen::{BindError, Listener};
pub use sink::{BatchSender, BatchSink, Deliver, SinkClosed};
