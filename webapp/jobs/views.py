import json

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from webapp.jobs import kinds, limits, selectors, services


def _kind_or_404(name: str) -> kinds.JobKind:
    try:
        return kinds.get(name)
    except kinds.UnknownJobKind:
        raise Http404(f"No job kind {name!r}") from None


@login_required
def job_new(request, kind):
    job_kind = _kind_or_404(kind)
    if request.method == "POST":
        try:
            limits.check_job_submission(user=request.user)  # before any upload is read
            validated = services.job_params_validate(kind=kind, data=request.POST, files=request.FILES, user=request.user)
            job = services.job_submit(validated=validated, owner=request.user)
        except services.JobParamsInvalid as invalid:
            return render(request, "jobs/new.html", {"kind": job_kind, "form": invalid.form}, status=400)
        except limits.LimitExceeded as limit:
            form = job_kind.form_class(initial=request.POST.dict(), user=request.user)
            response = render(request, "jobs/new.html", {"kind": job_kind, "form": form, "limit": limit}, status=429)
            return limits.with_retry_after(response, limit)
        return redirect(job)
    initial = {key: value for key, value in request.GET.items()}
    form = job_kind.form_class(initial=initial or None, user=request.user)
    return render(request, "jobs/new.html", {"kind": job_kind, "form": form})


def _visible_job(request, slug):
    job = selectors.job_get_visible(slug=slug, user=request.user)
    if job is None:
        raise Http404("No such result")
    return job


def result_detail(request, slug):
    job = _visible_job(request, slug)
    job_kind = kinds.get(job.kind)
    return render(
        request,
        "jobs/result.html",
        {
            "job": job,
            "kind": job_kind,
            "kind_template": job_kind.template,
            "page_scripts": job_kind.page_scripts(),
            "can_manage": services.job_can_manage(job=job, user=request.user),
            "has_csv": job_kind.to_csv is not None,
            "params_json": json.dumps(job.params, indent=2),
            "snapshot": {"job": selectors.job_state(job), "events": selectors.job_events_after(job=job)},
        },
    )


@require_POST
def result_cancel(request, slug):
    job = _visible_job(request, slug)
    try:
        services.job_cancel(job=job, user=request.user)
    except services.NotAllowed as exc:
        return HttpResponse(str(exc), status=403)
    messages.info(request, "Cancellation requested.")
    return redirect(job)


@require_POST
def result_visibility(request, slug):
    job = _visible_job(request, slug)
    try:
        services.job_set_visibility(job=job, user=request.user, visibility=request.POST.get("visibility", ""))
    except services.NotAllowed as exc:
        return HttpResponse(str(exc), status=403)
    except services.JobParamsInvalid as exc:
        return HttpResponse(json.dumps(exc.errors), status=400, content_type="application/json")
    return redirect(job)


def result_export_json(request, slug):
    job = _visible_job(request, slug)
    body = {"job": selectors.job_state(job), "params": job.params, "events": selectors.job_events_after(job=job)}
    response = HttpResponse(json.dumps(body, indent=1), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="terrain-{job.slug}.json"'
    return response


@login_required
def dashboard(request):
    return render(
        request,
        "jobs/dashboard.html",
        {"jobs": selectors.jobs_of_user(user=request.user)[:200], "kinds": kinds.all_kinds()},
    )


@staff_member_required
def worker_status(request):
    """Staff only: live workers, what each runs, and the queues' backlog."""
    from webapp.jobs import workers

    return render(request, "jobs/status.html", {
        "workers": workers.workers_alive(),
        "queues": workers.queue_lengths(["cpu", "gpu"]),
        "running": selectors.jobs_running()[:100],
    })
