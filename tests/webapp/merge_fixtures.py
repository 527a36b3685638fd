"""A small model family in the catalog: a base and fine-tunes on different digit subsets (a few seconds)."""

import torch

from webapp.catalog.services import checkpoint_create_from_file, experiment_create
from webapp.catalog.visibility import Visibility

SPEC = {"kind": "mlp", "in": 64, "hidden": [32, 32], "out": 10}
SUBSETS = [(0, 1, 2, 3, 4), (5, 6, 7, 8, 9)]
TASKS = "0,1,2,3,4; 5,6,7,8,9"


def digits_family(owner, tmp_path, *, visibility=Visibility.PRIVATE, title="Digits family", epochs=5, spec=SPEC, subsets=SUBSETS):
    from analysis import checkpoints, data, train

    X, y = data.load("digits", "train")
    experiment = experiment_create(title=title, owner=owner, visibility=visibility)
    n = sum(p.numel() for p in train.zoo.build(spec).parameters())

    def store(name, result, parent=None):
        path = tmp_path / f"{name}.safetensors"
        checkpoints.save(path, result.model, spec, meta={"dataset": "digits"})
        return checkpoint_create_from_file(experiment=experiment, name=name, path=path, spec=spec, dataset="digits",
                                           num_parameters=n, parent=parent, relation="finetune" if parent else "")

    base_result = train.train(spec, (X, y), epochs=1, lr=0.02, seed=0)
    base = store("base", base_result)
    fine_tunes = []
    for i, classes in enumerate(subsets):
        keep = torch.isin(y, torch.tensor(classes))
        result = train.train(spec, (X[keep], y[keep]), epochs=epochs, lr=0.02, seed=10 + i,
                             init_state=base_result.model.state_dict())
        fine_tunes.append(store("digits " + "".join(map(str, classes)), result, parent=base))
    return experiment, base, fine_tunes
