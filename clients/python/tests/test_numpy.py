"""What a scikit-learn model server has at hand: numpy scalars and arrays,
pandas rows, predict / predict_proba results. The client imports neither
library; these tests use the real ones (installed by .ci/run)."""

import pytest

from model_exporter_client import Client

np = pytest.importorskip("numpy", reason="numpy is not installed (pip install numpy)")


def sent(receiver, c, n=1):
    c.flush()
    s = c.stats
    assert s["dropped"] == 0, s
    return receiver.events(n)


@pytest.fixture
def client(receiver, encoder):
    return Client(receiver.path, model="cancer", encoder=encoder)


def test_numpy_scalars_of_every_kind(client, receiver):
    client.inference(
        latency_ms=np.float32(3.5),
        prediction=np.int64(1),
        confidence=np.float64(0.75),
        features={
            "f32": np.float32(0.5),
            "f64": np.float64(2.25),
            "i8": np.int8(-3),
            "u64": np.uint64(7),
            "b": np.bool_(True),
            "s": np.str_("DE"),
            "nan": np.float32("nan"),
        },
        counters={"shown": np.int32(4)},
        ok=np.bool_(True),
    )
    (e,) = sent(receiver, client)
    assert e["latency_ms"] == 3.5 and e["prediction"] == 1 and e["confidence"] == 0.75
    assert e["features"] == {
        "f32": 0.5,
        "f64": 2.25,
        "i8": -3,
        "u64": 7,
        "b": True,
        "s": "DE",
        "nan": None,
    }
    assert e["counters"] == {"shown": 4} and e["ok"] is True
    assert client.stats["values_omitted"] == 0


def test_a_feature_array_with_names(client, receiver):
    x = np.array([17.99, 10.38, 122.8])
    names = ["mean radius", "mean texture", "mean perimeter"]
    client.inference(features=x, feature_names=names)
    # One row of a 2-D input (what model.predict takes) too.
    client.inference(features=x.reshape(1, -1), feature_names=names)
    a, b = sent(receiver, client, 2)
    want = {"mean radius": 17.99, "mean texture": 10.38, "mean perimeter": 122.8}
    assert a["features"] == want and b["features"] == want


def test_feature_names_given_once_to_the_client(receiver):
    c = Client(receiver.path, feature_names=["a", "b"])
    c.inference(features=np.array([1, 2], dtype=np.int32))
    c.inference(features=[3.5, None])
    a, b = sent(receiver, c, 2)
    assert a["features"] == {"a": 1, "b": 2}
    assert b["features"] == {"a": 3.5, "b": None}


def test_an_array_without_names_is_named_by_position_and_warned_about(client, receiver, caplog):
    with caplog.at_level("WARNING", logger="model_exporter_client"):
        client.inference(features=np.array([0.5, 1.5]))
        client.inference(features=np.array([2.5, 3.5]))
    a, b = sent(receiver, client, 2)
    assert a["features"] == {"0": 0.5, "1": 1.5} and b["features"] == {"0": 2.5, "1": 3.5}
    warnings = [r for r in caplog.records if "without feature_names" in r.getMessage()]
    assert len(warnings) == 1


def test_features_that_do_not_fit_are_left_out(client, receiver, caplog):
    with caplog.at_level("WARNING", logger="model_exporter_client"):
        client.inference(latency_ms=1, features=np.zeros((2, 3)), feature_names=["a", "b", "c"])
        client.inference(latency_ms=2, features=np.zeros(3), feature_names=["a", "b"])
        client.inference(latency_ms=3, features={"emb": np.zeros(4), "ok": np.float64(1.0)})
    a, b, c = sent(receiver, client, 3)
    assert "features" not in a and a["latency_ms"] == 1
    assert "features" not in b and b["latency_ms"] == 2
    assert c["features"] == {"ok": 1.0}
    assert client.stats["values_omitted"] == 3
    text = caplog.text
    assert "shape (2, 3)" in text and "pass one row" in text
    assert "3 values but feature_names has 2 names" in text
    assert "'emb'" in text and "shape (4,)" in text


def test_a_predict_proba_row_gives_the_top_class_and_its_probability(client, receiver):
    proba = np.array([[0.1, 0.7, 0.2]])  # predict_proba of one row
    client.inference(prediction=proba)
    client.inference(prediction=proba[0], classes=np.array(["cat", "dog", "fox"]))
    client.inference(prediction=proba, confidence=0.5)  # an explicit confidence wins
    client.inference(prediction=np.array([0.5, 0.5]))  # a tie: the first class
    a, b, c, d = sent(receiver, client, 4)
    assert (a["prediction"], a["confidence"]) == (1, 0.7)
    assert (b["prediction"], b["confidence"]) == ("dog", 0.7)
    assert (c["prediction"], c["confidence"]) == (1, 0.5)
    assert (d["prediction"], d["confidence"]) == (0, 0.5)


def test_classes_given_once_to_the_client(receiver):
    c = Client(receiver.path, classes=np.array([0, 1]))
    c.inference(prediction=np.array([[0.2, 0.8]]))
    (e,) = sent(receiver, c)
    assert (e["prediction"], e["confidence"]) == (1, 0.8)


def test_a_predict_result_of_one_row_is_the_prediction(client, receiver):
    client.inference(prediction=np.array([1]))  # model.predict(x) for one row
    client.inference(prediction=np.array(["spam"]))
    client.inference(prediction=np.array([[3.25]]))
    a, b, c = sent(receiver, client, 3)
    assert a["prediction"] == 1 and b["prediction"] == "spam" and c["prediction"] == 3.25
    assert "confidence" not in a


def test_a_prediction_that_is_no_row_of_scores_is_left_out(client, receiver, caplog):
    with caplog.at_level("WARNING", logger="model_exporter_client"):
        client.inference(latency_ms=1, prediction=np.array([3.0, 4.0]))  # regression outputs
        client.inference(latency_ms=2, prediction=np.zeros((2, 2)))  # several rows
    a, b = sent(receiver, client, 2)
    assert "prediction" not in a and "prediction" not in b
    assert client.stats["values_omitted"] == 2
    assert "not a row of class scores" in caplog.text


def test_timed_takes_a_one_element_array_as_the_prediction(client, receiver):
    @client.timed()
    def predict(x):
        return np.array([1])

    predict(0)
    (e,) = sent(receiver, client)
    assert e["prediction"] == 1


def test_timed_sends_the_top_class_of_a_predict_proba_row(client, receiver):
    # The example of docs/clients.md: the prediction is the predicted class
    # and the confidence its probability (docs/events.md).
    @client.timed(model="fraud", prediction=lambda proba: proba)
    def predict(x):
        return np.array([[0.9, 0.1]])  # model.predict_proba(x) of one row

    predict(0)
    (e,) = sent(receiver, client)
    assert (e["model"], e["prediction"], e["confidence"]) == ("fraud", 0, 0.9)


def test_a_pandas_row(client, receiver):
    pd = pytest.importorskip("pandas", reason="pandas is not installed (pip install pandas)")
    df = pd.DataFrame({"age": [35], "income": [51000.5], "country": ["DE"]})
    client.inference(features=df.iloc[0])  # a Series: its index names the values
    client.inference(features=df)  # a DataFrame of one row
    a, b = sent(receiver, client, 2)
    want = {"age": 35, "income": 51000.5, "country": "DE"}
    assert a["features"] == want and b["features"] == want
