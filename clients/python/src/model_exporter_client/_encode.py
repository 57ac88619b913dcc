"""Encoding events as compact JSON lines.

The hot path is one call of the C JSON encoder on a small dict. Values the
encoder does not know (numpy scalars, Decimal, mappings) go through
``_default``; a value that is not finite makes the encoder refuse the event,
and only then is the event walked once to replace NaN and infinity by null.
"""

import datetime as _dt
import json
import math
from collections.abc import Mapping

__all__ = ["encode", "encode_obj", "num", "json_str", "outcome_json", "timestamp", "jsonable"]


def _default(o):
    # numpy scalars (and anything else shaped like them) have .item(),
    # which returns the matching Python scalar. Arrays of one element do
    # too; larger arrays raise and fall through.
    item = getattr(o, "item", None)
    if item is not None:
        try:
            v = item()
        except Exception:
            pass
        else:
            if v is None or isinstance(v, (bool, int, float, str)):
                return v
    if isinstance(o, Mapping):
        return dict(o)
    if isinstance(o, (_dt.datetime, _dt.date)):
        return o.isoformat()
    if hasattr(o, "__index__"):
        return o.__index__()
    if hasattr(o, "__float__"):
        return float(o)
    raise TypeError("%s is not JSON serialisable" % type(o).__name__)


_encoder = json.JSONEncoder(
    separators=(",", ":"),
    allow_nan=False,
    check_circular=False,
    default=_default,
)

try:  # The encoder object behind json.dumps, built once rather than per call.
    from json.encoder import c_make_encoder as _c_make_encoder
    from json.encoder import encode_basestring_ascii as _enc_str

    _c_encode = _c_make_encoder(
        None, _default, _enc_str, None, ":", ",", False, False, False
    )
    if "".join(_c_encode({"a": [1.5, None, True]}, 0)) != '{"a":[1.5,null,true]}':
        _c_encode = None
except Exception:  # pure-Python json (PyPy, or a future CPython)
    _c_encode = None

if _c_encode is not None:

    def _dumps(obj, _join="".join, _enc=_c_encode):
        return _join(_enc(obj, 0))

else:
    _dumps = _encoder.encode


def _finite(o):
    """A copy of ``o`` with NaN and infinity replaced by None."""
    t = o.__class__
    if t is float:
        return o if math.isfinite(o) else None
    if t is str or t is int or t is bool or o is None:
        return o
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, float):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, (int, str)):
        return o
    return _finite(_default(o))


def encode(obj):
    """``obj`` (a dict) as compact JSON text; non-finite numbers become null,
    except in ``counters``, which take no null: such a counter is left out."""
    try:
        return _dumps(obj)
    except ValueError:  # a NaN or infinity somewhere
        pass
    clean = _finite(obj)
    counters = clean.get("counters")
    if isinstance(counters, dict):
        clean["counters"] = {k: v for k, v in counters.items() if v is not None}
    return _dumps(clean)


def encode_obj(obj):
    """``obj`` (a dict of features, counters, ...) as compact JSON text."""
    try:
        return _dumps(obj)
    except ValueError:  # a NaN or infinity somewhere
        return _dumps(_finite(obj))


def encode_counters(obj):
    """Like :func:`encode_obj`, but a count that is not finite is left out
    (counters take no null)."""
    try:
        return _dumps(obj)
    except ValueError:
        clean = _finite(obj)
        if isinstance(clean, dict):
            clean = {k: v for k, v in clean.items() if v is not None}
        return _dumps(clean)


json_str = json.encoder.encode_basestring_ascii
_float_repr = float.__repr__
_int_repr = int.__repr__


def num(v):
    """A number as JSON text; NaN and infinity as null."""
    t = v.__class__
    if t is float:
        return _float_repr(v) if v - v == 0.0 else "null"
    if t is int:
        return _int_repr(v)
    return _dumps(_finite(v))


def outcome_json(v):
    """A prediction or ground truth as JSON text (see :func:`outcome`)."""
    t = v.__class__
    if t is str:
        return json_str(v)
    if t is float:
        return _float_repr(v) if v - v == 0.0 else "null"
    if t is int:
        return _int_repr(v)
    return _dumps(_finite(outcome(v)))


def outcome(v):
    """A prediction or ground truth as the protocol takes it: a number or a
    string. Bools become 0/1; numpy-like scalars become Python scalars."""
    t = v.__class__
    if t is str or t is float or t is int:
        return v
    if t is bool:
        return int(v)
    if isinstance(v, (str, float, int)):
        return int(v) if isinstance(v, bool) else v
    v = _default(v)
    return int(v) if isinstance(v, bool) else v


def timestamp(v):
    """Unix seconds, an RFC 3339 string, or a datetime (naive: local time)."""
    if isinstance(v, _dt.datetime):
        return v.timestamp()
    return v


def jsonable(v):
    """True when ``v`` can be sent as a JSON value."""
    try:
        _dumps(_finite(v))
        return True
    except Exception:
        return False
