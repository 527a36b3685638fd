"""Time every GET route (and the job forms' POSTs, which only validate and queue) on this database.

    python manage.py time_views                    # the demo data (seeded first when the database is empty)
    python manage.py time_views --threshold-ms 300 --repeat 3

Routes are found as a visitor finds them (webapp.route_walk), as an anonymous visitor, a user and
staff; each URL is fetched ``--repeat`` times and judged by its median (a streamed download by the
time to its first chunk; the whole download is shown beside it).  Everything runs in one
transaction that is rolled back: the logins, the submitted jobs and their uploads leave nothing
behind and nothing is queued.  Prints a table, slowest first, and exits 1 when any median is over
the threshold.  On demand, never in the test suite's timing: numbers depend on the machine.
"""

from __future__ import annotations

import statistics
import time
from urllib.parse import parse_qsl, urlsplit

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test import Client

from webapp import route_walk


class Command(BaseCommand):
    help = "Time every GET route and the job forms' POSTs on this database; exit 1 over the threshold."

    def add_arguments(self, parser):
        parser.add_argument("--threshold-ms", type=float, default=300.0, help="slowest acceptable median (default 300)")
        parser.add_argument("--repeat", type=int, default=2, help="fetches per URL (the median is judged)")
        parser.add_argument("--per-route", type=int, default=2, help="distinct URLs per route name")
        parser.add_argument("--no-seed", action="store_true", help="never run seed_demo, even on an empty database")
        parser.add_argument("--show", type=int, default=40, help="rows of the table (slowest first; 0: all)")
        parser.add_argument("--progress", action="store_true", help="print each URL as it is timed")

    def handle(self, *args, threshold_ms, repeat, per_route, no_seed, show, progress=False, **options):
        self.progress = progress
        from webapp.catalog.models import Experiment

        if not no_seed and not Experiment.objects.exists():
            self.stdout.write("empty database: seeding the demo first (python manage.py seed_demo)")
            call_command("seed_demo")
        rows = []
        with transaction.atomic():
            for who, client in self._visitors():
                rows += self._time_gets(who, client, repeat=repeat, per_route=per_route)
                rows += self._time_posts(who, client, repeat=repeat)
            transaction.set_rollback(True)
        self._print(rows, threshold_ms, show)
        slow = [r for r in rows if r["median_ms"] > threshold_ms]
        if slow:
            self.stderr.write(f"{len(slow)} of {len(rows)} URLs over {threshold_ms:.0f} ms")
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(f"all {len(rows)} URLs under {threshold_ms:.0f} ms"))

    def _visitors(self):
        from django.conf import settings

        # A host this server answers to (the test client's own "testserver" is refused outside tests).
        hosts = [h for h in settings.ALLOWED_HOSTS if h not in ("*",) and not h.startswith(".")]
        host = {"HTTP_HOST": hosts[0]} if hosts and "testserver" not in settings.ALLOWED_HOSTS else {}
        users = get_user_model().objects
        yield "anonymous", Client(**host)
        for who, user in (("user", users.filter(is_staff=False, is_active=True).order_by("pk").first()),
                          ("staff", users.filter(is_staff=True, is_active=True).order_by("pk").first())):
            if user is not None:
                client = Client(**host)
                client.force_login(user)
                yield who, client

    def _fetch(self, client, method: str, url: str, data=None, repeat: int = 3) -> tuple[int, float | None, list[float]]:
        """Status, the whole download's time of a streamed response (ms; None otherwise), and each fetch's time.

        A streamed response (the big exports) is timed to its first chunk, when the view has answered
        and the download begins; the whole download is reported beside it, not judged."""
        times, whole = [], None
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(url) if method == "GET" else client.post(url, data() if callable(data) else data)
            if getattr(response, "streaming", False):
                chunks = iter(response.streaming_content)
                next(chunks, None)
                times.append((time.perf_counter() - started) * 1000)
                for _chunk in chunks:
                    pass
                whole = (time.perf_counter() - started) * 1000
            else:
                times.append((time.perf_counter() - started) * 1000)
        return response.status_code, whole, times

    def _row(self, who, method, url, route, status, times, whole=None) -> dict:
        row = {"who": who, "method": method, "url": url, "route": route, "status": status,
               "first_ms": times[0], "median_ms": statistics.median(times), "whole_ms": whole}
        if self.progress:
            self.stderr.write(f"{row['median_ms']:9.1f} {status:>4} {who:<9} {method} {url[:120]}")
        return row

    def _time_gets(self, who, client, *, repeat, per_route) -> list[dict]:
        visits = route_walk.walk(client, include_admin=who == "staff", per_route=per_route)
        rows = []
        for visit in visits:
            # The walk's own fetch read a streamed body whole: time such URLs afresh only.
            status, whole, times = self._fetch(client, "GET", visit.url, repeat=max(1, repeat - 1))
            first = [] if whole is not None else [visit.seconds * 1000]
            rows.append(self._row(who, "GET", visit.url, visit.route, status, [*first, *times], whole))
        self._job_form_urls = getattr(self, "_job_form_urls", set()) | {
            v.url for v in visits if v.route == "job_new" and "?" in v.url}
        return rows

    def _time_posts(self, who, client, *, repeat) -> list[dict]:
        """The job forms, filled in as the pages' own "run this yourself" links fill them (validate + queue)."""
        if who == "anonymous":
            return []
        rows = []
        for url in sorted(getattr(self, "_job_form_urls", ())):
            path, query = url.split("?", 1)
            data = {}
            for key, value in parse_qsl(query):
                data.setdefault(key, []).append(value)
            status, _whole, times = self._fetch(client, "POST", path, data, repeat=repeat)
            rows.append(self._row(who, "POST", url, route_walk.route_of(urlsplit(path).path), status, times))
        edges = "id,base_model\n" + "".join(f"org/m{i},org/m{i // 2}\n" for i in range(1, 2000))
        status, _whole, times = self._fetch(client, "POST", "/lineage/import/", lambda: {
            "name": "timed", "visibility": "private", "edge_files": [SimpleUploadedFile("edges.csv", edges.encode())]},
            repeat=repeat)
        rows.append(self._row(who, "POST", "/lineage/import/ (2,000-row CSV)", "lineage:import", status, times))
        return rows

    def _print(self, rows, threshold_ms, show) -> None:
        rows = sorted(rows, key=lambda r: -r["median_ms"])
        self.stdout.write(f"{'median ms':>9} {'first ms':>9} {'status':>6}  {'who':<9} {'method':<4} {'route':<28} url")
        for r in rows[:show or None]:
            flag = " !" if r["median_ms"] > threshold_ms else ""
            whole = f" (streamed: whole download {r['whole_ms']:.0f} ms)" if r["whole_ms"] is not None else ""
            self.stdout.write(f"{r['median_ms']:9.1f} {r['first_ms']:9.1f} {r['status']:>6}  {r['who']:<9} {r['method']:<4} "
                              f"{(r['route'] or '')[:28]:<28} {r['url'][:110]}{whole}{flag}")
        medians = [r["median_ms"] for r in rows]
        if medians:
            self.stdout.write(f"{len(rows)} URLs ({len({r['route'] for r in rows})} routes): median {statistics.median(medians):.1f} ms, "
                              f"slowest {max(medians):.1f} ms")
