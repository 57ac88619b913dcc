"""The Python client's cost per event, and its loss at a sustained rate.

    python3 clients/python/bench.py [--events 200000] [--exporter PATH]
        [--encoder orjson|json|both] [--features 3,30]
        [--rate 50000 --duration 60 --rate-features 3] [--only cost|rate]

Cost (``--only cost``): times loops of ``client.inference(latency_ms=...,
prediction=..., confidence=..., features={...})`` with ``time.perf_counter``
(wall) and ``time.process_time`` (the CPU of this process, flusher thread
included), for each encoder and feature count:
  * encode only: the event is built and encoded, the transport left out;
  * no listener: the socket path does not exist (events are dropped,
    counted as no_exporter);
  * hung exporter: a socket that is bound but never read (the queue fills;
    events are held up to the buffer, then dropped as queue_full);
  * the real exporter, over unixgram and over the unix stream.
Each loop reports the best and the median of ``--repeat`` rounds.

Rate (``--only rate``): sends ``--rate`` events a second for ``--duration``
seconds over unixgram to the real exporter (unique ids; ``--rate-features``
features each: by default 3, ``age``, ``income`` and ``country``, else that
many numeric ones),
pacing itself every millisecond, then compares what the client counts as
sent and dropped with what the exporter counts as received
(``model_exporter_events_received_total``).

The exporter is target/release/model-exporter (else target/debug), or
``--exporter``.
"""

import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE / "src"))

from model_exporter_client import Client  # noqa: E402
from model_exporter_client._encode import ORJSON  # noqa: E402


def features_of(n):
    if n == 3:
        return {"age": 35, "income": 51000.0, "country": "DE"}
    return {"feature_%02d" % i: 0.5 + i * 1.37 for i in range(n)}


def loop(client, n, features):
    inference = client.inference
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        inference(latency_ms=12.5, prediction=1, confidence=0.91, features=features)
    return (time.perf_counter() - t0) / n * 1e6, (time.process_time() - c0) / n * 1e6


def timed(make, n, features, repeat):
    walls, cpus, stats = [], [], None
    for _ in range(repeat):
        c = make()
        w, cpu = loop(c, n, features)
        c.flush()
        walls.append(w)
        cpus.append(cpu)
        stats = c.stats
        c.close()
    return walls, cpus, stats


def find_exporter(explicit):
    if explicit:
        return explicit
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    for profile in ("release", "debug"):
        b = target / profile / "model-exporter"
        if b.exists():
            return str(b)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=str(REPO), check=True)
    return str(target / "release" / "model-exporter")


