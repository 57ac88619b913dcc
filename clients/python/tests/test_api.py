"""The context manager, the decorator and the logging handler."""

import asyncio
import logging
import time

import pytest

from model_exporter_client import Client, ModelExporterHandler, UsageWarning


class ModelFailure(Exception):
    pass


@pytest.fixture
def client(receiver):
    return Client(receiver.path, model="fraud", version="v3")


def test_request_times_the_block(client, receiver):
    with client.request(id="r-1") as r:
        time.sleep(0.02)
        r.prediction = 0.8
        r.confidence = 0.9
        r.features = {"age": 35}
        r.counters = {"shown": 1}
    client.flush()
    (e,) = receiver.events()
    assert e["id"] == "r-1" and e["prediction"] == 0.8 and e["confidence"] == 0.9
    assert e["features"] == {"age": 35} and e["counters"] == {"shown": 1}
    # At least the 20 ms slept; the upper bound (generous, for a loaded
    # machine) catches a unit mistake such as microseconds.
    assert 20 <= e["latency_ms"] < 20_000
    assert "error" not in e and "ok" not in e


def test_request_records_and_reraises_the_exception(client, receiver):
    original = ModelFailure("boom")
    with pytest.raises(ModelFailure) as info:
        with client.request(id="r-2", model="other") as r:
            r.features = {"age": 35}
            time.sleep(0.01)
            raise original
    assert info.value is original  # unchanged
    (e,) = receiver.events()
    assert e["error"] == "ModelFailure" and e["ok"] is False
    assert e["model"] == "other" and e["features"] == {"age": 35}
    # The time until the exception is the request's latency.
    assert 10 <= e["latency_ms"] < 20_000


def test_request_with_an_explicit_error_and_latency(client, receiver):
    with client.request() as r:
        r.error = "timeout"
        r.latency_ms = 123.0
    (e,) = receiver.events()
    assert e["error"] == "timeout" and e["latency_ms"] == 123.0


def test_request_never_masks_the_exception_even_when_sending_fails(receiver):
    c = Client("/nonexistent/dir/sock")
    with pytest.raises(KeyError):
        with c.request() as r:
            r.features = {"x": object()}
            raise KeyError("k")
    c.flush()
    s = c.stats
    assert s["values_omitted"] == 1 and s["dropped_by_reason"]["no_exporter"] == 1, s


def test_timed_records_latency_and_the_return_value(client, receiver):
    @client.timed()
    def predict(x):
        time.sleep(0.01)
        return x * 2

    assert predict(21) == 42
    assert predict.__name__ == "predict"
    (e,) = receiver.events()
    assert e["prediction"] == 42 and e["latency_ms"] >= 10
    assert e["model"] == "fraud" and e["version"] == "v3"


def test_timed_with_extractors(client, receiver):
    @client.timed(
        model="reco",
        version="v9",
        prediction=lambda res: res["label"],
        confidence=lambda res: res["score"],
        features=lambda user, **kw: {"age": user["age"], "country": kw.get("country")},
        id=lambda user, **kw: user["id"],
    )
    def recommend(user, country=None):
        return {"label": "sports", "score": 0.7}

    assert recommend({"age": 30, "id": "u-1"}, country="DE") == {"label": "sports", "score": 0.7}
    (e,) = receiver.events()
    assert e == {
        "model": "reco",
        "version": "v9",
        "id": "u-1",
        "latency_ms": e["latency_ms"],
        "prediction": "sports",
        "confidence": 0.7,
        "features": {"age": 30, "country": "DE"},
    }


def test_timed_leaves_out_a_return_value_that_is_no_prediction(client, receiver):
    @client.timed()
    def predict():
        return [0.1, 0.9]

    assert predict() == [0.1, 0.9]
    (e,) = receiver.events()
    assert "prediction" not in e and "latency_ms" in e


def test_extractor_errors_are_counted_never_raised(client, receiver):
    @client.timed(prediction=lambda r: r["missing"], features=lambda *a, **k: 1 / 0)
    def predict():
        return {"label": 1}

    assert predict() == {"label": 1}
    (e,) = receiver.events()
    assert "prediction" not in e and "features" not in e and "latency_ms" in e
    s = client.stats
    assert s["sent"] == 1 and s["dropped"] == 0 and s["values_omitted"] == 2, s


