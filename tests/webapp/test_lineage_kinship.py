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


def test_identical_deltas_have_pearson_one_and_distance_zero(client, family):
    body = client.get("/lineage/kinship/", {"a": family["twin_a"].slug, "b": family["twin_b"].slug, "format": "json"}).json()
    assert body["base"]["slug"] == family["base"].slug  # found through the parent links
    assert body["overall"]["pearson"] == pytest.approx(1.0, abs=1e-9)
    assert body["overall"]["cosine"] == pytest.approx(1.0, abs=1e-9)
    assert body["overall"]["euclidean"] == pytest.approx(0.0, abs=1e-9)
    assert len(body["layers"]) == 4 and all(layer["euclidean"] == pytest.approx(0.0, abs=1e-9) for layer in body["layers"])
    # "A landscape between these two": the existing connectivity form, pre-filled.
    url = urlparse(body["connectivity_url"])
    assert url.path == "/jobs/new/connectivity/"
    assert parse_qs(url.query) == {"checkpoint": [family["twin_a"].slug], "checkpoint_b": [family["twin_b"].slug],
                                   "dataset": ["digits"]}


def test_opposite_deltas_and_the_page(client, family):
    body = client.get("/lineage/kinship/", {"a": family["twin_a"].slug, "b": family["opposite"].slug, "format": "json"}).json()
    assert body["overall"]["pearson"] == pytest.approx(-1.0, abs=1e-9)
    assert body["overall"]["cosine"] == pytest.approx(-1.0, abs=1e-9)
    assert body["overall"]["euclidean"] == pytest.approx(2 * family["delta_norm"], rel=1e-6)
    page = client.get("/lineage/kinship/", {"a": family["twin_a"].slug, "b": family["twin_b"].slug})
    html = page.content.decode()
    assert page.status_code == 200 and 'id="kinship-pearson">1.0000<' in html and 'id="kinship-landscape"' in html


def test_no_common_base_and_private_checkpoints(client, family, other_user, tmp_path):
    response = client.get("/lineage/kinship/", {"a": family["twin_a"].slug, "b": family["stranger"].slug})
    assert response.status_code == 400 and "share no base model" in response.content.decode()
    explicit = client.get("/lineage/kinship/", {"a": family["twin_a"].slug, "b": family["stranger"].slug,
                                                "base": family["base"].slug, "format": "json"})
    assert explicit.status_code == 200 and -1 <= explicit.json()["overall"]["pearson"] <= 1
    hidden = saved_checkpoint(experiment(other_user, Visibility.PRIVATE), "hidden", tiny_state(3), tmp_path,
                              parent=None)
    assert client.get("/lineage/kinship/", {"a": family["twin_a"].slug, "b": hidden.slug}).status_code == 404
    assert client.get("/lineage/kinship/", {"a": family["twin_a"].slug, "b": hidden.slug, "format": "json"}).status_code == 404
