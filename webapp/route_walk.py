"""Walk every GET route as a visitor would: follow the links pages and JSON hand out.

Used by the test that holds "GET never writes" (each visit records the SQL that wrote) and
by ``manage.py time_views`` (each visit records its time).  Starting from the entry pages,
every same-site path found in a response (``href``/``src``/``action`` attributes and quoted
``/...`` strings in inline JSON) that resolves to a route is visited, at most ``per_route``
distinct URLs per route name, so a 34k-node graph costs a handful of visits, not 34k.
"""

from __future__ import annotations

import html
import re
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import Resolver404, get_resolver, resolve

ENTRY_PAGES = (
    "/", "/lineage/", "/lineage/import/", "/lineage/kinship/", "/phases/", "/compare/", "/me/", "/status/",
    "/accounts/login/", "/accounts/signup/", "/accounts/tokens/",
    "/api/jobs/", "/api/experiments/", "/api/showcase/", "/api/kinds/", "/api/schema/", "/api/runs/",
)
_LINKS = re.compile(r'''(?:href|src|action)\s*=\s*["']([^"'<>]+)["']|"(/[^"\\\s<>]*)"''')
_WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.I)
MAX_SCANNED_BYTES = 2_000_000


@dataclass
class Visit:
    url: str
    route: str
    status: int
    seconds: float
    queries: int
    writes: list[str] = field(default_factory=list)


def route_names(*, include_admin: bool = False) -> set[str]:
    """Every named route ("namespace:name"), from the URL configuration itself."""
    names: set[str] = set()

    def walk(patterns, namespace: str) -> None:
        for p in patterns:
            if hasattr(p, "url_patterns"):
                if p.app_name == "admin" and not include_admin:
                    continue
                walk(p.url_patterns, f"{namespace}{p.namespace}:" if p.namespace else namespace)
            elif p.name:
                names.add(namespace + p.name)

    walk(get_resolver().url_patterns, "")
    return names


def route_of(path: str) -> str | None:
    try:
        return resolve(path).view_name
    except Resolver404:
        return None


def _links(body: str) -> list[str]:
    out = []
    for attr, quoted in _LINKS.findall(body[:MAX_SCANNED_BYTES]):
        raw = html.unescape(attr or quoted).replace("\\u0026", "&").replace("\\/", "/")
        parts = urlsplit(raw)
        if parts.scheme or parts.netloc or not parts.path.startswith("/") or "{" in parts.path:  # "{slug}": a template
            continue
        out.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return out


def _body(response) -> str:
    content_type = response.get("Content-Type", "")
    if not ("html" in content_type or "json" in content_type):
        return ""
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    if response.get("Content-Encoding") == "gzip":
        import gzip

        raw = gzip.decompress(raw)
    return raw[:MAX_SCANNED_BYTES].decode("utf-8", errors="replace")


def object_urls() -> list[str]:
    """Routes that pages reach only through script (the API's detail URLs, a phase diagram's cells):
    one URL each, for the newest public object that has one."""
    from webapp.catalog.visibility import Visibility
    from webapp.jobs.models import Job
    from webapp.phases.models import SweepCell, SweepRun
    from webapp.runs.models import Run

    urls = []
    job = Job.objects.filter(visibility=Visibility.PUBLIC).order_by("-pk").first()
    if job is not None:
        urls += [f"/api/jobs/{job.slug}/", f"/api/jobs/{job.slug}/events/?after=0"]
    run = Run.objects.filter(experiment__visibility=Visibility.PUBLIC).order_by("-pk").first()
    if run is not None:
        urls += [f"/api/runs/{run.slug}/", f"/api/runs/{run.slug}/metrics/", f"/runs/{run.slug}/"]
    cell = SweepCell.objects.filter(job__visibility=Visibility.PUBLIC).select_related("job").order_by("-pk").first()
    if cell is not None:
        urls.append(f"/phases/{cell.job.slug}/cell/{cell.i}/{cell.j}/")
        sweep_run = SweepRun.objects.filter(job=cell.job).order_by("pk").first()
        if sweep_run is not None:
            urls.append(f"/phases/{cell.job.slug}/run/{sweep_run.pk}/landscape")
    return urls


def walk(client, *, entry_pages=ENTRY_PAGES, per_route: int = 3, limit: int = 1500, include_admin: bool = False,
         extra: tuple[str, ...] = (), on_visit=None) -> list[Visit]:
    """GET every reachable route (breadth first, ``per_route`` URLs per route name, one per admin
    route: the admin's pages are Django's own) with ``client``; ``on_visit(visit)`` hears of each."""
    queue = deque([*entry_pages, *object_urls(), *extra, *(["/admin/"] if include_admin else [])])
    seen: set[str] = set()
    per: Counter = Counter()
    visits: list[Visit] = []
    while queue and len(visits) < limit:
        url = queue.popleft()
        path = url.split("?", 1)[0]
        route = route_of(path)
        if url in seen or route is None or path.startswith(("/static/", "/media/")):
            continue
        if route.startswith("admin:") and not include_admin:
            continue
        seen.add(url)
        if per[route] >= (1 if route.startswith("admin:") else per_route):
            continue
        per[route] += 1
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            body = _body(response)  # a streamed export is only done once it is read
            seconds = time.perf_counter() - started
        writes = [q["sql"] for q in queries.captured_queries if _WRITES.match(q["sql"])]
        visits.append(Visit(url, route, response.status_code, seconds, len(queries.captured_queries), writes))
        if on_visit is not None:
            on_visit(visits[-1])
        if response.status_code in (301, 302) and response.get("Location", "").startswith("/"):
            queue.append(response["Location"])
        queue.extend(link for link in _links(body) if link not in seen)
    return visits
