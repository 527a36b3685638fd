import time

from django.core.management.base import BaseCommand

from webapp.phases.presets import presets_publish


class Command(BaseCommand):
    help = "Run the preset phase diagrams in this process and publish them in the catalog (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", default=["grokking", "load-temperature"])

    def handle(self, *args, names, **options):
        import torch

        torch.set_num_threads(1)
        started = time.monotonic()
        jobs = presets_publish(names=names, log=lambda line: self.stdout.write(line))
        for job in jobs:
            self.stdout.write(f"{job.title}: {job.status}  /r/{job.slug}/")
        self.stdout.write(self.style.SUCCESS(f"done in {time.monotonic() - started:.0f}s"))
