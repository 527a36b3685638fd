"""How fast a family tree opens through the web layer: import, layout endpoint, page, browser.

    python benchmarks/bench_lineage_web.py               # everything, browser included (~1 min on a shared 2-core box)
    python benchmarks/bench_lineage_web.py --no-browser  # server-side figures only

Works on a throw-away SQLite database in a temporary directory (never ./var).
Figures printed:

* the Hugging Face snapshot imported into the database;
* ``layout.json`` of a synthetic 2,000-node family (chains, wide fan-outs and
  merges, like real families), of a 10,000-node one (capped at 3,000 drawn)
  and of the largest real family (631 models): cold (cache cleared) and warm
  times, payload size raw and gzipped;
* with Chromium: time from navigation to a drawn tree (``data-state=ready``)
  for the same families, through daphne, as a user would see it.

The budget is "a 2,000-node family opens in under 2 seconds".
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def random_family(n: int, seed: int):
    from analysis import lineage as lib

    rng = random.Random(seed)
    graph = lib.LineageGraph()
    graph.add_node("bench/m0", {"license": "apache-2.0", "downloads": 10_000})
    for i in range(1, n):
        parent = rng.randrange(max(0, i - 30), i) if rng.random() < 0.6 else rng.randrange(i)
        graph.add_node(f"bench/m{i}", {"license": rng.choice(("mit", "apache-2.0", "llama2", "cc-by-4.0")),
                                       "downloads": rng.randrange(10_000)})
        graph.add_edge(f"bench/m{parent}", f"bench/m{i}", rng.choice(("finetune", "adapter", "quantized")))
    for _ in range(n // 100):
        a, b = sorted(rng.sample(range(n), 2))
        graph.add_edge(f"bench/m{a}", f"bench/m{b}", "merge")
    return lib.ImportResult(graph, lib.ImportReport())


def timed(fn, repeats: int) -> tuple[float, float, object]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), value


def measure_layout(client, url: str, repeats: int) -> dict:
    from django.core.cache import cache

    def cold():
        cache.clear()
        return client.get(url)

    cold_best, cold_median, response = timed(cold, repeats)
    assert response.status_code == 200, response.status_code
    warm_best, _, _ = timed(lambda: client.get(url), repeats)
    body = response.content
    data = response.json()
    return {"cold_best": cold_best, "cold_median": cold_median, "warm": warm_best, "bytes": len(body),
            "gzip": len(gzip.compress(body, 6)), "visible": data["visible"], "total": data["total_nodes"]}


def browser_open_times(base_url: str, paths: list[str], repeats: int) -> list[tuple[str, float, float]]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        context = browser.new_context(base_url=base_url, viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(paths[0])  # warm the server process (imports, first query)
        page.wait_for_function("document.getElementById('tree-chart').dataset.state === 'ready'", timeout=60_000)
        for path in paths:
            times, draws = [], []
            for k in range(repeats):
                start = time.perf_counter()
                # A cap the server has not seen yet: its layout cache cannot answer, every visit is cold.
                page.goto(f"{path}?cap={3000 - 1 - k - 10 * len(out)}")
                page.wait_for_function("document.getElementById('tree-chart').dataset.state === 'ready'", timeout=60_000)
                times.append(time.perf_counter() - start)
                draws.append(float(page.evaluate("document.getElementById('tree-chart').dataset.renderMs")))
            out.append((path, min(times), statistics.median(times), statistics.median(draws)))
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="terrain-bench-lineage-")
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: str) -> None:
    os.environ["TERRAIN_VAR_DIR"] = tmp
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from webapp.catalog.services import experiment_create
    from webapp.lineage import services

    settings.ALLOWED_HOSTS.append("testserver")
    call_command("migrate", verbosity=0)
    experiment = experiment_create(title="bench", visibility="public")
    client = Client()
    print(f"database: {settings.DATABASES['default']['NAME']}")

    rows = []
    directory = services.hf_lineage_dir()
    if (directory / "model_cards_parent_edges.csv").exists():
        start = time.perf_counter()
        hf = services.lineage_graph_import_hf_snapshot(directory=directory, experiment=experiment, slug="hf")
        print(f"HF snapshot into the database: {time.perf_counter() - start:.2f} s "
              f"({hf.num_nodes} models, {hf.num_edges} edges, {hf.num_families} families)")
        largest = hf.families.get(index=0)
        rows.append((f"largest real family ({largest.label})", "/lineage/hf/family/0/"))
        start = time.perf_counter()
        response = client.get("/lineage/hf/")
        print(f"graph page (family table of {hf.num_families} families): {1000 * (time.perf_counter() - start):.0f} ms, "
              f"{len(response.content) / 1024:.0f} kB")
    else:
        print(f"(no HF snapshot at {directory}: real-family figures skipped)")

    for n in (2_000, 10_000):
        start = time.perf_counter()
        graph = services.lineage_graph_store(experiment=experiment, name=f"synthetic {n}", source="upload",
                                             result=random_family(n, seed=n), slug=f"synthetic-{n}")
        print(f"synthetic {n}-node family stored: {time.perf_counter() - start:.2f} s")
        rows.append((f"synthetic {n:,}-node family", f"/lineage/{graph.slug}/family/0/"))

    print()
    print(f"layout.json (best of {args.repeats}; cold = cache cleared):")
    print(f"  {'family':44s} {'drawn':>12s} {'cold':>8s} {'cold med':>9s} {'warm':>7s} {'payload':>9s} {'gzip':>8s}")
    for label, path in rows:
        for kind in ("tidy", "radial"):
            m = measure_layout(client, f"{path}layout.json?kind={kind}", args.repeats)
            print(f"  {label + ' ' + kind:44s} {m['visible']:>5}/{m['total']:<6} {1000 * m['cold_best']:>6.0f}ms "
                  f"{1000 * m['cold_median']:>7.0f}ms {1000 * m['warm']:>5.1f}ms {m['bytes'] / 1024:>7.0f}kB "
                  f"{m['gzip'] / 1024:>6.0f}kB")
    for label, path in rows:
        best, _, response = timed(lambda path=path: client.get(path), args.repeats)
        print(f"  family page HTML, {label}: {1000 * best:.0f} ms")

    if args.no_browser:
        return
    if not Path("/usr/bin/chromium").exists():
        print("(no /usr/bin/chromium: browser figures skipped)")
        return
    from webapp.embedded_redis import free_port

    port = free_port()
    env = {**os.environ, "TERRAIN_VAR_DIR": tmp, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "webapp.asgi:application"],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/lineage/", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        print()
        print(f"in Chromium, navigation to a drawn tree (best / median of {args.repeats}; layout computed afresh each time):")
        print(f"  {'family':44s} {'best':>6s} {'median':>7s}   Plotly draw (median)")
        for (label, _), (path, best, median, draw) in zip(rows, browser_open_times(base, [p for _, p in rows], args.repeats)):
            print(f"  {label:44s} {best:>5.2f}s {median:>6.2f}s   {draw:.0f} ms")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
