"""What the client puts on the wire, read back from a local datagram socket."""

import datetime as dt
import json

import pytest

from model_exporter_client import Client, default_path


class FakeNumpyInt:
    """Shaped like numpy.int64: not an int subclass, has .item()."""

    def __init__(self, v):
        self.v = v

    def item(self):
        return self.v

    def __int__(self):
        return self.v


class FakeNumpyFloat(float):
    """Shaped like numpy.float64: a float subclass with a repr of its own."""

    def __repr__(self):
        return "np.float64(%s)" % float.__repr__(self)

    def item(self):
        return float(self)


class FakeNumpyBool:
    def __init__(self, v):
        self.v = v

    def item(self):
        return self.v


class OnlyFloat:
    def __float__(self):
        return 2.5


class Unencodable:
    pass


def one(receiver, encoder="json", **kw):
    c = Client(
        receiver.path,
        model=kw.pop("client_model", "fraud"),
        version=kw.pop("client_version", "v3"),
        encoder=encoder,
    )
    c.inference(**kw)
    c.flush()
    s = c.stats
    assert s["sent"] == 1 and s["dropped"] == 0, s
    (d,) = receiver.datagrams()
    assert not d.endswith(b"\n")
    return d, json.loads(d)


def test_every_inference_field(receiver, encoder):
    raw, e = one(
        receiver,
        encoder,
        latency_ms=52.3,
        prediction=1,
        confidence=0.91,
        features={"age": 35, "country": "DE", "vip": True, "gone": None},
        counters={"shown": 10, "clicked": 2},
        id="r-17",
        error="timeout",
        ok=False,
        ts=1793491200.5,
        resources={"cpu_percent": 12.5, "memory_percent": 40},
    )
    assert e == {
        "model": "fraud",
        "version": "v3",
        "id": "r-17",
        "latency_ms": 52.3,
        "ok": False,
        "error": "timeout",
        "prediction": 1,
        "confidence": 0.91,
        "features": {"age": 35, "country": "DE", "vip": True, "gone": None},
        "counters": {"shown": 10, "clicked": 2},
        "resources": {"cpu_percent": 12.5, "memory_percent": 40},
        "ts": 1793491200.5,
    }
    # Compact: no spaces, model and version first.
    assert raw.startswith(b'{"model":"fraud","version":"v3","id":"r-17","latency_ms":52.3,')
    assert b" " not in raw


def test_unset_fields_are_not_sent(receiver, encoder):
    raw, e = one(receiver, encoder, client_version="")
    assert raw == b'{"model":"fraud"}'
    raw, e = one(receiver, encoder, latency_ms=0)
    assert raw == b'{"model":"fraud","version":"v3","latency_ms":0}'


def test_per_call_model_and_version(receiver, encoder):
    _, e = one(receiver, encoder, model="reco", version="v9", prediction="sports")
    assert (e["model"], e["version"], e["prediction"]) == ("reco", "v9", "sports")
    _, e = one(receiver, encoder, model="reco", prediction="sports")
    assert (e["model"], e["version"]) == ("reco", "v3")


def test_non_finite_numbers_become_null(receiver, encoder):
    raw, e = one(
        receiver,
        encoder,
        latency_ms=float("nan"),
        confidence=float("inf"),
        prediction=float("-inf"),
        features={"a": float("nan"), "b": 1.5, "c": FakeNumpyFloat("nan")},
        counters={"bad": float("nan"), "good": 3},
    )
    assert b"NaN" not in raw and b"Infinity" not in raw
    assert e["latency_ms"] is None and e["confidence"] is None and e["prediction"] is None
    assert e["features"] == {"a": None, "b": 1.5, "c": None}
    # Counters take no null: a non-finite count is left out.
    assert e["counters"] == {"good": 3}


