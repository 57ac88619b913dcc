//! `file://` listeners: following a JSON-lines file like `tail -F`.
//!
//! The file is polled (every [`POLL`]) rather than watched with inotify, which
//! works on every filesystem, including the network and overlay filesystems
//! of containers. Each poll reads what was appended since the last one. The
//! follower copes with:
//!
//! * **rotation by rename** (logrotate's default, and most loggers): when the
//!   path names a new file, what is left in the old one is read to its end,
//!   then the new file is followed from its start;
//! * **truncation** (`copytruncate`): when the file is shorter than what was
//!   read, reading starts again from its beginning;
//! * **a file that appears later**, or disappears for a while: the follower
//!   waits for it.
//!
//! By default only lines appended after start-up are read (like `tail -F`);
//! `--events.file-from-beginning` reads the existing content first.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use super::batch::Batch;
use super::batch::{BATCH_EVENTS, hand_over, take_frame};
use super::context::IngestContext;
use super::framing::{Frame, LineFramer};

/// How often the file is checked for new data, rotation and truncation.
pub const POLL: Duration = Duration::from_millis(200);

/// Bytes read per read call.
const CHUNK: usize = 64 * 1024;

/// The followed file, open.
pub struct Open {
    file: File,
    ino: u64,
    dev: u64,
    offset: u64,
}

/// Opens `path` at start-up, if it exists: positioned at its end, or at its
/// start with `from_beginning`. Done when the listener is bound, so that
/// "the end" is the end at start-up, not whenever the follower first runs.
pub fn open_at_start(path: &std::path::Path, from_beginning: bool) -> Option<Open> {
    let mut file = File::open(path).ok()?;
    let m = file.metadata().ok()?;
    let offset = if from_beginning {
        0
    } else {
        file.seek(SeekFrom::End(0)).ok()?
    };
    Some(Open {
        file,
        ino: m.ino(),
        dev: m.dev(),
        offset,
    })
}

/// Follows `path` from `start` (see [`open_at_start`]), sending batches,
/// until shutdown. Runs on a blocking thread.
pub fn follow(path: PathBuf, start: Option<Open>, ctx: IngestContext) {
    let transport = "file";
    let mut framer = LineFramer::new(ctx.options.max_line_bytes);
    let mut current = start;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let stopping = ctx.shutdown.is_triggered();
        let mut batch = Batch::new();
        // (Re)open when there is no file yet, or the path names another file.
        let on_disk = std::fs::metadata(&path).ok();
        let replaced = match (&current, &on_disk) {
            (Some(o), Some(m)) => m.ino() != o.ino || m.dev() != o.dev,
            (None, Some(_)) => true,
            _ => false,
        };
        if let Some(o) = current.as_mut() {
            // Truncated in place: start over.
            if let Ok(m) = o.file.metadata()
                && m.len() < o.offset
            {
                tracing::info!(path = %path.display(), "file truncated; reading from its start");
                o.offset = 0;
                let _ = o.file.seek(SeekFrom::Start(0));
                framer = LineFramer::new(ctx.options.max_line_bytes);
            }
            if !read_to_end(o, &mut buf, &mut framer, &mut batch, &ctx) {
                return;
            }
        }
        if replaced && !stopping {
            if let Some(o) = current.take() {
                tracing::info!(path = %path.display(), "file rotated; following the new one");
                drop(o);
                finish_line(&mut framer, &mut batch, &ctx, transport);
            }
            match File::open(&path) {
                Ok(file) => {
                    // A file that appears, or replaces the one followed, is
                    // read from its start.
                    let m = file.metadata().ok();
                    let mut o = Open {
                        file,
                        ino: m.as_ref().map_or(0, |m| m.ino()),
                        dev: m.as_ref().map_or(0, |m| m.dev()),
                        offset: 0,
                    };
                    let open = read_to_end(&mut o, &mut buf, &mut framer, &mut batch, &ctx);
                    current = Some(o);
                    if !open {
                        return;
                    }
                }
                Err(e) => tracing::debug!(path = %path.display(), error = %e, "cannot open yet"),
            }
        }
        if !batch.is_empty() && ctx.tx.blocking_send(batch).is_err() {
            return;
        }
        if stopping {
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// Reads what the file holds past `o.offset`, sending the events in batches
/// of [`BATCH_EVENTS`] as they fill (a large file appended at once is never
/// held whole); `false` when the aggregator is gone.
fn read_to_end(
    o: &mut Open,
    buf: &mut [u8],
    framer: &mut LineFramer,
    batch: &mut Batch,
    ctx: &IngestContext,
) -> bool {
    loop {
        match o.file.read(buf) {
            Ok(0) => return true,
            Ok(n) => {
                o.offset += n as u64;
                framer.push(&buf[..n]);
                loop {
                    let more = framer.drain_some(|f| {
                        take_frame(f, batch, ctx, "file");
                        batch.len() < BATCH_EVENTS
                    });
                    if batch.len() >= BATCH_EVENTS
                        && ctx.tx.blocking_send(hand_over(batch)).is_err()
                    {
                        return false;
                    }
                    if !more {
                        break;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading the followed file failed");
                return true;
            }
        }
    }
}

/// The old file's unterminated last line, once it is known to be complete.
fn finish_line(framer: &mut LineFramer, batch: &mut Batch, ctx: &IngestContext, transport: &str) {
    if let Some(Frame::Line(tail)) = framer.finish() {
        let tail = tail.to_vec();
        take_frame(Frame::Line(&tail), batch, ctx, transport);
    }
}
