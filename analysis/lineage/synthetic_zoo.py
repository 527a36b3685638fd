"""A small zoo of digit classifiers with known lineage, for testing recovery.

Per family: a root MLP (64-h-10) trained from its own random seed on sklearn's
8x8 digits, ``children_per_root`` fine-tunes of it on different tasks, and
``grandchildren_per_child`` fine-tunes of each child.  The default 3 x (1 + 4
+ 4*2) = 39 models train in a few seconds on one CPU core.

Children's tasks cycle through kinds that pull the weights in different
directions (a class subset, a label permutation, noisy inputs, a small data
subset), because siblings trained on the *same* task move almost the same
way and no weight-only method could tell which of them is the parent.
Grandchildren take a twist on their parent's task (input noise, or two
labels swapped).

The root is trained for 150 Adam steps (~10 epochs, ~97.5% train accuracy):
long enough to be a good base model, short enough that its weights are still
moving away from the uniform initialisation, which is what makes weight
kurtosis rise along parent -> child edges.  With a root trained 4x longer the
kurtosis direction signal mostly disappears (see ``recovery.py``).

Deliberately self-contained (a 20-line training loop, not ``analysis.train``)
so recovery tests do not depend on the rest of the library.  Every random
choice comes from seeded generators: the same arguments give bit-identical
weights on the same machine and thread count.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .graph import LineageGraph
from .zoo_models import single_thread
from .zoo_models import train as zoo_train

TASK_KINDS = ("class_subset", "permuted_labels", "noisy_inputs", "data_subset")


@dataclass(frozen=True)
class ZooModel:
    name: str
    parent: str | None
    family: int
    generation: int
    task: str
    train_accuracy: float
    state_dict: dict[str, torch.Tensor] = field(repr=False)


@dataclass
class SyntheticZoo:
    models: list[ZooModel]
    config: dict[str, Any]

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        return {m.name: m.state_dict for m in self.models}

    def true_parents(self) -> dict[str, str | None]:
        return {m.name: m.parent for m in self.models}

    def true_families(self) -> dict[str, int]:
        return {m.name: m.family for m in self.models}

    def true_edges(self) -> list[tuple[str, str]]:
        return [(m.parent, m.name) for m in self.models if m.parent is not None]

    def lineage_graph(self) -> LineageGraph:
        graph = LineageGraph()
        for m in self.models:
            graph.add_node(m.name, {"task": m.task, "family": m.family, "train_accuracy": m.train_accuracy})
        for parent, child in self.true_edges():
            graph.add_edge(parent, child, "finetune", "synthetic_zoo")
        return graph


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    X, y = load_digits(return_X_y=True)
    return torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y, dtype=torch.long)


def make_mlp(hidden: int, seed: int) -> nn.Module:
    """64-hidden-10 ReLU MLP, initialised from ``seed`` only (PyTorch's default scheme)."""
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            bound = 1.0 / float(np.sqrt(layer.in_features))
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)
    return model


def train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float, seed: int,
          batch_size: int = 128) -> float:
    """Adam on random minibatches; returns accuracy on (X, y) afterwards (the recipe zoo's training)."""
    return zoo_train(model, X, y, steps=steps, lr=lr, seed=seed, optimizer="adam", batch_size=batch_size)


def _task_data(kind: str, X: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, *, n_classes: int = 5
               ) -> tuple[torch.Tensor, torch.Tensor, str]:
    if kind == "class_subset":
        classes = np.sort(rng.choice(10, n_classes, replace=False))
        mask = torch.from_numpy(np.isin(y.numpy(), classes))
        return X[mask], y[mask], f"classes {classes.tolist()}"
    if kind == "permuted_labels":
        perm = rng.permutation(10)
        return X, torch.from_numpy(perm)[y], f"labels permuted by {perm.tolist()}"
    if kind == "noisy_inputs":
        noise = torch.from_numpy(rng.standard_normal(X.shape).astype(np.float32))
        return X + 0.3 * noise, y, "inputs + N(0, 0.3^2) noise"
    if kind == "data_subset":
        idx = torch.from_numpy(np.sort(rng.choice(len(X), 300, replace=False)))
        return X[idx], y[idx], "300-example subset"
    raise ValueError(f"unknown task kind {kind!r}")


