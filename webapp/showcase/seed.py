"""Seeding the demo (``manage.py seed_demo``): every piece of demo content, then the showcase over it.

The showcase sits above the apps whose content it publishes (catalog, jobs, lineage, phases),
so the order of the whole demo is written here, once.
"""

from __future__ import annotations

from webapp.accounts.demo_account import demo_user
from webapp.catalog.models import Experiment
from webapp.lineage.catalog_sync import catalog_sync_all
from webapp.lineage.services import hf_demo_publish
from webapp.showcase import demo_minilm
from webapp.showcase.demo import demo_publish
from webapp.showcase.demo_family import family_publish
from webapp.showcase.services import demo_objects, showcase_publish


def seed_demo(*, dev_accounts: bool = False, log=print) -> list[Experiment]:
    """Idempotent: trained demo experiments, the real MiniLM, the Hugging Face lineage graph, the model
    family, then one finished result of every kind (precomputed sweeps load now, the rest is queued)."""
    experiments = demo_publish(dev_accounts=dev_accounts, log=log)
    owner = demo_user(dev_accounts=dev_accounts)
    # A real pretrained model brought in like a user's own (analysis.sources); the showcase queues its plane.
    minilm = demo_minilm.publish(owner=owner, log=log, run_plane=False)
    if minilm is not None:
        experiments.append(minilm)
    # Model-family trees: the real Hugging Face lineage snapshot (skipped, with a note, when absent).
    hf_graph = hf_demo_publish(owner=owner, log=log)
    if hf_graph is not None:
        experiments.append(hf_graph.experiment)
    objects = demo_objects(seeds_experiment="digits-mlp-seeds", hf_graph=hf_graph, family=family_publish(owner=owner),
                           minilm_experiment=demo_minilm.SLUG)
    showcase_publish(owner=owner, objects=objects, log=log)
    # Trees follow the catalog as it changes; a database from before that catches up here.
    catalog_sync_all(log=log)
    return experiments
