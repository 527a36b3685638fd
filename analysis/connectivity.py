"""Linear mode connectivity and permutation alignment.

* :func:`interpolate` evaluates loss and accuracy on the segment
  ``theta(t) = (1 - t) theta_a + t theta_b`` and reports the
  :func:`barrier_height` (Frankle et al. 2020; Ainsworth et al. 2023): the
  largest excess of the loss over the straight line between the endpoint
  losses, ``max_t L(theta(t)) - ((1 - t) L(theta_a) + t L(theta_b))``.
* :func:`weight_matching` is Git Re-Basin's weight matching (Ainsworth,
  Hayase & Srinivasa 2023): hidden units of ``b`` are permuted to match
  ``a``.  Each permutation solves a linear assignment
  (``scipy.optimize.linear_sum_assignment``) on the summed similarity
  ``W_a W_b'^T`` of every weight touching that hidden layer (with the
  neighbouring layers' current permutations applied), in a seeded random
  layer order, repeated until a full pass changes no permutation.  The result
  computes the same function as ``b``.
* :func:`permutation_spec` derives which tensor axes each hidden-unit
  permutation acts on, for the zoo's ``mlp`` and ``cnn`` kinds.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from . import landscape, zoo
from .permutation_spec import PermutationSpec

__all__ = [
    "Interpolation",
    "Alignment",
    "PermutationSpec",
    "barrier_height",
    "interpolate",
    "permutation_spec",
    "weight_matching",
    "apply_permutations",
    "align_and_compare",
]


@dataclass
class Interpolation:
    t: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray | None
    barrier_height: float  # loss barrier
    accuracy_barrier: float | None  # max drop of accuracy below the endpoints' line
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "t": self.t.tolist(),
            "loss": [float(v) if np.isfinite(v) else None for v in self.loss],
            "accuracy": None if self.accuracy is None else self.accuracy.tolist(),
            "barrier_height": float(self.barrier_height) if np.isfinite(self.barrier_height) else None,
            "accuracy_barrier": self.accuracy_barrier,
            "seconds": self.seconds,
        }


@dataclass
class Alignment:
    model: nn.Module  # permuted copy of b
    permutations: dict[str, np.ndarray]  # name -> perm (b's unit perm[k] goes to position k)
    iterations: int
    seconds: float
    objective: float = 0.0
    history: list[float] = field(default_factory=list)


# --------------------------------------------------------------------------- barriers


def barrier_height(t: np.ndarray, values: np.ndarray) -> float:
    """``max_t values(t) - ((1 - t) values(0) + t values(1))`` over the given ``t`` in [0, 1].

    ``t`` must contain 0 and 1 (the endpoints).  A positive value means the
    straight path rises above the line between the endpoint values.
    """
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    i0 = np.flatnonzero(np.isclose(t, 0.0))
    i1 = np.flatnonzero(np.isclose(t, 1.0))
    if not len(i0) or not len(i1):
        raise ValueError("t must include the endpoints 0 and 1")
    v0, v1 = v[i0[0]], v[i1[0]]
    inside = (t >= -1e-12) & (t <= 1 + 1e-12)
    return float(np.max(v[inside] - ((1 - t[inside]) * v0 + t[inside] * v1)))


def _model_of(x):
    if not isinstance(x, nn.Module) and isinstance(getattr(x, "module", None), nn.Module):  # a LoadedModel
        return x.module
    if not isinstance(x, nn.Module) and isinstance(getattr(x, "model", None), nn.Module):  # a Checkpoint
        return x.model
    return x


def interpolate(
    a: nn.Module,
    b: nn.Module | Mapping[str, torch.Tensor],
    data: tuple[torch.Tensor, torch.Tensor],
    steps: int = 21,
    *,
    batchnorm: str = "interpolate",
    on_progress=None,
) -> Interpolation:
    """Loss/accuracy on the segment from ``a`` to ``b`` (``steps`` points, t in [0, 1]) and the barrier."""
    t0 = time.perf_counter()
    b = _model_of(b)
    # ``a`` may be a LoadedModel (e.g. a LoRA-merged model vs its base): line() uses its own loss
    res = landscape.line(a, data, end=b, steps=steps, span=(0.0, 1.0), batchnorm=batchnorm, on_progress=on_progress)
    acc_barrier = None
    if res.accuracy is not None:
        acc_barrier = barrier_height(res.t, -res.accuracy)  # accuracy drop below the endpoint line
    return Interpolation(
        t=res.t,
        loss=res.loss,
        accuracy=res.accuracy,
        barrier_height=barrier_height(res.t, res.loss),
        accuracy_barrier=acc_barrier,
        seconds=time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------- permutations


def permutation_spec(spec: dict) -> PermutationSpec:
    """Hidden-unit permutation structure of a zoo ``mlp`` or ``cnn``."""
    s = zoo.validate_spec(spec)
    perms: dict[str, int] = {}
    axes: dict[str, tuple[tuple[int, ...] | None, tuple[str | None, ...]]] = {}
    if s["kind"] == "mlp":
        prev = None
        for i, h in enumerate(s["hidden"]):
            p = f"P{i}"
            perms[p] = h
            axes[f"fc{i}.weight"] = (None, (p, prev))
            if s["bias"]:
                axes[f"fc{i}.bias"] = (None, (p,))
            if s["batchnorm"]:
                for k in ("weight", "bias", "running_mean", "running_var"):
                    axes[f"bn{i}.{k}"] = (None, (p,))
                axes[f"bn{i}.num_batches_tracked"] = (None, ())
            prev = p
        axes["out.weight"] = (None, (None, prev))
        if s["bias"]:
            axes["out.bias"] = (None, (None,))
        return PermutationSpec(perms, axes)
    if s["kind"] == "cnn":
        prev = None
        size = s["image_size"]
        for i, c in enumerate(s["channels"]):
            p = f"P{i}"
            perms[p] = c
            axes[f"conv{i}.weight"] = (None, (p, prev, None, None))
            axes[f"conv{i}.bias"] = (None, (p,))
            if s["batchnorm"]:
                for k in ("weight", "bias", "running_mean", "running_var"):
                    axes[f"bn{i}.{k}"] = (None, (p,))
                axes[f"bn{i}.num_batches_tracked"] = (None, ())
            if s["pool"] and size >= 2:
                size //= 2
            prev = p
        last = s["channels"][-1]
        # flatten() orders features channel-major, so a channel permutation moves blocks of size*size columns
        axes["out.weight"] = ((s["out"], last, size * size), (None, prev, None))
        axes["out.bias"] = (None, (None,))
        return PermutationSpec(perms, axes)
    raise NotImplementedError(
        f"weight matching supports the zoo's mlp and cnn kinds, not {s['kind']!r} "
        "(attention heads need a head-aware permutation spec)"
    )


def _permuted(t: torch.Tensor, view, names, perms: Mapping[str, torch.Tensor], skip: str | None = None) -> torch.Tensor:
    x = t.reshape(view) if view is not None else t
    for ax, name in enumerate(names):
        if name is not None and name != skip:
            x = x.index_select(ax, perms[name])
    return x


def apply_permutations(
    state: Mapping[str, torch.Tensor], ps: PermutationSpec, perms: Mapping[str, np.ndarray | torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Permute a state dict's hidden units: ``new[k] = old[perm[k]]`` along every axis of that layer."""
    tperms = {k: torch.as_tensor(np.asarray(v), dtype=torch.long) for k, v in perms.items()}
    out = {}
    for key, t in state.items():
        if key not in ps.axes:
            out[key] = t.clone()
            continue
        view, names = ps.axes[key]
        out[key] = _permuted(t, view, names, tperms).reshape(t.shape).clone()
    return out