def test_unicode_and_escapes(receiver, encoder):
    c = Client(receiver.path, model='frä"ud\n', version="v✓", encoder=encoder)
    c.inference(prediction="chat 🐈", features={"ville": "Zürich", "ключ": "\x00\t"}, id="id\\1")
    c.flush()
    (raw,) = receiver.datagrams()
    raw.decode("utf-8")
    e = json.loads(raw)
    assert e["model"] == 'frä"ud\n' and e["version"] == "v✓"
    assert e["prediction"] == "chat 🐈"
    assert e["features"] == {"ville": "Zürich", "ключ": "\x00\t"}
    assert e["id"] == "id\\1"


def test_numpy_like_scalars(receiver, encoder):
    _, e = one(
        receiver,
        encoder,
        latency_ms=FakeNumpyFloat(3.25),
        prediction=FakeNumpyInt(1),
        confidence=FakeNumpyFloat(0.5),
        features={"n": FakeNumpyInt(7), "f": FakeNumpyFloat(0.25), "b": FakeNumpyBool(True), "o": OnlyFloat()},
        counters={"k": FakeNumpyInt(4)},
        ok=FakeNumpyBool(True),
    )
    assert e["latency_ms"] == 3.25 and e["prediction"] == 1 and e["confidence"] == 0.5
    assert e["features"] == {"n": 7, "f": 0.25, "b": True, "o": 2.5}
    assert e["counters"] == {"k": 4}
    assert e["ok"] is True


def test_bools(receiver, encoder):
    # Features keep their bools; a bool prediction (which the protocol does
    # not take) is sent as 0/1; ok is always a bool.
    _, e = one(receiver, encoder, prediction=True, features={"x": False}, ok=1)
    assert e["prediction"] == 1 and e["prediction"] is not True
    assert e["features"]["x"] is False
    assert e["ok"] is True
    _, e = one(receiver, encoder, prediction=FakeNumpyBool(False))
    assert e["prediction"] == 0 and e["prediction"] is not False


def test_ids_and_errors_become_strings(receiver, encoder):
    _, e = one(receiver, encoder, id=17, error=TimeoutError("slow"))
    assert e["id"] == "17" and e["error"] == "TimeoutError"
    _, e = one(receiver, encoder, error=KeyError)
    assert e["error"] == "KeyError"


def test_timestamps(receiver, encoder):
    t = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    _, e = one(receiver, encoder, ts=t)
    assert e["ts"] == 1793491200.0
    _, e = one(receiver, encoder, ts="2026-11-01T00:00:00Z")
    assert e["ts"] == "2026-11-01T00:00:00Z"


def test_feedback_model_and_log_events(receiver, encoder):
    c = Client(receiver.path, model="fraud", version="v3", encoder=encoder)
    c.feedback("r-17", 0)
    c.feedback(None, "cat", prediction="dog", model="pets")
    c.feedback("r-18", True)
    c.model_loaded("v4", trained_at=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc), loaded_at=1793500000)
    c.model_loaded("v4", trained_at="2026-11-01T00:00:00Z")
    c.log("error", "Feature missing", component="inference", metadata={"feature": "embedding"})
    c.flush()
    assert c.stats["sent"] == 6
    a, b, c3, m1, m2, lg = receiver.events(6)
    assert a == {"type": "feedback", "model": "fraud", "version": "v3", "id": "r-17", "actual": 0}
    assert b == {"type": "feedback", "model": "pets", "version": "v3", "actual": "cat", "prediction": "dog"}
    assert c3["actual"] == 1
    assert m1 == {
        "type": "model",
        "model": "fraud",
        "version": "v4",
        "trained_at": 1793491200.0,
        "loaded_at": 1793500000,
    }
    assert m2["trained_at"] == "2026-11-01T00:00:00Z"
    assert abs(m2["loaded_at"] - __import__("time").time()) < 60
    assert lg == {
        "type": "log",
        "model": "fraud",
        "version": "v3",
        "level": "error",
        "message": "Feature missing",
        "component": "inference",
        "metadata": {"feature": "embedding"},
    }


