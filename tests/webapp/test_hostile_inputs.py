"""Every form and JSON API endpoint, walked with hostile input (issue 9).

For each job kind, every field gets NUL bytes, 10^5-deep JSON, 200 KB of text and, if it
is a number, NaN and 1e999 -- through the HTML form and through the JSON API.  Upload
fields get pickles, zip bombs and truncated files; the API gets bodies that are not
objects, not UTF-8, too big or too deep; the other forms and query strings get the same
treatment.  Always: no 500, a 4xx whose error names the field, nothing stored, nothing queued.
"""

from __future__ import annotations

import html
import json
import os
import pickle

import numpy as np
import pytest
import torch
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile

from webapp.catalog.models import Checkpoint, DatasetUpload, Experiment
from webapp.catalog.services import checkpoint_create_from_file, experiment_create
from webapp.catalog.visibility import Visibility
from webapp.jobs import kinds
from webapp.jobs.models import Job
from webapp.lineage.models import LineageGraph

from .security_fixtures import SPEC, form_defaults, media, nested_list, nested_object, npz_bomb, npz_bytes, torch_state_bytes  # noqa: F401  (media: a fixture)

pytestmark = pytest.mark.django_db

DEEP = nested_list(100_000)
TEXT_CASES = {"nul": "a\x00b", "deep-json": DEEP, "200KB": "x" * 200_000}
NUMBER_CASES = {"nan": "NaN", "inf": "1e999"}
# The app's own kinds (other test modules register test-only kinds, depending on import order).
KINDS = sorted(kind.name for kind in kinds.all_kinds() if not kind.run.__module__.startswith("tests."))


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # set before `user` is made


@pytest.fixture
def enqueued(monkeypatch):
    """Records every job handed to Celery (there must be none)."""
    from webapp.jobs import services

    calls = []
    monkeypatch.setattr(services, "job_enqueue", lambda *, job: calls.append(job))
    return calls


@pytest.fixture
def world(user, client, media, tmp_path):
    """A logged-in user with four same-architecture public checkpoints (untrained: fast; merges take a pool)."""
    from analysis import checkpoints, zoo

    experiment = experiment_create(title="mine", owner=user, visibility=Visibility.PUBLIC)
    made = []
    for seed in (0, 1, 2, 3):
        torch.manual_seed(seed)
        path = checkpoints.save(tmp_path / f"m{seed}.safetensors", zoo.build(SPEC), SPEC, meta={"dataset": "digits"})
        made.append(checkpoint_create_from_file(experiment=experiment, name=f"m{seed}", path=path, spec=SPEC, dataset="digits",
                                                num_parameters=zoo.count_parameters(SPEC)))
    client.force_login(user)
    return {"client": client, "a": made[0], "b": made[1], "c": made[2], "d": made[3], "made": made, "experiment": experiment,
            "user": user}


def valid_params(kind: str, world) -> dict:
    params = form_defaults(kind)
    params.pop("experiment", None)
    if kind in ("landscape", "hessian", "connectivity"):
        params.update(checkpoint=world["a"].slug, dataset="digits", eval_size=20)
    if kind == "landscape":
        params["resolution"] = 3  # the others have no such field (and the API refuses fields a kind does not have)
    if kind == "connectivity":
        params["checkpoint_b"] = world["b"].slug
    if kind == "merge":
        params.update(source_experiment=world["experiment"].slug, models=[world["a"].slug, world["b"].slug], method="average",
                      eval_size=20, sweep_steps=2)
    if kind == "merge_greedy":
        params.update(source_experiment=world["experiment"].slug, base=world["a"].slug, eval_size=20,
                      models=[world[k].slug for k in "bcd"])
    if kind == "kinship":
        params.update(a=world["a"].slug, b=world["b"].slug, base=world["c"].slug)
    if kind == "lineage_import":
        params.update(name="edges", edges_text="id,base_model\nx/b,x/a\n")
    return params


def hostile_fields(kind: str, numbers_only: bool = False) -> list[str]:
    fields = kinds.get(kind).form_class(user=None).fields  # as the form shows them (a kind may drop a field it fixes)
    skip = (forms.BooleanField, forms.FileField)
    names = [name for name, field in fields.items() if not isinstance(field, skip) and not isinstance(field.widget, forms.FileInput)]
    if numbers_only:
        names = [name for name in names if isinstance(fields[name], (forms.IntegerField, forms.FloatField))]
    return names


def stored_nothing(world, media) -> None:
    assert Job.objects.count() == 0
    assert set(Checkpoint.objects.values_list("pk", flat=True)) == {c.pk for c in world["made"]}
    assert DatasetUpload.objects.count() == 0 and Experiment.objects.count() == 1 and not LineageGraph.objects.exists()
    assert not (media / "datasets").exists()
    assert sorted(p.name for p in (media / "checkpoints").rglob("*") if p.is_file()) == [f"m{k}.safetensors" for k in range(4)]


