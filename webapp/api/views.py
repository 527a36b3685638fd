"""The JSON API: the same services and selectors as the pages, JSON in and out."""

from django.http import JsonResponse
from django.http.request import RawPostDataException
from django.views.decorators.http import require_GET, require_http_methods

from webapp.api.schema import openapi_schema
from webapp.bounded_json import JsonRejected, parse_json
from webapp.catalog.selectors import experiments_public
from webapp.jobs import kinds, limits, selectors, services

MAX_JSON_BODY = 256 * 1024
MAX_SEQ = 2**31 - 1  # JobEvent.seq is a PositiveIntegerField


def error_response(status: int, message: str, errors: dict | None = None) -> JsonResponse:
    body = {"error": message}
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=status)


def read_json(request) -> dict:
    """The body as a JSON object; JsonRejected names the field (a top-level key, or "body")."""
    try:
        raw = request.body
    except RawPostDataException:  # a form or multipart body, already parsed as such
        raise JsonRejected("body", "send a JSON object with Content-Type: application/json") from None
    return parse_json(raw or b"{}", field="body", max_bytes=MAX_JSON_BODY, keyed=True, expect=dict)


@require_http_methods(["GET", "POST"])
def jobs(request):
    if not request.user.is_authenticated:
        return error_response(401, "log in first")
    if request.method == "GET":
        return JsonResponse({"jobs": [selectors.job_state(job) for job in selectors.jobs_of_user(user=request.user)[:200]]})
    try:
        limits.check_job_submission(user=request.user)  # before the body is even parsed
        body = read_json(request)
        params = body.get("params", {})
        if not isinstance(params, dict):
            raise services.JobParamsInvalid({"params": ["must be a JSON object"]})
        data = {**params, **{key: body[key] for key in ("visibility", "experiment") if key in body}}
        validated = services.job_params_validate(kind=str(body.get("kind", "")), data=data, user=request.user)
        job = services.job_submit(validated=validated, owner=request.user)
    except JsonRejected as exc:
        return error_response(400, f"invalid request body: {exc.message}", exc.as_errors())
    except services.JobParamsInvalid as exc:
        return error_response(400, "invalid job parameters", exc.errors)
    except limits.LimitExceeded as limit:
        return limits.with_retry_after(error_response(429, "too many jobs", limit.as_errors()), limit)
    state = selectors.job_state(job)
    state["url"] = request.build_absolute_uri(job.get_absolute_url())
    return JsonResponse(state, status=201)


def _visible(request, slug):
    return selectors.job_get_visible(slug=slug, user=request.user)


@require_GET
def job_detail(request, slug):
    job = _visible(request, slug)
    if job is None:
        return error_response(404, "no such job")
    return JsonResponse({**selectors.job_state(job), "params": job.params, "url": request.build_absolute_uri(job.get_absolute_url())})


@require_GET
def job_events(request, slug):
    job = _visible(request, slug)
    if job is None:
        return error_response(404, "no such job")
    try:
        after = max(0, int(request.GET.get("after", "0")))
    except ValueError:
        after = None
    if after is None or after > MAX_SEQ:
        return error_response(400, "invalid query", {"after": [f"must be a whole number up to {MAX_SEQ}"]})
    return JsonResponse({"job": selectors.job_state(job), "events": selectors.job_events_after(job=job, after=after, limit=5000)})


@require_http_methods(["POST"])
def job_cancel(request, slug):
    job = _visible(request, slug)
    if job is None:
        return error_response(404, "no such job")
    try:
        job = services.job_cancel(job=job, user=request.user)
    except services.NotAllowed as exc:
        return error_response(403, str(exc))
    return JsonResponse(selectors.job_state(job))


@require_GET
def experiments(request):
    rows = experiments_public(query=request.GET.get("q", "")[:200], tag=request.GET.get("tag", "")[:64])[:500]
    return JsonResponse(
        {
            "experiments": [
                {
                    "slug": e.slug,
                    "title": e.title,
                    "description": e.description,
                    "tags": [t.name for t in e.tags.all()],
                    "featured": e.featured,
                    "url": request.build_absolute_uri(e.get_absolute_url()),
                }
                for e in rows
            ]
        }
    )


@require_GET
def job_kinds(request):
    def fields(kind):
        form = kind.form_class()
        return {
            name: {
                "type": type(field).__name__,
                "required": field.required,
                "initial": field.initial,
                "help": str(field.help_text),
                **({"choices": [c for c, _ in field.choices]} if hasattr(field, "choices") else {}),
            }
            for name, field in form.fields.items()
        }

    return JsonResponse({"kinds": [{"name": k.name, "label": k.label, "gpu_capable": k.gpu_capable, "params": fields(k)} for k in kinds.all_kinds()]})


@require_GET
def schema(request):
    return JsonResponse(openapi_schema())


@require_GET
def showcase(request):
    """The demo's finished result of every kind: what it is, whether it is finished, where it is."""
    from webapp.showcase.selectors import showcase_state

    return JsonResponse({"showcase": showcase_state()})
