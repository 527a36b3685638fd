"""Landscape results: every exported number equals a direct evaluation at its coordinates."""

import csv
import io
import json

import pytest
import torch

from tests.webapp.landscape_fixtures import trained_checkpoint
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job
from webapp.jobs.runner import run_job
from webapp.jobs.services import job_create, job_params_validate
from webapp.landscapes.evaluation_data import evaluation_data

pytestmark = pytest.mark.django_db


def run(user, kind, **data):
    validated = job_params_validate(kind=kind, data={"visibility": Visibility.PUBLIC, **data}, user=user)
    job = job_create(kind=kind, params=validated.params, owner=user, visibility=Visibility.PUBLIC, enqueue=False)
    assert run_job(job.pk) == "succeeded", Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    return job


def direct_loss_and_accuracy(model, d1, d2, a, b, X, y):
    """theta + a*d1 + b*d2 built by hand, then one plain forward pass."""
    params = {name: p.detach() + a * d1[name] + b * d2[name] for name, p in model.named_parameters()}
    with torch.no_grad():
        out = torch.func.functional_call(model, params, (X,))
    return torch.nn.functional.cross_entropy(out, y).item(), (out.argmax(1) == y).sum().item() / len(y)


def test_csv_and_json_points_equal_direct_evaluation(client, user, tmp_path):
    from analysis import checkpoints
    from analysis.landscape import random_direction

    checkpoint = trained_checkpoint(user, tmp_path)
    job = run(user, "landscape", checkpoint=checkpoint.slug, resolution=9, span=0.8, eval_size=300, split="train", seed=4)

    rows = list(csv.DictReader(io.StringIO(client.get(f"/r/{job.slug}/export.csv").content.decode())))
    assert len(rows) == 81
    exported = json.loads(client.get(f"/r/{job.slug}/export.json").content)
    result = exported["job"]["result"]
    assert result["a"] == pytest.approx([-0.8 + 0.2 * k for k in range(9)], abs=1e-12)  # exact grid coordinates

    model = checkpoints.load(checkpoint.file.path).model
    params = dict(model.named_parameters())
    d1, d2 = random_direction(params, seed=8), random_direction(params, seed=9)  # plane() uses 2*seed, 2*seed+1
    X, y = evaluation_data(dataset="digits", split="train", size=300, owner_id=user.pk)
    for row in (rows[0], rows[40], rows[17], rows[-1], rows[59]):
        i, j, a, b = int(row["i"]), int(row["j"]), float(row["a"]), float(row["b"])
        loss, accuracy = direct_loss_and_accuracy(model, d1, d2, a, b, X, y)
        assert float(row["loss"]) == pytest.approx(loss, rel=1e-5)
        assert float(row["accuracy"]) == pytest.approx(accuracy, abs=1e-9)
        assert result["loss"][i][j] == float(row["loss"])
    centre = rows[40]
    assert (float(centre["a"]), float(centre["b"])) == (0.0, 0.0)


def test_streamed_points_rebuild_the_result(user, tmp_path):
    checkpoint = trained_checkpoint(user, tmp_path)
    job = run(user, "landscape", checkpoint=checkpoint.slug, resolution=13, eval_size=200)
    grid = [[None] * 13 for _ in range(13)]
    levels = []
    for payload in job.events.filter(kind="points").values_list("payload", flat=True):
        levels.append(payload["level"])
        for point in payload["points"]:
            assert grid[point["i"]][point["j"]] is None, "a point was sent twice"
            grid[point["i"]][point["j"]] = point["loss"]
    assert grid == job.result["loss"]
    assert levels == sorted(levels) and levels[0] < levels[-1]  # coarse first, then refinement


def test_line_hessian_and_connectivity_results(client, user, tmp_path):
    a = trained_checkpoint(user, tmp_path, seed=0)
    b = trained_checkpoint(user, tmp_path, seed=1, experiment=a.experiment)
    line = run(user, "landscape", checkpoint=a.slug, mode="line", end_checkpoint=b.slug, resolution=11, eval_size=200)
    assert line.result["t"][0] == 0 and line.result["t"][-1] == 1 and len(line.result["loss"]) == 11
    hessian = run(user, "hessian", checkpoint=a.slug, eval_size=200, top_k=3, trace_matvecs=30, density_iters=20, density_probes=2)
    values = hessian.result["eigenvalues"]["values"]
    assert values == sorted(values, reverse=True) and hessian.result["trace"]["estimate"] > values[0] > 0
    assert [e.kind for e in hessian.events.all()][1:] == ["started", "eigenvalues", "trace", "density", "status"]
    connectivity = run(user, "connectivity", checkpoint=a.slug, checkpoint_b=b.slug, steps=7, eval_size=300)
    barriers = connectivity.result["barriers"]
    assert set(barriers) == {"naive", "aligned"} and barriers["aligned"] <= barriers["naive"] + 1e-6
    text = client.get(f"/r/{connectivity.slug}/export.csv").content.decode()
    assert text.startswith("path,t,loss,accuracy") and text.count("\naligned,") == 7


def test_embed_standalone_and_compare(client, user, other_user, tmp_path):
    checkpoint = trained_checkpoint(user, tmp_path)
    first = run(user, "landscape", checkpoint=checkpoint.slug, resolution=5, eval_size=100)
    second = run(user, "landscape", checkpoint=checkpoint.slug, resolution=5, eval_size=100, seed=1)
    embed = client.get(f"/r/{first.slug}/embed")
    assert embed.status_code == 200 and "X-Frame-Options" not in embed
    html = client.get(f"/r/{first.slug}/export.html")
    body = html.content.decode()
    assert html["Content-Disposition"].endswith('.html"') and "/static/" not in body and "Plotly" in body and first.slug in body
    compare = client.get(f"/compare/?a={first.slug}&b={second.slug}")
    zmin = min(v for job in (first, second) for row in job.result["loss"] for v in row)
    assert compare.status_code == 200 and compare.context["zrange"][0] == zmin
    Job.objects.filter(pk=first.pk).update(visibility=Visibility.PRIVATE)
    client.force_login(other_user)
    for url in (f"/r/{first.slug}/embed", f"/r/{first.slug}/export.csv", f"/r/{first.slug}/export.html", f"/compare/?a={first.slug}"):
        assert client.get(url).status_code == 404, url


def test_the_first_event_carries_the_refinement_strides_the_points_follow(user, tmp_path):
    checkpoint = trained_checkpoint(user, tmp_path)
    job = run(user, "landscape", checkpoint=checkpoint.slug, resolution=21, eval_size=200)
    events = [(kind, payload) for kind, payload in job.events.order_by("seq").values_list("kind", "payload") if kind != "status"]
    kind, start = events[0]
    assert kind == "start"
    # 21 points per axis: every 4th line (and the last) first, then whole rows at strides 2 and 1
    assert start["strides"] == [[4, 4], [2, 1], [1, 1]] and start["levels"] == 3
    for kind, payload in events[1:]:
        if kind != "points":
            continue
        rows, cols = start["strides"][payload["level"]]
        assert all(p["i"] in (0, 20) or p["i"] % rows == 0 for p in payload["points"])
        assert all(p["j"] in (0, 20) or p["j"] % cols == 0 for p in payload["points"])
