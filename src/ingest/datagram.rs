//! Datagram sockets (`unixgram://`, `udp://`): one thread receives, another
//! parses.
//!
//! A Unix datagram socket queues very few datagrams (`net.unix.max_dgram_qlen`,
//! 10 by default), and a sender finds it full (`EAGAIN`, a lost event) as
//! soon as the reader is late. So the receiving thread does nothing but
//! take datagrams off the socket, many per system call (`recvmmsg`), and
//! copy them into a [`Block`]; a second thread takes the whole block at once,
//! parses it and sends batches to the aggregator. The parser takes what
//! arrived within about a millisecond ([`GATHER`]) together, or sooner once
//! [`WAKE_AT`] datagrams wait; the receiver wakes it only when it is idle,
//! so under load the hand-over costs one uncontended lock per receive call
//! and about one wake-up of each thread per millisecond. Unparsed data waiting is
//! bounded ([`PENDING_LIMIT`]): past it the receiver waits, and datagrams
//! queue (and are dropped) in the kernel, as they would with a slow reader.

use std::io;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::batch::Batch;
use super::batch::{BATCH_EVENTS, hand_over, take_line};
use super::context::IngestContext;
use super::parse::{Reject, RejectReason};

/// A datagram socket, read on a thread of its own.
pub(super) enum Dgram {
    /// `unixgram://`
    Unix(std::os::unix::net::UnixDatagram),
    /// `udp://`
    Udp(std::net::UdpSocket),
}

impl Dgram {
    fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Dgram::Unix(s) => s.as_raw_fd(),
            Dgram::Udp(s) => s.as_raw_fd(),
        }
    }

    /// Blocking, with `timeout` so that shutdown is noticed.
    fn set_blocking(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Dgram::Unix(s) => {
                s.set_nonblocking(false)?;
                s.set_read_timeout(Some(timeout))
            }
            Dgram::Udp(s) => {
                s.set_nonblocking(false)?;
                s.set_read_timeout(Some(timeout))
            }
        }
    }
}

/// How many datagrams the kernel dropped at this socket because its
/// receive buffer was full, counted from the socket's creation
/// (`SO_MEMINFO`, Linux 4.12 and later); `None` where it cannot tell.
fn kernel_drops(fd: std::os::fd::RawFd) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        // SK_MEMINFO_DROPS is the 9th of the u32 values.
        const DROPS: usize = 8;
        let mut info = [0u32; 16];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `info`.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let have = len as usize / std::mem::size_of::<u32>();
        (r == 0 && have > DROPS).then_some(info[DROPS])
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        None
    }
}

/// How often the receiving thread reads the kernel's drop count.
const DROPS_EVERY: Duration = Duration::from_millis(100);

/// Datagrams taken per system call.
const DATAGRAMS_PER_CALL: usize = 32;

/// Bytes of received, not yet parsed datagrams past which the receiving
/// thread waits for the parsing one.
const PENDING_LIMIT: usize = 4 << 20;

/// Datagrams waiting at which the receiver wakes an idle parser at once.
const WAKE_AT: usize = 256;

/// Longest a datagram waits to be parsed while fewer than [`WAKE_AT`] are
/// waiting: the parser takes what came within this time together, so that
/// under a steady stream the threads hand over a block about once a
/// millisecond instead of once per receive call.
const GATHER: Duration = Duration::from_millis(1);

/// Buffers for receiving many datagrams with one system call (`recvmmsg`
/// on Linux, one `recv` elsewhere). Each buffer is one byte longer than the
/// limit, so that an over-long datagram can be told apart; pages of a
/// buffer are only touched (and resident) as far as datagrams reach.
pub(crate) struct Receiver {
    buf: Vec<u8>,
    size: usize,
    lens: Vec<usize>,
}

impl Receiver {
    /// Buffers for datagrams of up to `size` bytes.
    pub(crate) fn new(size: usize) -> Receiver {
        Receiver {
            buf: vec![0u8; size * DATAGRAMS_PER_CALL],
            size,
            lens: Vec::with_capacity(DATAGRAMS_PER_CALL),
        }
    }

    /// The `i`th datagram of the last receive.
    pub(crate) fn datagram(&self, i: usize) -> &[u8] {
        let start = i * self.size;
        &self.buf[start..start + self.lens[i]]
    }

