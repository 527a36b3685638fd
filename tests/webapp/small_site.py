"""A small site with one of everything a page can show, for the tests that walk every route."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from tests.webapp.test_lineage_support import experiment, graph_from_csv, saved_checkpoint, tiny_state
from webapp.catalog.visibility import Visibility

EDGES = "id,base_model,base_model_relation,license\norg/a,,source,mit\norg/b,org/a,finetune,mit\norg/c,org/b,adapter,apache-2.0\n"


def small_site(*, owner, tmp_path: Path) -> dict:
    """Checkpoints with parent links (and their catalog tree), an imported graph, a finished job of a
    real kind, a precomputed sweep and a logged run, all public and owned by ``owner``."""
    from webapp.jobs.runner import run_job
    from webapp.jobs.services import job_params_validate, job_submit
    from webapp.lineage.catalog_sync import catalog_sync_all
    from webapp.runs.services import run_create, run_log_metrics
    from webapp.showcase.precomputed import sweep_import

    exp = experiment(owner, Visibility.PUBLIC, title="small site")
    state = tiny_state(seed=0)
    base = saved_checkpoint(exp, "base", state, tmp_path)
    plus = {k: v + 0.01 * tiny_state(seed=1)[k] for k, v in state.items()}
    minus = {k: v - 0.01 * tiny_state(seed=2)[k] for k, v in state.items()}
    a = saved_checkpoint(exp, "tuned-a", plus, tmp_path, parent=base, relation="finetune")
    b = saved_checkpoint(exp, "tuned-b", minus, tmp_path, parent=base, relation="finetune")
    catalog_sync_all(log=lambda line: None)  # the tests' transactions never commit: no on_commit sync
    graph = graph_from_csv(EDGES, owner=owner)
    validated = job_params_validate(kind="kinship", data={"a": a.slug, "b": b.slug, "visibility": "public"}, user=owner)
    job = job_submit(validated=validated, owner=owner)
    run_job(job.pk)
    sweep = sweep_import(path=Path(settings.BASE_DIR) / "data" / "showcase" / "load-temperature.json.gz", owner=owner,
                         experiment=exp)
    run = run_create(owner=owner, experiment=exp.slug, name="logged", config={"lr": 0.1})
    run_log_metrics(run=run, rows=[{"step": 1, "metrics": {"loss": 1.0}}, {"step": 2, "metrics": {"loss": 0.5}}])
    return {"experiment": exp, "checkpoints": [base, a, b], "graph": graph, "job": job, "sweep": sweep, "run": run}
