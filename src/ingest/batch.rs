//! Batches: the events of one read, as listeners hand them over, and the
//! helpers every transport uses to fill them from read lines.

use super::context::IngestContext;
use super::event::Event;
use super::framing::Frame;
use super::parse::{Reject, RejectReason, is_blank, parse_event_noting};

/// A batch of events, as one listener read produced them.
pub type Batch = Vec<Event>;

/// Events per batch sent to the aggregator, at most: a read of tiny lines
/// (64 KiB of `{}` is 21,845 events) is sent in several batches, so that
/// the queue of `--events.queue-batches` batches bounds the events waiting.
pub(super) const BATCH_EVENTS: usize = 1024;

/// Takes the batch to send, leaving an empty one with as much room as it
/// had events: the next read usually brings about as many, and a batch that
/// grows from nothing copies its events again at every doubling.
pub(super) fn hand_over(batch: &mut Batch) -> Batch {
    let room = batch.len();
    std::mem::replace(batch, Batch::with_capacity(room))
}

/// Parses one line into `batch`, or counts it as rejected.
pub(super) fn take_line(line: &[u8], batch: &mut Batch, ctx: &IngestContext, transport: &str) {
    if is_blank(line) {
        return;
    }
    let unknown = |key: &str| ctx.metrics.unknown_fields.note(key, transport);
    match parse_event_noting(line, unknown) {
        Ok(e) => {
            if let Err(r) = ctx.check_times(&e) {
                ctx.rejects.reject(&r, line, transport);
                return;
            }
            if let Some(log) = &ctx.prediction_log {
                log.offer(line);
            }
            batch.push(e)
        }
        Err(r) => ctx.rejects.reject(&r, line, transport),
    }
}

/// Hands one frame to the batch, or counts it as rejected.
pub(super) fn take_frame(
    frame: Frame<'_>,
    batch: &mut Batch,
    ctx: &IngestContext,
    transport: &str,
) {
    match frame {
        Frame::Line(l) => take_line(l, batch, ctx, transport),
        Frame::TooLong => ctx.rejects.reject(
            &Reject::new(
                RejectReason::TooLong,
                format!("line longer than {} bytes", ctx.options.max_line_bytes),
            ),
            b"",
            transport,
        ),
    }
}
