"""The runs API: what `terrain.Run` in a training script talks to (routes of webapp.api.app)."""

from django.http import JsonResponse
from ninja import Router

from webapp.api.responses import REFUSED, csrf_refused, error_response, json_body, login_required, read_json
from webapp.api.schemas import CheckpointStored, CheckpointUpload, Error, MetricRows, RunStart, RunState, Stored
from webapp.bounded_json import JsonRejected
from webapp.runs import selectors, services

BODIES = [RunStart, MetricRows, CheckpointUpload]  # request bodies, read by the views themselves (bounded JSON)

router = Router(tags=["runs"])


def _state(request, run) -> dict:
    return selectors.run_state(run, build_url=request.build_absolute_uri)


def _invalid(exc: services.RunInvalid) -> JsonResponse:
    return error_response(exc.status, str(exc), exc.errors)


def _body_invalid(exc: JsonRejected) -> JsonResponse:
    return error_response(400, f"invalid request body: {exc.message}", exc.as_errors())


def _writable_run(request, slug):
    """(run, None) for the run's owner; (None, error response) otherwise: 404 when it is hidden, 403 when only visible."""
    refused = login_required(request) or csrf_refused(request)
    if refused:
        return None, refused
    run = selectors.run_get_visible(slug=slug, user=request.user)
    if run is None:
        return None, error_response(404, "no such run")
    if not selectors.run_can_write(run=run, user=request.user):
        return None, error_response(403, "only the run's owner can log to it")
    return run, None


@router.post("/runs/", response={201: RunState, 400: Error, **REFUSED}, url_name="api_runs",
             summary="Start a run in one of your experiments (found by title or slug, created if new)",
             openapi_extra=json_body("RunStart"))
def runs(request):
    refused = login_required(request) or csrf_refused(request)
    if refused:
        return refused
    try:
        body = read_json(request)
        run = services.run_create(owner=request.user, experiment=str(body.get("experiment", "")), name=str(body.get("name", "")),
                                  config=body.get("config"))
    except JsonRejected as exc:
        return _body_invalid(exc)
    except services.RunInvalid as exc:
        return _invalid(exc)
    except ValueError as exc:
        return error_response(400, str(exc))
    return JsonResponse(_state(request, run), status=201)


@router.get("/runs/{slug}/", response={200: RunState, **REFUSED}, url_name="api_run_detail", summary="A run you can see")
def run_detail(request, slug: str):
    run = selectors.run_get_visible(slug=slug, user=request.user)
    if run is None:
        return error_response(404, "no such run")
    return JsonResponse(_state(request, run))


@router.get("/runs/{slug}/metrics/", response={200: MetricRows, **REFUSED}, url_name="api_run_metrics",
            summary="Metric rows in step order")
def run_metrics(request, slug: str):
    run = selectors.run_get_visible(slug=slug, user=request.user)
    if run is None:
        return error_response(404, "no such run")
    return JsonResponse({"rows": selectors.run_metrics(run=run)})


@router.post("/runs/{slug}/metrics/", response={200: Stored, 400: Error, **REFUSED}, url_name="api_run_metrics",
             summary="Log metric rows (a step logged again merges its values, so retries are harmless)",
             openapi_extra=json_body("MetricRows"))
def run_metrics_log(request, slug: str):
    run, refused = _writable_run(request, slug)
    if refused:
        return refused
    try:
        stored = services.run_log_metrics(run=run, rows=read_json(request).get("rows"))
    except JsonRejected as exc:
        return _body_invalid(exc)
    except services.RunInvalid as exc:
        return _invalid(exc)
    except ValueError as exc:
        return error_response(400, str(exc))
    return JsonResponse({"stored": stored})


@router.post("/runs/{slug}/checkpoints/", response={200: CheckpointStored, 201: CheckpointStored, 400: Error, 409: Error, **REFUSED},
             url_name="api_run_checkpoints",
             summary="Upload the checkpoint of a step: safetensors with terrain.format terrain.checkpoint.v1, terrain.hf.v1 or "
                     "terrain.lora.v1 (200: the same file was already stored for this step; 409: the step has a different one)",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
                 "schema": {"$ref": "#/components/schemas/CheckpointUpload"}}}}})
def run_checkpoints(request, slug: str):
    run, refused = _writable_run(request, slug)
    if refused:
        return refused
    try:
        step = int(request.POST.get("step", ""))
    except ValueError:
        return error_response(400, "invalid checkpoint", {"step": ["must be a whole number"]})
    try:
        entry, created = services.run_checkpoint_add(run=run, step=step, uploaded=request.FILES.get("file"))
    except services.RunInvalid as exc:
        return _invalid(exc)
    body = {"step": entry.step, "source": entry.source, "sha256": entry.sha256,
            "checkpoint": entry.checkpoint.slug if entry.checkpoint else None, "created": created}
    return JsonResponse(body, status=201 if created else 200)


@router.post("/runs/{slug}/finish/", response={200: RunState, **REFUSED}, url_name="api_run_finish", summary="Mark a run finished")
def run_finish(request, slug: str):
    run, refused = _writable_run(request, slug)
    if refused:
        return refused
    return JsonResponse(_state(request, services.run_finish(run=run)))
