"""What a shared view of a result needs: its snapshot, and assets for offline files."""

from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders

from webapp.jobs import selectors
from webapp.jobs.models import Job

# Order matters: the live client, the renderers, then the page script that uses them.
PAGE_SCRIPTS = ["js/live.js", "js/renderers.js", "js/landscape_renderers.js", "js/phase_renderers.js", "js/result_page.js"]


def result_snapshot(job: Job) -> dict:
    return {"job": selectors.job_state(job), "events": selectors.job_events_after(job=job)}


@lru_cache(maxsize=8)
def _static_text(path: str) -> str:
    found = finders.find(path)
    if not found:
        raise FileNotFoundError(path)
    return Path(found).read_text(encoding="utf-8")


def standalone_assets() -> dict:
    """Everything a downloaded HTML file inlines so that it works offline."""
    if settings.DEBUG:
        _static_text.cache_clear()
    return {
        "inline_plotly": _static_text("vendor/plotly.min.js"),
        "inline_css": _static_text("css/terrain.css"),
        # The live client is inlined too; a finished job never opens a socket.
        "inline_js": "\n;\n".join(_static_text(path) for path in PAGE_SCRIPTS),
    }


def zrange_of(results: list[dict]) -> list[float] | None:
    """Shared colour scale for landscape planes: min and max loss over all of them."""
    values = [v for r in results if r and r.get("mode") == "plane" for row in r.get("loss") or [] for v in row if v is not None]
    return [min(values), max(values)] if values else None