def test_timed_records_and_reraises(client, receiver):
    @client.timed(features=lambda x: {"x": x})
    def predict(x):
        raise ModelFailure(x)

    with pytest.raises(ModelFailure):
        predict(3)
    (e,) = receiver.events()
    assert e["error"] == "ModelFailure" and e["features"] == {"x": 3}
    assert "prediction" not in e


def test_timed_async(client, receiver):
    @client.timed(confidence=lambda r: 0.5)
    async def predict(x):
        await asyncio.sleep(0.01)
        return x

    @client.timed()
    async def fails():
        raise ModelFailure()

    assert asyncio.run(predict(7)) == 7
    with pytest.raises(ModelFailure):
        asyncio.run(fails())
    a, b = receiver.events(2)
    assert a["prediction"] == 7 and a["confidence"] == 0.5 and a["latency_ms"] >= 10
    assert b["error"] == "ModelFailure"


def test_logging_handler(client, receiver):
    log = logging.getLogger("model.inference")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    h = ModelExporterHandler(client)
    log.addHandler(h)
    try:
        log.debug("d")
        log.info("loaded %s rows", 3)
        log.warning("w", extra={"feature": "embedding", "n": 2, "bad": object(), "nan": float("nan")})
        log.error("e")
        log.critical("c")
        log.log(25, "between info and warning")
        try:
            raise ModelFailure("x")
        except ModelFailure:
            log.exception("failed")
        logging.getLogger("other").addHandler(ModelExporterHandler(client, component="fixed"))
        logging.getLogger("other").warning("via fixed")
    finally:
        log.removeHandler(h)
    events = receiver.events(8)
    assert [(e["level"], e["message"]) for e in events] == [
        ("debug", "d"),
        ("info", "loaded 3 rows"),
        ("warning", "w"),
        ("error", "e"),
        ("critical", "c"),
        ("info", "between info and warning"),
        ("error", "failed"),
        ("warning", "via fixed"),
    ]
    assert all(e["type"] == "log" and e["model"] == "fraud" for e in events)
    assert events[0]["component"] == "model.inference"
    assert "metadata" not in events[0]
    # JSON values from extra= only; NaN as null.
    assert events[2]["metadata"] == {"feature": "embedding", "n": 2, "nan": None}
    assert events[6]["metadata"] == {"exception": "ModelFailure"}
    assert events[7]["component"] == "fixed"


def test_logging_handler_never_raises(receiver):
    c = Client("/nonexistent/dir/sock")
    log = logging.getLogger("model.quiet")
    log.propagate = False
    h = ModelExporterHandler(c)
    log.addHandler(h)
    try:
        log.error("bad %d", "not a number")  # getMessage() raises
        log.error("fine")
    finally:
        log.removeHandler(h)
    c.flush()
    s = c.stats
    assert s["sent"] == 0, s
    assert s["dropped_by_reason"]["invalid_event"] == 1, s
    assert s["dropped_by_reason"]["no_exporter"] == 1, s


def test_a_misspelt_keyword_is_left_out_warned_and_never_raised(client, receiver, caplog):
    with caplog.at_level("WARNING", logger="model_exporter_client"):
        with pytest.warns(UsageWarning, match="latency"):
            client.inference(latency=12, prediction=1)
        with pytest.warns(UsageWarning, match="predicton"):
            with client.request() as r:
                r.predicton = 1  # misspelt: no AttributeError in the block
        with pytest.warns(UsageWarning, match="extra positional"):
            client.feedback("r-1", 0, None, None, None, None, "surplus")
    client.flush()
    a, b, c = receiver.events(3)
    assert a == {"model": "fraud", "version": "v3", "prediction": 1}
    assert "predicton" not in b and "latency_ms" in b
    assert c["actual"] == 0
    assert client.stats["values_omitted"] == 3
    assert "inference() got an unexpected argument 'latency'" in caplog.text


def test_usage_warnings_can_be_made_errors_in_tests(client):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UsageWarning)
        with pytest.raises(UsageWarning):
            client.inference(latncy_ms=3)


def test_feedback_without_its_truth_sends_nothing(client, receiver, caplog):
    with caplog.at_level("WARNING", logger="model_exporter_client"):
        client.feedback("r-1")
        client.feedback(None, 1)
    client.flush()
    assert client.stats["dropped_by_reason"]["invalid_event"] == 2
    assert receiver.events(wait_for=0) == []
    assert "needs actual" in caplog.text and "needs id" in caplog.text
