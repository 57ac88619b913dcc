"""Transports: nothing blocks, nothing raises, everything is counted."""

import json
import os
import threading
import time

from model_exporter_client import STREAM_BUFFER, Client
from conftest import PATIENCE, StreamServer


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


def test_no_listener_counts_errors_and_raises_nothing(sockdir):
    for transport in ("unixgram", "unix"):
        c = Client(os.path.join(sockdir, "nobody.sock"), transport=transport)
        for _ in range(5):
            c.inference(latency_ms=1, features={"a": 1})
        c.feedback("r", 1)
        c.model_loaded("v1")
        c.log("info", "x")
        with c.request() as r:
            r.prediction = 1
        assert c.stats == {"sent": 0, "dropped": 0, "errors": 9}, transport
        c.close()


def test_a_full_datagram_queue_drops_and_counts(receiver):
    # Nobody reads: the kernel queue fills and further sends are dropped.
    c = Client(receiver.path)
    n = 2000
    run_bounded(lambda: [c.inference(latency_ms=1, id=str(i)) for i in range(n)])
    s = c.stats
    assert s["errors"] == 0
    assert s["dropped"] > 0
    assert s["sent"] + s["dropped"] == n
    # Exactly what was counted as sent is queued for the receiver.
    got = receiver.datagrams(wait_for=s["sent"])
    assert len(got) == s["sent"]


def test_stream_delivers_lines_in_order(stream_server):
    c = Client(stream_server.path, transport="unix", model="m")
    for i in range(1000):
        c.inference(id=str(i), features={"x": i})
    lines = stream_server.wait_lines(1000)
    assert [e["id"] for e in lines] == [str(i) for i in range(1000)]
    assert c.stats == {"sent": 1000, "dropped": 0, "errors": 0}
    assert stream_server.connections == 1


def test_stream_buffers_what_the_socket_cannot_take_then_drops(stream_server):
    stream_server.reading.clear()  # the reader stalls
    c = Client(stream_server.path, transport="unix")
    n = 30000
    pad = "x" * 100
    run_bounded(lambda: [c.inference(id=str(i), features={"pad": pad}) for i in range(n)])
    s = c.stats
    assert s["errors"] == 0
    assert s["dropped"] > 0, "kernel buffer plus %d bytes took everything" % STREAM_BUFFER
    assert s["sent"] + s["dropped"] == n
    held = c._t.pending()
    assert 0 < held <= STREAM_BUFFER
    # The reader resumes: the background thread writes what was held,
    # without any further send, and every line arrives whole.
    stream_server.reading.set()
    lines = stream_server.wait_lines(s["sent"])
    assert len(lines) == s["sent"]
    ids = [int(e["id"]) for e in lines]
    assert ids == sorted(ids) and ids[0] == 0
    assert c._t.pending() == 0


def test_stream_reconnects_at_most_once_a_second(sockdir):
    path = os.path.join(sockdir, "s.sock")
    s1 = StreamServer(path)
    c = Client(path, transport="unix")
    c.inference(id="a")
    s1.wait_lines(1)
    s1.stop()
    # Gone: counted as errors, never raised.
    for _ in range(10):
        c.inference(id="lost")
    assert c.stats == {"sent": 1, "dropped": 0, "errors": 10}
    t_down = time.monotonic()
    s2 = StreamServer(path)
    try:
        c.inference(id="too-soon")
        if time.monotonic() - t_down < 0.5:
            # The last attempt failed less than a second ago: no new one yet.
            assert s2.connections == 0
            assert c.stats["errors"] == 11
        deadline = time.monotonic() + PATIENCE
        while not s2.lines():
            assert time.monotonic() < deadline, c.stats
            c.inference(id="back")
            time.sleep(0.1)
        # Attempts are at most once per second: a single new connection.
        assert s2.connections == 1
        assert {e["id"] for e in s2.lines()} == {"back"}
    finally:
        s2.stop()


def test_a_connection_closed_by_the_exporter_is_replaced_without_loss(stream_server):
    # The exporter closes idle connections; the next event must not be lost.
    c = Client(stream_server.path, transport="unix")
    c.inference(id="1")
    stream_server.wait_lines(1)
    time.sleep(1.1)  # past the reconnection limit
    stream_server.close_connections()
    time.sleep(0.05)
    c.inference(id="2")
    lines = stream_server.wait_lines(2)
    assert [e["id"] for e in lines] == ["1", "2"]
    assert c.stats == {"sent": 2, "dropped": 0, "errors": 0}
    assert stream_server.connections == 2


def test_stats_are_exact_across_threads(receiver, stream_server):
    for c in (Client(stream_server.path, transport="unix"), Client(receiver.path)):
        def work():
            for _ in range(2000):
                c.inference(latency_ms=1)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        s = c.stats
        assert s["sent"] + s["dropped"] + s["errors"] == 8000, s
    lines = stream_server.wait_lines(8000)
    assert len(lines) == 8000


def test_after_close_events_are_errors(stream_server):
    c = Client(stream_server.path, transport="unix")
    c.inference()
    c.close()
    c.inference()
    assert c.stats == {"sent": 1, "dropped": 0, "errors": 1}
    assert len(stream_server.wait_lines(1)) == 1


def test_send_line(receiver):
    c = Client(receiver.path)
    c.send_line('{"model":"raw"}')
    c.send_line(b'{"model":"raw2"}')
    assert [e["model"] for e in receiver.events(2)] == ["raw", "raw2"]


def test_datagrams_find_a_restarted_exporter(sockdir):
    from conftest import DgramReceiver

    path = os.path.join(sockdir, "g.sock")
    r1 = DgramReceiver(path)
    c = Client(path)
    c.inference(id="1")
    assert [e["id"] for e in r1.events()] == ["1"]
    time.sleep(1.1)  # past the reconnection limit
    # The exporter restarts: a new socket at the same path.
    r1.close()
    os.unlink(path)
    r2 = DgramReceiver(path)
    try:
        c.inference(id="2")
        assert [e["id"] for e in r2.events()] == ["2"]
        assert c.stats == {"sent": 2, "dropped": 0, "errors": 0}
    finally:
        r2.close()


def test_datagrams_wait_a_second_before_trying_again(sockdir):
    from conftest import DgramReceiver

    path = os.path.join(sockdir, "late.sock")
    c = Client(path)
    c.inference(id="nobody")
    t_fail = time.monotonic()
    r = DgramReceiver(path)
    try:
        c.inference(id="too-soon")
        if time.monotonic() - t_fail < 0.5:
            assert c.stats == {"sent": 0, "dropped": 0, "errors": 2}
        time.sleep(1.1)
        c.inference(id="now")
        assert r.events()[-1]["id"] == "now"
    finally:
        r.close()


def test_a_forked_child_gets_a_connection_of_its_own(stream_server):
    c = Client(stream_server.path, transport="unix")
    c.inference(id="parent-1")
    stream_server.wait_lines(1)
    pid = os.fork()
    if pid == 0:  # the child
        try:
            for i in range(100):
                c.inference(id="child")
            os._exit(0 if c.stats["errors"] == 0 else 1)
        except BaseException:
            os._exit(2)
    for i in range(100):
        c.inference(id="parent")
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    lines = stream_server.wait_lines(201)
    assert len(lines) == 201  # every line whole: none interleaved
    assert sum(e["id"] == "child" for e in lines) == 100
    assert stream_server.connections == 2
