"""Sockets that never block and never raise: events are gathered into
batches (several newline-separated events per datagram or write), sent
without waiting, and what cannot be sent is counted by reason.

The caller appends an encoded event to the current batch under a lock; a
full batch is sent at once by the caller (one non-blocking system call for
many events). A background thread sends what is left within
``FLUSH_INTERVAL``, waits (in ``poll``, without the GIL) for the exporter to
make room when its queue was full, and reports what was dropped."""

import atexit
import errno
import os
import select
import socket
import threading
import time
import weakref
from collections import deque

from ._encode import json_str
from ._warn import Warner

__all__ = [
    "Datagram",
    "Stream",
    "REASONS",
    "STREAM_BUFFER",
    "BUFFER",
    "MAX_DATAGRAM",
    "RECONNECT_DELAY",
    "FLUSH_INTERVAL",
    "REPORT_INTERVAL",
]

#: Bytes of encoded events a client holds while the exporter cannot take
#: them (a full socket queue, or a reconnection within ``RECONNECT_DELAY``).
#: Past this, events are dropped and counted.
BUFFER = 4 << 20
#: The same bound, under the name earlier versions used for the stream.
STREAM_BUFFER = BUFFER
#: Largest datagram (and largest write) the client makes. The exporter's
#: ``--events.max-line-bytes`` (64 KiB by default) must not be smaller.
MAX_DATAGRAM = 16 * 1024
#: Least time between two attempts to (re)connect.
RECONNECT_DELAY = 1.0
#: Longest an event waits in a partly filled batch.
FLUSH_INTERVAL = 0.01
#: How often, at most, a client reports what it dropped.
REPORT_INTERVAL = 10.0

#: Why events are lost. The first five are reported to the exporter
#: (``model_exporter_client_dropped_total{reason}``); ``closed`` (sent after
#: ``close()``) and ``exit`` (still held when the process ended) cannot be.
REASONS = (
    "queue_full",
    "no_exporter",
    "socket_error",
    "too_large",
    "invalid_event",
    "closed",
    "exit",
)
_REPORTED = REASONS[:5]

_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)
_GONE = (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTCONN, errno.EPIPE, errno.ECONNRESET)

# Transports to repair in a forked child and to flush at exit.
_live = weakref.WeakSet()


def _after_fork():
    for t in list(_live):
        try:
            t._after_fork()
        except Exception:
            pass


def _at_exit():
    for t in list(_live):
        try:
            t.close(reason="exit")
        except Exception:
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
atexit.register(_at_exit)


def _reason_of(e):
    """The drop reason for a failed connect or send: the exporter is not
    there (no socket file, nobody listening, a connection it closed), or
    any other socket error."""
    if isinstance(e, (FileNotFoundError, ConnectionError)) or getattr(e, "errno", None) in _GONE:
        return "no_exporter"
    return "socket_error"


