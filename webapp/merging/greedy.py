"""Kinship-guided greedy merging of a family, against random partner choice (the ``merge_greedy`` job kind)."""

from __future__ import annotations

from webapp.jobs.context import JobContext
from webapp.landscapes import evaluation_sets


def greedy_run(ctx: JobContext) -> dict:
    from analysis import merging
    from analysis.merging.evaluation import score

    from webapp.merging.services import catalog_checkpoints_load

    p = ctx.params
    models, loaded = catalog_checkpoints_load(p["models"])
    (base,), (base_loaded,) = catalog_checkpoints_load([p["base"]])
    spec = base_loaded.spec
    tasks = evaluation_sets.tasks_for(class_lists=evaluation_sets.parse_class_lists(p.get("tasks", "")),
                                      datasets=evaluation_sets.own_datasets(models), split=p["split"],
                                      size=p["eval_size"], owner_id=ctx.job.owner_id)
    template = merging.evaluation.model_with_state(base_loaded.state, spec=spec)
    names = [m.name for m in models]
    # Checkpoint names need not be unique; the pool's keys must be.
    pool = {(m.name if names.count(m.name) == 1 else f"{m.name} ({m.slug})"): c.state for m, c in zip(models, loaded)}
    runs = [("kinship", 0)] + [("random", seed) for seed in range(p["random_runs"])]
    ctx.emit("start", {"pool": list(pool), "base": base.name, "tasks": [t.name for t in tasks], "lam": p["lam"],
                       "runs": [f"{s}" if s == "kinship" else f"random (seed {seed})" for s, seed in runs]}, progress=0.01)
    results = []
    for k, (strategy, seed) in enumerate(runs):
        label = "kinship" if strategy == "kinship" else f"random (seed {seed})"
        greedy = merging.kinship_greedy_merge(
            base_loaded.state, pool, lambda state: score(merging.evaluate_state(state, tasks, template=template)),
            strategy=strategy, seed=seed, lam=p["lam"])
        outcome = {"run": label, **greedy.to_dict()}
        results.append(outcome)
        ctx.emit("run", outcome, progress=0.05 + 0.95 * (k + 1) / len(runs))
    randoms = [r["final_score"] for r in results[1:]]
    return {"runs": results, "kinship_final": results[0]["final_score"],
            "random_final_mean": sum(randoms) / len(randoms), "tasks": [t.name for t in tasks]}
