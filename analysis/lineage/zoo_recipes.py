"""Zoos of digit classifiers made by many recipes, with their true lineage.

A recovery method tuned on one zoo learns that zoo's quirks (the issue this
module answers: 0.94 directed-edge accuracy on the home zoo, 0.39 on another).
So the generator varies what a real model hub varies: optimiser (Adam,
AdamW, SGD with momentum), training length (roots stopped early or trained
to convergence), what children train on (class subsets, permuted or noisy
labels, noisy inputs, data subsets), how models are derived (fine-tunes,
fine-tunes of fine-tunes, LoRA adapters, 8- and 4-bit quantisations, merges
of two models) and the architecture (MLPs of several widths and depths, a
small CNN).  Every edge carries its relation: ``finetune``, ``adapter``,
``quantized`` or ``merge`` (a merge has two parents).

A zoo of ~40 models trains in a few seconds on one core.  Same recipe and
seed give bit-identical weights on the same machine and thread count.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from .zoo_models import (
    cycle, load_digits_tensors, make_model, merge_states, quantize_state, single_thread, task_data, train,
    train_lora,
)

CHILD_TASKS = ("class_subset", "permuted_labels", "noisy_inputs", "data_subset")
GRANDCHILD_TASKS = ("noisy_inputs", "swap_two")


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    archs: tuple[str, ...] = ("mlp:32",)  # cycled over families
    n_families: int = 3
    optimizer: str = "adam"
    root_steps: int = 150
    root_lr: float = 1e-2
    child_optimizer: str | None = None  # None: same as the root's
    child_steps: int = 100
    child_lr: float = 3e-3
    children: int = 4
    grandchildren: int = 2
    chain: int = 0  # extra generations below the first grandchild (deep lineages)
    child_tasks: tuple[str, ...] = CHILD_TASKS
    lora_children: int = 0
    lora_rank: int = 4
    quantized: tuple[int, ...] = ()  # bit widths; each quantises a different model of the family
    merges: int = 0
    held_out: bool = False  # kept out of tuning; reported separately


RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe("adam_short", "Adam, roots stopped early (150 steps), 4 children x 2 grandchildren"),
    Recipe("adam_converged", "Adam, roots trained to convergence (2000 steps)", root_steps=2000),
    Recipe("sgd_momentum", "SGD with momentum throughout", optimizer="sgd", root_steps=600, root_lr=0.05,
           child_lr=0.02, child_steps=150),
    Recipe("noisy_labels", "AdamW; children on noisy labels, class and data subsets", optimizer="adamw",
           root_steps=800, child_tasks=("noisy_labels", "class_subset", "data_subset", "noisy_inputs")),
    Recipe("quantized_leaves", "converged roots; 8- and 4-bit quantised leaves", root_steps=1500,
           grandchildren=1, quantized=(8, 4, 8)),
    Recipe("merges", "fine-tunes and convex merges of two of them", root_steps=600, grandchildren=1, merges=2),
    Recipe("lora_adapters", "wide MLP, fine-tunes and rank-2/4 LoRA adapters", archs=("mlp:128",), root_steps=800,
           children=2, grandchildren=1, lora_children=3, lora_rank=2, child_steps=150),
    Recipe("cnn", "small CNN, Adam then SGD fine-tunes", archs=("cnn:6",), root_steps=300, child_optimizer="sgd",
           child_lr=0.02, children=3),
    Recipe("deep_chains", "two hidden layers, lineages five generations deep, SGD fine-tunes",
           archs=("mlp:64,64",), root_steps=1000, child_optimizer="sgd", child_lr=0.02, children=3,
           grandchildren=1, chain=3, held_out=True),
    Recipe("mixed_everything", "mixed widths and a CNN; fine-tunes, LoRA, quantisation and a merge",
           archs=("mlp:16", "mlp:48", "cnn:4"), root_steps=1200, optimizer="adamw", children=3, grandchildren=1,
           lora_children=1, quantized=(4, 8), merges=1, held_out=True),
]}


@dataclass(frozen=True)
class RecipeModel:
    name: str
    parents: tuple[str, ...]
    relation: str | None  # of the edges from ``parents``; None for a root
    family: int
    arch: str
    task: str
    train_accuracy: float
    state_dict: dict[str, torch.Tensor] = field(repr=False)


@dataclass
class RecipeZoo:
    recipe: Recipe
    seed: int
    models: list[RecipeModel]

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        return {m.name: m.state_dict for m in self.models}

    def true_edges(self) -> list[tuple[str, str, str]]:
        """(parent, child, relation); a merge contributes one edge per parent."""
        return [(p, m.name, m.relation) for m in self.models for p in m.parents]

    def true_parents(self) -> dict[str, tuple[str, ...]]:
        return {m.name: m.parents for m in self.models}

    def true_families(self) -> dict[str, int]:
        return {m.name: m.family for m in self.models}


def build_recipe_zoo(recipe: Recipe | str, seed: int = 0, *,
                     on_progress: Callable[[dict[str, Any]], None] | None = None, **overrides: Any) -> RecipeZoo:
    """Train the zoo of ``recipe`` (a name of ``RECIPES`` or a ``Recipe``); ``overrides`` replace its fields."""
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
        recipe = RECIPES[recipe]
    if overrides:
        recipe = replace(recipe, **overrides)
    with single_thread():
        return RecipeZoo(recipe, seed, _FamilyBuilder(recipe, seed, on_progress).build())


class _FamilyBuilder:
    def __init__(self, recipe: Recipe, seed: int, on_progress: Callable[[dict[str, Any]], None] | None):
        self.recipe, self.seed, self.on_progress = recipe, seed, on_progress
        self.X, self.y = load_digits_tensors()
        self.models: list[RecipeModel] = []

    def keep(self, name: str, parents: tuple[str, ...], relation: str | None, family: int, arch: str, task: str,
             acc: float, state: dict[str, torch.Tensor]) -> None:
        state = {k: v.detach().clone() for k, v in state.items()}
        self.models.append(RecipeModel(name, parents, relation, family, arch, task, acc, state))
        if self.on_progress is not None:
            self.on_progress({"kind": "model_trained", "name": name, "done": len(self.models)})

    def build(self) -> list[RecipeModel]:
        for f in range(self.recipe.n_families):
            self.family(f)
        return self.models

    def family(self, f: int) -> None:
        r, X, y = self.recipe, self.X, self.y
        arch = cycle(r.archs, f)
        fam_seed = self.seed * 100_003 + f * 1009
        child_opt = r.child_optimizer or r.optimizer
        root = make_model(arch, fam_seed)
        acc = train(root, X, y, steps=r.root_steps, lr=r.root_lr, seed=fam_seed + 1, optimizer=r.optimizer)
        root_name = f"f{f}"
        self.keep(root_name, (), None, f, arch, "all digits", acc, root.state_dict())
        states = {root_name: root.state_dict()}
        children = []
        for c in range(r.children):
            rng = np.random.default_rng([self.seed, f, c])
            Xc, yc, task = task_data(cycle(r.child_tasks, c), X, y, rng)
            child = copy.deepcopy(root)
            acc = train(child, Xc, yc, steps=r.child_steps, lr=r.child_lr, seed=fam_seed + 10 + c,
                        optimizer=child_opt)
            name = f"{root_name}.c{c}"
            self.keep(name, (root_name,), "finetune", f, arch, task, acc, child.state_dict())
            states[name] = child.state_dict()
            children.append(name)
            parent_model, parent_name, Xp, yp = child, name, Xc, yc
            for g in range(r.grandchildren + (r.chain if c == 0 else 0)):
                rng_g = np.random.default_rng([self.seed, f, c, g])
                Xg, yg, task_g = task_data(cycle(GRANDCHILD_TASKS, g), Xp, yp, rng_g)
                grandchild = copy.deepcopy(parent_model)
                acc = train(grandchild, Xg, yg, steps=max(30, r.child_steps * 3 // 5), lr=r.child_lr * 0.7,
                            seed=fam_seed + 100 + 10 * c + g, optimizer=child_opt)
                gname = f"{parent_name}.g{g}"
                self.keep(gname, (parent_name,), "finetune", f, arch, f"{task}; then {task_g}", acc,
                          grandchild.state_dict())
                states[gname] = grandchild.state_dict()
                if g >= r.grandchildren - 1 and c == 0 and r.chain:  # the chain continues from the last one
                    parent_model, parent_name, Xp, yp = grandchild, gname, Xg, yg
        for k in range(r.lora_children):
            base_name = root_name if k % 2 == 0 or not children else children[0]
            rng = np.random.default_rng([self.seed, f, 50 + k])
            Xl, yl, task = task_data(cycle(r.child_tasks, k + 1), X, y, rng)
            model = make_model(arch, fam_seed)
            model.load_state_dict(states[base_name])
            state, acc = train_lora(model, Xl, yl, rank=r.lora_rank + 2 * (k % 2), steps=r.child_steps,
                                    lr=1e-2, seed=fam_seed + 500 + k)
            name = f"{base_name}.lora{k}"
            self.keep(name, (base_name,), "adapter", f, arch, f"LoRA on {task}", acc, state)
            states[name] = state
        candidates = [n for n in states if n.count(".") == 1] + [root_name]
        for k, bits in enumerate(r.quantized):
            source = candidates[k % len(candidates)] if k else root_name
            name = f"{source}.q{bits}" + (f"_{k}" if f"{source}.q{bits}" in states else "")
            self.keep(name, (source,), "quantized", f, arch, f"{bits}-bit quantisation", float("nan"),
                      quantize_state(states[source], bits))
            states[name] = self.models[-1].state_dict
        rng = np.random.default_rng([self.seed, f, 99])
        for k in range(r.merges):
            a, b = children[(2 * k) % len(children)], children[(2 * k + 1) % len(children)]
            alpha = float(rng.uniform(0.3, 0.7))
            name = f"{root_name}.m{k}"
            self.keep(name, (a, b), "merge", f, arch, f"{alpha:.2f} * {a} + {1 - alpha:.2f} * {b}", float("nan"),
                      merge_states(states[a], states[b], alpha))
