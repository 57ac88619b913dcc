"""Encoding events as compact JSON.

Two encoders: orjson when it is installed (a dependency of the package on
CPython, several times faster, above all for many numeric features), else
the standard library's. ``MODEL_EXPORTER_CLIENT_ENCODER=json`` picks the standard one
even when orjson is there. Both give the same JSON values.

The common case, a dict of features with string keys and plain values, is
recognised by its keys and value types, remembered per set of keys: with
the standard library, all-numeric features are written through a
``%``-template made once for those keys (the C JSON encoder formats floats
about twice as slowly). Anything unusual (numpy values, NaN, nested
values) takes the careful path in ``_client``."""

import datetime as _dt
import json
import math
import os

__all__ = [
    "ORJSON",
    "json_str",
    "plain_json",
    "plain_numeric_json",
    "dumps",
    "dumps_bytes",
    "timestamp",
    "jsonable",
]

try:
    if os.environ.get("MODEL_EXPORTER_CLIENT_ENCODER", "").lower() in ("json", "stdlib"):
        raise ImportError
    import orjson as _orjson

    #: orjson, when it is installed and not turned off, else None.
    ORJSON = _orjson
except ImportError:
    ORJSON = None

json_str = json.encoder.encode_basestring_ascii

_SCALAR_TYPES = frozenset([str, float, int, bool, type(None)])
_NUMERIC = frozenset([float, int])


def _no_default(o):
    raise TypeError("%s is not JSON serialisable" % type(o).__name__)


try:  # The encoder object behind json.dumps, built once rather than per call.
    from json.encoder import c_make_encoder as _c_make_encoder

    _c_encode = _c_make_encoder(None, _no_default, json_str, None, ":", ",", False, False, False)
    if "".join(_c_encode({"a": [1.5, None, True]}, 0)) != '{"a":[1.5,null,true]}':
        _c_encode = None
except Exception:  # pure-Python json (PyPy)
    _c_encode = None

if _c_encode is not None:

    def dumps(obj, _join="".join, _enc=_c_encode):
        """``obj`` (JSON values only, floats finite) as compact JSON text."""
        return _join(_enc(obj, 0))

else:
    dumps = json.JSONEncoder(
        separators=(",", ":"), allow_nan=False, check_circular=False, default=_no_default
    ).encode


def dumps_bytes(obj):
    """:func:`dumps` as bytes."""
    return dumps(obj).encode()


# Dicts of at least this many entries are checked by their shape (and the
# numeric ones written through a template); smaller ones are encoded and
# looked at.
_TEMPLATE_FROM = 8

# keys tuple -> (value types tuple, %-template or None). Shared by every
# client; bounded.
_shapes = {}
_SHAPES_LIMIT = 256


def _learn(keys, types):
    """Remembers whether dicts with these keys and value types are plain
    (string keys, scalar values) and, for numeric ones, a template."""
    if not (_SCALAR_TYPES.issuperset(types) and all(k.__class__ is str for k in keys)):
        return None
    template = ""
    if _NUMERIC.issuperset(types):
        template = "{%s}" % ",".join(
            json_str(k).replace("%", "%%") + (":%r" if t is float else ":%d")
            for k, t in zip(keys, types)
        )
    if len(_shapes) >= _SHAPES_LIMIT:
        _shapes.clear()
    _shapes[keys] = (types, template)
    return template


def plain_json(d):
    """The dict ``d`` as JSON text with the standard library, or None when
    it needs the careful path (a key that is not a string, a value that is
    not a plain scalar, a number that is not finite)."""
    if len(d) < _TEMPLATE_FROM:
        # Small dicts: the C encoder, then a look at the text for nested
        # values (a string value holding a bracket takes the careful path
        # too, harmlessly).
        try:
            text = dumps(d)
        except (ValueError, TypeError):  # NaN, or a value it does not know
            return None
        if text.count("{") != 1 or "[" in text:
            return None
        return text
    keys = tuple(d)
    vals = tuple(d.values())
    types = tuple(map(type, vals))
    hit = _shapes.get(keys)
    if hit is not None and hit[0] == types:
        template = hit[1]
    else:
        template = _learn(keys, types)
        if template is None:
            return None
    if template:
        s = sum(vals)
        if s - s != 0.0:  # NaN or infinity (or an overflowing sum)
            return None
        return template % vals
    try:
        return dumps(d)
    except ValueError:  # NaN or infinity
        return None


def plain_numeric_json(d):
    """The dict ``d`` of string keys and finite int or float values as JSON
    text, or None when it is anything else."""
    keys = tuple(d)
    vals = tuple(d.values())
    types = tuple(map(type, vals))
    hit = _shapes.get(keys)
    template = hit[1] if hit is not None and hit[0] == types else _learn(keys, types)
    if not template:
        return None
    s = sum(vals)
    if s - s != 0.0:
        return None
    return template % vals


def timestamp(v):
    """Unix seconds, an RFC 3339 string, or a datetime (naive: local time)."""
    if isinstance(v, _dt.datetime):
        return v.timestamp()
    return v


def finite(o):
    """A copy of a JSON value with NaN and infinity replaced by None."""
    t = o.__class__
    if t is float:
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite(v) for v in o]
    return o


def jsonable(v):
    """True when ``v`` can be sent as a JSON value."""
    try:
        dumps(finite(v))
        return True
    except Exception:
        return False
