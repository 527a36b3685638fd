"""The import form and its job: a file that cannot be read at all is a 400 naming it (nothing
stored, nothing queued); malformed rows get per-row errors in the job's report while the valid
rows land; nothing usable fails the job with its report; the Hub path runs on recordings.

The job runs in this process here (``run_job``); tests/integration runs it on a real worker."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from analysis.lineage.hub import RecordedHubClient
from tests.webapp.test_lineage_support import HUB_FIXTURES
from webapp.catalog.models import Experiment
from webapp.jobs.models import Job, JobEvent
from webapp.jobs.runner import run_job
from webapp.lineage import hub
from webapp.lineage.models import LineageGraph, LineageUpload, ModelEdge, ModelNode

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_hub_network(monkeypatch):
    from huggingface_hub import hf_api

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to call the real Hugging Face Hub")

    monkeypatch.setattr(hf_api.HfApi, "model_info", refuse)


def upload(name, content):
    return SimpleUploadedFile(name, content if isinstance(content, bytes) else content.encode())


def issues_of(graph):
    return [(i["source"], i["row"], i["kind"], i["severity"]) for i in graph.report["issues"]]


def submit_and_run(client, data) -> Job:
    """POST the form (a redirect to the queued job), then run the job as a worker would."""
    response = client.post("/lineage/import/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get(kind="lineage_import")
    assert response["Location"] == job.get_absolute_url() and job.status == "queued"
    run_job(job.pk)
    job.refresh_from_db()
    return job


def test_malformed_files_get_per_row_errors_and_the_rest_lands(client, user):
    edges = (
        "id,base_model,base_model_relation,license\n"
        "good/child,good/root,finetune,mit\n"                     # 2: fine
        "good/distilled,good/root,distillation,mit\n"             # 3: unknown relation -> kept as unknown
        f"bad/huge,good/root,finetune,{'x' * 5000}\n"              # 4: oversized field -> skipped
        ",good/root,finetune,mit\n"                               # 5: no id -> skipped
        "good/root,,source,apache-2.0\n"                          # 6: the root's own row
        "good/latin,good/root,adapter,caf\xe9\n"                  # 7: valid (non-ASCII text)
    )
    rows_json = json.dumps([
        {"model_id": "json/a", "parent": "good/root", "relation": "quantized"},
        "not an object",
        {"model_id": ["a", "list"], "parent": "good/root"},
        {"model_id": "json/b", "parent": 42},
    ])
    front = "---\nbase_model: good/root\nlicense: mit\nlanguage: [en, fr]\npipeline_tag: text-generation\n---\n# Card\n"
    bad_yaml = "---\nbase_model: [unclosed\nlicense: mit\n---\n"
    huge_front = "---\nlicense: mit\nnote: " + "y" * 70_000 + "\n---\n"
    client.force_login(user)
    job = submit_and_run(client, {
        "name": "messy", "visibility": "public", "follow_parents": "on",
        "edge_files": [
            upload("edges.csv", edges),
            upload("rows.json", rows_json),
            upload("nocolumns.csv", "foo,bar\n1,2\n"),
            upload("junk.csv", bytes(range(256)) * 8),                  # binary junk
        ],
        "card_files": [
            upload("cards__good.md", front),
            upload("cards__badyaml.md", bad_yaml),
            upload("cards__huge.md", huge_front),
            upload("cards__binary.md", b"\x00\x01\x02\xff" * 100),
        ],
    })
    assert job.status == "succeeded", job.error
    graph = LineageGraph.objects.get(name="messy")
    assert job.result["graph"]["slug"] == graph.slug and job.result["graph"]["nodes"] == graph.num_nodes
    # One event per file read, in order, before the result.
    files = [e.payload["name"] for e in JobEvent.objects.filter(job=job, kind="file").order_by("seq")]
    assert files == ["edges.csv", "rows.json", "nocolumns.csv", "junk.csv", "cards__good.md", "cards__badyaml.md",
                     "cards__huge.md", "cards__binary.md"]
    issues = issues_of(graph)

    # Per-row errors, each naming its file and row.
    assert ("edges.csv", 3, "unknown_relation", "warning") in issues
    assert ("edges.csv", 4, "oversized_field", "error") in issues
    assert ("edges.csv", 5, "missing_value", "error") in issues
    assert ("rows.json", 2, "malformed_row", "error") in issues
    assert ("rows.json", 3, "bad_value", "error") in issues
    assert ("rows.json", 4, "bad_value", "error") in issues
    assert ("nocolumns.csv", 1, "missing_column", "error") in issues
    assert any(s == "junk.csv" and k == "malformed_row" for s, _, k, _ in issues)
    assert ("cards__badyaml.md", 1, "bad_yaml", "error") in issues
    assert ("cards__huge.md", 1, "oversized_field", "error") in issues
    assert any(s == "cards__binary.md" for s, _, _, _ in issues)

    # Every valid row landed, with its attributes.
    ids = set(ModelNode.objects.filter(graph=graph).values_list("model_id", flat=True))
    assert {"good/root", "good/child", "good/distilled", "good/latin", "json/a", "json/b", "cards/good"} <= ids
    assert not ids & {"bad/huge", "cards/badyaml", "cards/huge"}
    card = ModelNode.objects.get(graph=graph, model_id="cards/good")
    assert card.attrs["license"] == "mit" and card.attrs["language"] == ["en", "fr"]
    assert ModelEdge.objects.get(graph=graph, child__model_id="json/a").relation == "quantized"
    assert ModelEdge.objects.get(graph=graph, child__model_id="good/distilled").relation == "unknown"
    assert ModelNode.objects.get(graph=graph, model_id="good/latin").attrs["license"] == "café"

    # The lineage index links the job's result page, which shows the graph and links to it.
    assert f'href="{job.get_absolute_url()}"' in client.get("/lineage/").content.decode()
    result_page = client.get(job.get_absolute_url()).content.decode()
    assert f'id="import-graph-link" href="{graph.get_absolute_url()}"' in result_page
    # The graph's page shows the report.
    page = client.get(graph.get_absolute_url()).content.decode()
    assert "unknown relation &#x27;distillation&#x27;" in page
    assert "invalid YAML" in page and "binary file" in page and "cards__badyaml.md" in page
    assert graph.experiment.owner == user and graph.experiment.visibility == "public"


def test_nothing_usable_fails_the_job_with_its_report(client, user):
    client.force_login(user)
    job = submit_and_run(client, {"name": "empty", "visibility": "private", "edge_files": [upload("x.csv", "foo,bar\n1,2\n")]})
    assert job.status == "failed" and "no row of the input was usable" in job.error
    report = JobEvent.objects.get(job=job, kind="report").payload
    assert [(i["source"], i["kind"]) for i in report["issues"]] == [("x.csv", "missing_column")]
    assert not LineageGraph.objects.exists() and not Experiment.objects.exists()


def test_form_needs_some_input_and_a_login(client, user):
    assert client.get("/lineage/import/").status_code == 302  # to the login page
    client.force_login(user)
    response = client.post("/lineage/import/", {"name": "nothing", "visibility": "private"})
    assert response.status_code == 400 and "give at least one" in response.content.decode()
    assert not Job.objects.exists()


DEEP_JSON = "[" * 2000 + "]" * 2000


@pytest.mark.parametrize("field, name, content, message", [
    ("edge_files", "broken.json", "{not json", "broken.json: not valid JSON"),
    ("edge_files", "deep.json", DEEP_JSON, "deep.json: JSON nested deeper than"),
    ("edge_files", "big.csv", "id,base_model\n" + "".join(f"big/m{i},big/root\n" for i in range(400)), "big.csv: 7,"),
    ("edge_files", "model.pkl", b"\x80\x04\x95 not unpickled, ever", "model.pkl: file must end in .csv, .txt, .json"),
    ("card_files", "card.txt", "---\nlicense: mit\n---\n", "card.txt: file must end in .md, .markdown"),
    ("edges_text", None, DEEP_JSON, "pasted edges: JSON nested deeper than"),
    ("edge_files", "long.json", '[{"child": "a", "parent": "b", "x": ' + "9" * 5000 + "}]",
     "long.json: a number has too many digits"),
])
def test_hostile_files_are_a_field_named_400_and_nothing_is_queued(client, user, settings, field, name, content, message):
    settings.TERRAIN_LINEAGE_MAX_UPLOAD_BYTES = 6000
    client.force_login(user)
    data = {"name": "hostile", "visibility": "private", "edge_files": [upload("good.csv", "id,base_model\nsmall/b,small/a\n")]}
    if name is None:
        data[field] = content
    else:
        data[field] = [*data.get(field, []), upload(name, content)]
    response = client.post("/lineage/import/", data)
    assert response.status_code == 400
    form = response.context["form"]
    assert message in " ".join(form.errors[field]), form.errors
    assert not Job.objects.exists() and not LineageUpload.objects.exists() and not LineageGraph.objects.exists()


def test_hub_model_ids_use_the_recorded_client(client, user, monkeypatch):
    recorded = RecordedHubClient.from_directory(HUB_FIXTURES)
    monkeypatch.setattr(hub, "hub_client", lambda: recorded)
    client.force_login(user)
    job = submit_and_run(client, {
        "name": "from the hub", "visibility": "private", "follow_parents": "on",
        "hub_ids": "example-org/llama-3.1-8b-sql-merge\nnobody/missing-model",
    })
    assert job.status == "succeeded", job.error
    hub_events = [e.payload["model"] for e in JobEvent.objects.filter(job=job, kind="hub").order_by("seq")]
    assert hub_events == list(recorded.requests)  # one event per Hub request, as it was made
    graph = LineageGraph.objects.get(name="from the hub")
    assert graph.source == "hub"
    merge = ModelNode.objects.get(graph=graph, model_id="example-org/llama-3.1-8b-sql-merge")
    parents = ModelEdge.objects.filter(child=merge)
    assert {e.parent.model_id for e in parents} == {"meta-llama/Llama-3.1-8B-Instruct", "example-org/llama-3.1-8b-sql-lora"}
    assert {e.relation for e in parents} == {"merge"}
    # follow_parents walked up to the base model, through the recordings only.
    assert ModelNode.objects.filter(graph=graph, model_id="meta-llama/Llama-3.1-8B", placeholder=False).exists()
    assert "nobody/missing-model" in recorded.requests
    assert any(k == "fetch_failed" for _, _, k, _ in issues_of(graph))


def test_the_json_api_takes_pasted_csv_and_hub_ids_but_no_files(user):
    """The params model is the API's too: Hub ids as a list or text (deduplicated), files only by the form."""
    from webapp.jobs.services import JobParamsInvalid, job_params_validate

    validated = job_params_validate(kind="lineage_import", user=user, data={
        "name": "api", "edges_text": "id,base_model\nx/b,x/a\n", "hub_ids": ["org/m", "org/m/", "org/n"]})
    assert {k: v for k, v in validated.params.items() if k != "files"} == {
        "name": "api", "hub_ids": ["org/m", "org/n"], "follow_parents": True, "source": "mixed"}
    assert [(f["name"], f["kind"]) for f in validated.params["files"]] == [("pasted edges", "edges")]
    for upload_ in validated.uploads:
        upload_.close()
    with pytest.raises(JobParamsInvalid) as refused:
        job_params_validate(kind="lineage_import", user=user, data={"name": "api", "edge_files": "x.csv"})
    assert list(refused.value.errors) == ["edge_files"]
    with pytest.raises(JobParamsInvalid) as refused:
        job_params_validate(kind="lineage_import", user=user, data={"name": "api", "hub_ids": "\n".join(f"o/m{i}" for i in range(999))})
    assert refused.value.errors == {"hub_ids": ["at most 100 model ids (got 999)"]}
