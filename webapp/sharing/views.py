from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt

from webapp.jobs import kinds
from webapp.jobs.selectors import job_get_visible
from webapp.sharing import selectors


def _visible(request, slug):
    job = job_get_visible(slug=slug, user=request.user)
    if job is None:
        raise Http404("No such result")
    return job


def _figure_context(request, job, standalone=False):
    context = {
        "job": job,
        "kind_template": kinds.get(job.kind).template,
        "page_scripts": kinds.get(job.kind).page_scripts(),
        "snapshot": selectors.result_snapshot(job),
        "permalink": request.build_absolute_uri(job.get_absolute_url()),
        "standalone": standalone,
    }
    if standalone:
        context.update(selectors.standalone_assets(kinds.get(job.kind)))
    return context


@xframe_options_exempt  # embedding in other sites' iframes is the point of this view
def result_embed(request, slug):
    job = _visible(request, slug)
    return render(request, "sharing/figure_only.html", _figure_context(request, job))


def result_export_html(request, slug):
    job = _visible(request, slug)
    if job.status != "succeeded":
        raise Http404("The result is not ready yet")
    response = render(request, "sharing/figure_only.html", _figure_context(request, job, standalone=True))
    response["Content-Disposition"] = f'attachment; filename="terrain-{job.slug}.html"'
    return response


def result_export_csv(request, slug):
    job = _visible(request, slug)
    to_csv = kinds.get(job.kind).to_csv
    if to_csv is None or not job.result:
        raise Http404("No CSV for this result")
    response = HttpResponse(to_csv(job.result), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="terrain-{job.slug}.csv"'
    return response


def compare(request):
    slugs = [slug for slug in (request.GET.get("a", ""), request.GET.get("b", "")) if slug]
    jobs = [_visible(request, slug) for slug in slugs]
    if len(jobs) == 2 and jobs[0].kind != jobs[1].kind:
        return HttpResponse("Only results of the same kind can be compared side by side.", status=400)
    items = [
        {"job": job, "template": kinds.get(job.kind).template, "snapshot": selectors.result_snapshot(job), "script_id": f"snapshot-{k}"}
        for k, job in enumerate(jobs)
    ]
    candidates = []
    if len(jobs) == 1 and request.user.is_authenticated:
        from webapp.jobs.selectors import jobs_of_user

        candidates = jobs_of_user(user=request.user).filter(kind=jobs[0].kind, status="succeeded").exclude(pk=jobs[0].pk)[:50]
    return render(
        request,
        "sharing/compare.html",
        {"items": items, "zrange": selectors.zrange_of([job.result for job in jobs]), "candidates": candidates, "first": jobs[0] if jobs else None,
         "renderers": kinds.get(jobs[0].kind).renderers if jobs else ()},
    )
