"""The client against the Django app in-process (HTTP through a WSGI transport): runs, checkpoints
of the three kinds, retries, and errors that name their field."""

import io
import json

import httpx
import numpy as np
import pytest
import torch

import terrain
from terrain.jobs import to_numpy
from webapp.runs.models import Run, RunCheckpoint

SPEC = {"kind": "mlp", "in": 64, "hidden": [8], "out": 10}


def spec_model(seed=0):
    from analysis import zoo

    torch.manual_seed(seed)
    return zoo.build(SPEC)


def test_a_run_stores_every_metric_and_checkpoint(wsgi_session):
    session = wsgi_session()
    run = terrain.Run(experiment="Digits sweeps", name="lr 0.1", config={"lr": 0.1}, session=session)
    model = spec_model()
    layer = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    for step in range(5):
        run.log(step=step, loss=1.0 / (step + 1), acc=torch.tensor(0.5))
        with torch.no_grad():
            layer.weight.add_(0.01)
        run.log_checkpoint(model, step=step * 10)
    run.log(step=4, extra=float("nan"))  # a step logged twice merges; NaN travels as null
    run.finish()
    stored = Run.objects.get(slug=run.slug)
    assert stored.experiment.title == "Digits sweeps" and stored.config == {"lr": 0.1} and stored.finished_at
    assert run.metrics()[-1] == {"step": 4, "metrics": {"loss": 0.2, "acc": 0.5, "extra": None}}
    entries = list(RunCheckpoint.objects.filter(run=stored).order_by("step"))
    assert [e.step for e in entries] == [0, 10, 20, 30, 40] and {e.source for e in entries} == {"terrain"}
    # Each checkpoint is the weights as they were when logged (a snapshot, not the live model).
    from analysis import checkpoints

    first = checkpoints.load(entries[0].checkpoint.file.path).model
    first_layer = next(m for m in first.modules() if isinstance(m, torch.nn.Linear))
    assert torch.allclose(first_layer.weight, layer.weight - 0.04, atol=1e-6)
    # A restarted script logs on into the same run.
    again = terrain.Run(resume=run.slug, session=session)
    again.log(step=5, loss=0.1)
    again.finish()
    assert [row["step"] for row in run.metrics()] == [0, 1, 2, 3, 4, 5]
    # A second run in the same experiment (found by its title) lands beside the first.
    other = terrain.Run(experiment="Digits sweeps", name="lr 0.2", session=session)
    assert Run.objects.get(slug=other.slug).experiment_id == stored.experiment_id
    other.finish()


def test_a_hugging_face_checkpoint_loads_back_with_from_pretrained(wsgi_session, tmp_path):
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=16)
    torch.manual_seed(0)
    model = BertModel(config).eval()
    run = terrain.Run(experiment="hf", session=wsgi_session())
    run.log_checkpoint(model, step=3)
    run.finish()
    entry = RunCheckpoint.objects.get(run__slug=run.slug)
    assert entry.source == "hf" and entry.checkpoint is None and entry.config["model_type"] == "bert"
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(entry.config))
    (folder / "model.safetensors").write_bytes(entry.file.read())
    loaded = BertModel.from_pretrained(str(folder), local_files_only=True, use_safetensors=True).eval()
    tokens = torch.tensor([[1, 5, 7, 2]])
    with torch.no_grad():
        assert torch.allclose(loaded(tokens).last_hidden_state, model(tokens).last_hidden_state, atol=1e-6)


def test_a_lora_adapter_is_stored_with_its_config(wsgi_session):
    adapter = {"base_model.model.encoder.layer.0.attention.self.query.lora_A.weight": torch.randn(4, 16),
               "base_model.model.encoder.layer.0.attention.self.query.lora_B.weight": torch.zeros(16, 4)}
    lora_config = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["query"]}
    run = terrain.Run(experiment="lora", session=wsgi_session())
    run.log_checkpoint(None, step=1, adapter=adapter, lora_config=lora_config)
    run.finish()
    entry = RunCheckpoint.objects.get(run__slug=run.slug)
    assert entry.source == "lora" and entry.config == lora_config and entry.num_parameters == 128


def model_holding(value: float):
    """A spec model one of whose weights is `value` (NaN or Inf: the server refuses it)."""
    model = spec_model()
    with torch.no_grad():
        next(m for m in model.modules() if isinstance(m, torch.nn.Linear)).weight[0, 0] = value
    return model


