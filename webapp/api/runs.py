"""The runs API: what `terrain.Run` in a training script talks to."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.api.views import error_response, read_json
from webapp.runs import selectors, services


def _login_required(request):
    return None if request.user.is_authenticated else error_response(401, "log in first, or send Authorization: Bearer <token>")


def _state(request, run) -> dict:
    return selectors.run_state(run, build_url=request.build_absolute_uri)


def _invalid(exc: services.RunInvalid) -> JsonResponse:
    return error_response(exc.status, str(exc), exc.errors)


def _writable_run(request, slug):
    """(run, None) for the run's owner; (None, error response) otherwise: 404 when it is hidden, 403 when only visible."""
    refused = _login_required(request)
    if refused:
        return None, refused
    run = selectors.run_get_visible(slug=slug, user=request.user)
    if run is None:
        return None, error_response(404, "no such run")
    if not selectors.run_can_write(run=run, user=request.user):
        return None, error_response(403, "only the run's owner can log to it")
    return run, None


@require_POST
def runs(request):
    refused = _login_required(request)
    if refused:
        return refused
    try:
        body = read_json(request)
        run = services.run_create(owner=request.user, experiment=str(body.get("experiment", "")), name=str(body.get("name", "")),
                                  config=body.get("config"))
    except services.RunInvalid as exc:
        return _invalid(exc)
    except ValueError as exc:
        return error_response(400, str(exc))
    return JsonResponse(_state(request, run), status=201)


@require_GET
def run_detail(request, slug):
    run = selectors.run_get_visible(slug=slug, user=request.user)
    if run is None:
        return error_response(404, "no such run")
    return JsonResponse(_state(request, run))


@require_http_methods(["GET", "POST"])
def run_metrics(request, slug):
    if request.method == "GET":
        run = selectors.run_get_visible(slug=slug, user=request.user)
        if run is None:
            return error_response(404, "no such run")
        return JsonResponse({"rows": selectors.run_metrics(run=run)})
    run, refused = _writable_run(request, slug)
    if refused:
        return refused
    try:
        stored = services.run_log_metrics(run=run, rows=read_json(request).get("rows"))
    except services.RunInvalid as exc:
        return _invalid(exc)
    except ValueError as exc:
        return error_response(400, str(exc))
    return JsonResponse({"stored": stored})


@require_POST
def run_checkpoints(request, slug):
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


@require_POST
def run_finish(request, slug):
    run, refused = _writable_run(request, slug)
    if refused:
        return refused
    return JsonResponse(_state(request, services.run_finish(run=run)))
