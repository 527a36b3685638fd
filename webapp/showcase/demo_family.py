"""A small model family for the merging showcase: a digits MLP base, two fine-tunes on
complementary digit subsets, and their task-arithmetic merge stored as a merge child of
all three (computed at once with analysis.merging: it is arithmetic on the weights)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.db import transaction

from webapp.catalog.models import Checkpoint, Experiment, Relation
from webapp.catalog.services import checkpoint_create_from_file, experiment_create
from webapp.catalog.visibility import Visibility

SLUG = "digits-family-merge"
SPEC = {"kind": "mlp", "in": 64, "hidden": [32, 32], "out": 10}
SUBSETS = [(0, 1, 2, 3, 4), (5, 6, 7, 8, 9)]
TASKS = "0,1,2,3,4; 5,6,7,8,9"
LAMBDA = 0.6  # the task-arithmetic scale that scored best on both tasks (README, "Merging lab")


def family_publish(*, owner) -> dict[str, Checkpoint]:
    """Idempotent: {"base", "a", "b", "merge"} checkpoints of the public family experiment."""
    existing = Experiment.objects.filter(slug=SLUG).first()
    if existing is not None and existing.checkpoints.count() >= 4:
        by_name = {c.name: c for c in existing.checkpoints.all()}
        return {"base": by_name["base"], "a": by_name["digits 01234"], "b": by_name["digits 56789"], "merge": by_name["task arithmetic"]}
    import torch

    from analysis import checkpoints, data, merging, train, zoo

    X, y = data.load("digits", "train")
    n = zoo.count_parameters(SPEC)
    with transaction.atomic(), tempfile.TemporaryDirectory() as tmp:
        experiment = existing or experiment_create(
            title="Digits family: a base, two fine-tunes and their merge", slug=SLUG, owner=owner,
            visibility=Visibility.PUBLIC, tags=["merging", "lineage", "demo"],
            description="A digits MLP trained briefly, fine-tuned on digits 0-4 and on 5-9, and the two fine-tunes merged "
                        f"by task arithmetic (lambda {LAMBDA}): the raw material of the merging lab and the three-model plane.",
        )

        def store(name, state, *, parent=None, relation="", merge_parents=()):
            model = zoo.build(SPEC)
            model.load_state_dict(state)
            path = Path(tmp) / f"{name}.safetensors"
            checkpoints.save(path, model, SPEC, meta={"dataset": "digits"})
            return checkpoint_create_from_file(experiment=experiment, name=name, path=path, spec=SPEC, dataset="digits",
                                               num_parameters=n, parent=parent, relation=relation, merge_parents=list(merge_parents))

        base_state = train.train(SPEC, (X, y), epochs=1, lr=0.02, seed=0).model.state_dict()
        base = store("base", base_state)
        tuned = []
        for k, classes in enumerate(SUBSETS):
            keep = torch.isin(y, torch.tensor(classes))
            state = train.train(SPEC, (X[keep], y[keep]), epochs=5, lr=0.02, seed=10 + k, init_state=base_state).model.state_dict()
            tuned.append((state, store("digits " + "".join(map(str, classes)), state, parent=base, relation=Relation.FINETUNE)))
        merged = merging.task_arithmetic(base_state, [s for s, _ in tuned], lam=LAMBDA)
        merge = store("task arithmetic", merged, parent=base, relation=Relation.MERGE, merge_parents=[base, *(c for _, c in tuned)])
    return {"base": base, "a": tuned[0][1], "b": tuned[1][1], "merge": merge}
