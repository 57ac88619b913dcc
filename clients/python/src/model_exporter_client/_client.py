"""The client: builds events and hands them to a transport."""

import inspect
import math
import os
import time

from . import _encode
from ._encode import (
    ORJSON,
    dumps_bytes,
    json_str,
    plain_json,
    plain_numeric_json,
    timestamp,
)
from ._logging import level_name as _level_name
from ._timing import Request, timed_decorator
from ._transport import (
    BUFFER,
    FLUSH_INTERVAL,
    MAX_DATAGRAM,
    REPORT_INTERVAL,
    Datagram,
    Stream,
)
from ._values import Unencodable, features_dict, outcome, scalar
from ._warn import Warner

__all__ = ["Client", "default_path"]

_TRANSPORTS = {"unixgram": Datagram, "unix": Stream}
_DEFAULT_NAMES = {"unixgram": "model-exporter.dgram.sock", "unix": "model-exporter.sock"}
_PREFIX_CACHE_LIMIT = 1024
_INF = math.inf
_float_repr = float.__repr__
_int_repr = int.__repr__
_NUMBER = (int, float)

def default_path(transport="unixgram"):
    """Where the exporter listens without ``--events.listen``: the
    ``model-exporter.dgram.sock`` (``unixgram``) or ``model-exporter.sock``
    (``unix``) in ``$TMPDIR``, else ``/tmp``, exactly as the exporter
    chooses it."""
    return os.path.join(os.environ.get("TMPDIR") or "/tmp", _DEFAULT_NAMES[transport])


def _split_url(path, transport):
    """Accepts ``unix:///p`` and ``unixgram:///p`` as well as plain paths."""
    if isinstance(path, str) and "://" in path:
        scheme, rest = path.split("://", 1)
        if scheme not in _TRANSPORTS:
            raise ValueError("model-exporter client: %r: expected unix:// or unixgram://" % path)
        if transport is not None and transport != scheme:
            raise ValueError(
                "model-exporter client: transport %r does not match %r" % (transport, path)
            )
        return rest, scheme
    return path, transport


class _Careful(Exception):
    """The fast path met a value it does not handle."""


