"""Issue 9, item 4: JSON nested deep enough to exhaust Python's recursion is a 400 naming the
field, in the JSON API and in every form field that takes JSON; nothing stored or queued."""

import json

import pytest

from webapp.jobs.models import Job

from .security_fixtures import form_defaults, nested_list, nested_object

pytestmark = pytest.mark.django_db

DEEP = 100_000  # under the API's 256 KB body cap as brackets


def test_the_helper_never_lets_recursion_escape(settings):
    from webapp.bounded_json import JsonRejected, parse_json

    with pytest.raises(JsonRejected) as caught:
        parse_json(nested_list(DEEP), field="spec_json")
    assert caught.value.field == "spec_json" and "nested deeper than" in caught.value.message
    body = '{"kind": "train", "note": "a: [[[[", "params": ' + nested_object(3000) + "}"
    with pytest.raises(JsonRejected) as caught:
        parse_json(body, field="body", keyed=True)
    assert caught.value.field == "params"  # blamed on the top-level key, brackets in strings ignored
    limit = settings.TERRAIN_MAX_JSON_DEPTH
    assert parse_json(nested_list(limit), field="x") is not None
    with pytest.raises(JsonRejected):
        parse_json(nested_list(limit + 1), field="x")


def _api(client, body: str):
    return client.post("/api/jobs/", body, content_type="application/json")


@pytest.mark.parametrize("body, field", [
    (nested_list(DEEP), "body"),
    ('{"kind": "train", "params": ' + nested_object(3000) + "}", "params"),
    ('{"kind": "sweep", "params": {"spec": ' + nested_list(5000) + "}}", "params"),
])
def test_deep_json_to_the_api_is_a_400_naming_the_field(client, user, body, field):
    assert len(body.encode()) < 256 * 1024
    client.force_login(user)
    response = _api(client, body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Job.objects.count() == 0


@pytest.mark.parametrize("kind, field", [
    ("landscape", "spec_json"), ("sweep", "spec_json"), ("sweep", "fixed"), ("sweep", "task_options"),
])
def test_deep_json_in_a_form_field_is_a_400_on_that_field(client, user, kind, field):
    client.force_login(user)
    response = client.post(f"/jobs/new/{kind}/", {**form_defaults(kind), field: nested_list(DEEP)})
    assert response.status_code == 400
    assert f'data-field="{field}"' in response.content.decode()
    assert Job.objects.count() == 0


def test_deep_json_in_the_api_params_of_a_form_field(client, user):
    client.force_login(user)
    response = _api(client, json.dumps({"kind": "sweep", "params": {"fixed": nested_list(DEEP)}}))
    assert response.status_code == 400 and "fixed" in response.json()["errors"]


@pytest.mark.parametrize("path, body, field", [
    ("/api/runs/", '{"name": "run\\u0000", "experiment": "x"}', "name"),
    ("/api/runs/", '{"name": "ok", "config": {"lr": ["\\ud800"]}}', "config"),
    ("/api/jobs/", '{"kind": "train", "params": {"name": "a\\u0000b"}}', "name"),
])
def test_text_the_database_cannot_hold_is_a_400_naming_the_field(client, user, path, body, field):
    """PostgreSQL refuses NUL in text and lone surrogates in UTF-8 (found by schemathesis as a 500 there)."""
    from webapp.runs.models import Run

    client.force_login(user)
    response = client.post(path, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert Job.objects.count() == 0 and Run.objects.count() == 0


LONG_INT = "9" * 5000  # past Python's 4,300-digit limit on int(str)


def test_the_helper_names_the_field_of_an_integer_too_long_to_convert():
    from webapp.bounded_json import JsonRejected, parse_json

    with pytest.raises(JsonRejected) as caught:
        parse_json("[1, " + LONG_INT + "]", field="spec_json")
    assert caught.value.field == "spec_json" and "too many digits" in caught.value.message
    with pytest.raises(JsonRejected) as caught:
        parse_json('{"kind": "train", "params": {"epochs": ' + LONG_INT + "}}", field="body", keyed=True)
    assert caught.value.field == "epochs"  # inside a job's params: the parameter
    assert parse_json("9" * 4000, field="x") == int("9" * 4000)


@pytest.mark.parametrize("path, body, field", [
    ("/api/jobs/", '{"kind": "train", "params": {"epochs": ' + LONG_INT + "}}", "epochs"),
    ("/api/jobs/", '{"kind": "sweep", "params": {"fixed": {"width": -' + LONG_INT + "}}}", "fixed"),
    ("/api/runs/", '{"name": "ok", "config": {"lr": ' + LONG_INT + "}}", "config"),
])
def test_an_integer_too_long_to_convert_is_a_400_naming_the_field(client, user, path, body, field):
    """json.loads raised a bare ValueError here: a 500 from /api/jobs/, Python's advice text elsewhere."""
    from webapp.runs.models import Run

    client.force_login(user)
    response = client.post(path, body, content_type="application/json")
    assert response.status_code == 400, response.content
    messages = " ".join(response.json()["errors"][field])
    assert "too many digits" in messages and "set_int_max_str_digits" not in messages
    assert Job.objects.count() == 0 and Run.objects.count() == 0


def test_an_integer_too_long_in_run_metrics_is_a_400(client, user):
    client.force_login(user)
    run = client.post("/api/runs/", {"experiment": "e", "name": "r"}, content_type="application/json").json()
    response = client.post(f"/api/runs/{run['slug']}/metrics/", '{"rows": [{"step": ' + LONG_INT + "}]}",
                           content_type="application/json")
    assert response.status_code == 400, response.content
    assert "too many digits" in " ".join(response.json()["errors"]["rows"])


@pytest.mark.parametrize("kind, field", [("landscape", "spec_json"), ("sweep", "fixed"), ("sweep", "task_options")])
def test_an_integer_too_long_in_a_form_field_is_a_400_on_that_field(client, user, kind, field):
    client.force_login(user)
    response = client.post(f"/jobs/new/{kind}/", {**form_defaults(kind), field: '{"a": ' + LONG_INT + "}"})
    assert response.status_code == 400
    page = response.content.decode()
    assert f'data-field="{field}"' in page and "too many digits" in page and "set_int_max_str_digits" not in page
    assert Job.objects.count() == 0


def test_an_integer_too_long_in_a_run_checkpoints_config_is_refused_by_name(tmp_path):
    import torch
    from safetensors.torch import save_file

    from webapp.runs import files

    path = tmp_path / "hf.safetensors"
    config = '{"model_type": "gpt2", "n_embd": ' + LONG_INT + "}"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"terrain.format": "terrain.hf.v1", "terrain.config": config})
    with pytest.raises(files.CheckpointFileRejected, match="terrain.config: a number has too many digits"):
        files.inspect_foreign(path, files.source_of(path))
