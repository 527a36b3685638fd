"""``{% lineage_inline_script %}``: a lineage renderer inlined into the job result template.

The result page, its embed and its standalone HTML export all include the
kind's template but load a fixed list of scripts; inlining our renderer here
makes it present in all three (and offline in the export) without touching
those shared pages.
"""

from functools import lru_cache
from pathlib import Path

from django import template
from django.conf import settings
from django.contrib.staticfiles import finders
from django.utils.safestring import mark_safe

register = template.Library()


@lru_cache(maxsize=4)
def _read(path: str) -> str:
    found = finders.find(path)
    if not found:
        raise FileNotFoundError(path)
    return Path(found).read_text(encoding="utf-8")


@register.simple_tag
def lineage_inline_script(path: str) -> str:
    if settings.DEBUG:
        _read.cache_clear()
    # Our own file, never user input; "</" is escaped so the file cannot end the tag early.
    return mark_safe("<script>" + _read(path).replace("</", "<\\/") + "</script>")
