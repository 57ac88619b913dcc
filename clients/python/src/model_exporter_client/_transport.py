"""Sockets that never block and never raise: what they cannot send they
count."""

import errno
import os
import socket
import threading
import time
import weakref

__all__ = ["Counters", "Datagram", "Stream", "STREAM_BUFFER", "RECONNECT_DELAY"]

#: Bytes a stream client holds while the socket cannot take more; past this,
#: events are dropped (and counted).
STREAM_BUFFER = 256 * 1024
#: Least time between two attempts to (re)connect a stream client.
RECONNECT_DELAY = 1.0
#: How often the background thread writes what a stream socket could not
#: take at once.
FLUSH_INTERVAL = 0.05

_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)

# Transports to repair in a forked child (locks held by other threads at the
# fork would never be released there).
_live = weakref.WeakSet()


def _after_fork():
    for t in list(_live):
        try:
            t._after_fork()
        except Exception:
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class Counters:
    """Thread-safe event counters."""

    __slots__ = ("lock", "sent", "dropped", "errors")

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.dropped = 0
        self.errors = 0

    def error(self, n=1):
        with self.lock:
            self.errors += n

    def snapshot(self):
        with self.lock:
            return {"sent": self.sent, "dropped": self.dropped, "errors": self.errors}


class Datagram:
    """One datagram per event on a non-blocking socket connected to the
    exporter's path (a connected socket spares the kernel a path lookup per
    event). When the receiver's queue is full the event is dropped; when
    nobody listens it is an error. After an error the socket is connected
    again at most once per ``RECONNECT_DELAY``; until then events are
    counted as errors at once, without a system call."""

    def __init__(self, path, counters):
        self.path = path
        self.c = counters
        self.lock = threading.Lock()  # taken to (re)connect only
        self.sock = None
        self._send = None
        self.last_attempt = None
        self.closed = False
        _live.add(self)

    def _connect(self):
        """Connects unless another thread just did or the last attempt was
        less than ``RECONNECT_DELAY`` ago. Returns the send method or None."""
        with self.lock:
            if self._send is not None or self.closed:
                return self._send
            now = time.monotonic()
            if self.last_attempt is not None and now - self.last_attempt < RECONNECT_DELAY:
                return None
            self.last_attempt = now
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            except Exception:
                return None
            try:
                s.setblocking(False)
                s.connect(self.path)
            except Exception:
                s.close()
                return None
            self.sock = s
            self._send = s.send
            return self._send

    def _disconnect(self, send):
        with self.lock:
            if self._send is send:  # not replaced by another thread meanwhile
                s, self.sock, self._send = self.sock, None, None
                try:
                    s.close()
                except Exception:
                    pass

    def send(self, data):
        c = self.c
        send = self._send
        if send is None:
            send = self._connect()
            if send is None:
                with c.lock:
                    c.errors += 1
                return
        try:
            send(data)
        except BlockingIOError:
            with c.lock:
                c.dropped += 1
            return
        except Exception as e:
            if getattr(e, "errno", None) == errno.EMSGSIZE:
                with c.lock:
                    c.errors += 1
                return
            # The exporter went away, or restarted on a new socket: one
            # immediate attempt on a fresh connection, within the rate limit.
            self._disconnect(send)
            send = self._connect()
            try:
                if send is None:
                    raise ConnectionError
                send(data)
            except BlockingIOError:
                with c.lock:
                    c.dropped += 1
                return
            except Exception:
                with c.lock:
                    c.errors += 1
                return
        with c.lock:
            c.sent += 1

    def flush(self):
        return 0

    def close(self):
        with self.lock:
            self.closed = True
            s, self.sock, self._send = self.sock, None, None
        if s is not None:
            s.close()

    def _after_fork(self):
        # Datagrams are whole: parent and child can share the socket.
        self.lock = threading.Lock()
        self.c.lock = threading.Lock()


