"""The jobs API: the same services and selectors as the pages, JSON in and out (routes of webapp.api.app)."""

from django.http import JsonResponse
from ninja import Query, Router

from webapp.api.responses import csrf_refused, error_response, json_body, login_required, read_json
from webapp.api.schemas import Error, Experiments, JobCreated, JobDetail, JobEvents, JobList, JobState, Kinds, Showcase
from webapp.bounded_json import JsonRejected
from webapp.catalog.selectors import experiments_public
from webapp.jobs import kinds, limits, selectors, services

MAX_SEQ = 2**31 - 1  # JobEvent.seq is a PositiveIntegerField
BODIES = []  # the job submission's schema is built from the registry (schemas.submission_schemas)

router = Router(tags=["jobs"])


@router.get("/jobs/", response={200: JobList, 401: Error, 403: Error}, url_name="api_jobs", summary="Your jobs (the latest 200)")
def jobs(request):
    refused = login_required(request, "log in first")
    if refused:
        return refused
    return JsonResponse({"jobs": [selectors.job_state(job) for job in selectors.jobs_of_user(user=request.user)[:200]]})


@router.post("/jobs/", response={201: JobCreated, 400: Error, 401: Error, 403: Error, 429: Error}, url_name="api_jobs",
             summary="Start a job",
             openapi_extra={**json_body("JobSubmission", "a kind and its parameters (GET /api/kinds/ lists them)"),
                            "responses": {"429": {"description": "over a per-user limit; see Retry-After", "headers": {
                                "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}}}})
def job_submit(request):
    refused = login_required(request, "log in first") or csrf_refused(request)
    if refused:
        return refused
    try:
        limits.check_job_submission(user=request.user)  # before the body is even parsed
        body = read_json(request)
        params = body.get("params", {})
        if not isinstance(params, dict):
            raise services.JobParamsInvalid({"params": ["must be a JSON object"]})
        unknown = sorted(set(body) - {"kind", "params", "visibility", "experiment"})
        if unknown:
            raise services.JobParamsInvalid({key: ["not a field of a job submission (parameters go in params)"] for key in unknown})
        data = {**params, **{key: body[key] for key in ("visibility", "experiment") if body.get(key) is not None}}
        kind = body.get("kind", "")
        if not isinstance(kind, str):
            raise services.JobParamsInvalid({"kind": ["must be the name of a job kind (GET /api/kinds/)"]})
        validated = services.job_params_validate(kind=kind, data=data, user=request.user)
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


@router.get("/jobs/{slug}/", response={200: JobDetail, 401: Error, 404: Error}, url_name="api_job_detail", summary="A job you can see")
def job_detail(request, slug: str):
    job = _visible(request, slug)
    if job is None:
        return error_response(404, "no such job")
    return JsonResponse({**selectors.job_state(job), "params": job.params, "url": request.build_absolute_uri(job.get_absolute_url())})


@router.get("/jobs/{slug}/events/", response={200: JobEvents, 400: Error, 401: Error, 404: Error}, url_name="api_job_events",
            summary="The job and its events after a sequence number")
def job_events(request, slug: str, after: Query[int] = 0):
    if after > MAX_SEQ:
        return error_response(400, "invalid query", {"after": [f"must be a whole number up to {MAX_SEQ}"]})
    job = _visible(request, slug)
    if job is None:
        return error_response(404, "no such job")
    events = selectors.job_events_after(job=job, after=max(0, after), limit=5000)
    return JsonResponse({"job": selectors.job_state(job), "events": events})


@router.post("/jobs/{slug}/cancel/", response={200: JobState, 401: Error, 403: Error, 404: Error}, url_name="api_job_cancel",
             summary="Cancel a job (its owner)")
def job_cancel(request, slug: str):
    refused = csrf_refused(request)
    if refused:
        return refused
    job = _visible(request, slug)
    if job is None:
        return error_response(404, "no such job")
    try:
        job = services.job_cancel(job=job, user=request.user)
    except services.NotAllowed as exc:
        return error_response(403, str(exc))
    return JsonResponse(selectors.job_state(job))


@router.get("/experiments/", response={200: Experiments, 401: Error}, url_name="api_experiments", summary="The public catalog")
def experiments(request, q: Query[str] = "", tag: Query[str] = ""):
    rows = experiments_public(query=q[:200], tag=tag[:64])[:500]
    return JsonResponse({"experiments": [
        {"slug": e.slug, "title": e.title, "description": e.description, "tags": [t.name for t in e.tags.all()],
         "featured": e.featured, "url": request.build_absolute_uri(e.get_absolute_url())}
        for e in rows
    ]})


@router.get("/kinds/", response={200: Kinds, 401: Error}, url_name="api_kinds", summary="Job kinds and their parameters",
            by_alias=True)
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

    return JsonResponse({"kinds": [{"name": k.name, "label": k.label, "gpu_capable": k.gpu_capable, "params": fields(k),
                                    "schema": k.params.model_json_schema() if k.params is not None else None}
                                   for k in kinds.all_kinds()]})


@router.get("/showcase/", response={200: Showcase, 401: Error}, url_name="api_showcase",
            summary="The demo's finished result of every kind: what it is, whether it is finished, where it is")
def showcase(request):
    from webapp.showcase.selectors import showcase_state

    return JsonResponse({"showcase": showcase_state()})
