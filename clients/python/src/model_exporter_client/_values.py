"""Values as the protocol takes them, from what a model server has at hand:
numpy scalars and arrays, pandas Series, ``predict_proba`` rows. numpy and
pandas are never imported: objects are recognised by their methods
(``item``, ``tolist``, ``items``, ``shape``)."""

from collections.abc import Mapping

__all__ = ["Unencodable", "scalar", "outcome", "features_dict"]

_SCALARS = (str, float, int, bool, type(None))


class Unencodable(ValueError):
    """A value the protocol cannot carry; ``cause`` names the kind (the key
    of its rate-limited warning)."""

    def __init__(self, cause, message):
        super().__init__(message)
        self.cause = cause


def scalar(v):
    """``v`` as a Python str, float, int, bool or None: numpy scalars and
    one-element arrays through ``.item()``, others through ``__index__`` or
    ``__float__``. Raises :class:`Unencodable` otherwise."""
    if isinstance(v, _SCALARS):
        if v.__class__ in _SCALARS:
            return v
        # Subclasses (numpy.float64, numpy.str_, IntEnum): the plain value.
        if isinstance(v, bool):
            return bool(v)
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return float(v)
        return str(v)
    item = getattr(v, "item", None)
    if item is not None:
        try:
            x = item()
        except Exception:
            x = v
        if x is not v and isinstance(x, _SCALARS):
            return scalar(x)
    if isinstance(v, Mapping) or isinstance(v, (list, tuple, set, dict)) or hasattr(v, "shape"):
        raise Unencodable(
            "not_a_scalar:%s" % type(v).__name__,
            "a %s where a number, string, bool or None was expected" % _describe(v),
        )
    if hasattr(v, "__index__"):
        try:
            return v.__index__()
        except Exception:
            pass
    if hasattr(v, "__float__"):
        try:
            return float(v)
        except Exception:
            pass
    raise Unencodable(
        "unencodable:%s" % type(v).__name__,
        "a %s cannot be sent (numbers, strings, bools and None can)" % type(v).__name__,
    )


def _describe(v):
    shape = getattr(v, "shape", None)
    if shape is not None:
        try:
            return "%s of shape %s" % (type(v).__name__, tuple(shape))
        except Exception:
            pass
    try:
        return "%s of %d values" % (type(v).__name__, len(v))
    except Exception:
        return type(v).__name__


def _row(v):
    """A one-row sequence as a flat list: a list or tuple, or an array of
    shape (n,) or (1, n). None when ``v`` is no such thing."""
    if isinstance(v, (list, tuple)):
        flat = list(v)
    else:
        tolist = getattr(v, "tolist", None)
        if tolist is None or isinstance(v, (str, bytes)) or isinstance(v, Mapping):
            return None
        try:
            flat = tolist()
        except Exception:
            return None
        if not isinstance(flat, list):
            return [flat]  # a 0-d array
    if len(flat) == 1 and isinstance(flat[0], (list, tuple)):
        flat = list(flat[0])  # shape (1, n)
    return flat


def outcome(v, classes=None):
    """A prediction as ``(value, confidence or None)``.

    Numbers and strings are the prediction (bools become 0/1). A sequence
    (list, tuple, numpy array of shape (n,) or (1, n)) of one value is that
    value; of two or more numbers in [0, 1] it is read as the class scores
    of ``predict_proba``: the prediction is the index of the largest (the
    first of equal ones), or ``classes[index]`` when ``classes`` is given,
    and the confidence is that score. Anything else raises
    :class:`Unencodable`."""
    t = v.__class__
    if t is str or t is float or t is int:
        return v, None
    if t is bool:
        return int(v), None
    row = _row(v)
    if row is None:
        x = scalar(v)
        return (int(x) if x.__class__ is bool else x), None
    if len(row) == 1:
        x = scalar(row[0])
        return (int(x) if x.__class__ is bool else x), None
    try:
        scores = [float(x) for x in row]
    except Exception:
        scores = None
    if not scores or not all(0.0 <= s <= 1.0 for s in scores):
        raise Unencodable(
            "prediction_sequence",
            "prediction is a %s that is not a row of class scores in [0, 1] "
            "(pass one value, or a predict_proba row)" % _describe(v),
        )
    best = max(range(len(scores)), key=scores.__getitem__)
    label = best
    if classes is not None:
        try:
            label = scalar(list(classes)[best])
        except Exception:
            raise Unencodable(
                "classes",
                "classes has no entry %d for a row of %d scores" % (best, len(scores)),
            )
        if label.__class__ is bool:
            label = int(label)
    return label, scores[best]


def features_dict(features, names=None):
    """Features that are not a dict, as ``(dict, warning or None)``: a
    mapping or pandas Series (its keys or index are the names), or a
    sequence / numpy array of shape (n,) or (1, n) named by ``names`` (by
    position, "0", "1", ..., without names). Raises :class:`Unencodable`
    when the values and names do not match."""
    if isinstance(features, Mapping):
        return dict(features), None
    items = getattr(features, "items", None)
    index = getattr(features, "index", None)
    if items is not None and index is not None and hasattr(features, "tolist"):
        # A pandas Series: index -> value.
        try:
            return dict(zip(list(index), features.tolist())), None
        except Exception:
            pass
    columns = getattr(features, "columns", None)
    if columns is not None and hasattr(features, "to_numpy"):
        # A pandas DataFrame of one row.
        try:
            rows = features.to_numpy().tolist()
        except Exception:
            rows = None
        if rows is not None and len(rows) == 1:
            return dict(zip(list(columns), rows[0])), None
        raise Unencodable(
            "features_shape",
            "features is a %s: pass one row" % _describe(features),
        )
    row = _row(features)
    if row is None:
        raise Unencodable(
            "features_type",
            "features is a %s: pass a dict, a pandas Series, or a sequence with feature_names"
            % type(features).__name__,
        )
    if row and isinstance(row[0], (list, tuple)):
        raise Unencodable(
            "features_shape",
            "features is a %s: pass one row" % _describe(features),
        )
    warning = None
    if names is None:
        names = [str(i) for i in range(len(row))]
        warning = "features given as a sequence without feature_names: named by position (0, 1, ...)"
    else:
        names = list(names)
        if len(names) != len(row):
            raise Unencodable(
                "feature_names_length",
                "features has %d values but feature_names has %d names" % (len(row), len(names)),
            )
    return dict(zip(names, row)), warning
