"""JSON from files users bring (``config.json``, shard indexes, checkpoint metadata), parsed with a nesting bound.

Python's json module recurses once per nesting level, so ten kilobytes of ``[[[[...]]]]``
raise RecursionError, which no loader expects.  The nesting is measured first by a flat
scan, and anything deeper than any real config is refused as a ValueError.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_DEPTH", "loads"]

MAX_DEPTH = 64  # real configs nest 3-4 levels; a safetensors header 3
# a string token (escapes included, so brackets inside strings are skipped) or a bracket
_BRACKETS_OUTSIDE_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting of ``text``, counted without recursion."""
    depth = deepest = 0
    for match in _BRACKETS_OUTSIDE_STRINGS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``, or ValueError (never RecursionError) when it nests deeper than ``max_depth``."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    if nesting_depth(text) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text)
