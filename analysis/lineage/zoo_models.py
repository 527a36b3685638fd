"""Tiny digit classifiers and the ways a model hub derives one model from another.

Building blocks for ``zoo_recipes``: architectures (MLPs of several widths
and depths, a small CNN) on sklearn's 8x8 digits, a training loop with
Adam or SGD, and the derivations that leave different fingerprints in the
weights: fine-tuning (every tensor moves), LoRA (a low-rank update per
adapted matrix, merged into the weights), quantisation (weights snapped to
a per-row grid of 2^bits levels, stored dequantised) and merging (a convex
combination of two models).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

StateDict = dict[str, torch.Tensor]


class SmallCNN(nn.Module):
    """8x8 digits: two 3x3 convolutions, then a linear classifier."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.head = nn.Linear(2 * channels * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 1, 8, 8)
        x = torch.relu(self.conv1(x))
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.head(x.flatten(1))


def make_model(arch: str, seed: int) -> nn.Module:
    """``"mlp:32"``, ``"mlp:64,64"`` (hidden widths) or ``"cnn:8"`` (channels), initialised from ``seed``."""
    kind, _, spec = arch.partition(":")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if kind == "mlp":
            widths = [64, *(int(w) for w in spec.split(",")), 10]
            layers: list[nn.Module] = []
            for a, b in zip(widths[:-1], widths[1:]):
                layers += [nn.Linear(a, b), nn.ReLU()]
            return nn.Sequential(*layers[:-1])
        if kind == "cnn":
            return SmallCNN(int(spec or 8))
    raise ValueError(f"unknown architecture {arch!r}")


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    X, y = load_digits(return_X_y=True)
    return torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y, dtype=torch.long)


def _optimizer(params, optimizer: str, lr: float) -> torch.optim.Optimizer:
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    if optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    raise ValueError(f"unknown optimizer {optimizer!r}")


def train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float, seed: int,
          optimizer: str = "adam", batch_size: int = 64) -> float:
    """Minibatch training in place; returns accuracy on (X, y) afterwards."""
    generator = torch.Generator().manual_seed(seed)
    opt = _optimizer(model.parameters(), optimizer, lr)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(X), (min(batch_size, len(X)),), generator=generator)
        loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return accuracy(model, X, y)


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(X).argmax(1) == y).float().mean())


def train_lora(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, rank: int, steps: int, lr: float,
               seed: int) -> tuple[StateDict, float]:
    """Train a rank-``rank`` adapter on every Linear weight (base frozen); return the merged state.

    As in LoRA (Hu et al. 2021): ``W + B @ A`` with ``B`` zero at the start, so
    the adapted model starts as the base and its update has rank <= ``rank``.
    """
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    generator = torch.Generator().manual_seed(seed)
    adapters: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            out_f, in_f = module.weight.shape
            r = min(rank, out_f, in_f)
            A = (torch.randn(r, in_f, generator=generator) / np.sqrt(in_f)).requires_grad_()
            B = torch.zeros(out_f, r, requires_grad=True)
            adapters[f"{name}.weight" if name else "weight"] = (A, B)
    opt = torch.optim.Adam([t for pair in adapters.values() for t in pair], lr=lr)

    def merged() -> StateDict:
        return {k: (v + adapters[k][1] @ adapters[k][0]) if k in adapters else v for k, v in base.items()}

    for _ in range(steps):
        idx = torch.randint(0, len(X), (min(64, len(X)),), generator=generator)
        loss = nn.functional.cross_entropy(functional_call(model, merged(), (X[idx],)), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        state = {k: v.detach().clone() for k, v in merged().items()}
    model.load_state_dict(state)
    return state, accuracy(model, X, y)


def quantize_state(state: StateDict, bits: int) -> StateDict:
    """Symmetric per-output-row absmax quantisation of every weight matrix / kernel, stored dequantised.

    Biases and vectors stay in float, as in common int8/int4 weight-only schemes.
    """
    levels = 2 ** (bits - 1) - 1
    out = {}
    for k, v in state.items():
        if v.is_floating_point() and v.dim() >= 2:
            rows = v.reshape(v.shape[0], -1)
            scale = rows.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / levels
            out[k] = (torch.round(rows / scale).clamp(-levels, levels) * scale).reshape(v.shape)
        else:
            out[k] = v.clone()
    return out


def merge_states(a: StateDict, b: StateDict, alpha: float) -> StateDict:
    """``alpha * a + (1 - alpha) * b`` tensor by tensor (a "model soup" of two)."""
    return {k: alpha * a[k] + (1 - alpha) * b[k] for k in a}


def task_data(kind: str, X: torch.Tensor, y: torch.Tensor, rng: np.random.Generator
              ) -> tuple[torch.Tensor, torch.Tensor, str]:
    """A derived task: what a fine-tune trains on, so siblings pull in different directions."""
    if kind == "class_subset":
        classes = np.sort(rng.choice(10, 5, replace=False))
        mask = torch.from_numpy(np.isin(y.numpy(), classes))
        return X[mask], y[mask], f"classes {classes.tolist()}"
    if kind == "permuted_labels":
        perm = rng.permutation(10)
        return X, torch.from_numpy(perm)[y], "labels permuted"
    if kind == "noisy_inputs":
        noise = torch.from_numpy(rng.standard_normal(X.shape).astype(np.float32))
        return X + 0.3 * noise, y, "inputs + N(0, 0.3^2) noise"
    if kind == "data_subset":
        idx = torch.from_numpy(np.sort(rng.choice(len(X), 300, replace=False)))
        return X[idx], y[idx], "300-example subset"
    if kind == "noisy_labels":
        flip = torch.from_numpy(rng.random(len(y)) < 0.3)
        random_labels = torch.from_numpy(rng.integers(0, 10, len(y)))
        return X, torch.where(flip, random_labels, y), "30% labels replaced at random"
    if kind == "swap_two":
        # Two of the labels the data already has: swapping in a class the parent dropped would send
        # the model back towards the grandparent (then no weight-space method sees the chain).
        a, b = (int(v) for v in rng.choice(np.unique(y.numpy()), 2, replace=False))
        perm = np.arange(10)
        perm[a], perm[b] = b, a
        return X, torch.from_numpy(perm)[y], f"labels {a} and {b} swapped"
    raise ValueError(f"unknown task kind {kind!r}")


def cycle(kinds: Sequence[str], i: int) -> str:
    return kinds[i % len(kinds)]


@contextlib.contextmanager
def single_thread():
    # Tiny matmuls run fastest on one thread and the machine is shared; restore afterwards.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
