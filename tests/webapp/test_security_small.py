"""Issue 9, item 6: a query-string flood is a 400 (also with DEBUG on), the lineage page states
its real upload limit, spec-JSON errors sit under the spec field, the OpenAPI schema lists the
job kinds and the 404s, and graph exports stream."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from analysis.lineage import export
from tests.webapp.test_lineage_support import graph_from_csv
from webapp.jobs import kinds
from webapp.lineage import imports, selectors

from .security_fixtures import form_defaults

pytestmark = pytest.mark.django_db

FLOOD = "&".join(f"p{i}=1" for i in range(2000))


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("url", ["/", "/lineage/", "/jobs/new/train/", "/api/experiments/"])
def test_query_string_flood_is_a_400(client, user, settings, debug, url):
    settings.DEBUG = debug  # the dev default is DEBUG on, whose error page used to turn this into a 500
    client.force_login(user)
    response = client.get(f"{url}?{FLOOD}")
    assert response.status_code == 400
    if url.startswith("/api/"):
        assert "query" in response.json()["errors"]


def test_form_body_flood_is_a_400(client, user, settings):
    settings.DEBUG = True
    client.force_login(user)
    response = client.post("/jobs/new/train/", FLOOD, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and b'data-field="body"' in response.content


def test_import_page_states_the_real_limit(client, user, settings):
    from django.template.defaultfilters import filesizeformat

    client.force_login(user)
    page = client.get("/lineage/import/").content.decode()
    assert "over 0" not in page and f"over {filesizeformat(imports.max_upload_bytes())}" in page
    settings.TERRAIN_LINEAGE_MAX_UPLOAD_BYTES = 10
    response = client.post("/lineage/import/", {"name": "big", "visibility": "private",
                                                "edge_files": [SimpleUploadedFile("x.csv", b"foo,bar\n1,2\n")]})
    assert response.status_code == 400 and "x.csv: 12 bytes; the limit is 10 per file" in response.content.decode()


def test_landscape_spec_json_errors_are_under_the_spec_field(client, user):
    client.force_login(user)
    response = client.post("/jobs/new/landscape/", {**form_defaults("landscape"), "spec_json": "{not json"})
    body = response.content.decode()
    assert response.status_code == 400 and 'data-field="spec_json"' in body and "architecture spec" in body


def test_openapi_lists_the_kinds_and_the_404s(client):
    schema = client.get("/api/schema/").json()
    names = sorted(kind.name for kind in kinds.all_kinds())
    post = schema["paths"]["/api/jobs/"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/JobSubmission"}
    union = schema["components"]["schemas"]["JobSubmission"]
    assert sorted(union["discriminator"]["mapping"]) == names
    train = schema["components"]["schemas"][union["discriminator"]["mapping"]["train"].rsplit("/", 1)[1]]
    train_params = schema["components"]["schemas"][train["properties"]["params"]["$ref"].rsplit("/", 1)[1]]
    assert train_params["properties"]["lr"] == {"default": 0.05, "maximum": 10.0, "minimum": 1e-06, "title": "Learning rate",
                                               "type": "number"}
    assert schema["components"]["schemas"]["JobState"]["properties"]["kind"]["enum"] == names
    assert "429" in post["responses"]
    assert "404" in schema["paths"]["/api/jobs/{slug}/cancel/"]["post"]["responses"]
    assert "404" in schema["paths"]["/api/jobs/{slug}/events/"]["get"]["responses"]
    assert client.get("/api/jobs/nope/events/").status_code == 404 and client.post("/api/jobs/nope/cancel/").status_code == 404


SMALL = "id,base_model,license\nfam/root,,mit\nfam/a,fam/root,mit\nfam/b,fam/root,\"a,b\"\nsolo/x,other/base,\n"


@pytest.mark.parametrize("fmt, writer", [("json", export.to_json), ("graphml", export.to_graphml),
                                         ("edges.csv", export.to_csv_edges), ("nodes.csv", export.to_csv_nodes)])
def test_graph_exports_stream_the_same_text(client, user, fmt, writer):
    graph = graph_from_csv(SMALL, owner=user)
    client.force_login(user)
    response = client.get(f"/lineage/{graph.slug}/export/{fmt}")
    assert response.status_code == 200 and response.streaming
    assert b"".join(response.streaming_content).decode() == writer(selectors.graph_lib_graph(graph=graph))


def test_json_export_streams_in_chunks_and_matches_json_dumps():
    from analysis.lineage.graph import LineageGraph

    lib = LineageGraph()
    for i in range(3000):
        lib.add_node(f"m/{i}", {"n": i, "nan": float("nan")})
        if i:
            lib.add_edge(f"m/{(i - 1) // 2}", f"m/{i}", "finetune")
    chunks = list(export.iter_json(lib))
    assert len(chunks) > 1  # never one string of the whole graph
    assert "".join(chunks) == json.dumps(export.to_json_dict(lib), ensure_ascii=False, allow_nan=False)