class _Transport:
    """What both transports share: the batch, the buffer of framed data
    waiting for the socket, the counters, the flusher thread and the report
    of drops. Every attribute below is guarded by ``self.lock``."""

    kind = socket.SOCK_DGRAM

    def __init__(self, path, model, warner=None, buffer=BUFFER, max_datagram=MAX_DATAGRAM,
                 flush_interval=FLUSH_INTERVAL, report_interval=REPORT_INTERVAL):
        self.path = path
        self.model = model
        self.warn = warner or Warner()
        self.buffer = int(buffer)
        self.max_datagram = int(max_datagram)
        self.flush_interval = float(flush_interval)
        self.report_interval = float(report_interval)
        self._fresh()
        _live.add(self)

    def _fresh(self):
        self.lock = threading.Lock()
        self.sock = None
        self.batch = []  # encoded events of the current batch
        self.batch_bytes = 0
        self.pending_bytes = 0  # everything held: batch and framed data
        self.pending_events = 0
        self.blocked = False  # the socket refused the last write: wait for room
        self.last_attempt = None
        self.closed = False
        self.sent = 0
        self.dropped = dict.fromkeys(REASONS, 0)
        self.reported = dict.fromkeys(_REPORTED, 0)
        self.omitted = 0
        self.omitted_reported = 0
        self.report_due = True  # a first report, so the exporter's series start at 0
        self.report_inflight = False
        self.last_report = None
        self.thread = None
        self.idle = True  # no flusher yet: the first event starts it
        self.wake = threading.Event()

    # -- the caller's side --------------------------------------------------

    def send(self, data):
        """Adds one encoded event (bytes, no newline). Never blocks."""
        with self.lock:
            n = len(data) + 1
            b = self.batch_bytes + n
            p = self.pending_bytes + n
            if b > self.max_datagram or p > self.buffer or self.closed:
                self._send_slow(data, n)
                return
            self.batch.append(data)
            self.batch_bytes = b
            self.pending_bytes = p
            self.pending_events += 1
            if self.idle:
                self._wake()

    def _send_slow(self, data, n):
        if self.closed:
            self.dropped["closed"] += 1
            return
        if n > self.max_datagram:
            self._too_large(n)
            return
        if self.batch_bytes + n > self.max_datagram:
            self._seal()
            if not self.blocked:
                self._drain()
        if self.pending_bytes + n > self.buffer:
            self._drop_new(1)
            return
        self.batch.append(data)
        self.batch_bytes += n
        self.pending_bytes += n
        self.pending_events += 1
        if self.idle:
            self._wake()

    def omit(self, n=1):
        """``n`` values were left out of an event that was still sent."""
        with self.lock:
            self.omitted += n

    def invalid(self):
        """A call made no event (a required value was missing)."""
        with self.lock:
            self.dropped["invalid_event"] += 1

    def _too_large(self, n):
        self.dropped["too_large"] += 1
        self.warn.warn(
            "too_large",
            "an event of %d bytes is longer than the largest datagram (%d bytes): dropped",
            n,
            self.max_datagram,
        )

    def _drop_new(self, n):
        reason = "queue_full" if self.sock is not None else "no_exporter"
        self.dropped[reason] += n
        if reason == "queue_full":
            self.warn.warn(
                "queue_full",
                "the exporter at %s does not keep up: %d bytes are waiting, events are dropped",
                self.path,
                self.pending_bytes,
            )

    def _wake(self):
        self.idle = False
        if self.thread is None:
            self._start_flusher()
        else:
            self.wake.set()

    # -- connecting -----------------------------------------------------------

    def _connect(self):
        """Connects unless the last attempt was less than RECONNECT_DELAY
        ago. On failure, everything held is dropped: the exporter is not
        there."""
        now = time.monotonic()
        if self.last_attempt is not None and now - self.last_attempt < RECONNECT_DELAY:
            return False
        self.last_attempt = now
        try:
            s = socket.socket(socket.AF_UNIX, self.kind)
        except Exception as e:
            self._fail(e, "cannot create a socket")
            return False
        try:
            s.setblocking(False)
            s.connect(self.path)
        except Exception as e:
            s.close()
            self._fail(e, "cannot connect")
            return False
        self.sock = s
        self.blocked = False
        return True

    def _fail(self, e, what):
        reason = _reason_of(e)
        lost = self._discard()
        self.dropped[reason] += lost
        if reason == "no_exporter":
            self.warn.warn(
                "no_exporter",
                "no exporter listens at %s (%s): events are dropped; is model-exporter running, "
                "and is this its --events.listen socket?",
                self.path,
                e,
            )
        else:
            self.warn.warn("socket_error", "%s to %s: %s; events are dropped", what, self.path, e)

    def _disconnect(self):
        s, self.sock = self.sock, None
        self.blocked = False
        if s is not None:
            try:
                s.close()
            except Exception:
                pass

    def _broken(self, e):
        """The socket failed: drop it, try once more at once (the exporter
        may have restarted), else drop what is held."""
        self._disconnect()
        if self._connect():
            return True
        # Not reconnected (or not tried, within the rate limit): what is
        # held is lost with the connection.
        self.dropped[_reason_of(e)] += self._discard()
        return False

    # -- reports ----------------------------------------------------------------

    def _report_line(self):
        """The ``client`` event with what was dropped since the last report,
        or None when there is nothing to say."""
        delta = {}
        for r in _REPORTED:
            d = self.dropped[r] - self.reported[r]
            if d:
                delta[r] = d
        omitted = self.omitted - self.omitted_reported
        if not delta and not omitted and not self.report_due:
            return None, None
        parts = ['{"type":"client","model":', json_str(self.model), ',"dropped":{']
        parts.append(",".join('"%s":%d' % kv for kv in delta.items()))
        parts.append("}")
        if omitted:
            parts.append(',"values_omitted":%d' % omitted)
        parts.append("}")
        return "".join(parts).encode(), (delta, omitted)

    def _reported(self, counts):
        delta, omitted = counts
        for r, d in delta.items():
            self.reported[r] += d
        self.omitted_reported += omitted
        self.report_due = False
        self.report_inflight = False

    def _maybe_report(self, now, force=False):
        if self.report_inflight or self.sock is None:
            return
        if not force and self.last_report is not None and now - self.last_report < self.report_interval:
            return
        line, counts = self._report_line()
        if line is None:
            return
        self.last_report = now
        self.report_inflight = True
        self._queue_report(line, counts)

    # -- the flusher ----------------------------------------------------------

    def _start_flusher(self):
        try:
            t = threading.Thread(
                target=_flusher,
                args=(weakref.ref(self),),
                name="model-exporter-client-flush",
                daemon=True,
            )
            t.start()
            self.thread = t
        except Exception:
            # No thread: full batches are still sent by the caller.
            self.thread = None

    def _push(self):
        """Seals the batch, connects if need be (within the rate limit) and
        sends what the socket takes now. Returns whether it is connected."""
        self._seal()
        if self.sock is None and self.pending_bytes:
            self._connect()
        if self.sock is None:
            return False
        self.blocked = False
        self._drain()
        return True

    def tick(self):
        """One round of the flusher: seal the batch, send what the socket
        takes, report. Returns (file descriptor to wait on for room, or None;
        whether anything is still held)."""
        with self.lock:
            if self.closed:
                return None, False
            self._push()
            self._maybe_report(time.monotonic())
            held = self.pending_bytes > 0 or self.report_inflight
            if not held:
                self.idle = True
                self.wake.clear()
            fd = None
            if self.blocked and self.sock is not None:
                try:
                    fd = self.sock.fileno()
                except Exception:
                    fd = None
            return fd, held

    def flush(self):
        """Sends what is held as far as the socket takes it now, never
        waiting; returns the bytes still held. While no exporter listens
        (or within ``RECONNECT_DELAY`` of a failed attempt), what is held is
        dropped as ``no_exporter``."""
        with self.lock:
            if self.closed:
                return 0
            if not self._push():
                self.dropped["no_exporter"] += self._discard()
            return self.pending_bytes

    def close(self, reason="closed"):
        """Sends what it can without waiting, reports, and closes. What is
        still held is dropped (``reason``)."""
        with self.lock:
            if self.closed:
                return
            if self._push():
                self._maybe_report(time.monotonic(), force=True)
                self._push()
            self.dropped[reason] += self._discard()
            self.closed = True
            self._disconnect()
            self.wake.set()

    def pending(self):
        with self.lock:
            return self.pending_bytes

    def stats(self):
        with self.lock:
            dropped = dict(self.dropped)
            return {
                "sent": self.sent,
                "dropped": sum(dropped.values()),
                "pending": self.pending_events,
                "values_omitted": self.omitted,
                "dropped_by_reason": dropped,
            }

    def _after_fork(self):
        # What the parent held and counted is the parent's; the child
        # starts over with a connection and a flusher of its own.
        s = self.sock
        self._fresh()
        if s is not None:
            try:
                s.close()
            except Exception:
                pass


