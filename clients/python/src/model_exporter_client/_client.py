"""The client: builds events and hands them to a transport."""

import functools
import inspect
import os
import time

from ._encode import _c_encode  # None without the C encoder
from ._logging import level_name as _level_name
from ._encode import (
    encode,
    encode_counters,
    encode_obj,
    json_str,
    num,
    outcome,
    outcome_json,
    timestamp,
)
from ._transport import Counters, Datagram, Stream

__all__ = ["Client", "Request", "default_path"]

_TRANSPORTS = {"unixgram": Datagram, "unix": Stream}
_DEFAULT_NAMES = {"unixgram": "model-exporter.dgram.sock", "unix": "model-exporter.sock"}
_PREFIX_CACHE_LIMIT = 1024


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
            raise ValueError(
                "model-exporter client: %r: expected unix:// or unixgram://" % path
            )
        if transport is not None and transport != scheme:
            raise ValueError(
                "model-exporter client: transport %r does not match %r" % (transport, path)
            )
        return rest, scheme
    return path, transport


def _json_str(s):
    return encode([s])[1:-1]


class Client:
    """Sends events to model-exporter. Never blocks and never raises: what
    cannot be sent is counted in :attr:`stats`. Safe to share between
    threads.

    :param path: the exporter's socket; default ``$MODEL_EXPORTER_SOCKET``,
        else the exporter's own default. ``unix:///p`` and ``unixgram:///p``
        URLs choose the transport too.
    :param transport: ``"unixgram"`` (datagrams, the default) or ``"unix"``
        (a stream connection).
    :param model: model name for events that do not name one.
    :param version: model version for events that do not name one.
    """

    def __init__(self, path=None, transport=None, model="default", version=""):
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
        if path is None:
            path = default_path(transport)
        self.path = path
        self.transport = transport
        self._model = str(model) if model is not None else "default"
        self._version = str(version) if version is not None else ""
        self._counters = Counters()
        t = _TRANSPORTS[transport](path, self._counters)
        self._t = t
        self._stream = transport == "unix"
        self._end = "}\n" if self._stream else "}"
        self._deliver = t.send
        self._prefixes = {}

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
        """``{"sent", "dropped", "errors"}``: events handed to the socket
        (for the stream transport: written or buffered), events dropped
        because the socket could not take them, and events lost to errors
        (no exporter listening, a broken connection, a value that cannot be
        encoded) plus extractor functions of :meth:`timed` that raised."""
        return self._counters.snapshot()

    def flush(self):
        """Writes what the stream transport still holds, as far as the socket
        takes it now (never waits). Returns the bytes still held."""
        try:
            return self._t.flush() or 0
        except Exception:
            return 0

    def close(self):
        """Writes what it can without waiting, then closes the socket. Later
        events are counted as errors."""
        try:
            self._t.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _prefix(self, kind, model, version):
        """``{"type":...,"model":...,"version":...`` for this combination,
        built once."""
        key = (kind, model, version)
        p = self._prefixes.get(key)
        if p is None:
            if model is None:
                model = self._model
            if version is None:
                version = self._version
            p = "{" if kind is None else '{"type":"%s",' % kind
            p += '"model":' + _json_str(str(model))
            if version != "":
                p += ',"version":' + _json_str(str(version))
            if len(self._prefixes) >= _PREFIX_CACHE_LIMIT:
                self._prefixes.clear()
            self._prefixes[key] = p
        return p

    def _emit(self, prefix, fields):
        """Sends one event: ``prefix`` and the encoded ``fields``."""
        if fields:
            line = prefix + "," + encode(fields)[1:]
        else:
            line = prefix + "}"
        if self._stream:
            line += "\n"
        self._deliver(line.encode())

    def _error(self):
        try:
            self._counters.error()
        except Exception:
            pass

    def send_line(self, line):
        """Sends one event already encoded as JSON (str or bytes, without a
        newline)."""
        try:
            if isinstance(line, str):
                line = line.encode("utf-8", "surrogatepass")
            if self._stream:
                line = bytes(line) + b"\n"
            self._deliver(line)
        except Exception:
            self._error()

    # -- events -------------------------------------------------------------

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
    ):
        """Records one served request. Every argument is optional; those left
        ``None`` are not sent.

        :param latency_ms: serving latency in milliseconds.
        :param prediction: the output: a number or a class label (bools are
            sent as 0/1).
        :param confidence: confidence of the output, in [0, 1].
        :param features: ``{name: number | str | bool | None}``, the inputs.
        :param counters: ``{name: number >= 0}``, business counts.
        :param id: request id, to join :meth:`feedback` later.
        :param error: error class (an exception is sent as its class name);
            makes ``ok`` false unless ``ok`` is given.
        :param ok: success; defaults to true, or false when ``error`` is set.
        :param ts: when it happened: unix seconds, datetime or RFC 3339.
        :param resources: ``{"cpu_percent": ..., "memory_percent": ...}``.
        """
        # The hot path: the line is put together from pieces, with the
        # common types (str, float, int) formatted inline and only the
        # objects handed to the C JSON encoder.
        try:
            line = self._prefixes.get((None, model, version))
            if line is None:
                line = self._prefix(None, model, version)
            if id is not None:
                line += ',"id":' + json_str(id if id.__class__ is str else str(id))
            if latency_ms is not None:
                if latency_ms.__class__ is float and latency_ms - latency_ms == 0.0:
                    line += ',"latency_ms":' + _float_repr(latency_ms)
                else:
                    line += ',"latency_ms":' + num(latency_ms)
            if ok is not None:
                line += ',"ok":true' if ok is True or (ok is not False and ok) else ',"ok":false'
            if error is not None:
                line += ',"error":' + json_str(_error_class(error))
            if prediction is not None:
                t = prediction.__class__
                if t is int:
                    line += ',"prediction":' + _int_repr(prediction)
                elif t is float and prediction - prediction == 0.0:
                    line += ',"prediction":' + _float_repr(prediction)
                else:
                    line += ',"prediction":' + outcome_json(prediction)
            if confidence is not None:
                if confidence.__class__ is float and confidence - confidence == 0.0:
                    line += ',"confidence":' + _float_repr(confidence)
                else:
                    line += ',"confidence":' + num(confidence)
            if features is not None:
                try:
                    line += ',"features":' + _join(_c_encode(features, 0))
                except Exception:  # NaN, unusual values, or no C encoder
                    line += ',"features":' + encode_obj(features)
            if counters is not None:
                line += ',"counters":' + encode_counters(counters)
            if resources is not None:
                line += ',"resources":' + encode_obj(resources)
            if ts is not None:
                line += ',"ts":' + encode_obj(timestamp(ts))
            self._deliver((line + self._end).encode())
        except Exception:
            self._error()

    def feedback(self, id, actual, prediction=None, model=None, version=None, ts=None):
        """Records the ground truth for the request ``id`` (``id`` may be
        None when ``prediction`` is given)."""
        try:
            f = {}
            if id is not None:
                f["id"] = str(id)
            f["actual"] = outcome(actual)
            if prediction is not None:
                f["prediction"] = outcome(prediction)
            if ts is not None:
                f["ts"] = timestamp(ts)
            self._emit(self._prefix("feedback", model, version), f)
        except Exception:
            self._error()

    def model_loaded(self, version=None, trained_at=None, loaded_at=None, model=None):
        """Announces that a model version was loaded. ``trained_at`` and
        ``loaded_at`` take a datetime, unix seconds or an RFC 3339 string;
        ``loaded_at`` defaults to now. ``version`` defaults to the client's."""
        try:
            f = {}
            if trained_at is not None:
                f["trained_at"] = timestamp(trained_at)
            f["loaded_at"] = time.time() if loaded_at is None else timestamp(loaded_at)
            self._emit(self._prefix("model", model, version), f)
        except Exception:
            self._error()

    def log(self, level, message, component=None, metadata=None, model=None, version=None):
        """Forwards a log line of the model process. ``level`` is one of
        ``debug``, ``info``, ``warning``, ``error``, ``critical`` (``warn``
        and ``fatal`` are understood too), or a ``logging`` level number."""
        try:
            if level.__class__ is not str:
                level = _level_name(level)  # a logging level number
            elif level not in _LEVELS:
                level = _LEVEL_ALIASES.get(level.lower(), level)
            f = {"level": level, "message": message if message.__class__ is str else str(message)}
            if component is not None:
                f["component"] = str(component)
            if metadata:
                f["metadata"] = metadata
            self._emit(self._prefix("log", model, version), f)
        except Exception:
            self._error()

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

    def timed(
        self,
        model=None,
        version=None,
        prediction=None,
        confidence=None,
        features=None,
        id=None,
    ):
        """A decorator that times each call and records one inference.

        The return value is the prediction when it is a number, string or
        bool (or a numpy-like scalar); ``prediction=lambda result: ...``
        picks it out of anything else. ``confidence=lambda result: ...``,
        ``features=lambda *args, **kwargs: ...`` and ``id=lambda *args,
        **kwargs: ...`` add those fields. An extractor that raises is
        counted in ``stats["errors"]`` and its field left out; the event is
        still sent. Exceptions of the function are recorded as ``error`` and
        re-raised unchanged. Works on ``async def`` functions too."""

        def decorate(fn):
            recorder = _Timed(self, model, version, prediction, confidence, features, id)
            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def async_wrapper(*args, **kwargs):
                    t0 = time.perf_counter()
                    try:
                        result = await fn(*args, **kwargs)
                    except BaseException as e:
                        recorder.failed(t0, e, args, kwargs)
                        raise
                    recorder.done(t0, result, args, kwargs)
                    return result

                return async_wrapper

            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                t0 = time.perf_counter()
                try:
                    result = fn(*args, **kwargs)
                except BaseException as e:
                    recorder.failed(t0, e, args, kwargs)
                    raise
                recorder.done(t0, result, args, kwargs)
                return result

            return wrapper

        return decorate