    /// Waits for a datagram (up to the socket's read timeout), then takes
    /// it and whatever else is queued; returns how many.
    #[cfg(target_os = "linux")]
    pub(crate) fn recv(&mut self, fd: std::os::fd::RawFd) -> io::Result<usize> {
        // SAFETY: every iovec points into `self.buf`, at disjoint ranges of
        // `self.size` bytes, and `hdrs` and `iovs` outlive the call.
        let mut iovs: [libc::iovec; DATAGRAMS_PER_CALL] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; DATAGRAMS_PER_CALL] = unsafe { std::mem::zeroed() };
        let base = self.buf.as_mut_ptr();
        for (i, (iov, hdr)) in iovs.iter_mut().zip(hdrs.iter_mut()).enumerate() {
            iov.iov_base = unsafe { base.add(i * self.size) }.cast();
            iov.iov_len = self.size;
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
        }
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                DATAGRAMS_PER_CALL as _,
                libc::MSG_WAITFORONE as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.lens.clear();
        self.lens
            .extend(hdrs[..n as usize].iter().map(|h| h.msg_len as usize));
        Ok(n as usize)
    }

    /// Waits for a datagram (up to the socket's read timeout) and takes it.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn recv(&mut self, fd: std::os::fd::RawFd) -> io::Result<usize> {
        // SAFETY: the first buffer is `self.size` bytes of `self.buf`.
        let n = unsafe { libc::recv(fd, self.buf.as_mut_ptr().cast(), self.size, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.lens.clear();
        self.lens.push(n as usize);
        Ok(1)
    }
}

/// Received datagrams, back to back, with where each one ends.
#[derive(Default)]
struct Block {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Block {
    fn push(&mut self, datagram: &[u8]) {
        self.bytes.extend_from_slice(datagram);
        self.ends.push(self.bytes.len());
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(s, &e)| &self.bytes[s..e])
    }

    /// Empties the block, keeping a moderate allocation for the next one.
    fn clear(&mut self) {
        const KEEP: usize = 256 * 1024;
        self.bytes.clear();
        self.ends.clear();
        if self.bytes.capacity() > 4 * KEEP {
            self.bytes.shrink_to(KEEP);
            self.ends.shrink_to(KEEP / 64);
        }
    }
}

/// What the two threads share.
#[derive(Default)]
struct Handoff {
    state: Mutex<Pending>,
    /// The parser waits here for datagrams.
    ready: Condvar,
    /// The receiver waits here for the parser to take a full block.
    room: Condvar,
}

#[derive(Default)]
struct Pending {
    block: Block,
    /// No more datagrams will come (set by the receiver), or nobody parses
    /// them any more (set by the parser when the aggregator is gone).
    closed: bool,
    parser_idle: bool,
    receiver_waiting: bool,
    /// When the first datagram of `block` arrived.
    first_at: Option<Instant>,
}

impl Handoff {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic of the other thread must not stop this one: the data is
        // only bytes and flags, consistent at every unlock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
        self.room.notify_all();
    }
}

/// Serves a datagram socket: receives on a blocking thread of its own (a
/// thread waiting in the receive call is woken by the kernel directly,
/// which takes datagrams off the short socket queue several times faster
/// than a readiness wake-up of an async task) and parses on another.
pub(super) async fn serve_datagrams(
    ctx: IngestContext,
    transport: &'static str,
    sock: io::Result<Dgram>,
) {
    let sock = match sock.and_then(|s| s.set_blocking(Duration::from_millis(100)).map(|_| s)) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(transport, error = %e, "cannot read the datagram socket");
            return;
        }
    };
    let _ = tokio::task::spawn_blocking(move || run(ctx, transport, sock)).await;
}

/// Starts the parsing thread, receives until shutdown (reading the socket
/// dry), then waits for everything received to be parsed and sent.
fn run(ctx: IngestContext, transport: &'static str, sock: Dgram) {
    let handoff = std::sync::Arc::new(Handoff::default());
    let parser = {
        let (ctx, handoff) = (ctx.clone(), handoff.clone());
        std::thread::Builder::new()
            .name("datagram-parse".into())
            .spawn(move || parse_loop(&ctx, transport, &handoff))
    };
    let parser = match parser {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(transport, error = %e, "cannot start the datagram parser");
            return;
        }
    };
    receive_loop(&ctx, transport, &sock, &handoff);
    handoff.close();
    let _ = parser.join();
}

