"""Numbers JSON can hold: it has no NaN or Infinity, so a number that is not finite is stored as null.

One helper for every result, event and export (the web app uses it too): a diverged
loss, an undefined correlation or a missing metric all become ``None``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else None.

    Numbers are Python or numpy ints and floats (and one-element arrays or tensors);
    None, NaN, +-inf, booleans and text are not finite numbers.  Anything else (a list,
    an array of several values) is a caller's mistake and raises TypeError or ValueError.
    """
    if value is None or isinstance(value, (bool, np.bool_, str, bytes)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def json_safe(value: Any, *, other: Callable[[Any], Any] | None = None) -> Any:
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` accepts.

    Non-finite floats become None, numpy scalars and arrays Python numbers and lists,
    tuples and sets lists, dict keys text.  Anything else is kept, or passed to ``other``.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v, other=other) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v, other=other) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item(), other=other)
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist(), other=other)
    return other(value) if other is not None else value