def test_a_bad_checkpoint_is_reported_at_flush_and_nothing_is_kept(wsgi_session):
    model = model_holding(float("nan"))
    run = terrain.Run(experiment="broken", session=wsgi_session())
    run.log_checkpoint(model, step=0)
    with pytest.raises(terrain.UploadError, match="checkpoint of step 0.*file.*NaN") as caught:
        run.flush()
    assert str(caught.value).count("fc0.weight") == 1  # the server's "file: ..." was repeated after itself
    assert not RunCheckpoint.objects.filter(run__slug=run.slug).exists()
    with pytest.raises(terrain.ValidationError, match="spec: this model carries no Terrain spec"):
        run.log_checkpoint(torch.nn.Linear(2, 2), step=1)
    run.log_checkpoint(model, step=2)  # lost too, after the flush that reported step 0
    with pytest.raises(terrain.UploadError, match="1 logged item") as caught:
        run.finish()  # says what was lost since, and still marks the run finished
    assert "step 2" in str(caught.value) and "step 0" not in str(caught.value)
    assert Run.objects.get(slug=run.slug).finished_at is not None


def test_an_upload_error_the_caller_handled_is_not_raised_again_by_finish(wsgi_session):
    run = terrain.Run(experiment="handled", session=wsgi_session())
    run.log_checkpoint(model_holding(float("inf")), step=0)
    with pytest.raises(terrain.UploadError):
        run.flush()
    run.log(step=1, loss=0.5)
    run.finish()  # raised the same UploadError again
    assert Run.objects.get(slug=run.slug).finished_at is not None and [r["step"] for r in run.metrics()] == [1]


def test_a_metric_that_is_no_number_is_named(wsgi_session):
    run = terrain.Run(experiment="words", session=wsgi_session())
    with pytest.raises(terrain.ValidationError, match=r"^acc: must be a number, got 'high'$") as caught:
        run.log(step=0, loss=0.1, acc="high")  # a bare ValueError from float()
    assert caught.value.fields == ["acc"]
    with pytest.raises(terrain.ValidationError, match="acc: must be a number, got tensor"):
        run.log(step=0, acc=torch.ones(3))
    with pytest.raises(terrain.ValidationError, match="step: must be an integer, got 'first'"):
        run.log(step="first", loss=0.1)
    run.finish()
    assert run.metrics() == []


def test_the_servers_field_message_is_said_once(wsgi_session):
    with pytest.raises(terrain.ValidationError) as caught:
        terrain.Run(experiment="x" * 500, session=wsgi_session())
    assert str(caught.value).count("at most 200 characters") == 1 and caught.value.fields == ["experiment"]


def test_uploads_retry_through_dropped_connections_and_lose_nothing(wsgi_session):
    from django.core.handlers.wsgi import WSGIHandler

    inner = httpx.WSGITransport(app=WSGIHandler())
    dropped = []

    class Flaky(httpx.BaseTransport):
        """Drops every other upload before it reaches the server, then the response of the next one after it did."""

        def handle_request(self, request):
            n = len(dropped)
            if request.url.path.endswith(("/metrics/", "/checkpoints/")) and request.method == "POST":
                dropped.append(request.url.path)
                if n % 3 == 0:
                    raise httpx.ConnectError("connection refused")
                if n % 3 == 1:
                    inner.handle_request(request)  # the server stored it, but the answer is lost
                    raise httpx.ReadError("connection reset")
            return inner.handle_request(request)

    run = terrain.Run(experiment="flaky", session=wsgi_session(transport=Flaky()))
    model = spec_model()
    for step in range(4):
        run.log(step=step, loss=float(step))
        run.log_checkpoint(model, step=step)
    run.finish()
    assert run.retries >= 4
    assert [e.step for e in RunCheckpoint.objects.filter(run__slug=run.slug).order_by("step")] == [0, 1, 2, 3]
    assert [row["step"] for row in run.metrics()] == [0, 1, 2, 3]


def test_errors_name_the_field(wsgi_session, no_enqueue):
    session = wsgi_session()
    with pytest.raises(terrain.ValidationError) as caught:
        terrain.Run(experiment="  ", session=session)
    assert caught.value.fields == ["experiment"]
    run = terrain.Run(experiment="errors", session=session)
    run.log_checkpoint(spec_model(), step=0)
    with pytest.raises(terrain.ValidationError) as caught:
        run.landscape(resolution=500)
    assert caught.value.fields == ["resolution"] and "at most 101x101" in str(caught.value)
    with pytest.raises(terrain.ValidationError, match="axes: PCA axes need at least 3 logged checkpoints"):
        run.landscape(resolution=5)
    job = run.landscape(axes="random", resolution=5, eval_size=50)
    assert job.status == "queued" and job.url.endswith(f"/r/{job.slug}/")
    assert no_enqueue[0].params["run"] == run.slug and no_enqueue[0].params["checkpoint"] == run.latest_checkpoint()
    run.finish()
    reader = wsgi_session(scope="read")
    with pytest.raises(terrain.PermissionDenied, match="read-only"):
        terrain.Run(experiment="nope", session=reader)
    with pytest.raises(terrain.NotFound):
        terrain.job("no-such-job", session=reader)