class Exporter:
    def __init__(self, binary, d):
        self.gram, self.stream = os.path.join(d, "d.sock"), os.path.join(d, "e.sock")
        self.p = subprocess.Popen(
            [binary, "--web.listen-address", "127.0.0.1:0", "--log.format", "json",
             "--events.listen", "unixgram://" + self.gram,
             "--events.listen", "unix://" + self.stream],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.web = None
        started = threading.Event()

        def read():
            for line in self.p.stderr:
                try:
                    f = json.loads(line).get("fields", {})
                except ValueError:
                    continue
                if f.get("message") == "serving HTTP":
                    self.web = f.get("address")
                if f.get("message") == "model-exporter started":
                    started.set()

        threading.Thread(target=read, daemon=True).start()
        if not started.wait(30):
            self.p.kill()
            sys.exit("the exporter did not start")

    def received(self):
        """Inference events the exporter counted."""
        with urllib.request.urlopen("http://%s/metrics" % self.web, timeout=10) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith('model_exporter_events_received_total{type="inference"}'):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.p.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(30)


def cost(args, encoders, d):
    e = Exporter(find_exporter(args.exporter), d)
    hung = os.path.join(d, "hung.sock")
    hung_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    hung_sock.bind(hung)
    try:
        for nf in args.features:
            feats = features_of(nf)
            for enc in encoders:
                cases = [
                    ("encode only", lambda: _encode_only(d, enc)),
                    ("no listener", lambda: Client(os.path.join(d, "nothing.sock"), model="fraud", version="v3", encoder=enc)),
                    ("hung exporter", lambda: Client(hung, model="fraud", version="v3", encoder=enc)),
                    ("exporter, unixgram", lambda: Client(e.gram, model="fraud", version="v3", encoder=enc)),
                    ("exporter, unix stream", lambda: Client(e.stream, transport="unix", model="fraud", version="v3", encoder=enc)),
                ]  # fmt: skip
                for name, make in cases:
                    walls, cpus, stats = timed(make, args.events, feats, args.repeat)
                    lost = stats["dropped_by_reason"]
                    print(
                        "%2d features %-6s %-22s wall %5.2f us (median %5.2f)  cpu %5.2f us (median %5.2f)  sent %d, dropped %s"
                        % (nf, enc, name, min(walls), statistics.median(walls), min(cpus),
                           statistics.median(cpus), stats["sent"],
                           {k: v for k, v in lost.items() if v} or 0)
                    )  # fmt: skip
                    sys.stdout.flush()
    finally:
        hung_sock.close()
        e.stop()


def _encode_only(d, enc):
    c = Client(os.path.join(d, "nothing.sock"), model="fraud", version="v3", encoder=enc)
    c._send = lambda data: None
    return c


def rate(args, encoders, d):
    for enc in encoders:
        e = Exporter(find_exporter(args.exporter), d)
        try:
            c = Client(e.gram, model="fraud", version="v3", encoder=enc)
            feats = features_of(args.rate_features)
            inference = c.inference
            step = args.rate // 1000  # events per millisecond
            total = args.rate * args.duration
            cpu0, ecpu0 = time.process_time(), e.cpu_seconds()
            t0 = time.perf_counter()
            sent, late = 0, 0
            in_calls = 0.0
            while sent < total:
                due = t0 + (sent // step + 1) / 1000.0
                a = time.perf_counter()
                for i in range(sent, sent + step):
                    inference(latency_ms=12.5, prediction=1, confidence=0.91, features=feats,
                              id="r-%d" % i)  # fmt: skip
                b = time.perf_counter()
                in_calls += b - a
                sent += step
                left = due - b
                if left > 0:
                    time.sleep(left)
                else:
                    late += 1
            elapsed = time.perf_counter() - t0
            c.flush()
            deadline = time.monotonic() + 30
            while c.stats["pending"] and time.monotonic() < deadline:
                time.sleep(0.05)
                c.flush()
            c.close()
            s = c.stats
            deadline = time.monotonic() + 30
            got = e.received()
            while got < s["sent"] and time.monotonic() < deadline:
                time.sleep(0.1)
                got = e.received()
            cpu = time.process_time() - cpu0
            ecpu = e.cpu_seconds() - ecpu0
            print(
                "%s: %d events in %.1f s (%.0f/s), %d late milliseconds; in the calls %.2f us/event;"
                " process CPU %.2f us/event; exporter CPU %.1f s"
                % (enc, total, elapsed, total / elapsed, late, in_calls / total * 1e6,
                   cpu / total * 1e6, ecpu)
            )  # fmt: skip
            lost = {k: v for k, v in s["dropped_by_reason"].items() if v}
            print(
                "   client: sent %d, dropped %d %s; exporter received %d; lost %d (%.3f%%)"
                % (s["sent"], s["dropped"], lost or "", got, total - got,
                   100.0 * (total - got) / total)
            )  # fmt: skip
            sys.stdout.flush()
        finally:
            e.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--exporter", help="path of the model-exporter binary")
    ap.add_argument("--encoder", default="both", choices=["orjson", "json", "both"])
    ap.add_argument("--features", default="3,30")
    ap.add_argument("--rate", type=int, default=50_000)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--rate-features", type=int, default=3, help="features an event in --only rate")
    ap.add_argument("--only", choices=["cost", "rate"])
    args = ap.parse_args()
    args.features = [int(x) for x in args.features.split(",")]
    encoders = ["orjson", "json"] if args.encoder == "both" else [args.encoder]
    if ORJSON is None:
        encoders = [x for x in encoders if x != "orjson"] or ["json"]
    print("python %s, orjson %s, load average %s" % (
        sys.version.split()[0], getattr(ORJSON, "__version__", "absent"),
        " ".join(open("/proc/loadavg").read().split()[:3])))  # fmt: skip
    d = tempfile.mkdtemp(prefix="mec-bench-")
    try:
        if args.only in (None, "cost"):
            cost(args, encoders, d)
        if args.only in (None, "rate"):
            rate(args, encoders, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
