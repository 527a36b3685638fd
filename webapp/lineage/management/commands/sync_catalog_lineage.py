"""Bring every experiment's checkpoint family tree in step with the catalog.

The trees follow the catalog as it changes (webapp.lineage.catalog_sync); this is for a
database from before that, and what seed_demo runs last (a no-op when all are in step).
"""

from django.core.management.base import BaseCommand

from webapp.lineage.catalog_sync import catalog_sync_all


class Command(BaseCommand):
    help = "Rebuild the catalog family trees whose checkpoints or links changed (idempotent)."

    def handle(self, *args, **options):
        catalog_sync_all(log=lambda line: self.stdout.write(line))