_LEVELS = frozenset(["debug", "info", "warning", "error", "critical"])
_LEVEL_ALIASES = {l: l for l in _LEVELS}
_LEVEL_ALIASES.update(warn="warning", fatal="critical")

_float_repr = float.__repr__
_int_repr = int.__repr__
_join = "".join


def _error_class(error):
    if error.__class__ is str:
        return error
    if isinstance(error, BaseException):
        return type(error).__name__
    if isinstance(error, type) and issubclass(error, BaseException):
        return error.__name__
    return str(error)


def _scalar(v):
    """``v`` when it can be a prediction, else None."""
    if v is None:
        return None
    t = v.__class__
    if t is float or t is int or t is str or t is bool:
        return v
    if isinstance(v, (int, float, str)):
        return v
    if hasattr(v, "item"):
        try:
            v = outcome(v)
        except Exception:
            return None
        if isinstance(v, (int, float, str)):
            return v
    return None


class _Timed:
    __slots__ = ("client", "model", "version", "prediction", "confidence", "features", "id")

    def __init__(self, client, model, version, prediction, confidence, features, id):
        self.client = client
        self.model = model
        self.version = version
        self.prediction = prediction
        self.confidence = confidence
        self.features = features
        self.id = id

    def _extract(self, fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except Exception:
            self.client._error()
            return None

    def _common(self, args, kwargs):
        feats = rid = None
        if self.features is not None:
            feats = self._extract(self.features, *args, **kwargs)
        if self.id is not None:
            rid = self._extract(self.id, *args, **kwargs)
        return feats, rid

    def done(self, t0, result, args, kwargs):
        latency = (time.perf_counter() - t0) * 1000.0
        try:
            if self.prediction is not None:
                pred = self._extract(self.prediction, result)
            else:
                pred = _scalar(result)
            conf = None
            if self.confidence is not None:
                conf = self._extract(self.confidence, result)
            feats, rid = self._common(args, kwargs)
        except Exception:
            self.client._error()
            return
        self.client.inference(
            latency_ms=latency,
            prediction=pred,
            confidence=conf,
            features=feats,
            id=rid,
            model=self.model,
            version=self.version,
        )

    def failed(self, t0, exc, args, kwargs):
        latency = (time.perf_counter() - t0) * 1000.0
        try:
            feats, rid = self._common(args, kwargs)
        except Exception:
            feats = rid = None
        self.client.inference(
            latency_ms=latency,
            error=_error_class(exc),
            features=feats,
            id=rid,
            model=self.model,
            version=self.version,
        )


class Request:
    """One timed request (see :meth:`Client.request`). Set its attributes
    inside the ``with`` block; the event is sent when the block ends."""

    __slots__ = (
        "_client",
        "_t0",
        "id",
        "model",
        "version",
        "prediction",
        "confidence",
        "features",
        "counters",
        "error",
        "ok",
        "latency_ms",
        "ts",
    )

    def __init__(self, client, id=None, model=None, version=None):
        self._client = client
        self._t0 = None
        self.id = id
        self.model = model
        self.version = version
        self.prediction = None
        self.confidence = None
        self.features = None
        self.counters = None
        self.error = None
        self.ok = None
        #: Set to override the measured latency.
        self.latency_ms = None
        self.ts = None

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            latency = self.latency_ms
            if latency is None:
                latency = (time.perf_counter() - self._t0) * 1000.0
            error, ok = self.error, self.ok
            if exc_type is not None:
                error, ok = exc_type.__name__, False
            self._client.inference(
                latency_ms=latency,
                prediction=self.prediction,
                confidence=self.confidence,
                features=self.features,
                counters=self.counters,
                id=self.id,
                error=error,
                ok=ok,
                model=self.model,
                version=self.version,
                ts=self.ts,
            )
        except Exception:
            self._client._error()
        return False