fn receive_loop(ctx: &IngestContext, transport: &str, sock: &Dgram, handoff: &Handoff) {
    // One byte more than the limit tells an over-long datagram apart.
    let max = ctx.options.max_line_bytes;
    let mut rx = Receiver::new(max + 1);
    let fd = sock.fd();
    // What the kernel dropped (receive buffer full), read every
    // DROPS_EVERY while receiving or idle, and once more at the end.
    let overflowed = ctx
        .metrics
        .datagrams_dropped
        .with_label_values(&[transport]);
    // The socket was made for this listener: every drop it counts is ours,
    // even those before this thread started.
    let mut drops_seen = 0u32;
    let mut drops_read = Instant::now();
    let mut count_drops = |force: bool| {
        if force || drops_read.elapsed() >= DROPS_EVERY {
            drops_read = Instant::now();
            if let Some(d) = kernel_drops(fd) {
                overflowed.inc_by(u64::from(d.wrapping_sub(drops_seen)));
                drops_seen = d;
            }
        }
    };
    loop {
        let stopping = ctx.shutdown.is_triggered();
        count_drops(stopping);
        match rx.recv(fd) {
            Ok(n) => {
                for i in 0..n {
                    let d = rx.datagram(i);
                    if d.len() > max {
                        ctx.rejects.reject(
                            &Reject::new(
                                RejectReason::TooLong,
                                format!("datagram longer than {max} bytes"),
                            ),
                            &d[..64.min(d.len())],
                            transport,
                        );
                    }
                }
                let mut p = handoff.lock();
                while p.block.bytes.len() >= PENDING_LIMIT && !p.closed {
                    p.receiver_waiting = true;
                    p = handoff.room.wait(p).unwrap_or_else(|e| e.into_inner());
                }
                if p.closed {
                    return;
                }
                let was_empty = p.block.is_empty();
                for i in 0..n {
                    let d = rx.datagram(i);
                    if d.len() <= max {
                        p.block.push(d);
                    }
                }
                if was_empty && !p.block.is_empty() {
                    p.first_at = Some(Instant::now());
                }
                // An idle parser waits without a timeout while there is
                // nothing, and with one (GATHER) while there is a little.
                let wake = p.parser_idle
                    && !p.block.is_empty()
                    && (was_empty || p.block.ends.len() >= WAKE_AT);
                drop(p);
                if wake {
                    handoff.ready.notify_one();
                }
                if n < DATAGRAMS_PER_CALL && stopping {
                    // The queue is read dry after shutdown.
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                // Nothing came within the timeout: after shutdown, the
                // queue is empty and we are done.
                if stopping {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(transport, error = %e, "datagram receive failed");
                std::thread::sleep(Duration::from_millis(10));
                if stopping {
                    return;
                }
            }
        }
    }
}

/// Takes every block the receiver filled, parses it, and sends its events
/// in batches of up to [`BATCH_EVENTS`]; ends when the receiver is done and
/// everything is sent, or when the aggregator is gone.
fn parse_loop(ctx: &IngestContext, transport: &str, handoff: &Handoff) {
    let mut block = Block::default();
    let mut batch = Batch::new();
    loop {
        {
            let mut p = handoff.lock();
            loop {
                if p.closed || p.block.ends.len() >= WAKE_AT {
                    break;
                }
                let waited = p.first_at.map(|t| t.elapsed());
                match waited {
                    None => {
                        p.parser_idle = true;
                        p = handoff.ready.wait(p).unwrap_or_else(|e| e.into_inner());
                    }
                    Some(w) if w >= GATHER => break,
                    Some(w) => {
                        p.parser_idle = true;
                        p = handoff
                            .ready
                            .wait_timeout(p, GATHER - w)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
            }
            p.parser_idle = false;
            if p.block.is_empty() {
                return; // closed, and nothing left
            }
            p.first_at = None;
            std::mem::swap(&mut p.block, &mut block);
            if std::mem::take(&mut p.receiver_waiting) {
                handoff.room.notify_one();
            }
        }
        // A datagram may hold many lines: the batch is sent as it fills.
        for line in block.datagrams().flat_map(|d| d.split(|&b| b == b'\n')) {
            take_line(line, &mut batch, ctx, transport);
            if batch.len() >= BATCH_EVENTS && ctx.tx.blocking_send(hand_over(&mut batch)).is_err() {
                handoff.close();
                return;
            }
        }
        if !batch.is_empty() && ctx.tx.blocking_send(hand_over(&mut batch)).is_err() {
            handoff.close();
            return;
        }
        block.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Block;

    #[test]
    fn a_block_gives_back_its_datagrams_in_order() {
        let mut b = Block::default();
        assert!(b.is_empty());
        for d in [&b"{\"a\":1}"[..], b"", b"x\ny"] {
            b.push(d);
        }
        let got: Vec<&[u8]> = b.datagrams().collect();
        assert_eq!(got, [&b"{\"a\":1}"[..], b"", b"x\ny"]);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.datagrams().count(), 0);
    }
}