def form_error_fields(response) -> set[str]:
    body = html.unescape(response.content.decode())
    return {part.split('"', 1)[0] for part in body.split('data-field="')[1:]}


def post_form(client, kind, data, files=None):
    return client.post(f"/jobs/new/{kind}/", {**data, **(files or {})})


def post_api(client, kind, params):
    return client.post("/api/jobs/", json.dumps({"kind": kind, "params": params}), content_type="application/json")


def test_the_valid_baselines_are_accepted(world, enqueued):
    """Guards the walk below: each kind's baseline is valid, so a refusal is the hostile field's doing."""
    from webapp.jobs.services import JobParamsInvalid, job_params_validate

    for kind in KINDS:
        try:
            job_params_validate(kind=kind, data=valid_params(kind, world), user=world["user"])
        except JobParamsInvalid as exc:
            pytest.fail(f"{kind}: {exc.errors}")


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_of_every_job_form_and_the_api(world, media, enqueued, kind):
    client = world["client"]
    for case, value in {**TEXT_CASES, **NUMBER_CASES}.items():
        for field in hostile_fields(kind, numbers_only=case in NUMBER_CASES):
            data = {**valid_params(kind, world), field: value}
            response = post_form(client, kind, data)
            assert response.status_code == 400, (field, case, response.status_code)
            assert field in form_error_fields(response), (field, case, form_error_fields(response))
            response = post_api(client, kind, data)
            assert response.status_code == 400, (field, case, response.status_code)
            assert field in response.json()["errors"], (field, case, response.json())
    assert enqueued == []
    stored_nothing(world, media)


def _pickle_payload() -> bytes:
    class Payload:
        def __reduce__(self):
            return (os.system, ("touch /tmp/terrain-hostile-payload-ran",))

    return pickle.dumps(Payload())


CHECKPOINT_FILES = {
    "pickle": ("evil.pt", _pickle_payload),
    "npz-bomb-as-pt": ("bomb.pt", lambda: npz_bomb(data_bytes=1000)),
    "truncated-pt": ("cut.pt", lambda: torch_state_bytes()[:-200]),
    "safetensors-header-lies": ("lie.safetensors", lambda: (10**12).to_bytes(8, "little") + b"{}"),
    "empty": ("empty.safetensors", lambda: b""),
    "exe": ("model.exe", lambda: b"MZ\x90\x00"),
}
DATASET_FILES = {
    "npz-bomb": ("bomb.npz", lambda: npz_bomb(data_bytes=1000)),
    "deflated-zeros": ("zeros.npz", lambda: npz_bomb(8192, 1024)),
    "pickled-npz": ("obj.npz", lambda: npz_bytes(X=np.array([{"a": 1}], dtype=object), y=np.zeros(1, np.int64))),
    "not-a-zip": ("text.npz", lambda: b"not a zip at all" * 10),
    "empty": ("empty.npz", lambda: b""),
    "wrong-suffix": ("data.pkl", _pickle_payload),
}


@pytest.mark.parametrize("kind", ["landscape", "hessian", "connectivity"])
def test_hostile_checkpoint_files(world, media, enqueued, kind):
    for case, (name, make) in CHECKPOINT_FILES.items():
        data = {**valid_params(kind, world), "checkpoint": "", "spec_json": json.dumps(SPEC)}
        response = post_form(world["client"], kind, data, {"checkpoint_file": SimpleUploadedFile(name, make())})
        assert response.status_code == 400 and "checkpoint_file" in form_error_fields(response), (case, form_error_fields(response))
    assert not os.path.exists("/tmp/terrain-hostile-payload-ran")
    assert enqueued == []
    stored_nothing(world, media)


@pytest.mark.parametrize("kind", ["landscape", "hessian", "connectivity"])
def test_hostile_dataset_files(world, media, enqueued, kind):
    for case, (name, make) in DATASET_FILES.items():
        response = post_form(world["client"], kind, valid_params(kind, world), {"dataset_file": SimpleUploadedFile(name, make())})
        assert response.status_code == 400 and "dataset_file" in form_error_fields(response), (case, form_error_fields(response))
    assert enqueued == []
    stored_nothing(world, media)


BODIES = {
    "deep-list": (DEEP.encode(), "body"),
    "deep-params": (b'{"kind": "train", "params": ' + nested_object(3000).encode() + b"}", "params"),
    "not-an-object": (b'"train"', "body"),
    "null": (b"null", "body"),
    "not-utf8": (b'{"kind": "\xff\xfe"}', "body"),
    "not-json": (b"{kind: train}", "body"),
    "too-big": (b'{"kind": "train", "pad": "' + b"x" * 300_000 + b'"}', "body"),
    "params-a-list": (b'{"kind": "train", "params": [1, 2]}', "params"),
    "kind-an-object": (b'{"kind": {"a": 1}, "params": {}}', "kind"),
    "nan-literal": (b'{"kind": "train", "params": {"lr": NaN}}', "lr"),
    "huge-int": (b'{"kind": "train", "params": {"epochs": ' + b"9" * 400 + b"}}", "epochs"),
    "value-an-object": (b'{"kind": "sweep", "params": {"seeds": {"a": [1]}}}', "seeds"),
}