def weight_matching(
    a: nn.Module | Mapping[str, torch.Tensor],
    b: nn.Module | Mapping[str, torch.Tensor],
    *,
    spec: dict | None = None,
    max_iter: int = 100,
    seed: int = 0,
    perm_spec: PermutationSpec | None = None,
) -> Alignment:
    """Git Re-Basin weight matching of ``b`` onto ``a``; returns a permuted copy of ``b``.

    ``a``/``b`` are zoo models (or state dicts with ``spec=``), or Hugging Face
    models (LoadedModels), whose MLP units, attention heads or ResNet block
    channels are matched (:mod:`analysis.sources.permutations`); ``perm_spec``
    gives any other structure.  Only parameters enter the similarity
    (BatchNorm running statistics are permuted along but do not vote).
    """
    from scipy.optimize import linear_sum_assignment

    t0 = time.perf_counter()
    a_model, b_model = _model_of(a), _model_of(b)
    if perm_spec is not None:
        ps = perm_spec
    elif spec is None and isinstance(b_model, nn.Module) and getattr(b_model, "terrain_spec", None) is None \
            and getattr(a_model, "terrain_spec", None) is None and hasattr(getattr(b_model, "model", None), "config"):
        from .sources.permutations import permutation_spec_for

        ps = permutation_spec_for(b_model)
    else:
        if spec is None:
            spec = getattr(b_model, "terrain_spec", None) or getattr(a_model, "terrain_spec", None)
            if spec is None and any(type(m).__name__ == "OnnxModule" for m in (a_model, b_model)):
                raise NotImplementedError("weight matching needs Terrain or Hugging Face checkpoints, not ONNX graphs "
                                          "(a graph's weights do not say which units can be permuted)")
            if spec is None:
                raise ValueError("pass spec= (the models carry no terrain_spec)")
        ps = permutation_spec(spec)
    sa = {k: v.detach().to("cpu", torch.float64) for k, v in (a_model.state_dict() if isinstance(a_model, nn.Module) else a_model).items()}
    b_state = b_model.state_dict() if isinstance(b_model, nn.Module) else dict(b_model)
    sb = {k: v.detach().to("cpu", torch.float64) for k, v in b_state.items()}
    param_keys = [k for k in ps.axes if not (k.endswith("running_mean") or k.endswith("running_var") or k.endswith("num_batches_tracked"))]
    perms = {p: torch.arange(n) for p, n in ps.perms.items()}
    rng = np.random.default_rng(seed)
    names = list(ps.perms)
    history: list[float] = []
    iterations = 0
    for iterations in range(1, max_iter + 1):
        changed = False
        for p in rng.permutation(names):
            n = ps.perms[p]
            cost = torch.zeros(n, n, dtype=torch.float64)
            for key in param_keys:
                view, axis_names = ps.axes[key]
                for ax, name in enumerate(axis_names):
                    if name != p:
                        continue
                    wa = sa[key].reshape(view) if view is not None else sa[key]
                    wb = _permuted(sb[key], view, axis_names, perms, skip=p)
                    wa = wa.movedim(ax, 0).reshape(n, -1)
                    wb = wb.movedim(ax, 0).reshape(n, -1)
                    cost += wa @ wb.T
            c = cost.numpy()
            rows, cols = linear_sum_assignment(c, maximize=True)
            new = torch.as_tensor(cols, dtype=torch.long)
            old_score = float(c[np.arange(n), perms[p].numpy()].sum())
            new_score = float(c[rows, cols].sum())
            if new_score > old_score + 1e-12 * max(1.0, abs(old_score)):
                perms[p] = new
                changed = True
            history.append(max(new_score, old_score))
        if not changed:
            break
    permuted = apply_permutations(b_state, ps, {k: v.numpy() for k, v in perms.items()})
    if isinstance(b_model, nn.Module):
        out_model = copy.deepcopy(b_model)
    else:
        with torch.random.fork_rng(devices=[]):
            out_model = zoo.build(spec)
    out_model.load_state_dict(permuted)
    if spec is not None:
        out_model.terrain_spec = zoo.validate_spec(spec)
    out_model.eval()
    return Alignment(
        model=out_model,
        permutations={k: v.numpy() for k, v in perms.items()},
        iterations=iterations,
        seconds=time.perf_counter() - t0,
        objective=history[-1] if history else 0.0,
        history=history,
    )