class Datagram(_Transport):
    """Batches of events, one datagram each, on a non-blocking unix
    datagram socket connected to the exporter's path."""

    kind = socket.SOCK_DGRAM

    def _fresh(self):
        super()._fresh()
        self.ready = deque()  # (datagram, events, report counts or None)

    def _seal(self):
        if self.batch:
            data = b"\n".join(self.batch)
            self.ready.append((data, len(self.batch), None))
            self.pending_bytes += len(data) + 1 - self.batch_bytes  # -1 newline per datagram
            self.batch = []
            self.batch_bytes = 0

    def _queue_report(self, line, counts):
        self.ready.appendleft((line, 0, counts))

    def _discard(self):
        """Drops everything held (reports excepted: their counts are only
        taken when sent). Returns the events dropped."""
        lost = self.pending_events
        self.ready.clear()
        self.batch = []
        self.batch_bytes = 0
        self.pending_bytes = 0
        self.pending_events = 0
        self.report_inflight = False
        return lost

    def _drain(self):
        """Sends ready datagrams until the socket is full."""
        ready = self.ready
        while ready:
            if self.sock is None and not self._connect():
                return
            data, n, counts = ready[0]
            try:
                self.sock.send(data)
            except BlockingIOError:
                self.blocked = True
                return
            except InterruptedError:
                continue
            except OSError as e:
                if e.errno == errno.EMSGSIZE:
                    # Longer than the socket takes (the exporter's limit, or
                    # the sender's buffer): this datagram is lost.
                    ready.popleft()
                    self._forget(data, n)
                    self.dropped["too_large"] += n
                    self.warn.warn(
                        "too_large", "a datagram of %d bytes was refused (%s): dropped", len(data), e
                    )
                    continue
                if not self._broken(e):
                    return
                continue
            except Exception as e:
                if not self._broken(e):
                    return
                continue
            ready.popleft()
            self._forget(data, n)
            self.sent += n
            if counts is not None:
                self._reported(counts)

    def _forget(self, data, n):
        if n:
            self.pending_bytes -= len(data) + 1
            self.pending_events -= n


