"""Reads: the showcase as the home page and the API show it."""

from __future__ import annotations

from webapp.jobs.models import JobStatus
from webapp.showcase.models import ShowcaseEntry


def showcase_entries() -> list[ShowcaseEntry]:
    return list(ShowcaseEntry.objects.select_related("job").order_by("order", "key"))


def entry_state(entry: ShowcaseEntry) -> dict:
    """What the API says of an entry: its kind, whether its result is finished, and where it is."""
    job = entry.job
    if job is not None:
        status, url, kind = job.status, job.get_absolute_url(), job.kind
    else:
        status, url, kind = (JobStatus.SUCCEEDED if entry.url else "missing"), entry.url, "page"
    return {"key": entry.key, "title": entry.title, "family": entry.family, "kind": kind, "status": status,
            "url": url, "embed_url": f"{url}embed" if job is not None else "", "run_url": entry.run_url,
            "note": entry.note}


def showcase_state() -> list[dict]:
    return [entry_state(entry) for entry in showcase_entries()]


def showcase_by_family() -> dict[str, list[dict]]:
    families: dict[str, list[dict]] = {}
    for state in showcase_state():
        families.setdefault(state["family"], []).append(state)
    return families
