"""The public front pages: the home page (showcase and catalog) and an experiment's page, which lists
what the apps below (catalog, jobs, runs) hold for it."""

from django.http import Http404
from django.shortcuts import render

from webapp.catalog import selectors as catalog
from webapp.jobs.selectors import jobs_of_experiment
from webapp.showcase.models import Family
from webapp.showcase.selectors import showcase_by_family

# What each family of analysis is, in a sentence, and where to click first.
FAMILY_INTRO = {
    Family.LANDSCAPES: ("Loss landscapes", "/jobs/new/landscape/",
                        "The loss around a trained model on lines and planes (random, Hessian or PCA axes), its "
                        "curvature spectrum, and whether two models are connected by a low-loss path."),
    Family.PHASES: ("Phase diagrams", "/phases/",
                    "Sweeps over two hyperparameters, many small models per cell, and the phase each cell falls in "
                    "(grokking, loss-landscape taxonomy), filled in live as the models train."),
    Family.LINEAGE: ("Model families", "/lineage/",
                     "Who was fine-tuned from whom: real Hugging Face lineage, your own checkpoints, or trees "
                     "recovered from the weights alone, with kinship and trait drift along the edges."),
}


def home(request):
    query = request.GET.get("q", "").strip()[:200]
    tag = request.GET.get("tag", "").strip()[:64]
    showcase = showcase_by_family()
    families = []
    for family, (title, start_url, text) in FAMILY_INTRO.items():
        entries = showcase.get(family, [])
        picture = next((e for e in entries if e["status"] == "succeeded" and e["embed_url"]), None)
        families.append({"key": family, "title": title, "text": text, "start_url": start_url, "entries": entries,
                         "picture": picture})
    return render(request, "catalog/home.html", {
        "families": families,
        "experiments": catalog.experiments_public(query=query, tag=tag)[:200],
        "tags": catalog.tags_in_public_catalog(),
        "query": query,
        "active_tag": tag,
    })


def experiment_detail(request, slug):
    experiment = catalog.experiment_get_visible(slug=slug, user=request.user)
    if experiment is None:
        raise Http404("No such experiment")
    return render(
        request,
        "catalog/experiment_detail.html",
        {
            "experiment": experiment,
            "checkpoints": catalog.checkpoints_of_experiment(experiment=experiment, user=request.user).select_related("parent"),
            "jobs": jobs_of_experiment(experiment=experiment, user=request.user)[:100],
            "logged_runs": experiment.runs.all()[:100],
        },
    )