class Stream(_Transport):
    """Newline-terminated events on a non-blocking unix stream connection,
    written a batch at a time."""

    kind = socket.SOCK_STREAM

    def _fresh(self):
        super()._fresh()
        self.buf = bytearray()  # framed lines waiting for the socket
        self.buf_events = 0
        self.head_partial = False  # the first line of buf is partly written
        self.report_at = None  # (end offset in buf, counts) of a queued report

    def _seal(self):
        if self.batch:
            self.batch.append(b"")
            self.buf += b"\n".join(self.batch)
            self.buf_events += len(self.batch) - 1
            self.batch = []
            self.batch_bytes = 0

    def _queue_report(self, line, counts):
        # Appended: lines cannot be put in front of a half-written one.
        self._seal()
        self.buf += line + b"\n"
        self.report_at = (len(self.buf), counts)

    def _discard(self):
        lost = self.pending_events
        self.buf = bytearray()
        self.buf_events = 0
        self.head_partial = False
        self.batch = []
        self.batch_bytes = 0
        self.pending_bytes = 0
        self.pending_events = 0
        self.report_at = None
        self.report_inflight = False
        return lost

    def _drain(self):
        buf = self.buf
        while buf:
            if self.sock is None:
                if not self._connect():
                    return
                buf = self.buf
            try:
                n = self.sock.send(buf, _NOSIGNAL)
            except BlockingIOError:
                self.blocked = True
                return
            except InterruptedError:
                continue
            except Exception as e:
                # What was written of a line is lost with the connection;
                # a new connection must start at a line's beginning.
                if not self._broken(e):
                    return
                buf = self.buf
                continue
            if n <= 0:
                self.blocked = True
                return
            lines = buf.count(b"\n", 0, n)
            if self.report_at is not None:
                end, counts = self.report_at
                if n >= end:
                    lines -= 1
                    self.report_at = None
                    self._reported(counts)
                else:
                    self.report_at = (end - n, counts)
            self.head_partial = buf[n - 1] != 10  # 10: b"\n"
            del buf[:n]
            self.sent += lines
            self.buf_events -= lines
            self.pending_events -= lines
            self.pending_bytes = len(buf) + self.batch_bytes

    def _broken(self, e):
        # The rest of a half-written line would corrupt the new connection:
        # that line is lost; whole lines are kept for the new connection.
        self._disconnect()
        if self.head_partial:
            cut = self.buf.find(b"\n") + 1
            del self.buf[:cut]
            self.head_partial = False
            self.buf_events -= 1
            self.pending_events -= 1
            self.dropped[_reason_of(e)] += 1
            if self.report_at is not None and self.report_at[0] <= cut:
                self.report_at = None
                self.report_inflight = False
            elif self.report_at is not None:
                self.report_at = (self.report_at[0] - cut, self.report_at[1])
        self.pending_bytes = len(self.buf) + self.batch_bytes
        if self._connect():
            return True
        self.dropped[_reason_of(e)] += self._discard()
        return False


def _flusher(ref):
    """Sends what a transport holds within its flush interval; waits for
    room (in ``poll``) when the exporter's queue is full; sends reports.
    Sleeps while nothing is held; ends with the transport."""
    poller = None
    while True:
        t = ref()
        if t is None:
            return
        try:
            fd, held = t.tick()
            interval = t.flush_interval
            closed = t.closed
            wake = t.wake
            report_interval = t.report_interval
        except Exception:
            fd, held, interval, closed, wake, report_interval = None, True, FLUSH_INTERVAL, False, None, REPORT_INTERVAL
        del t
        if closed:
            return
        if fd is not None:
            try:
                if poller is None:
                    poller = select.poll()
                poller.register(fd, select.POLLOUT)
                try:
                    poller.poll(interval * 1000.0)
                finally:
                    poller.unregister(fd)
            except Exception:
                time.sleep(interval)
        elif held or wake is None:
            time.sleep(interval)
        else:
            # Nothing held: sleep until the next event (or the next report).
            wake.wait(report_interval)
