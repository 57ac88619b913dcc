"""Timing helpers: the ``request`` context manager and the ``timed``
decorator."""

import functools
import inspect
import time

from ._values import Unencodable, outcome

__all__ = ["Request", "timed_decorator"]


def _error_class(error):
    if isinstance(error, BaseException):
        return type(error).__name__
    return error.__name__


def _scalar_prediction(v):
    """``v`` when it can be a prediction by itself (a number, string, bool,
    numpy-like scalar or one-element array), else None."""
    if v is None:
        return None
    t = v.__class__
    if t is float or t is int or t is str:
        return v
    if t is bool:
        return int(v)
    if isinstance(v, (list, tuple, dict)):
        return None
    try:
        size = getattr(v, "size", 1)
        if size != 1:
            return None
        p, _ = outcome(v)
    except (Unencodable, Exception):
        return None
    return p


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

    def _extract(self, name, fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except Exception as e:
            self.client._omit("timed:" + name, "the %s extractor of timed() raised %r", name, e)
            return None

    def _common(self, args, kwargs):
        feats = rid = None
        if self.features is not None:
            feats = self._extract("features", self.features, *args, **kwargs)
        if self.id is not None:
            rid = self._extract("id", self.id, *args, **kwargs)
        return feats, rid

    def done(self, t0, result, args, kwargs):
        latency = (time.perf_counter() - t0) * 1000.0
        try:
            if self.prediction is not None:
                pred = self._extract("prediction", self.prediction, result)
            else:
                pred = _scalar_prediction(result)
            conf = None
            if self.confidence is not None:
                conf = self._extract("confidence", self.confidence, result)
            feats, rid = self._common(args, kwargs)
        except Exception:
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


def timed_decorator(client, model, version, prediction, confidence, features, id):
    """The decorator of :meth:`Client.timed`."""

    def decorate(fn):
        recorder = _Timed(client, model, version, prediction, confidence, features, id)
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


_FIELDS = (
    "id", "model", "version", "prediction", "confidence", "features", "counters", "error",
    "ok", "latency_ms", "ts", "feature_names", "classes",
)  # fmt: skip


class Request:
    """One timed request (see :meth:`Client.request`). Set its attributes
    inside the ``with`` block; the event is sent when the block ends.

    An attribute that is not one of the event's fields (a misspelt
    ``r.predicton``) does not raise inside the block: it is left out of the
    event, counted and warned about when the block ends."""

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
        self.feature_names = None
        self.classes = None

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
            unknown = {}
            if len(self.__dict__) != len(_FIELDS) + 2:
                unknown = {
                    k: v for k, v in self.__dict__.items() if k not in _FIELDS and k[0] != "_"
                }
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
                feature_names=self.feature_names,
                classes=self.classes,
                **unknown
            )
        except Exception:
            pass
        return False
