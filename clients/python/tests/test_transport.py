"""Transports: nothing blocks, nothing raises, events travel in batches,
and everything lost is counted by reason and reported."""

import json
import os
import socket
import threading
import time

import pytest

from model_exporter_client import Client, _transport
from conftest import PATIENCE, DgramReceiver, StreamServer


def run_bounded(fn):
    """Runs fn in a thread; a send that blocked would hang it, which this
    turns into a failure."""
    out = {}

    def target():
        out["result"] = fn()

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(PATIENCE)
    assert not t.is_alive(), "the client blocked"
    return out.get("result")


def wait_for(cond, what):
    deadline = time.monotonic() + PATIENCE
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.fixture
def no_retry(monkeypatch):
    """No reconnection attempt within the test: deterministic, whatever the
    machine's speed."""
    monkeypatch.setattr(_transport, "RECONNECT_DELAY", 3600.0)


@pytest.fixture
def quick_retry(monkeypatch):
    monkeypatch.setattr(_transport, "RECONNECT_DELAY", 0.0)


def by_reason(c):
    return {k: v for k, v in c.stats["dropped_by_reason"].items() if v}


def test_no_listener_counts_drops_and_raises_nothing(sockdir, caplog):
    for transport in ("unixgram", "unix"):
        c = Client(os.path.join(sockdir, "nobody.sock"), transport=transport)
        with caplog.at_level("WARNING", logger="model_exporter_client"):
            for _ in range(5):
                c.inference(latency_ms=1, features={"a": 1})
            c.feedback("r", 1)
            c.model_loaded("v1")
            c.log("info", "x")
            with c.request() as r:
                r.prediction = 1
            c.flush()
        s = c.stats
        assert s["sent"] == 0 and s["pending"] == 0, s
        assert by_reason(c) == {"no_exporter": 9}, transport
        c.close()
    # Said once per client, naming the path.
    msgs = [r.getMessage() for r in caplog.records if "no exporter listens" in r.getMessage()]
    assert len(msgs) == 2 and "nobody.sock" in msgs[0]


def test_events_travel_in_batches(receiver):
    c = Client(receiver.path, model="m", max_datagram=4096)
    n = 500
    for i in range(n):
        c.inference(id=str(i), features={"x": i})
    c.flush()
    datagrams = receiver.datagrams(wait_for=1)
    events = [json.loads(l) for d in datagrams for l in d.split(b"\n")]
    assert [e["id"] for e in events] == [str(i) for i in range(n)]
    assert all(len(d) <= 4096 for d in datagrams)
    # Several events a datagram: far fewer system calls than events.
    # (The flusher may send a partial batch first, when it runs.)
    assert len(datagrams) <= sum(map(len, datagrams)) // 4096 + 4, len(datagrams)
    assert c.stats["sent"] == n and c.stats["dropped"] == 0


def test_a_partial_batch_is_sent_by_the_background_thread(receiver):
    c = Client(receiver.path)
    c.inference(id="alone")
    # No flush: the flusher sends it within its interval.
    assert [e["id"] for e in receiver.events(1)] == ["alone"]
    wait_for(lambda: c.stats["sent"] == 1, "the flusher did not count the event as sent")


def test_a_slow_exporter_loses_nothing_while_the_buffer_holds(sockdir):
    path = os.path.join(sockdir, "slow.sock")
    r = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    r.bind(path)
    try:
        c = Client(path, max_datagram=2048, buffer=1 << 20)
        n = 3000
        # Nobody reads: the kernel's queue fills, the client holds the rest.
        run_bounded(lambda: [c.inference(id=str(i), latency_ms=1.5) for i in range(n)])
        c.flush()
        s = c.stats
        assert s["dropped"] == 0, s
        assert s["pending"] > 0 and s["sent"] + s["pending"] == n, s
        # The reader starts: everything arrives, in order, without a send.
        got = []
        r.settimeout(0.05)
        deadline = time.monotonic() + PATIENCE
        while len(got) < n:
            assert time.monotonic() < deadline, (len(got), c.stats)
            try:
                d = r.recv(1 << 16)
            except socket.timeout:
                continue
            if not d.startswith(b'{"type":"client"'):
                got.extend(json.loads(l)["id"] for l in d.split(b"\n"))
        assert got == [str(i) for i in range(n)]
        wait_for(lambda: c.stats["sent"] == n, "not all counted as sent")
    finally:
        r.close()


