"""JSON from users, parsed with bounds on size and nesting.

Python's json module recurses once per nesting level, so `[[[[...]]]]` 10^5 deep (a few
hundred KB) raises RecursionError.  The nesting is measured first, without recursion, and
anything deeper than any real parameter set is refused with a message naming the field.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from django.conf import settings

# A string token (with escapes) or one of the structural characters that matter here.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:]', re.S)


class _TooManyDigits:
    """Stands in for an integer literal longer than Python converts (sys.get_int_max_str_digits), so the
    walk below can blame its field instead of json.loads raising a bare ValueError."""


_TOO_MANY_DIGITS = _TooManyDigits()


def _parse_int(literal: str) -> int | _TooManyDigits:
    try:
        return int(literal)
    except ValueError:
        return _TOO_MANY_DIGITS


def _too_many_digits_message() -> str:
    return f"a number has too many digits (over {sys.get_int_max_str_digits():,})"


class JsonRejected(ValueError):
    """`field` names where the bad JSON was (for a whole body: its top-level key, or "body")."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def as_errors(self) -> dict[str, list[str]]:
        return {self.field: [self.message]}


def max_depth() -> int:
    return settings.TERRAIN_MAX_JSON_DEPTH


def _check_depth(text: str, field: str, limit: int, keyed: bool) -> None:
    """Raise when brackets nest deeper than `limit`; with `keyed`, blame the top-level key."""
    depth, last_string, key = 0, None, None
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                where = key if keyed and key else field
                raise JsonRejected(where, f"JSON nested deeper than {limit} levels")
        elif token in "]}":
            depth -= 1
        elif token == ":":
            if depth == 1 and last_string is not None:
                key = last_string[1:-1]
        else:
            last_string = token


def parse_json(text: str | bytes, *, field: str, max_bytes: int | None = None, keyed: bool = False,
               expect: type | None = None) -> Any:
    """Parse `text` or raise JsonRejected naming `field` (never RecursionError or a decode error).

    keyed: `text` is a whole request body; a too-deep value is blamed on its top-level key.
    expect: the type the value must have (e.g. dict for "a JSON object").
    """
    if isinstance(text, bytes):
        if max_bytes is not None and len(text) > max_bytes:
            raise JsonRejected(field, f"over {max_bytes:,} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonRejected(field, "not UTF-8 text") from None
    if max_bytes is not None and len(text.encode("utf-8")) > max_bytes:
        raise JsonRejected(field, f"over {max_bytes:,} bytes")
    _check_depth(text, field, max_depth(), keyed)
    try:
        value = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise JsonRejected(field, f"not valid JSON: {exc}") from None
    except RecursionError:  # belt and braces: the depth check should have caught it
        raise JsonRejected(field, "JSON nested too deeply") from None
    if expect is dict and not isinstance(value, dict):
        raise JsonRejected(field, "must be a JSON object")
    _refuse_unusable(value, field, keyed)
    return value


def _unstorable(text: str) -> str | None:
    """Why PostgreSQL could not store `text` (NUL, or a lone surrogate from a `\\ud800` escape), or None."""
    if "\x00" in text:
        return "text must not contain NUL (\\u0000) characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text must be valid Unicode (a lone surrogate escape such as \\ud800 is not)"
    return None


# Top-level keys of a request body whose own keys are the fields (a job's "params").
_FIELD_HOLDERS = ("params",)


def _refuse_unusable(value: Any, field: str, keyed: bool) -> None:
    """Refuse strings the database cannot hold, and integers too long to convert, anywhere in `value`;
    with `keyed`, blame the top-level key (or, inside a job's "params", the parameter)."""
    parts = list(value.items()) if keyed and isinstance(value, dict) else [(field, value)]
    if keyed:
        parts = [inner for key, part in parts
                 for inner in (part.items() if key in _FIELD_HOLDERS and isinstance(part, dict) else [(key, part)])]
    for where, part in parts:
        if _unstorable(where):  # the key itself: it cannot even be shown back
            raise JsonRejected(field, _unstorable(where))
        stack = [part]
        while stack:
            item = stack.pop()
            if item is _TOO_MANY_DIGITS:
                raise JsonRejected(where, _too_many_digits_message())
            texts = [item] if isinstance(item, str) else list(item) if isinstance(item, dict) else []
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            for text in texts:
                if reason := _unstorable(text):
                    raise JsonRejected(where, reason)
