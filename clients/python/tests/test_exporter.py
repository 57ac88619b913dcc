"""The client against the real exporter binary, over both transports: every
event type arrives, and exactly what the client counts as sent."""

import datetime as dt
import json
import logging
import os
import time
import urllib.request

import pytest

from model_exporter_client import Client, ModelExporterHandler
from conftest import PATIENCE, Exporter

REASONS = [
    "invalid_utf8",
    "invalid_json",
    "wrong_type",
    "invalid_value",
    "unknown_type",
    "missing_field",
    "too_long",
    "truncated",
]
TRAINED = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)  # 1793491200
FEATURES = {"age": 35, "country": "DE", "vip": True, "gone": None, "broken": float("nan")}


class ModelFailure(Exception):
    pass


def mv(model="fraud", version="v3"):
    return 'model="%s",version="%s"' % (model, version)


def assert_nothing_rejected(e):
    text = e.metrics()
    for r in REASONS:
        assert e.sample('model_exporter_events_rejected_total{reason="%s"}' % r, text) == 0, r


def settle(c):
    """Sends what the client holds and waits until nothing is pending."""
    deadline = time.monotonic() + PATIENCE
    while True:
        c.flush()
        if c.stats["pending"] == 0:
            return c.stats
        assert time.monotonic() < deadline, c.stats
        time.sleep(0.01)


def test_every_event_type_over_unixgram(exporter, encoder):
    c = Client(exporter.events["unixgram"], model="fraud", version="v3", encoder=encoder)
    assert c.transport == "unixgram"
    # As fast as the loop goes: events travel many to a datagram, and what
    # the exporter's queue cannot take at once waits in the client.
    n = 2000
    for i in range(n):
        c.inference(
            latency_ms=20,
            prediction=1,
            confidence=0.9,
            features=FEATURES,
            counters={"shown": 2},
            id="r-%d" % i,
        )
    c.feedback("r-1", 0)
    c.model_loaded("v3", trained_at=TRAINED)
    c.log("error", "Feature missing", component="inference", metadata={"feature": "x"})

    def failing():
        with pytest.raises(ModelFailure):
            with c.request(id="bad") as r:
                r.features = {"age": 1}
                raise ModelFailure()

    failing()

    @c.timed(model="reco")
    def recommend():
        return "sports"

    recommend()
    s = settle(c)
    assert s["sent"] == n + 5 and s["dropped"] == 0, s
    exporter.wait_sample('model_exporter_events_received_total{type="inference"}', n + 2)
    exporter.wait_sample('model_requests_total{%s,outcome="ok",version="v3"}' % 'model="fraud"', n)
    text = exporter.metrics()
    assert exporter.sample("model_request_duration_seconds_count{%s}" % mv(), text) == n + 1
    assert exporter.sample('model_feature_category_total{category="DE",feature="country",%s}' % mv(), text) == n
    assert exporter.sample('model_feature_missing_total{feature="gone",%s}' % mv(), text) == n
    assert exporter.sample('model_feature_missing_total{feature="broken",%s}' % mv(), text) == n
    assert exporter.sample('model_feature_value_count{feature="vip",%s}' % mv(), text) == n
    assert exporter.sample('model_business_counts_total{counter="shown",%s}' % mv(), text) == 2 * n
    exporter.wait_sample("model_feedback_total{%s}" % mv(), 1)
    exporter.wait_sample("model_trained_timestamp_seconds{%s}" % mv(), 1793491200)
    exporter.wait_sample("model_info{%s}" % mv(), 1)
    exporter.wait_sample('model_log_events_total{component="inference",level="error",%s}' % mv(), 1)
    exporter.wait_sample('model_request_errors_total{error="ModelFailure",%s}' % mv(), 1)
    exporter.wait_sample('model_predictions_total{class="sports",%s}' % mv("reco"), 1)
    text = exporter.metrics()
    for kind, k in [("feedback", 1), ("model", 1), ("log", 1)]:
        assert exporter.sample('model_exporter_events_received_total{type="%s"}' % kind, text) == k
    # The client's first report: nothing lost, every reason's series at 0.
    exporter.wait_sample('model_exporter_client_dropped_total{model="fraud",reason="queue_full"}', 0)
    assert_nothing_rejected(exporter)


def test_what_the_client_loses_shows_in_prometheus(sockdir, monkeypatch):
    from model_exporter_client import _transport

    monkeypatch.setattr(_transport, "RECONNECT_DELAY", 0.0)
    path = os.path.join(sockdir, "later.sock")
    c = Client(path, model="fraud", report_interval=0.0)
    # No exporter yet: dropped, counted. A value out of its domain: left out.
    for _ in range(30):
        c.inference(latency_ms=5, confidence=1.7)
    c.flush()
    assert c.stats["dropped_by_reason"]["no_exporter"] == 30
    e = Exporter(["unixgram://" + path], sockdir)
    try:
        c.inference(latency_ms=5)
        settle(c)
        e.wait_sample('model_exporter_client_dropped_total{model="fraud",reason="no_exporter"}', 30)
        e.wait_sample('model_exporter_client_values_omitted_total{model="fraud"}', 30)
        with urllib.request.urlopen("http://%s/api/v1/summary" % e.web, timeout=PATIENCE) as r:
            summary = json.loads(r.read())
        assert summary["data"]["client_drops"]["fraud"]["dropped"] == {"no_exporter": 30}
        assert_nothing_rejected(e)
    finally:
        e.stop()


