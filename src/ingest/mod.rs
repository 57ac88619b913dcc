//! Ingest: listener addresses, socket files, framing and event parsing.
//!
//! Each listener task reads bytes, cuts them into lines with a bounded
//! [`framing::LineFramer`], parses each line with [`parse::parse_event`], and
//! hands the events of one read to the aggregator as a single batch.
//! Rejected lines are counted by reason and logged at a bounded rate.

pub mod addr;
pub(crate) mod datagram;
pub mod event;
pub mod framing;
pub mod listen;
pub mod name;
pub mod parse;
pub mod rejects;
pub mod socket_file;
pub mod tail;
pub mod timestamp;

pub use addr::ListenAddr;
pub use listen::{BindError, IngestContext, IngestOptions, Listener};