def _grandchild_task(g: int, Xc: torch.Tensor, yc: torch.Tensor, rng: np.random.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor, str]:
    """A twist on the child's own task.

    Grandchildren continue from where their parent went instead of
    re-learning what the parent forgot (a grandchild trained on classes its
    parent dropped walks back towards the grandparent, and then no
    weight-space method can see the true chain).
    """
    if g % 2 == 0:
        noise = torch.from_numpy(rng.standard_normal(Xc.shape).astype(np.float32))
        return Xc + 0.3 * noise, yc, "inputs + N(0, 0.3^2) noise"
    a, b = (int(v) for v in rng.choice(10, 2, replace=False))
    perm = np.arange(10)
    perm[a], perm[b] = b, a
    return Xc, torch.from_numpy(perm)[yc], f"labels {a} and {b} swapped"


def build_synthetic_zoo(
    *,
    n_families: int = 3,
    children_per_root: int = 4,
    grandchildren_per_child: int = 2,
    hidden: int = 32,
    root_steps: int = 150,
    child_steps: int = 100,
    grandchild_steps: int = 60,
    root_lr: float = 1e-2,
    child_lr: float = 3e-3,
    grandchild_lr: float = 2e-3,
    seed: int = 0,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> SyntheticZoo:
    """Train the zoo.  Names: ``f{family}``, ``f{family}.c{i}``, ``f{family}.c{i}.g{j}``."""
    with single_thread():
        return _build(n_families, children_per_root, grandchildren_per_child, hidden, root_steps, child_steps,
                      grandchild_steps, root_lr, child_lr, grandchild_lr, seed, on_progress)


def _build(n_families: int, children_per_root: int, grandchildren_per_child: int, hidden: int, root_steps: int,
           child_steps: int, grandchild_steps: int, root_lr: float, child_lr: float, grandchild_lr: float,
           seed: int, on_progress: Callable[[dict[str, Any]], None] | None) -> SyntheticZoo:
    if min(n_families, hidden) < 1 or min(children_per_root, grandchildren_per_child) < 0:
        raise ValueError("n_families and hidden must be >= 1; child counts >= 0")
    X, y = load_digits_tensors()
    total = n_families * (1 + children_per_root * (1 + grandchildren_per_child))
    models: list[ZooModel] = []

    def keep(name: str, parent: str | None, family: int, generation: int, task: str, acc: float,
             model: nn.Module) -> None:
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        models.append(ZooModel(name, parent, family, generation, task, acc, state))
        if on_progress is not None:
            on_progress({"kind": "model_trained", "name": name, "done": len(models), "total": total})

    for f in range(n_families):
        fam_seed = seed * 100_003 + f * 1009
        root = make_mlp(hidden, fam_seed)
        acc = train(root, X, y, steps=root_steps, lr=root_lr, seed=fam_seed + 1)
        root_name = f"f{f}"
        keep(root_name, None, f, 0, "all digits", acc, root)
        for c in range(children_per_root):
            rng = np.random.default_rng([seed, f, c])
            kind = TASK_KINDS[c % len(TASK_KINDS)]
            Xc, yc, task = _task_data(kind, X, y, rng)
            child = copy.deepcopy(root)
            acc = train(child, Xc, yc, steps=child_steps, lr=child_lr, seed=fam_seed + 10 + c)
            child_name = f"{root_name}.c{c}"
            keep(child_name, root_name, f, 1, f"{kind}: {task}", acc, child)
            for g in range(grandchildren_per_child):
                rng_g = np.random.default_rng([seed, f, c, g])
                Xg, yg, task_g = _grandchild_task(g, Xc, yc, rng_g)
                grandchild = copy.deepcopy(child)
                acc = train(grandchild, Xg, yg, steps=grandchild_steps, lr=grandchild_lr,
                            seed=fam_seed + 100 + 10 * c + g)
                keep(f"{child_name}.g{g}", child_name, f, 2, f"{kind}: {task}; then {task_g}", acc, grandchild)
    config = dict(n_families=n_families, children_per_root=children_per_root,
                  grandchildren_per_child=grandchildren_per_child, hidden=hidden, root_steps=root_steps,
                  child_steps=child_steps, grandchild_steps=grandchild_steps, seed=seed)
    return SyntheticZoo(models=models, config=config)
