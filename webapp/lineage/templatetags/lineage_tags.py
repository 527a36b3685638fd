"""``{% lineage_inline_script %}``: a lineage renderer inlined into the job result template.

The result page, its embed and its standalone HTML export all include the
kind's template but load a fixed list of scripts; inlining our renderer here
makes it present in all three (and offline in the export) without touching
those shared pages.
"""

from django import template
from django.utils.safestring import mark_safe

from webapp.staticfinders import static_text

register = template.Library()


@register.simple_tag
def lineage_inline_script(path: str) -> str:
    # Our own file, never user input; "</" is escaped so the file cannot end the tag early.
    return mark_safe("<script>" + static_text(path).replace("</", "<\\/") + "</script>")