class Client:
    """Sends events to model-exporter. Never blocks and never raises after
    construction: what cannot be sent is counted in :attr:`stats` and
    reported to the exporter. Safe to share between threads.

    :param path: the exporter's socket; default ``$MODEL_EXPORTER_SOCKET``,
        else the exporter's own default. ``unix:///p`` and ``unixgram:///p``
        URLs choose the transport too.
    :param transport: ``"unixgram"`` (datagrams, the default) or ``"unix"``
        (a stream connection).
    :param model: model name for events that do not name one; drops are
        reported under it.
    :param version: model version for events that do not name one.
    :param feature_names: names of the features when they are given as a
        sequence or numpy array (e.g. the training columns).
    :param classes: class labels of a ``predict_proba`` row (e.g.
        ``model.classes_``).
    :param buffer: bytes held while the exporter cannot take them.
    :param max_datagram: largest datagram or write; at most the exporter's
        ``--events.max-line-bytes``.
    :param flush_interval: longest an event waits in a partly filled batch
        (seconds).
    :param report_interval: least time between two reports of drops
        (seconds).
    :param encoder: ``"orjson"`` or ``"json"``; by default orjson when it
        is installed.
    """

    def __init__(
        self,
        path=None,
        transport=None,
        model="default",
        version="",
        feature_names=None,
        classes=None,
        buffer=BUFFER,
        max_datagram=MAX_DATAGRAM,
        flush_interval=FLUSH_INTERVAL,
        report_interval=REPORT_INTERVAL,
        encoder=None,
    ):
        if path is None:
            path = os.environ.get("MODEL_EXPORTER_SOCKET") or None
        if path is not None:
            path, transport = _split_url(os.fspath(path), transport)
        if transport is None:
            transport = "unixgram"
        if transport not in _TRANSPORTS:
            raise ValueError(
                "model-exporter client: transport must be 'unixgram' or 'unix', not %r"
                % (transport,)
            )
        if encoder not in (None, "orjson", "json"):
            raise ValueError("model-exporter client: encoder must be 'orjson' or 'json'")
        if encoder == "orjson" and ORJSON is None:
            raise ValueError("model-exporter client: encoder='orjson' but orjson is not installed")
        if max_datagram < 1024 or buffer < max_datagram:
            raise ValueError("model-exporter client: need max_datagram >= 1024 and buffer >= it")
        if path is None:
            path = default_path(transport)
        self.path = path
        self.transport = transport
        self._model = str(model) if model is not None else "default"
        self._version = str(version) if version is not None else ""
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.classes = list(classes) if classes is not None else None
        self._warn = Warner()
        self._t = _TRANSPORTS[transport](
            path,
            self._model,
            self._warn,
            buffer=buffer,
            max_datagram=max_datagram,
            flush_interval=flush_interval,
            report_interval=report_interval,
        )
        self._send = self._t.send
        self._prefixes = {}
        self._dumps = None
        if ORJSON is not None and encoder != "json":
            self._dumps = ORJSON.dumps
            self.inference = self._inference_orjson
        self.encoder = "orjson" if self._dumps is not None else "json"

    def __repr__(self):
        return "Client(path=%r, transport=%r, model=%r, version=%r)" % (
            self.path,
            self.transport,
            self.model,
            self.version,
        )

    # -- plumbing ---------------------------------------------------------

    @property
    def model(self):
        """Model name for events that do not name one."""
        return self._model

    @model.setter
    def model(self, value):
        self._model = str(value)
        self._t.model = self._model
        self._prefixes = {}

    @property
    def version(self):
        """Model version for events that do not name one (e.g. after loading
        a new version)."""
        return self._version

    @version.setter
    def version(self, value):
        self._version = "" if value is None else str(value)
        self._prefixes = {}

    @property
    def stats(self):
        """What the client did so far (thread-safe): ``sent`` (events handed
        to the exporter's socket), ``pending`` (held, not sent yet),
        ``dropped`` (events lost, all reasons), ``dropped_by_reason``
        (``queue_full``, ``no_exporter``, ``socket_error``, ``too_large``,
        ``invalid_event``, ``closed``, ``exit``) and ``values_omitted``
        (values left out of events that were still sent)."""
        return self._t.stats()

    def flush(self):
        """Sends what the client holds as far as the socket takes it now
        (never waits). Returns the bytes still held."""
        try:
            return self._t.flush() or 0
        except Exception:
            return 0

    def close(self):
        """Sends what it can without waiting and a last report of drops,
        then closes the socket. Later events are dropped (``closed``)."""
        try:
            self._t.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _prefix(self, model, version):
        """``{"model":...,"version":...`` for this combination, built once."""
        key = (model, version)
        p = self._prefixes.get(key)
        if p is None:
            m = self._model if model is None else model
            v = self._version if version is None else version
            p = '{"model":' + json_str(m if m.__class__ is str else str(m))
            if v != "":
                p += ',"version":' + json_str(v if v.__class__ is str else str(v))
            if len(self._prefixes) >= _PREFIX_CACHE_LIMIT:
                self._prefixes.clear()
            self._prefixes[key] = p
        return p

    def _omit(self, cause, message, *args):
        """A value was left out of an event: counted and warned about."""
        try:
            self._t.omit(1)
            self._warn.warn("omit:" + cause, message + ": left out of the event", *args)
        except Exception:
            pass

    def _invalid(self, cause, message, *args):
        """A call made no event."""
        try:
            self._t.invalid()
            self._warn.warn("invalid:" + cause, message + ": no event sent", *args)
        except Exception:
            pass

    def _usage(self, method, extra, unknown, stacklevel):
        """Arguments the method does not take: each is left out of the event
        and counted; a :class:`UsageWarning` points at the caller (and
        raises only where warnings were made errors, as in a test run)."""
        try:
            names = sorted(map(str, unknown))
            if extra:
                names.append("%d extra positional argument(s)" % len(extra))
            self._t.omit(len(unknown) + len(extra))
            cause = "usage:%s:%s" % (method, ",".join(names))
            text = ", ".join(repr(n) if n in unknown else n for n in names)
        except Exception:
            return
        self._warn.usage(
            cause,
            "%s() got an unexpected argument %s (left out of the event)",
            method,
            text,
            stacklevel=stacklevel,
        )

    def send_line(self, line):
        """Sends one event already encoded as JSON (str or bytes, without a
        newline)."""
        try:
            if isinstance(line, str):
                line = line.encode("utf-8", "surrogatepass")
            self._send(bytes(line))
        except Exception:
            self._invalid("send_line", "send_line() takes str or bytes")

    # -- inference -----------------------------------------------------------

    def inference(
        self,
        latency_ms=None,
        prediction=None,
        confidence=None,
        features=None,
        counters=None,
        id=None,
        error=None,
        ok=None,
        model=None,
        version=None,
        ts=None,
        resources=None,
        feature_names=None,
        classes=None,
        *extra,
        **unknown
    ):
        """Records one served request. Every argument is optional; those left
        ``None`` are not sent.

        :param latency_ms: serving latency in milliseconds (>= 0).
        :param prediction: the output: a number or a class label (bools are
            sent as 0/1), a one-element array, or a ``predict_proba`` row
            (the top class and, unless ``confidence`` is given, its score).
        :param confidence: confidence of the output, in [0, 1].
        :param features: ``{name: number | str | bool | None}``, a pandas
            Series, or a sequence / numpy array with ``feature_names``.
        :param counters: ``{name: number >= 0}``, business counts.
        :param id: request id, to join :meth:`feedback` later.
        :param error: error class (an exception is sent as its class name);
            makes ``ok`` false unless ``ok`` is given.
        :param ok: success; defaults to true, or false when ``error`` is set.
        :param ts: when it happened: unix seconds, datetime or RFC 3339.
        :param resources: ``{"cpu_percent": ..., "memory_percent": ...}``.
        :param feature_names: names for features given as a sequence
            (default: the client's ``feature_names``).
        :param classes: labels for a ``predict_proba`` row (default: the
            client's ``classes``).

        A value that cannot be sent is left out (and counted in
        ``stats["values_omitted"]``, with a rate-limited warning); the rest
        of the event is sent. An argument it does not take is treated the
        same way, with a :class:`UsageWarning`.
        """
        # The fast path for the common types, with the standard library's
        # encoder: the line is put together from pieces. Anything unusual
        # goes to _careful.
        try:
            if extra or unknown:
                raise _Careful
            line = self._prefixes.get((model, version))
            if line is None:
                line = self._prefix(model, version)
            if id is not None:
                if id.__class__ is not str:
                    raise _Careful
                line += ',"id":' + json_str(id)
            if latency_ms is not None:
                t = latency_ms.__class__
                if t is float and 0.0 <= latency_ms < _INF:
                    line += ',"latency_ms":' + _float_repr(latency_ms)
                elif t is int and latency_ms >= 0:
                    line += ',"latency_ms":' + _int_repr(latency_ms)
                else:
                    raise _Careful
            if ok is not None:
                if ok is True:
                    line += ',"ok":true'
                elif ok is False:
                    line += ',"ok":false'
                else:
                    raise _Careful
            if error is not None:
                if error.__class__ is not str:
                    raise _Careful
                line += ',"error":' + json_str(error)
            if prediction is not None:
                t = prediction.__class__
                if t is int:
                    line += ',"prediction":' + _int_repr(prediction)
                elif t is float and prediction - prediction == 0.0:
                    line += ',"prediction":' + _float_repr(prediction)
                elif t is str:
                    line += ',"prediction":' + json_str(prediction)
                else:
                    raise _Careful
            if confidence is not None:
                if confidence.__class__ is float and 0.0 <= confidence <= 1.0:
                    line += ',"confidence":' + _float_repr(confidence)
                else:
                    raise _Careful
            if features is not None:
                f = features
                if f.__class__ is not dict:
                    f = self._sequence(f, feature_names)
                text = plain_json(f)
                if text is None:
                    raise _Careful
                line += ',"features":' + text
            if counters is not None:
                if counters.__class__ is not dict or min(counters.values()) < 0:
                    raise _Careful
                text = plain_numeric_json(counters)
                if text is None:
                    raise _Careful
                line += ',"counters":' + text
            if ts is not None or resources is not None:
                raise _Careful
            data = (line + "}").encode()
        except Exception:
            data = None
        if data is None:
            self._careful(
                latency_ms, prediction, confidence, features, counters, id, error, ok,
                model, version, ts, resources, feature_names, classes, extra, unknown,
            )  # fmt: skip
            return
        self._send(data)

    def _inference_orjson(
        self,
        latency_ms=None,
        prediction=None,
        confidence=None,
        features=None,
        counters=None,
        id=None,
        error=None,
        ok=None,
        model=None,
        version=None,
        ts=None,
        resources=None,
        feature_names=None,
        classes=None,
        *extra,
        **unknown
    ):
        # The same as `inference`, encoded with orjson: a dict of the fields,
        # dumped once (orjson writes NaN as null, as the protocol wants).
        try:
            if extra or unknown:
                raise _Careful
            e = {"model": self._model if model is None else model}
            v = self._version if version is None else version
            if v != "":
                e["version"] = v
            if id is not None:
                if id.__class__ is not str:
                    raise _Careful
                e["id"] = id
            if latency_ms is not None:
                t = latency_ms.__class__
                if (t is float and 0.0 <= latency_ms < _INF) or (t is int and latency_ms >= 0):
                    e["latency_ms"] = latency_ms
                else:
                    raise _Careful
            if ok is not None:
                if ok is not True and ok is not False:
                    raise _Careful
                e["ok"] = ok
            if error is not None:
                if error.__class__ is not str:
                    raise _Careful
                e["error"] = error
            if prediction is not None:
                t = prediction.__class__
                if t is not int and t is not float and t is not str:
                    raise _Careful
                e["prediction"] = prediction
            if confidence is not None:
                if confidence.__class__ is not float or not 0.0 <= confidence <= 1.0:
                    raise _Careful
                e["confidence"] = confidence
            if features is not None:
                f = features
                if f.__class__ is not dict:
                    f = self._sequence(f, feature_names)
                e["features"] = f
            if counters is not None or ts is not None or resources is not None:
                raise _Careful
            data = self._dumps(e)
            # Features are the only object inside: any other brace or
            # bracket is a nested value (or one inside a string, which the
            # careful path writes just as well).
            if data.count(b"{") > 2 or b"[" in data:
                raise _Careful
        except Exception:
            data = None
        if data is None:
            self._careful(
                latency_ms, prediction, confidence, features, counters, id, error, ok,
                model, version, ts, resources, feature_names, classes, extra, unknown,
            )  # fmt: skip
            return
        self._send(data)

    def _careful(
        self, latency_ms, prediction, confidence, features, counters, id, error, ok,
        model, version, ts, resources, feature_names, classes, extra, unknown,
    ):  # fmt: skip
        """Builds the event value by value: each value that cannot be sent
        is left out, counted and warned about; the rest is sent."""
        if extra or unknown:
            self._usage("inference", extra, unknown, 5)
        try:
            e = self._head(model, version)
            if id is not None:
                try:
                    e["id"] = id if isinstance(id, str) else str(scalar(id))
                except Exception as x:
                    self._omit("id", "id: %s", x)
            if latency_ms is not None:
                v = self._number("latency_ms", latency_ms, 0.0, _INF)
                if v is not _SKIP:
                    e["latency_ms"] = v
            if ok is not None:
                try:
                    e["ok"] = bool(scalar(ok))
                except Exception as x:
                    self._omit("ok", "ok: %s", x)
            if error is not None:
                try:
                    e["error"] = _error_class(error)
                except Exception as x:
                    self._omit("error", "error: %s", x)
            if prediction is not None:
                try:
                    p, conf = outcome(prediction, classes if classes is not None else self.classes)
                    e["prediction"] = _finite(p)
                    if confidence is None and conf is not None:
                        confidence = conf
                except Unencodable as x:
                    self._omit(x.cause, "prediction: %s", x)
                except Exception as x:
                    self._omit("prediction", "prediction: %s", x)
            if confidence is not None:
                v = self._number("confidence", confidence, 0.0, 1.0)
                if v is not _SKIP:
                    e["confidence"] = v
            if features is not None:
                f = self._features(features, feature_names)
                if f is not None:
                    e["features"] = f
            if counters is not None:
                c = self._counters(counters)
                if c is not None:
                    e["counters"] = c
            if resources is not None:
                r = self._resources(resources)
                if r is not None:
                    e["resources"] = r
            if ts is not None:
                self._ts(e, "ts", ts)
            data = dumps_bytes(e)
        except Exception as x:
            self._invalid("inference", "inference(): %s", x)
            return
        self._send(data)

    # -- values, carefully ----------------------------------------------------

    def _head(self, model, version):
        m = self._model if model is None else model
        v = self._version if version is None else version
        e = {"model": m if isinstance(m, str) else str(m)}
        if v != "" and v is not None:
            e["version"] = v if isinstance(v, str) else str(v)
        return e

    def _number(self, name, v, lo, hi):
        """A number within [lo, hi] (NaN is sent as null: missing), or _SKIP."""
        try:
            x = scalar(v)
        except Unencodable as err:
            self._omit("%s:%s" % (name, err.cause), "%s: %s", name, err)
            return _SKIP
        if x is None:
            return None
        if x.__class__ is bool or not isinstance(x, _NUMBER):
            self._omit(name + ":type", "%s must be a number, not %s", name, type(v).__name__)
            return _SKIP
        if x - x != 0:  # NaN or infinity: sent as null, a missing value
            return None
        if not lo <= x <= hi:
            self._omit(name + ":range", "%s is %r, outside [%g, %g]", name, x, lo, hi)
            return _SKIP
        return x

    def _sequence(self, features, names):
        """Features given as a sequence, array or Series, as a dict; raises
        (to take the careful path) when that needs a warning."""
        f, warning = features_dict(features, names if names is not None else self.feature_names)
        if warning:
            raise _Careful
        return f

    def _features(self, features, names):
        if features.__class__ is not dict:
            try:
                features, warning = features_dict(
                    features, names if names is not None else self.feature_names
                )
            except Unencodable as x:
                self._omit("features:" + x.cause, "features: %s", x)
                return None
            if warning:
                self._warn.warn("features_positional", warning)
        out = {}
        for k, v in features.items():
            if k.__class__ is not str:
                if isinstance(k, str) or isinstance(k, int) and not isinstance(k, bool):
                    k = str(k)
                else:
                    try:
                        k = scalar(k)
                    except Exception:
                        k = None
                    if not isinstance(k, (str, int)) or isinstance(k, bool):
                        self._omit(
                            "feature_key", "a feature name must be a string, not %s", type(k).__name__
                        )
                        continue
                    k = str(k)
            try:
                out[k] = _finite(scalar(v))
            except Unencodable as x:
                self._omit("feature:" + x.cause, "feature %r: %s", k, x)
        return out

    def _counters(self, counters):
        try:
            items = counters.items()
        except Exception:
            self._omit("counters", "counters must be a dict, not %s", type(counters).__name__)
            return None
        out = {}
        for k, v in items:
            if not isinstance(k, str):
                self._omit("counter_key", "a counter name must be a string, not %s", type(k).__name__)
                continue
            x = self._number("counter %s" % k, v, 0.0, _INF)
            if x is None:
                self._omit("counter_missing", "counter %r has no value", k)
            elif x is not _SKIP:
                out[k] = x
        return out

    def _resources(self, resources):
        try:
            items = resources.items()
        except Exception:
            self._omit("resources", "resources must be a dict, not %s", type(resources).__name__)
            return None
        out = {}
        for k, v in items:
            x = self._number("resources.%s" % k, v, 0.0, 100.0)
            if x is not _SKIP:
                out[str(k)] = x
        return out

    def _ts(self, e, name, v):
        try:
            t = timestamp(v)
            if isinstance(t, str):
                e[name] = t
                return
        except Exception as x:
            self._omit(name, "%s: %s", name, x)
            return
        x = self._number(name, t, 0.0, _INF)
        if x is not _SKIP and x is not None:
            e[name] = x

    # -- other events -----------------------------------------------------

    def feedback(self, id=None, actual=None, prediction=None, model=None, version=None, ts=None,
                 *extra, **unknown):
        """Records the ground truth ``actual`` for the request ``id`` (``id``
        may be None when ``prediction`` is given)."""
        if extra or unknown:
            self._usage("feedback", extra, unknown, 4)
        try:
            if actual is None:
                self._invalid("feedback_actual", "feedback() needs actual, the true value")
                return
            if id is None and prediction is None:
                self._invalid("feedback_id", "feedback() needs id (or prediction)")
                return
            e = self._head(model, version)
            e = {"type": "feedback", **e}
            if id is not None:
                e["id"] = id if isinstance(id, str) else str(scalar(id))
            try:
                e["actual"] = _finite(outcome(actual)[0])
            except Exception as x:
                self._invalid("feedback_value", "feedback(): actual: %s", x)
                return
            if prediction is not None:
                try:
                    e["prediction"] = _finite(outcome(prediction)[0])
                except Exception as x:
                    self._omit("feedback_prediction", "feedback(): prediction: %s", x)
            if ts is not None:
                self._ts(e, "ts", ts)
            data = dumps_bytes(e)
        except Exception as x:
            self._invalid("feedback", "feedback(): %s", x)
            return
        self._send(data)

    def model_loaded(self, version=None, trained_at=None, loaded_at=None, model=None,
                     *extra, **unknown):
        """Announces that a model version was loaded. ``trained_at`` and
        ``loaded_at`` take a datetime, unix seconds or an RFC 3339 string;
        ``loaded_at`` defaults to now. ``version`` defaults to the client's."""
        if extra or unknown:
            self._usage("model_loaded", extra, unknown, 4)
        try:
            e = {"type": "model", **self._head(model, version)}
            if trained_at is not None:
                self._ts(e, "trained_at", trained_at)
            self._ts(e, "loaded_at", time.time() if loaded_at is None else loaded_at)
            data = dumps_bytes(e)
        except Exception as x:
            self._invalid("model_loaded", "model_loaded(): %s", x)
            return
        self._send(data)

    def log(self, level="info", message="", component=None, metadata=None, model=None,
            version=None, *extra, **unknown):
        """Forwards a log line of the model process. ``level`` is one of
        ``debug``, ``info``, ``warning``, ``error``, ``critical`` (``warn``
        and ``fatal`` are understood too), or a ``logging`` level number."""
        if extra or unknown:
            self._usage("log", extra, unknown, 4)
        try:
            if level.__class__ is not str:
                level = _level_name(level)  # a logging level number
            elif level not in _LEVELS:
                level = _LEVEL_ALIASES.get(level.lower())
                if level is None:
                    self._omit("log_level", "unknown log level: sent as info")
                    level = "info"
            e = {"type": "log", **self._head(model, version)}
            e["level"] = level
            e["message"] = message if message.__class__ is str else str(message)
            if component is not None:
                e["component"] = str(component)
            if metadata:
                e["metadata"] = _encode.finite(dict(metadata))
                try:
                    data = dumps_bytes(e)
                except Exception:
                    self._omit("log_metadata", "log metadata that is not JSON")
                    del e["metadata"]
                    data = dumps_bytes(e)
            else:
                data = dumps_bytes(e)
        except Exception as x:
            self._invalid("log", "log(): %s", x)
            return
        self._send(data)

    # -- timing helpers -------------------------------------------------

    def request(self, id=None, model=None, version=None):
        """A context manager that times its block and records one inference::

            with client.request(id="r-17") as r:
                r.prediction = model.predict(x)
                r.confidence = 0.91
                r.features = {"age": 35}

        If the block raises, the event records ``error=<exception class
        name>`` and the exception propagates unchanged."""
        return Request(self, id, model, version)

    def timed(self, model=None, version=None, prediction=None, confidence=None, features=None,
              id=None):
        """A decorator that times each call and records one inference.

        The return value is the prediction when it is a number, string or
        bool (or a numpy-like scalar or one-element array);
        ``prediction=lambda result: ...`` picks it out of anything else.
        ``confidence=lambda result: ...``, ``features=lambda *args,
        **kwargs: ...`` and ``id=lambda *args, **kwargs: ...`` add those
        fields. An extractor that raises is counted in
        ``stats["values_omitted"]`` and its field left out; the event is
        still sent. Exceptions of the function are recorded as ``error`` and
        re-raised unchanged. Works on ``async def`` functions too."""
        return timed_decorator(self, model, version, prediction, confidence, features, id)


_SKIP = object()
_LEVELS = frozenset(["debug", "info", "warning", "error", "critical"])
_LEVEL_ALIASES = {l: l for l in _LEVELS}
_LEVEL_ALIASES.update(warn="warning", fatal="critical")


def _finite(x):
    if x.__class__ is float and not math.isfinite(x):
        return None
    return x


def _error_class(error):
    if error.__class__ is str:
        return error
    if isinstance(error, BaseException):
        return type(error).__name__
    if inspect.isclass(error) and issubclass(error, BaseException):
        return error.__name__
    return str(error)