def test_a_hung_exporter_costs_a_bounded_buffer_then_drops(receiver, caplog):
    c = Client(receiver.path, max_datagram=1024, buffer=16 * 1024)
    n = 2000
    with caplog.at_level("WARNING", logger="model_exporter_client"):
        run_bounded(lambda: [c.inference(id=str(i), latency_ms=1) for i in range(n)])
        c.flush()
    s = c.stats
    assert s["pending"] * 30 <= 16 * 1024, s
    assert s["dropped_by_reason"]["queue_full"] > 0, s
    assert s["sent"] + s["pending"] + s["dropped"] == n, s
    assert any("does not keep up" in r.getMessage() for r in caplog.records)
    # Exactly what was counted as sent is queued for the receiver.
    c.close()
    got = receiver.events(wait_for=c.stats["sent"])
    assert len(got) == c.stats["sent"]


def test_drops_are_reported_to_the_exporter(receiver):
    c = Client(receiver.path, model="fraud", max_datagram=1024, buffer=4096, report_interval=0.0)
    run_bounded(lambda: [c.inference(id=str(i)) for i in range(3000)])
    c.inference(confidence=7.0)  # one value left out
    c.flush()
    lost = c.stats["dropped_by_reason"]["queue_full"]
    assert lost > 0
    # Read everything until a report accounts for every drop: counts are
    # deltas, each sent once.
    deadline = time.monotonic() + PATIENCE
    total, omitted = 0, 0
    while total < lost or omitted < 1:
        assert time.monotonic() < deadline, (receiver.reports, c.stats)
        receiver.datagrams(wait_for=0)
        total = sum(r["dropped"].get("queue_full", 0) for r in receiver.reports)
        omitted = sum(r.get("values_omitted", 0) for r in receiver.reports)
    assert all(r["model"] == "fraud" and r["type"] == "client" for r in receiver.reports)
    c.close()
    receiver.datagrams(wait_for=0)
    assert sum(r["dropped"].get("queue_full", 0) for r in receiver.reports) == lost
    assert sum(r.get("values_omitted", 0) for r in receiver.reports) == 1


def test_the_first_report_says_nothing_was_lost(receiver):
    c = Client(receiver.path, model="m")
    c.inference()
    c.flush()
    deadline = time.monotonic() + PATIENCE
    while not receiver.reports:
        assert time.monotonic() < deadline
        receiver.datagrams(wait_for=0)
    assert receiver.reports[0] == {"type": "client", "model": "m", "dropped": {}}


def test_stream_delivers_lines_in_order(stream_server):
    c = Client(stream_server.path, transport="unix", model="m")
    for i in range(1000):
        c.inference(id=str(i), features={"x": i})
    c.flush()
    lines = [l for l in stream_server.wait_lines(1001) if l.get("type") != "client"]
    assert [e["id"] for e in lines] == [str(i) for i in range(1000)]
    assert c.stats["sent"] == 1000 and c.stats["dropped"] == 0
    assert stream_server.connections == 1


def test_stream_buffers_what_the_socket_cannot_take_then_drops(stream_server):
    stream_server.reading.clear()  # the reader stalls
    c = Client(stream_server.path, transport="unix", buffer=256 * 1024)
    n = 30000
    pad = "x" * 100
    run_bounded(lambda: [c.inference(id=str(i), features={"pad": pad}) for i in range(n)])
    c.flush()
    s = c.stats
    assert s["dropped_by_reason"]["queue_full"] > 0, s
    assert s["sent"] + s["pending"] + s["dropped"] == n, s
    held = c._t.pending()
    assert 0 < held <= 256 * 1024
    # The reader resumes: the background thread writes what was held,
    # without any further send, and every line arrives whole.
    stream_server.reading.set()
    wait_for(lambda: c.stats["pending"] == 0, "the flusher did not write what was held")
    sent = c.stats["sent"]
    lines = [l for l in stream_server.wait_lines(sent) if l.get("type") != "client"]
    assert len(lines) == sent
    ids = [int(e["id"]) for e in lines]
    assert ids == sorted(ids) and ids[0] == 0


def test_stream_does_not_reconnect_within_the_delay(sockdir, no_retry):
    path = os.path.join(sockdir, "s.sock")
    s1 = StreamServer(path)
    c = Client(path, transport="unix")
    c.inference(id="a")
    c.flush()
    s1.wait_lines(1)
    s1.stop()
    # Gone: counted as dropped, never raised.
    for _ in range(10):
        c.inference(id="lost")
    c.flush()
    assert c.stats["sent"] == 1 and by_reason(c) == {"no_exporter": 10}, c.stats
    s2 = StreamServer(path)
    try:
        c.inference(id="too-soon")
        c.flush()
        # The last attempt failed within RECONNECT_DELAY: no new one yet.
        assert s2.connections == 0
        assert by_reason(c) == {"no_exporter": 11}
    finally:
        s2.stop()


