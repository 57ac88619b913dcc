#!/usr/bin/env python3
"""Memory per series: RSS of a running exporter against its number of series.

Starts the release binary, then in steps adds model versions, each sending
events with a given number of numeric features, waits until the exporter has
counted every event, and prints its series count (sample lines on /metrics)
and VmRSS. The cost per 1,000 series is the RSS growth divided by the growth
in series. Run by hand:

    python3 bench/series_memory.py [--features 50] [--steps 1,5,10,20]

Everything the per-feature windows hold (moments, drift bins, quality
counts) is included, because it grows with the same series.
"""

import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def scrape(url):
    with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
        body = r.read().decode()
    series = 0
    received = 0.0
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        series += 1
        if line.startswith("model_exporter_events_received_total"):
            received += float(line.rsplit(" ", 1)[1])
    return series, received, len(body)


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/release/model-exporter")
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--steps", default="1,5,10,20", help="cumulative model versions")
    ap.add_argument("--events", type=int, default=200, help="events per version")
    ap.add_argument("--config", help="rules.yaml to start with (default: the built-in one)")
    ap.add_argument("--settle", type=float, default=1.5,
                    help="seconds to wait after a step's events are counted before reading RSS")
    args = ap.parse_args()

    d = tempfile.mkdtemp()
    sock = os.path.join(d, "events.sock")
    log = open(os.path.join(d, "exporter.log"), "w+")
    proc = subprocess.Popen(
        [args.bin, "--web.listen-address", "127.0.0.1:0", "--log.format", "json",
         "--events.listen", "unix://" + sock,
         "--limits.models", "1000", "--limits.features", str(max(args.features, 1))]
        + (["--config.file", args.config] if args.config else []),
        stderr=log)
    try:
        url = None
        for _ in range(400):
            log.seek(0)
            m = re.search(r'"address":"(127\.0\.0\.1:\d+)"', log.read())
            if m:
                url = "http://" + m.group(1)
                break
            time.sleep(0.05)
        if url is None:
            sys.exit("exporter did not start")
        time.sleep(1)
        base_series, _, _ = scrape(url)
        base_rss = rss(proc.pid)
        print(f"idle: {base_series} series, RSS {base_rss / 2**20:.1f} MiB")
        print("versions  features  series  /metrics bytes  RSS MiB  KiB per 1000 series")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock)
        rnd = random.Random(7)
        sent = 0
        done = 0
        for target in [int(x) for x in args.steps.split(",")]:
            for v in range(done, target):
                lines = []
                for i in range(args.events):
                    feats = {f"f{j}": round(rnd.gauss(50, 15), 3) for j in range(args.features)}
                    ev = {"model": f"m{v % 10}", "version": f"v{v}", "id": f"r{v}-{i}",
                          "latency_ms": round(rnd.expovariate(1 / 40), 2),
                          "prediction": rnd.random(), "confidence": rnd.random(),
                          "features": feats}
                    lines.append(json.dumps(ev, separators=(",", ":")))
                s.sendall(("\n".join(lines) + "\n").encode())
                sent += args.events
            done = target
            for _ in range(600):
                series, received, size = scrape(url)
                if received >= sent:
                    break
                time.sleep(0.1)
            time.sleep(args.settle)  # let the allocator settle after the burst
            series, _, size = scrape(url)
            r = rss(proc.pid)
            per = (r - base_rss) / 1024 / max(series - base_series, 1) * 1000
            print(f"{target:8d}  {args.features:8d}  {series:6d}  {size:14d}  {r / 2**20:7.1f}  {per:8.0f}")
        s.close()
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
