"""Cost of one client.inference(...) call with three features.

    python3 clients/python/bench.py [--events 200000] [--exporter PATH]

Measures, with time.perf_counter around a loop of calls:
  * encode only: the event is built and encoded, the socket call left out;
  * no listener: the datagram socket path does not exist (every send fails
    and is counted as an error);
  * the real exporter, over unixgram and over the unix stream (the binary
    from target/release or target/debug, or --exporter; built with cargo
    when missing).
Prints microseconds per event (wall clock, and the CPU time of this process,
which a busy machine inflates less) and the client's stats for each.
"""

import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE / "src"))

from model_exporter_client import Client  # noqa: E402


def run(client, n):
    inference = client.inference
    features = {"age": 35, "income": 51000.0, "country": "DE"}
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        inference(latency_ms=12.5, prediction=1, confidence=0.91, features=features)
    return (time.perf_counter() - t0) / n * 1e6, (time.process_time() - c0) / n * 1e6


def find_exporter(explicit):
    if explicit:
        return explicit
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    for profile in ("release", "debug"):
        b = target / profile / "model-exporter"
        if b.exists():
            return str(b)
    subprocess.run(["cargo", "build", "--quiet"], cwd=str(REPO), check=True)
    return str(target / "debug" / "model-exporter")


def start_exporter(binary, d):
    gram, stream = os.path.join(d, "d.sock"), os.path.join(d, "e.sock")
    p = subprocess.Popen(
        [binary, "--web.listen-address", "127.0.0.1:0", "--log.format", "json",
         "--events.listen", "unixgram://" + gram, "--events.listen", "unix://" + stream],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    started = threading.Event()

    def read():
        for line in p.stderr:
            try:
                if json.loads(line).get("fields", {}).get("message") == "model-exporter started":
                    started.set()
            except ValueError:
                pass

    threading.Thread(target=read, daemon=True).start()
    if not started.wait(20):
        p.kill()
        sys.exit("the exporter did not start")
    return p, gram, stream


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--exporter", help="path of the model-exporter binary")
    args = ap.parse_args()
    n = args.events
    print("python %s, %d events per run" % (sys.version.split()[0], n))

    d = tempfile.mkdtemp(prefix="mec-bench-")
    try:
        c = Client(os.path.join(d, "nothing.sock"), model="fraud", version="v3")
        c._deliver = lambda data: None
        print("%-24s %6.2f us/event (cpu %.2f)" % (("encode only",) + run(c, n)))

        c = Client(os.path.join(d, "nothing.sock"), model="fraud", version="v3")
        us, cpu = run(c, n)
        print("%-24s %6.2f us/event (cpu %.2f)  %s" % ("no listener", us, cpu, c.stats))

        p, gram, stream = start_exporter(find_exporter(args.exporter), d)
        try:
            for name, client in [
                ("exporter, unixgram", Client(gram, model="fraud", version="v3")),
                ("exporter, unix stream", Client(stream, transport="unix", model="fraud", version="v3")),
            ]:
                us, cpu = run(client, n)
                print("%-24s %6.2f us/event (cpu %.2f)  %s" % (name, us, cpu, client.stats))
                client.close()
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(20)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
