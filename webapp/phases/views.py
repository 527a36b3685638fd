from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from webapp.jobs.selectors import job_get_visible, jobs_public
from webapp.jobs.services import job_can_manage
from webapp.phases import selectors, services
from webapp.phases.models import RunStatus, SweepRun


def _sweep(request, slug):
    job = job_get_visible(slug=slug, user=request.user)
    if job is None or job.kind != "sweep":
        raise Http404("No such sweep")
    return job


def index(request):
    from analysis.phases import PRESETS

    presets = [{"name": name, "title": spec.get("name", name)} for name, spec in PRESETS.items()]
    sweeps = jobs_public(kind="sweep").order_by("-created_at")[:50]
    return render(request, "phases/index.html", {"presets": presets, "sweeps": sweeps})


def cell_detail(request, slug, i, j):
    job = _sweep(request, slug)
    detail = selectors.sweep_cell_detail(job=job, i=i, j=j)
    if detail is None:
        return JsonResponse({"error": f"no cell ({i}, {j}): the sweep's grid has no such column or row"}, status=404)
    return JsonResponse(detail)


@require_POST
@login_required
def run_landscape(request, slug, run_id):
    """Make the run's model a catalog checkpoint (once) and open the landscape form on it (a POST: it writes)."""
    job = _sweep(request, slug)
    run = SweepRun.objects.filter(job=job, pk=run_id, status=RunStatus.SUCCEEDED).first()
    if run is None or not run.state_file:
        raise Http404("No such model")
    checkpoint = services.sweep_run_checkpoint(run=run, user=request.user)
    return redirect(f"{reverse('job_new', args=['landscape'])}?checkpoint={checkpoint.slug}&dataset=checkpoint")


@require_POST
def resume(request, slug):
    job = _sweep(request, slug)
    if not job_can_manage(job=job, user=request.user):
        raise Http404("No such sweep")
    services.sweep_resume(job=job)
    return redirect(job)
