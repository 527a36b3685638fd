"""Kinship through the web layer, against answers known by construction."""

import math
from urllib.parse import parse_qs, urlparse

import pytest

from tests.webapp.test_lineage_support import experiment, saved_checkpoint, tiny_state
from webapp.catalog.visibility import Visibility

pytestmark = pytest.mark.django_db


@pytest.fixture
def family(user, tmp_path):
    """base; twin_a and twin_b = base + d (identical deltas); opposite = base - d; stranger unrelated."""
    exp = experiment(user, Visibility.PUBLIC)
    base_state = tiny_state(seed=0)
    direction = tiny_state(seed=1)
    delta = {k: 0.01 * (i + 1) * direction[k] for i, k in enumerate(base_state)}
    plus = {k: base_state[k] + delta[k] for k in base_state}
    minus = {k: base_state[k] - delta[k] for k in base_state}
    base = saved_checkpoint(exp, "base", base_state, tmp_path)
    return {
        "base": base,
        "twin_a": saved_checkpoint(exp, "twin_a", plus, tmp_path, parent=base, relation="finetune"),
        "twin_b": saved_checkpoint(exp, "twin_b", plus, tmp_path, parent=base, relation="finetune"),
        "opposite": saved_checkpoint(exp, "opposite", minus, tmp_path, parent=base, relation="adapter"),
        "stranger": saved_checkpoint(exp, "stranger", tiny_state(seed=2), tmp_path),
        "delta_norm": math.sqrt(sum(float((d.double() ** 2).sum()) for d in delta.values())),
    }


def kinship_job(client, **params):
    """Submit through the form (the lineage link redirects to it) and run the job as a worker would."""
    from webapp.jobs.models import Job
    from webapp.jobs.runner import run_job

    response = client.post("/jobs/new/kinship/", {**params, "visibility": "public"})
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get(kind="kinship", slug=response["Location"].strip("/").split("/")[-1])
    run_job(job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


def test_identical_deltas_have_pearson_one_and_distance_zero(client, user, family):
    client.force_login(user)
    job = kinship_job(client, a=family["twin_a"].slug, b=family["twin_b"].slug)
    body = job.result
    assert body["base"]["slug"] == family["base"].slug  # found through the parent links
    assert body["overall"]["pearson"] == pytest.approx(1.0, abs=1e-9)
    assert body["overall"]["cosine"] == pytest.approx(1.0, abs=1e-9)
    assert body["overall"]["euclidean"] == pytest.approx(0.0, abs=1e-9)
    assert len(body["layers"]) == 4 and all(layer["euclidean"] == pytest.approx(0.0, abs=1e-9) for layer in body["layers"])
    # Progress: the three models loaded, then one event per tensor, then the result.
    kinds = list(job.events.order_by("seq").values_list("kind", flat=True))
    assert kinds == ["status", "model", "model", "model", "layer", "layer", "layer", "layer", "status"]
    # "A landscape between these two": the existing connectivity form, pre-filled.
    url = urlparse(body["connectivity_url"])
    assert url.path == "/jobs/new/connectivity/"
    assert parse_qs(url.query) == {"checkpoint": [family["twin_a"].slug], "checkpoint_b": [family["twin_b"].slug],
                                   "dataset": ["digits"]}


def test_opposite_deltas_and_the_page(client, user, family):
    client.force_login(user)
    job = kinship_job(client, a=family["twin_a"].slug, b=family["opposite"].slug)
    assert job.result["overall"]["pearson"] == pytest.approx(-1.0, abs=1e-9)
    assert job.result["overall"]["cosine"] == pytest.approx(-1.0, abs=1e-9)
    assert job.result["overall"]["euclidean"] == pytest.approx(2 * family["delta_norm"], rel=1e-6)
    html = client.get(job.get_absolute_url()).content.decode()
    assert 'id="kinship-pearson">-1.0000<' in html and 'id="kinship-landscape"' in html
    csv_rows = client.get(f"/r/{job.slug}/export.csv").content.decode().splitlines()
    assert csv_rows[0] == "tensor,numel,pearson,cosine,euclidean" and csv_rows[-1].startswith("(all),")


def test_the_lineage_link_opens_the_form_prefilled_and_computes_nothing(client, user, family):
    response = client.get("/lineage/kinship/", {"a": family["twin_a"].slug, "b": family["twin_b"].slug})
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/new/kinship/?a={family['twin_a'].slug}&b={family['twin_b'].slug}"
    client.force_login(user)
    page = client.get(response["Location"]).content.decode()
    assert f'value="{family["twin_a"].slug}"' in page and f'value="{family["twin_b"].slug}"' in page


def test_no_common_base_and_private_checkpoints_are_field_errors(client, user, family, other_user, tmp_path):
    from webapp.jobs.models import Job

    client.force_login(user)
    response = client.post("/jobs/new/kinship/", {"a": family["twin_a"].slug, "b": family["stranger"].slug})
    assert response.status_code == 400 and "share no base model" in " ".join(response.context["form"].errors["base"])
    explicit = kinship_job(client, a=family["twin_a"].slug, b=family["stranger"].slug, base=family["base"].slug)
    assert -1 <= explicit.result["overall"]["pearson"] <= 1
    hidden = saved_checkpoint(experiment(other_user, Visibility.PRIVATE), "hidden", tiny_state(3), tmp_path,
                              parent=None)
    response = client.post("/jobs/new/kinship/", {"a": family["twin_a"].slug, "b": hidden.slug})
    assert response.status_code == 400 and "that you can see" in " ".join(response.context["form"].errors["b"])
    assert Job.objects.filter(kind="kinship").count() == 1


def test_the_json_api_names_the_missing_and_the_unseen_checkpoint(user, family):
    """Kinship's params model checks through the API as through the form; the base is resolved in the request."""
    from webapp.jobs.services import JobParamsInvalid, job_params_validate

    a, b = family["twin_a"].slug, family["twin_b"].slug
    validated = job_params_validate(kind="kinship", user=user, data={"a": a, "b": f" {b} "})
    assert validated.params == {"a": a, "b": b, "base": family["base"].slug}
    with pytest.raises(JobParamsInvalid) as refused:
        job_params_validate(kind="kinship", user=user, data={"a": a, "b": "nobody"})
    assert refused.value.errors == {"b": ["no checkpoint 'nobody' that you can see"]}
    with pytest.raises(JobParamsInvalid) as refused:
        job_params_validate(kind="kinship", user=user, data={"a": a})
    assert list(refused.value.errors) == ["b"]