def test_a_value_that_cannot_be_encoded_is_left_out_and_counted(receiver, encoder, caplog):
    c = Client(receiver.path, encoder=encoder)
    with caplog.at_level("WARNING", logger="model_exporter_client"):
        c.inference(latency_ms=3, features={"x": Unencodable(), "y": 1.5})
        c.inference(features={("tuple", "key"): 1, "z": "ok"})
        c.inference(features={"nested": {"a": 1}, "list": [1, 2], "fine": True})
        c.inference(confidence=1.5, latency_ms=-1, prediction=0.5, counters={"n": -2, "m": 3})
        c.feedback("r", Unencodable())  # no truth: no event
        c.log("info", object())  # a message that is not a string is str()-ed
    c.flush()
    s = c.stats
    assert s["sent"] == 5, s
    assert s["values_omitted"] == 1 + 1 + 2 + 3, s
    assert s["dropped_by_reason"]["invalid_event"] == 1, s
    a, b, d, e, lg = receiver.events(5)
    assert a == {"model": "default", "latency_ms": 3, "features": {"y": 1.5}}
    assert b["features"] == {"z": "ok"}
    assert d["features"] == {"fine": True}
    assert e == {"model": "default", "prediction": 0.5, "counters": {"m": 3}}
    assert lg["message"].startswith("<object object")
    # One warning per cause, each naming what was wrong.
    text = caplog.text
    assert "feature 'x'" in text and "Unencodable" in text
    assert "confidence is 1.5" in text and "latency_ms is -1" in text
    assert "feedback()" in text


def test_warnings_are_rate_limited_per_cause(receiver, caplog):
    c = Client(receiver.path)
    with caplog.at_level("WARNING", logger="model_exporter_client"):
        for _ in range(100):
            c.inference(confidence=2.0)
            c.inference(latency_ms=-5)
    assert c.stats["values_omitted"] == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "model_exporter_client"]
    assert len(lines) == 2, lines


def test_default_paths(monkeypatch):
    monkeypatch.setenv("TMPDIR", "/var/tmp/x")
    assert default_path("unixgram") == "/var/tmp/x/model-exporter.dgram.sock"
    assert default_path("unix") == "/var/tmp/x/model-exporter.sock"
    monkeypatch.delenv("TMPDIR")
    assert default_path() == "/tmp/model-exporter.dgram.sock"
    monkeypatch.delenv("MODEL_EXPORTER_SOCKET", raising=False)
    assert Client().path == "/tmp/model-exporter.dgram.sock"
    assert Client(transport="unix").path == "/tmp/model-exporter.sock"
    monkeypatch.setenv("MODEL_EXPORTER_SOCKET", "/run/me.sock")
    assert Client().path == "/run/me.sock"
    monkeypatch.setenv("MODEL_EXPORTER_SOCKET", "unix:///run/me.sock")
    c = Client()
    assert (c.path, c.transport) == ("/run/me.sock", "unix")
    c = Client("unixgram:///run/d.sock")
    assert (c.path, c.transport) == ("/run/d.sock", "unixgram")


def test_bad_configuration_is_refused_at_construction():
    with pytest.raises(ValueError):
        Client("/x", transport="tcp")
    with pytest.raises(ValueError):
        Client("tcp://127.0.0.1:1")
    with pytest.raises(ValueError):
        Client("unix:///x", transport="unixgram")


def test_changing_the_default_version(receiver, encoder):
    c = Client(receiver.path, model="m", version="v1", encoder=encoder)
    c.inference()
    c.version = "v2"
    c.inference()
    assert [e.get("version") for e in receiver.events(2)] == ["v1", "v2"]


def test_log_levels(receiver, encoder):
    import logging

    c = Client(receiver.path, encoder=encoder)
    c.log("WARN", "a")
    c.log("Fatal", "b")
    c.log(logging.ERROR, "c")
    c.log("info", "d")
    assert [e["level"] for e in receiver.events(4)] == ["warning", "critical", "error", "info"]
