import time

from django.core.management.base import BaseCommand

from webapp.catalog.demo import demo_publish


class Command(BaseCommand):
    help = "Train the demo models and publish the demo experiments (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--dev-accounts", action="store_true", help="make the demo user staff (local use only)")

    def handle(self, *args, dev_accounts=False, **options):
        import torch

        # The demo models are tiny: one thread each beats contended multi-threading.
        torch.set_num_threads(1)
        started = time.monotonic()
        log = lambda line: self.stdout.write(f"  {line}")  # noqa: E731
        experiments = demo_publish(dev_accounts=dev_accounts, log=log)
        # One finished result of every kind: precomputed sweeps load now, the rest is queued for the worker.
        from webapp.catalog.demo import demo_user
        from webapp.lineage.models import LineageGraph
        from webapp.lineage.services import HF_GRAPH_SLUG
        from webapp.showcase.services import demo_objects, showcase_publish

        from webapp.catalog import demo_minilm
        from webapp.showcase.demo_family import family_publish

        owner = demo_user(dev_accounts=dev_accounts)
        objects = demo_objects(seeds_experiment="digits-mlp-seeds", hf_graph=LineageGraph.objects.filter(slug=HF_GRAPH_SLUG).first(),
                               family=family_publish(owner=owner), minilm_experiment=demo_minilm.SLUG)
        showcase_publish(owner=owner, objects=objects, log=log)
        self.stdout.write(self.style.SUCCESS(f"demo content ready: {len(experiments)} experiments in {time.monotonic() - started:.1f}s"))