def test_every_event_type_over_the_stream(exporter, encoder):
    c = Client("unix://" + exporter.events["unix"], model="fraud", version="v3", encoder=encoder)
    assert c.transport == "unix"
    for i in range(500):
        c.inference(
            latency_ms=10,
            prediction=0.7,
            confidence=0.6,
            features=FEATURES,
            counters={"shown": 1},
            id="r-%d" % i,
        )
    for i in range(10):
        with c.request(id="ok-%d" % i) as r:
            r.prediction = 1
            r.features = {"age": 20}
    for i in range(5):
        try:
            with c.request(id="bad-%d" % i):
                raise ModelFailure()
        except ModelFailure:
            pass

    @c.timed(features=lambda x: {"x": x})
    def classify(x):
        return "cat"

    @c.timed(model="modèle", version="β")
    def other(x):
        return x

    for i in range(20):
        classify(i)
    other(1.5)
    c.feedback("r-1", 1)
    c.feedback("r-2", 0, prediction=0.7)
    c.feedback(None, "cat", prediction="dog")
    c.model_loaded("v3", trained_at=TRAINED, loaded_at=1793500000)

    log = logging.getLogger("inference")
    log.propagate = False
    h = ModelExporterHandler(c)
    log.addHandler(h)
    try:
        log.warning("feature %s missing", "embedding", extra={"feature": "embedding"})
        log.warning("again")
        log.critical("down")
    finally:
        log.removeHandler(h)

    total = 500 + 10 + 5 + 20 + 1 + 3 + 1 + 3
    s = settle(c)
    assert s["sent"] == total and s["dropped"] == 0, s
    exporter.wait_sample('model_exporter_events_received_total{type="log"}', 3)
    exporter.wait_sample('model_exporter_events_received_total{type="inference"}', 536)
    text = exporter.metrics()

    def at(series):
        return exporter.sample(series, text)

    assert at('model_requests_total{%s,outcome="ok",version="v3"}' % 'model="fraud"') == 530
    assert at('model_requests_total{%s,outcome="error",version="v3"}' % 'model="fraud"') == 5
    assert at('model_request_errors_total{error="ModelFailure",%s}' % mv()) == 5
    assert at("model_request_duration_seconds_count{%s}" % mv()) == 535
    assert at("model_prediction_value_count{%s}" % mv()) == 510
    assert at("model_prediction_confidence_count{%s}" % mv()) == 500
    assert at('model_predictions_total{class="cat",%s}' % mv()) == 20
    assert at('model_feature_value_count{feature="age",%s}' % mv()) == 510
    assert at('model_feature_value_count{feature="x",%s}' % mv()) == 20
    assert at('model_feature_missing_total{feature="broken",%s}' % mv()) == 500
    assert at('model_feature_category_total{category="DE",feature="country",%s}' % mv()) == 500
    assert at('model_business_counts_total{counter="shown",%s}' % mv()) == 500
    assert at('model_requests_total{model="modèle",outcome="ok",version="β"}') == 1
    assert at("model_feedback_total{%s}" % mv()) == 3
    assert at("model_trained_timestamp_seconds{%s}" % mv()) == 1793491200
    assert at("model_loaded_timestamp_seconds{%s}" % mv()) == 1793500000
    assert at('model_log_events_total{component="inference",level="warning",%s}' % mv()) == 2
    assert at('model_log_events_total{component="inference",level="critical",%s}' % mv()) == 1
    assert_nothing_rejected(exporter)


def test_a_stream_client_survives_the_exporter_restarting(sockdir):
    path = os.path.join(sockdir, "restart.sock")
    e = Exporter(["unix://" + path], sockdir)
    c = Client(path, transport="unix")
    for _ in range(1000):
        c.inference(model="m")
    c.flush()
    e.wait_sample('model_requests_total{model="m",outcome="ok",version=""}', 1000)
    assert e.stop() == 0

    # The exporter is gone: sends are counted as errors, never raised.
    before = c.stats
    for _ in range(10):
        c.inference(model="m")
    c.flush()
    assert c.stats["sent"] == before["sent"]
    lost = c.stats["dropped_by_reason"]["no_exporter"] - before["dropped_by_reason"]["no_exporter"]
    assert lost == 10

    # A new exporter on the same path: the client reconnects by itself.
    e2 = Exporter(["unix://" + path], sockdir)
    try:
        deadline = time.monotonic() + PATIENCE
        while e2.sample('model_requests_total{model="back",outcome="ok",version=""}') is None:
            assert time.monotonic() < deadline, "the client did not reconnect: %r" % c.stats
            c.inference(model="back")
            c.flush()
            time.sleep(0.1)
    finally:
        e2.stop()