class Stream:
    """Newline-terminated events on a non-blocking unix stream connection.

    What the socket cannot take at once is held (up to ``STREAM_BUFFER``
    bytes) and written by the next send or by a background thread. A broken
    connection is re-established at most once per ``RECONNECT_DELAY``;
    events lost with it move from ``sent`` to ``errors``."""

    def __init__(self, path, counters):
        self.path = path
        self.c = counters
        self.lock = threading.Lock()
        self.sock = None
        self._send = None
        self.buf = bytearray()
        self.last_attempt = None
        self.thread = None
        self.closed = False
        _live.add(self)

    # All methods below whose name starts with "_" run under self.lock.

    def _connect(self):
        now = time.monotonic()
        if self.last_attempt is not None and now - self.last_attempt < RECONNECT_DELAY:
            return False
        self.last_attempt = now
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.setblocking(False)
            s.connect(self.path)
        except Exception:
            s.close()
            return False
        self.sock = s
        self._send = s.send
        # Bytes of a half-written line would corrupt the new stream.
        self.buf.clear()
        return True

    def _disconnect(self):
        """Drops the connection and what it held; returns the events lost."""
        s, self.sock, self._send = self.sock, None, None
        if s is not None:
            try:
                s.close()
            except Exception:
                pass
        lost = self.buf.count(b"\n")
        self.buf.clear()
        return lost

    def _flush(self):
        """Writes what the socket takes now; returns the events lost to a
        broken connection (0 when all is well)."""
        buf = self.buf
        send = self._send
        if send is None:
            return self._disconnect()
        while buf:
            try:
                n = send(buf, _NOSIGNAL)
            except BlockingIOError:
                return 0
            except InterruptedError:
                continue
            except Exception:
                return self._disconnect()
            if n <= 0:
                return 0
            del buf[:n]
        return 0

    def _lost(self, n):
        """``n`` events counted as sent never reached the exporter."""
        c = self.c
        with c.lock:
            c.sent -= min(n, c.sent)
            c.errors += n

    def _write(self, data):
        """Writes or buffers one line; returns 'sent', 'dropped' or 'error'."""
        if self.sock is None and not self._connect():
            return "error"
        buf = self.buf
        if not buf:
            # Fast path: nothing queued before this line.
            try:
                n = self._send(data, _NOSIGNAL)
            except BlockingIOError:
                n = 0
            except InterruptedError:
                n = 0
            except Exception:
                self._disconnect()
                return "broken"
            if n < len(data):
                buf += data[n:] if n else data
                self._start_flusher()
            return "sent"
        if len(buf) + len(data) > STREAM_BUFFER:
            lost = self._flush()  # make room first
            if lost:
                self._lost(lost)
                return "broken"
            if len(buf) + len(data) > STREAM_BUFFER:
                return "dropped"
        buf += data
        lost = self._flush()
        if lost:
            # This line was among the lost ones but not yet counted as sent.
            self._lost(lost - 1)
            return "error"
        return "sent"

    def send(self, data):
        with self.lock:
            if self.closed:
                r = "error"
            else:
                r = self._write(data)
                if r == "broken":
                    # The exporter closed the connection (it restarted, or
                    # the connection was idle too long): one immediate
                    # reconnection attempt, within the rate limit.
                    r = self._write(data) if self.sock is None else "error"
                    if r == "broken":
                        r = "error"
        c = self.c
        with c.lock:
            if r == "sent":
                c.sent += 1
            elif r == "dropped":
                c.dropped += 1
            else:
                c.errors += 1

    def flush(self):
        with self.lock:
            if self.buf:
                lost = self._flush()
                if lost:
                    self._lost(lost)
            return len(self.buf)

    def pending(self):
        with self.lock:
            return len(self.buf)

    def close(self):
        with self.lock:
            self.closed = True
            if self.buf and self.sock is not None:
                lost = self._flush()
                if lost:
                    self._lost(lost)
            lost = self._disconnect()
            if lost:
                self._lost(lost)

    def _start_flusher(self):
        if self.thread is not None:
            return
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
            # No thread: the next send writes what is pending.
            pass

    def _after_fork(self):
        # The connection is shared with the parent: lines written by both
        # would interleave. The child starts over with a connection of its own.
        self.lock = threading.Lock()
        self.c.lock = threading.Lock()
        self.thread = None
        self.last_attempt = None
        s, self.sock, self._send = self.sock, None, None
        self.buf = bytearray()
        if s is not None:
            try:
                s.close()
            except Exception:
                pass


def _flusher(ref):
    """Writes what a stream socket could not take at once; ends when the
    buffer is empty (the next partial write starts it again) or the client
    is gone."""
    while True:
        time.sleep(FLUSH_INTERVAL)
        t = ref()
        if t is None:
            return
        try:
            with t.lock:
                if t.buf and t.sock is not None:
                    lost = t._flush()
                    if lost:
                        t._lost(lost)
                if not t.buf or t.sock is None or t.closed:
                    t.thread = None
                    return
        except Exception:
            t.thread = None
            return
        finally:
            del t
