from django.http import Http404
from django.shortcuts import render

from webapp.runs import selectors


def run_detail(request, slug):
    run = selectors.run_get_visible(slug=slug, user=request.user)
    if run is None:
        raise Http404("No such run")
    context = {"run": run, "entries": selectors.run_checkpoints(run=run), "metrics": selectors.run_metrics(run=run)}
    return render(request, "runs/detail.html", context)
