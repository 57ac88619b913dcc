"""Shared test helpers: local sockets that record what the client sends, and
the real exporter binary started on temporary sockets."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

REPO = HERE.parents[2]
PATIENCE = 20.0


@pytest.fixture
def sockdir():
    # Short paths: unix socket paths are limited to 108 bytes.
    d = tempfile.mkdtemp(prefix="mec-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


class DgramReceiver:
    """A bound unix datagram socket recording what arrives. The client's
    own reports of drops (``"type":"client"``) are kept apart, in
    ``reports``."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.reports = []

    def _recv(self):
        d = self.sock.recv(1 << 17)
        if d.startswith(b'{"type":"client"'):
            self.reports.append(json.loads(d))
            return None
        return d

    def _collect(self, wait_for, add):
        """Receives until at least ``wait_for`` items were added by
        ``add(datagram, out)`` and nothing more came for 50 ms (or 5
        seconds passed)."""
        out = []
        deadline = time.monotonic() + 5
        while True:
            try:
                d = self._recv()
            except socket.timeout:
                if len(out) >= wait_for or time.monotonic() > deadline:
                    return out
                continue
            if d is not None:
                add(d, out)

    def datagrams(self, wait_for=1):
        """The datagrams received (reports left out)."""
        return self._collect(wait_for, lambda d, out: out.append(d))

    def events(self, wait_for=1):
        """The events received (a datagram may hold several lines)."""
        return self._collect(
            wait_for, lambda d, out: out.extend(json.loads(l) for l in d.split(b"\n") if l)
        )

    def close(self):
        self.sock.close()


try:
    __import__("orjson")
    ENCODERS = ["json", "orjson"]
except ImportError:
    ENCODERS = ["json", pytest.param("orjson", marks=pytest.mark.skip(reason="orjson is not installed"))]


@pytest.fixture(params=ENCODERS)
def encoder(request):
    """Each test that takes it runs with both encoders."""
    return request.param


@pytest.fixture
def receiver(sockdir):
    r = DgramReceiver(os.path.join(sockdir, "d.sock"))
    yield r
    r.close()


class StreamServer:
    """A unix stream listener that collects every byte of every connection.

    ``read_pause`` stops reading (so the client's writes back up)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.data = bytearray()
        self.connections = 0
        self.conns = []
        self.reading = threading.Event()
        self.reading.set()
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.conns.append(c)
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c):
        while True:
            self.reading.wait()
            try:
                b = c.recv(65536)
            except OSError:
                return
            if not b:
                return
            with self.lock:
                self.data += b

    def lines(self):
        """The complete lines received so far."""
        with self.lock:
            whole = bytes(self.data[: self.data.rfind(b"\n") + 1])
        return [json.loads(l) for l in whole.split(b"\n") if l]

    def wait_lines(self, n):
        deadline = time.monotonic() + PATIENCE
        while len(self.lines()) < n:
            assert time.monotonic() < deadline, "only %d lines arrived" % len(self.lines())
            time.sleep(0.01)
        return self.lines()

    def close_connections(self):
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns = []

    def stop(self):
        self.stopped = True
        self.close_connections()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


@pytest.fixture
def stream_server(sockdir):
    s = StreamServer(os.path.join(sockdir, "s.sock"))
    yield s
    s.reading.set()
    s.stop()


# -- the real exporter ------------------------------------------------------


def exporter_binary():
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    binary = target / "debug" / "model-exporter"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--quiet"], cwd=str(REPO), check=True)
    assert binary.exists(), "no %s after cargo build" % binary
    return str(binary)


class Exporter:
    """The exporter binary on temporary sockets and an ephemeral HTTP port;
    bound addresses are read from its JSON log."""

    def __init__(self, listen, dir):
        self.dir = dir
        args = [
            exporter_binary(),
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
        ]
        for l in listen:
            args += ["--events.listen", l]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.log = []
        self.cond = threading.Condition()
        self.closed = False
        threading.Thread(target=self._read_log, daemon=True).start()
        if not self.wait_log("model-exporter started"):
            self.proc.kill()
            raise AssertionError("exporter did not start:\n%s" % self.log_text())
        self.web = None
        self.events = {}
        for v in list(self.log):
            f = v.get("fields", {})
            addr = f.get("address", "")
            if f.get("message") == "serving HTTP":
                self.web = addr
            elif f.get("message") == "listening for events":
                scheme, rest = addr.split("://", 1)
                self.events[scheme] = rest

    def _read_log(self):
        for raw in self.proc.stderr:
            try:
                v = json.loads(raw)
            except ValueError:
                v = {"fields": {"message": raw.decode(errors="replace").rstrip()}}
            with self.cond:
                self.log.append(v)
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def log_text(self):
        return "\n".join(json.dumps(v) for v in self.log)

    def wait_log(self, message):
        deadline = time.monotonic() + PATIENCE
        with self.cond:
            while True:
                for v in self.log:
                    if v.get("fields", {}).get("message") == message:
                        return v
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    return None
                self.cond.wait(left)

    def metrics(self):
        with urllib.request.urlopen("http://%s/metrics" % self.web, timeout=PATIENCE) as r:
            assert r.status == 200
            return r.read().decode()

    def sample(self, series, text=None):
        """The value of ``name{labels}`` exactly as exposed, or None."""
        for line in (text if text is not None else self.metrics()).splitlines():
            if line.startswith(series + " "):
                return float(line[len(series) + 1 :].split(" ")[0])
        return None

    def wait_sample(self, series, want):
        deadline = time.monotonic() + PATIENCE
        while True:
            text = self.metrics()
            got = self.sample(series, text)
            if got == want:
                return
            if time.monotonic() > deadline:
                raise AssertionError("%s is %r, wanted %r\n%s" % (series, got, want, text))
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(PATIENCE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def exporter(sockdir):
    e = Exporter(
        [
            "unix://%s" % os.path.join(sockdir, "e.sock"),
            "unixgram://%s" % os.path.join(sockdir, "d.sock"),
        ],
        sockdir,
    )
    yield e
    e.stop()
