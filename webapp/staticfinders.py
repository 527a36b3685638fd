"""Serve plotly.min.js from the pinned plotly package, so pages never reach a CDN; read static files as text."""

import os
from functools import lru_cache
from pathlib import Path

import plotly
from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_STATIC_PATH = "vendor/plotly.min.js"
_PACKAGE_DATA = os.path.join(os.path.dirname(plotly.__file__), "package_data")


class PlotlyFinder(BaseFinder):
    storage = FileSystemStorage(location=_PACKAGE_DATA)

    def find(self, path, find_all=False, **kwargs):
        if path != PLOTLY_STATIC_PATH:
            return [] if find_all else None
        match = os.path.join(_PACKAGE_DATA, "plotly.min.js")
        return [match] if find_all else match

    def list(self, ignore_patterns):
        storage = FileSystemStorage(location=_PACKAGE_DATA)
        storage.prefix = "vendor"
        yield "plotly.min.js", storage


def static_text(path: str) -> str:
    """A static file's text, for inlining into pages and offline exports (re-read each time under DEBUG)."""
    if settings.DEBUG:
        _cached_static_text.cache_clear()
    return _cached_static_text(path)


@lru_cache(maxsize=16)
def _cached_static_text(path: str) -> str:
    found = finders.find(path)
    if not found:
        raise FileNotFoundError(path)
    return Path(found).read_text(encoding="utf-8")
