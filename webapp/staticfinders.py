"""Serve plotly.min.js from the pinned plotly package, so pages never reach a CDN."""

import os

import plotly
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
