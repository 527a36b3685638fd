from django.http import FileResponse, Http404
from django.shortcuts import redirect, render

from webapp.catalog import selectors
from webapp.files import download_url


def checkpoint_detail(request, slug):
    checkpoint = selectors.checkpoint_get_visible(slug=slug, user=request.user)
    if checkpoint is None:
        raise Http404("No such checkpoint")
    siblings = selectors.checkpoints_of_experiment(experiment=checkpoint.experiment, user=request.user)
    siblings = siblings.exclude(pk=checkpoint.pk).filter(spec=checkpoint.spec)[:6]
    return render(request, "catalog/checkpoint_detail.html", {"checkpoint": checkpoint, "siblings": siblings})


def checkpoint_download(request, slug):
    checkpoint = selectors.checkpoint_get_visible(slug=slug, user=request.user)
    if checkpoint is None or not checkpoint.file:
        raise Http404("No such checkpoint")
    which = checkpoint.trajectory_file if request.GET.get("file") == "trajectory" else checkpoint.file
    if not which:
        raise Http404("This checkpoint has no trajectory")
    filename = which.name.rsplit("/", 1)[-1]
    signed = download_url(which, filename=filename)
    if signed is not None:  # object storage: a short-lived signed URL, issued only after the visibility check
        return redirect(signed)
    return FileResponse(which.open("rb"), as_attachment=True, filename=filename)
