from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from webapp.jobs.models import Job
from webapp.showcase.precomputed import sweep_write


class Command(BaseCommand):
    help = "Write a finished sweep (job, events, runs, cells) to a file the demo loads (data/showcase/)."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the sweep job's slug (its permalink is /r/<slug>/)")
        parser.add_argument("path", type=Path, help="where to write it (.json, or .json.gz to compress)")

    def handle(self, *args, slug, path, **options):
        job = Job.objects.filter(slug=slug).first()
        if job is None:
            raise CommandError(f"no job {slug!r}")
        try:
            sweep_write(job=job, path=path)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"wrote {path} ({path.stat().st_size:,} bytes)"))
