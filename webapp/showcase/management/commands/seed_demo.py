import time

from django.core.management.base import BaseCommand

from webapp.showcase.seed import seed_demo


class Command(BaseCommand):
    help = "Train the demo models and publish the demo experiments and the showcase (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--dev-accounts", action="store_true", help="make the demo user staff (local use only)")

    def handle(self, *args, dev_accounts=False, **options):
        import torch

        # The demo models are tiny: one thread each beats contended multi-threading.
        torch.set_num_threads(1)
        started = time.monotonic()
        experiments = seed_demo(dev_accounts=dev_accounts, log=lambda line: self.stdout.write(f"  {line}"))
        self.stdout.write(self.style.SUCCESS(f"demo content ready: {len(experiments)} experiments in {time.monotonic() - started:.1f}s"))
