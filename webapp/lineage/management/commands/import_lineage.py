"""Import lineage into the database from the command line.

    python manage.py import_lineage --hf-snapshot            # the shared snapshot, as the public demo graph
    python manage.py import_lineage --hf-snapshot DIR --experiment my-exp --name "HF copy"
    python manage.py import_lineage --edges a.csv b.json --experiment my-exp --name "My families"
"""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from analysis import lineage as lib
from webapp.catalog.models import Experiment
from webapp.lineage import imports, services
from webapp.lineage.models import GraphSource, LineageGraph


class Command(BaseCommand):
    help = "Import a lineage graph (the Hugging Face snapshot, or CSV/JSON edge lists) into the database."

    def add_arguments(self, parser):
        parser.add_argument("--hf-snapshot", nargs="?", const="", default=None, metavar="DIR",
                            help="the Model Atlas snapshot directory (default: TERRAIN_HF_LINEAGE_DIR or the repository's data/hf-lineage)")
        parser.add_argument("--edges", nargs="+", default=[], metavar="FILE", help="CSV or JSON edge lists")
        parser.add_argument("--experiment", default="", help="slug of the experiment that owns the graph "
                            "(default for --hf-snapshot: the public 'Hugging Face model families' experiment)")
        parser.add_argument("--name", default="", help="graph name")
        parser.add_argument("--replace", action="store_true", help="re-import the HF demo graph if it exists")

    def handle(self, *args, hf_snapshot=None, edges=(), experiment="", name="", replace=False, **options):
        if hf_snapshot is None and not edges:
            raise CommandError("give --hf-snapshot [DIR] and/or --edges FILE ...")
        target = None
        if experiment:
            target = Experiment.objects.filter(slug=experiment).first()
            if target is None:
                raise CommandError(f"no experiment {experiment!r}")
        started = time.monotonic()
        if hf_snapshot is not None:
            directory = Path(hf_snapshot) if hf_snapshot else services.hf_lineage_dir()
            if not (directory / lib.edge_lists.HF_SNAPSHOT_FILES[0]).exists():
                raise CommandError(f"no Hugging Face snapshot in {directory}")
            demo = target is None
            if demo:
                existing = LineageGraph.objects.filter(slug=services.HF_GRAPH_SLUG).first()
                if existing is not None and not replace:
                    self.stdout.write(f"already imported: {existing.get_absolute_url()} (use --replace to re-import)")
                    return
                if existing is not None:
                    services.lineage_graph_delete(graph=existing)
                target = services.hf_experiment_get_or_create(owner=None)
            graph = services.lineage_graph_import_hf_snapshot(
                directory=directory, experiment=target, name=name or "Hugging Face model families",
                slug=services.HF_GRAPH_SLUG if demo else None,
            )
        else:
            if target is None:
                raise CommandError("--edges needs --experiment <slug>")
            graph_, report = lib.LineageGraph(), lib.ImportReport()
            for path in edges:
                text = Path(path).read_bytes().decode("utf-8-sig", errors="replace")
                imports.import_edge_text(text, Path(path).name, graph_, report)
            report.refresh_missing_parents(graph_)
            try:
                graph = services.lineage_graph_store(experiment=target, name=name or Path(edges[0]).stem,
                                                     source=GraphSource.UPLOAD, result=lib.ImportResult(graph_, report))
            except services.LineageImportEmpty as exc:
                raise CommandError(f"nothing imported: {exc}") from None
        self.stdout.write(graph.report.get("summary", ""))
        self.stdout.write(self.style.SUCCESS(
            f"{graph.num_nodes} models, {graph.num_edges} edges, {graph.num_roots} roots, {graph.num_families} families "
            f"in {time.monotonic() - started:.1f}s: {graph.get_absolute_url()}"))