def align_and_compare(
    a: nn.Module,
    b: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    steps: int = 21,
    seed: int = 0,
    spec: dict | None = None,
    on_progress=None,
) -> dict:
    """Barrier between ``a`` and ``b`` before and after weight matching (JSON-able dict)."""
    loaded_a = a  # a LoadedModel keeps its own loss for both interpolations
    a, b = _model_of(a), _model_of(b)
    emit = on_progress or (lambda event: None)
    emit({"type": "stage", "stage": "naive", "done": False})
    naive = interpolate(loaded_a, b, data, steps)
    emit({"type": "stage", "stage": "naive", "done": True, "barrier_height": naive.barrier_height})
    emit({"type": "stage", "stage": "matching", "done": False})
    al = weight_matching(a, b, spec=spec, seed=seed)
    emit({"type": "stage", "stage": "matching", "done": True, "iterations": al.iterations})
    aligned = interpolate(loaded_a, al.model, data, steps)
    emit({"type": "stage", "stage": "aligned", "done": True, "barrier_height": aligned.barrier_height})
    with torch.no_grad():
        X = data[0][:256]
        same = float((copy.deepcopy(b).eval()(X) - al.model(X)).abs().max())
    return {
        "naive": naive.to_dict(),
        "aligned": aligned.to_dict(),
        "barrier_naive": naive.barrier_height,
        "barrier_aligned": aligned.barrier_height,
        "iterations": al.iterations,
        "permutations": {k: v.tolist() for k, v in al.permutations.items()},
        "max_output_difference": same,
    }