def test_hostile_api_bodies(world, media, enqueued):
    for case, (body, field) in BODIES.items():
        response = world["client"].post("/api/jobs/", body, content_type="application/json")
        assert response.status_code == 400, (case, response.status_code)
        assert field in response.json()["errors"], (case, response.json())
    assert enqueued == []
    stored_nothing(world, media)


def test_a_form_posted_to_the_api_is_a_400(world, media, enqueued):
    response = world["client"].post("/api/jobs/", {"kind": "train"})  # multipart, not JSON
    assert response.status_code == 400 and "body" in response.json()["errors"]
    stored_nothing(world, media)


HOSTILE_QUERIES = ["a\x00b", DEEP[:5000], "9" * 400, "-1", "NaN", "<script>alert(1)</script>"]


def test_query_strings_of_every_read_endpoint(world, media):
    from tests.webapp.test_lineage_support import graph_from_csv

    client = world["client"]
    job = Job.objects.create(kind="train", owner=world["user"], visibility=Visibility.PUBLIC, status="succeeded")
    graph = graph_from_csv("id,base_model\nfam/root,\nfam/a,fam/root\n", owner=world["user"])
    s, g = job.slug, graph.slug
    urls = {
        "/": "q", "/": "tag", "/api/experiments/": "q", f"/api/jobs/{s}/events/": "after", "/lineage/": "page",
        f"/lineage/{g}/": "q", f"/lineage/{g}/search.json": "q", f"/lineage/{g}/find/": "q", f"/lineage/{g}/node.json": "id",
        f"/lineage/{g}/families.json": "page", f"/lineage/{g}/family/0/layout.json": "cap", f"/lineage/{g}/family/0/": "focus",
        f"/lineage/{g}/drift/": "format", "/lineage/kinship/": "a", "/compare/": "jobs", f"/jobs/new/landscape/": "checkpoint",
        f"/r/{s}/": "x", "/phases/": "x",
    }
    for url, param in urls.items():
        for value in HOSTILE_QUERIES:
            response = client.get(url, {param: value})
            assert response.status_code < 500, (url, param, value[:20], response.status_code)
            if url.endswith("/events/") and value not in ("-1",):
                assert response.status_code == 400 and "after" in response.json()["errors"], (value[:20], response.content[:200])
    Job.objects.all().delete()
    graph.delete()


def test_other_forms(world, media, enqueued, client):
    from axes.utils import reset as axes_reset

    owner = world["client"]
    job = Job.objects.create(kind="train", owner=world["user"], status="succeeded")
    for value in TEXT_CASES.values():
        response = owner.post(f"/r/{job.slug}/visibility", {"visibility": value})
        assert response.status_code == 400 and "visibility" in json.loads(response.content)
        response = owner.post("/lineage/import/", {"name": value, "visibility": "private", "edges_text": "id,base_model\na,b\n"})
        assert response.status_code == 400 and "name" in form_error_fields(response)
        response = owner.post("/lineage/import/", {"name": "g", "visibility": "private", "hub_ids": value})
        assert response.status_code == 400, response.status_code
        response = owner.post("/lineage/import/", {"name": "g", "visibility": value, "edges_text": "id,base_model\na,b\n"})
        assert response.status_code == 400 and "visibility" in form_error_fields(response)
        anonymous = type(client)()
        response = anonymous.post("/accounts/signup/", {"username": value, "password1": "a-long-pass-9981", "password2": "a-long-pass-9981"})
        assert response.status_code == 400 and "username" in response.content.decode()
        response = anonymous.post("/accounts/login/", {"username": value, "password": value})
        assert response.status_code in (200, 429) and "_auth_user_id" not in anonymous.session
    axes_reset()
    # Nested JSON through the lineage import is refused in the request, by file and field: nothing stored or queued.
    cards = {"deep.md": b"---\nbase_model: " + DEEP[:20_000].encode() + b"\n---\n", "bin.md": b"\x00\x01\x02" * 100}
    edges = {"deep.json": DEEP.encode(), "bin.csv": b"\xff\xfe\x00" * 100}
    response = owner.post("/lineage/import/", {"name": "g", "visibility": "private",
                                               "card_files": [SimpleUploadedFile(n, c) for n, c in cards.items()],
                                               "edge_files": [SimpleUploadedFile(n, c) for n, c in edges.items()]})
    body = html.unescape(response.content.decode())
    assert response.status_code == 400 and 'data-field="edge_files"' in body and "deep.json: JSON nested deeper than" in body
    job.delete()
    assert enqueued == []
    stored_nothing(world, media)
