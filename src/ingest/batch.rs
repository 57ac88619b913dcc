//! Batches: the events of one read, as listeners hand them over, and the
//! helpers every transport uses to fill them from read lines.

use std::sync::Mutex;

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
/// grows from nothing copies its events again at every doubling. The empty
/// one is a batch the aggregator gave back ([`recycle`]) when there is one.
pub(super) fn hand_over(batch: &mut Batch) -> Batch {
    let room = batch.len();
    std::mem::replace(batch, POOL.take(room))
}

/// Gives a batch the aggregator has applied back to the listeners: its
/// memory is kept for a listener's next batch unless [`POOL_BATCHES`] are
/// kept already. A kept batch's events are dropped by the listener that
/// takes it, on the thread that most likely allocated their feature lists
/// and names: the allocator frees a block its own thread allocated on a
/// fast path, while a block freed by another thread is queued for the
/// owner to collect, which took about 6% of the exporter's CPU under load
/// when the aggregator dropped the events (docs/performance.md).
///
/// A full batch is a few hundred KiB, which the allocator gives back to
/// the system as soon as it is freed (see src/allocator.rs); a listener
/// that allocated every batch anew had the kernel map and zero those pages
/// again, which took about a fifth of the exporter's CPU under load
/// (docs/performance.md).
pub fn recycle(batch: Batch) {
    POOL.give(batch);
}

/// Most applied batches kept for re-use: at most 1,024 events' room
/// each, and their applied events until a listener takes the batch, so a
/// few MiB at most. A listener and the aggregator pass a batch back and
/// forth; a few more cover several listeners.
pub const POOL_BATCHES: usize = 4;

/// The process's applied batches, kept for re-use.
static POOL: Pool = Pool::new();

/// Applied batches, with their memory (and their events, dropped when a
/// batch is taken), for re-use.
struct Pool(Mutex<Vec<Batch>>);

impl Pool {
    const fn new() -> Pool {
        Pool(Mutex::new(Vec::new()))
    }

    /// An empty batch with room for at least `room` events: a kept one if
    /// any, whose applied events are dropped here (outside the lock).
    fn take(&self, room: usize) -> Batch {
        let kept = self.0.lock().ok().and_then(|mut p| p.pop());
        match kept {
            Some(mut b) => {
                b.clear();
                b.reserve(room);
                b
            }
            None => Batch::with_capacity(room),
        }
    }

    /// Keeps `batch`, its applied events included (dropped by [`take`]),
    /// unless it has no memory or room for more than [`BATCH_EVENTS`], or
    /// the pool is full; then it is dropped here.
    ///
    /// [`take`]: Pool::take
    fn give(&self, batch: Batch) {
        if batch.capacity() == 0 || batch.capacity() > BATCH_EVENTS {
            return;
        }
        if let Ok(mut pool) = self.0.lock()
            && pool.len() < POOL_BATCHES
        {
            pool.push(batch);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::parse_event;

    fn event() -> Event {
        parse_event(br#"{"model":"m","id":"r-1","prediction":1,"features":{"a":1}}"#)
            .expect("parses")
    }

    #[test]
    fn a_given_back_batch_is_filled_again_without_a_new_allocation() {
        let pool = Pool::new();
        let mut batch = pool.take(16);
        batch.extend((0..16).map(|_| event()));
        let memory = batch.as_ptr();
        pool.give(batch);
        let again = pool.take(16);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), memory, "the same memory");
        assert!(again.capacity() >= 16);
        assert!(pool.0.lock().expect("not poisoned").is_empty());
    }

    #[test]
    fn the_pool_keeps_few_batches_and_none_oversized() {
        let pool = Pool::new();
        for _ in 0..POOL_BATCHES + 3 {
            pool.give(Batch::with_capacity(8));
        }
        pool.give(Batch::with_capacity(BATCH_EVENTS + 1));
        pool.give(Batch::new());
        let kept = pool.0.lock().expect("not poisoned");
        assert_eq!(kept.len(), POOL_BATCHES);
        assert!(kept.iter().all(|b| b.capacity() == 8 && b.is_empty()));
    }

    /// A kept batch's events are dropped when a listener takes it (not on
    /// the aggregator's thread), and only then.
    #[test]
    fn a_kept_batch_drops_its_events_when_taken() {
        let pool = Pool::new();
        let mut batch = pool.take(4);
        batch.extend((0..3).map(|_| event()));
        pool.give(batch);
        assert_eq!(pool.0.lock().expect("not poisoned")[0].len(), 3);
        let again = pool.take(4);
        assert!(again.is_empty());
        assert!(pool.0.lock().expect("not poisoned").is_empty());
    }
}