def test_stream_reconnects_by_itself(sockdir, quick_retry):
    path = os.path.join(sockdir, "s.sock")
    s1 = StreamServer(path)
    c = Client(path, transport="unix")
    c.inference(id="a")
    c.flush()
    s1.wait_lines(1)
    s1.stop()
    c.inference(id="lost")
    c.flush()
    s2 = StreamServer(path)
    try:
        deadline = time.monotonic() + PATIENCE
        while not [l for l in s2.lines() if l.get("id") == "back"]:
            assert time.monotonic() < deadline, c.stats
            c.inference(id="back")
            c.flush()
            time.sleep(0.01)
        assert s2.connections == 1
    finally:
        s2.stop()


def test_a_connection_closed_by_the_exporter_is_replaced_without_loss(stream_server, quick_retry):
    # The exporter closes idle connections; the next event must not be lost.
    c = Client(stream_server.path, transport="unix")
    c.inference(id="1")
    c.flush()
    wait_for(lambda: [l for l in stream_server.lines() if l.get("id") == "1"], "no first line")
    stream_server.close_connections()
    c.inference(id="2")
    c.flush()
    wait_for(lambda: [l for l in stream_server.lines() if l.get("id") == "2"], "the second line was lost")
    ids = [l["id"] for l in stream_server.lines() if "id" in l]
    assert ids == ["1", "2"]
    assert c.stats["sent"] == 2 and c.stats["dropped"] == 0
    assert stream_server.connections == 2


def test_stats_are_exact_across_threads(receiver, stream_server):
    for c in (Client(stream_server.path, transport="unix"), Client(receiver.path)):
        # (Nobody reads the datagrams: some are held, some dropped.)

        def work():
            for _ in range(2000):
                c.inference(latency_ms=1)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        c.flush()
        s = c.stats
        assert s["sent"] + s["pending"] + s["dropped"] == 8000, s
    lines = [l for l in stream_server.wait_lines(8000) if l.get("type") != "client"]
    assert len(lines) == 8000


def test_after_close_events_are_dropped_as_closed(stream_server):
    c = Client(stream_server.path, transport="unix")
    c.inference()
    c.close()
    c.inference()
    s = c.stats
    assert s["sent"] == 1 and by_reason(c) == {"closed": 1}
    # close() sends a last report too.
    lines = stream_server.wait_lines(2)
    assert lines[1]["type"] == "client"


def test_send_line(receiver):
    c = Client(receiver.path)
    c.send_line('{"model":"raw"}')
    c.send_line(b'{"model":"raw2"}')
    c.flush()
    assert [e["model"] for e in receiver.events(2)] == ["raw", "raw2"]


def test_datagrams_find_a_restarted_exporter(sockdir, quick_retry):
    path = os.path.join(sockdir, "g.sock")
    r1 = DgramReceiver(path)
    c = Client(path)
    c.inference(id="1")
    c.flush()
    assert [e["id"] for e in r1.events()] == ["1"]
    # The exporter restarts: a new socket at the same path.
    r1.close()
    os.unlink(path)
    r2 = DgramReceiver(path)
    try:
        c.inference(id="2")
        c.flush()
        assert [e["id"] for e in r2.events()] == ["2"]
        assert c.stats["sent"] == 2 and c.stats["dropped"] == 0
    finally:
        r2.close()


def test_datagrams_do_not_retry_within_the_delay(sockdir, no_retry):
    path = os.path.join(sockdir, "late.sock")
    c = Client(path)
    c.inference(id="nobody")
    c.flush()
    r = DgramReceiver(path)
    try:
        c.inference(id="too-soon")
        c.flush()
        assert c.stats["sent"] == 0 and by_reason(c) == {"no_exporter": 2}
        assert r.events(wait_for=0) == []
    finally:
        r.close()


def test_a_forked_child_gets_a_connection_of_its_own(stream_server):
    c = Client(stream_server.path, transport="unix")
    c.inference(id="parent-1")
    c.flush()
    stream_server.wait_lines(1)
    pid = os.fork()
    if pid == 0:  # the child
        try:
            for i in range(100):
                c.inference(id="child")
            c.close()
            s = c.stats
            os._exit(0 if s["sent"] == 100 and s["dropped"] == 0 else 1)
        except BaseException:
            os._exit(2)
    for i in range(100):
        c.inference(id="parent")
    c.flush()
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    wait_for(
        lambda: len([l for l in stream_server.lines() if "id" in l]) == 201,
        "lines missing",
    )
    lines = [l for l in stream_server.lines() if "id" in l]
    assert sum(e["id"] == "child" for e in lines) == 100
    assert stream_server.connections == 2
