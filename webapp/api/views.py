"""The JSON API: the same services and selectors as the pages, JSON in and out."""

import json

from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_http_methods

from webapp.api.schema import openapi_schema
from webapp.catalog.selectors import experiments_public
from webapp.jobs import kinds, selectors, services
from webapp.jobs.limits import LimitExceeded

MAX_JSON_BODY = 256 * 1024


def error_response(status: int, message: str, errors: dict | None = None) -> JsonResponse:
    body = {"error": message}
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=status)


def read_json(request) -> dict:
    if len(request.body) > MAX_JSON_BODY:
        raise ValueError(f"request body over {MAX_JSON_BODY} bytes")
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


@require_http_methods(["GET", "POST"])
def jobs(request):
    if not request.user.is_authenticated:
        return error_response(401, "log in first")
    if request.method == "GET":
        return JsonResponse({"jobs": [selectors.job_state(job) for job in selectors.jobs_of_user(user=request.user)[:200]]})
    try:
        body = read_json(request)
    except ValueError as exc:
        return error_response(400, str(exc))
    params = body.get("params", {})
    if not isinstance(params, dict):
        return error_response(400, "invalid job parameters", {"params": ["must be a JSON object"]})
    data = {**params, **{key: body[key] for key in ("visibility", "experiment") if key in body}}
    try:
        validated = services.job_params_validate(kind=str(body.get("kind", "")), data=data, user=request.user)
    except services.JobParamsInvalid as exc:
        return error_response(400, "invalid job parameters", exc.errors)
    try:
        job = services.job_submit(validated=validated, owner=request.user)
    except LimitExceeded as exc:
        response = error_response(429, exc.message, {exc.field: [exc.message]})
        response["Retry-After"] = str(exc.retry_after)
        return response
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
        return error_response(400, "invalid query", {"after": ["must be a whole number"]})
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