def test_the_server_refuses_pickles_and_a_second_file_for_a_step(client, user, tmp_path):
    from webapp.accounts.tokens import token_create
    from webapp.runs.services import run_create

    run = run_create(owner=user, experiment="raw")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=user, name='raw').secret}"}
    url = f"/api/runs/{run.slug}/checkpoints/"
    buffer = io.BytesIO()
    torch.save(spec_model().state_dict(), buffer)
    pickle = io.BytesIO(buffer.getvalue())
    pickle.name = "model.safetensors"
    response = client.post(url, {"step": "0", "file": pickle}, **auth)
    assert response.status_code == 400 and "safetensors" in response.json()["errors"]["file"][0]

    from terrain.checkpoints import snapshot, write

    def upload(path):
        with open(path, "rb") as handle:
            return client.post(url, {"step": "0", "file": handle}, **auth)

    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    write(snapshot(spec_model(0), step=0, spec=SPEC), first)
    write(snapshot(spec_model(1), step=0, spec=SPEC), second)
    assert upload(first).status_code == 201
    assert upload(first).status_code == 200  # a retry of the same file
    response = upload(second)
    assert response.status_code == 409 and "already has a different checkpoint" in response.json()["errors"]["step"][0]


def test_results_become_numpy_arrays_and_a_figure():
    result = to_numpy({"a": [-1.0, 0.0, 1.0], "loss": [[1.0, None], [2.0, 3.0]], "kind": "plane", "steps": [],
                       "computed": [[True, False]], "trajectory": [[0.1, 0.2], [0.0, 0.0]], "names": ["x", "y"]})
    assert result["a"].dtype == float and np.isnan(result["loss"][0, 1]) and result["loss"].shape == (2, 2)
    assert result["kind"] == "plane" and result["steps"] == [] and result["names"] == ["x", "y"]
    assert result["computed"] == [[True, False]]
    from terrain.figures import figure_of

    fig = figure_of("landscape", {"a": result["a"][:2], "b": result["a"][:2], "loss": result["loss"], "trajectory": result["trajectory"],
                                  "trajectory_steps": [0, 5]})
    assert [trace.type for trace in fig.data] == ["contour", "scatter", "scatter"]


def test_every_analysis_is_one_call_with_the_forms_parameters(wsgi_session, no_enqueue):
    session = wsgi_session()
    runs = []
    for seed in range(2):
        run = terrain.Run(experiment="pairs", name=f"seed {seed}", session=session)
        for step in range(3):
            run.log_checkpoint(spec_model(seed * 10 + step), step=step)
        runs.append(run)
    a, b = runs
    hessian = a.hessian(top_k=2, eval_size=50)
    connectivity = a.connectivity(b, steps=5, eval_size=50)
    plane = a.landscape(resolution=5, eval_size=50)
    sweep = terrain.sweep(preset="grokking", session=session)
    recovery = terrain.lineage.recover(source="experiment", source_experiment=a.experiment, session=session)
    assert [j.kind for j in (hessian, connectivity, plane, sweep, recovery)] == ["hessian", "connectivity", "landscape", "sweep",
                                                                                 "lineage_recovery"]
    params = {job.kind: job.params for job in no_enqueue}
    assert params["hessian"]["top_k"] == 2 and params["hessian"]["checkpoint"] == a.latest_checkpoint()
    assert params["connectivity"]["checkpoint_b"] == b.latest_checkpoint()
    assert params["landscape"]["axes"] == "pca" and params["landscape"]["run"] == a.slug
    assert terrain.job(plane.slug, session=session).status == "queued"
    # a line has no PCA axes (the server refuses them since it stopped running a random line instead)
    line = a.landscape(mode="line", resolution=5, eval_size=50)
    assert line.kind == "landscape" and (no_enqueue[-1].params["mode"], no_enqueue[-1].params["axes"]) == ("line", "random")
    for run in runs:
        run.finish()


def test_a_trajectory_too_large_to_load_is_refused_by_field(wsgi_session, no_enqueue, monkeypatch):
    from webapp.landscapes import params

    run = terrain.Run(experiment="big", session=wsgi_session())
    for step in range(3):
        run.log_checkpoint(spec_model(step), step=step, spec=SPEC)
    assert run.landscape(resolution=5, eval_size=50).kind == "landscape"
    monkeypatch.setattr(params, "MAX_TRAJECTORY_VALUES", 3 * 600)  # three states of 610 weights are over it
    with pytest.raises(terrain.ValidationError) as caught:
        run.landscape(resolution=5, eval_size=50)
    assert caught.value.fields == ["run"] and "too many to load" in str(caught.value)
    run.finish()
