"""What a shared view of a result needs: its snapshot, and assets for offline files."""

from webapp.jobs import selectors
from webapp.jobs.models import Job
from webapp.staticfinders import static_text

def result_snapshot(job: Job) -> dict:
    return {"job": selectors.job_state(job), "events": selectors.job_events_after(job=job)}


def standalone_assets(kind) -> dict:
    """Everything a downloaded HTML file of a `kind` (webapp.jobs.kinds.JobKind) result inlines so that it works offline."""
    return {
        "inline_plotly": static_text("vendor/plotly.min.js"),
        "inline_css": static_text("css/terrain.css"),
        # The live client is inlined too; a finished job never opens a socket.
        "inline_js": "\n;\n".join(static_text(path) for path in kind.page_scripts()),
    }


def zrange_of(results: list[dict]) -> list[float] | None:
    """Shared colour scale for landscape planes: min and max loss over all of them."""
    values = [v for r in results if r and r.get("mode") == "plane" for row in r.get("loss") or [] for v in row if v is not None]
    return [min(values), max(values)] if values else None
