"""Orthogonal-residual merging, in the spirit of OrthoMerge.

OrthoMerge ("Model Merging on the Orthogonal Group", 2025) merges fine-tunes
whose change to a weight matrix is (mostly) a rotation, as orthogonal
fine-tuning (OFT; Qiu et al. 2023, "Controlling Text-to-Image Diffusion by
Orthogonal Finetuning") produces.  Rotations do not add: the average of two
rotation matrices is not a rotation and shrinks the weights.  So, per weight
matrix ``W0`` (output x input, conv kernels flattened to output x rest):

1. the orthogonal part of each fine-tune is the rotation of the input space
   that best explains it, ``Q_i = argmin_{Q in SO(n)} ||W0 Q - W_i||_F``
   (orthogonal Procrustes, Schönemann 1966: SVD of ``W0^T W_i = U S V^T``,
   ``Q = U V^T``, with the last singular vector flipped when needed so that
   ``det Q = +1``, as in Kabsch's algorithm);
2. the rotations are merged on the group through its Lie algebra:
   ``Q = expm(lam * sum_i logm(Q_i))`` (``scipy.linalg.logm/expm``; each log is
   made exactly skew-symmetric);
3. the residual ``W_i - W0 Q_i`` is merged additively, ``lam * sum_i``.

Merged ``W = W0 Q + lam * sum_i (W_i - W0 Q_i)``.  ``lam = 1/n`` (the
default) is the mean on both parts; one fine-tune that is an exact rotation
of its base is returned exactly with ``lam = 1``.  Tensors that are not
matrices (biases, norms) are merged by task arithmetic with the same ``lam``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .state_dicts import StateDict, check_compatible, mergeable

__all__ = ["procrustes_rotation", "orthogonal_parts", "orthogonal_combine", "orthogonal_merge", "MAX_ROTATION_DIM"]

# logm/expm cost O(n^3) per matrix: keep each rotation to a size a worker handles in seconds.
MAX_ROTATION_DIM = 2048


def procrustes_rotation(w0: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The rotation ``Q`` (det +1) of the input space minimising ``||w0 Q - w||_F``."""
    u, _, vt = np.linalg.svd(w0.T @ w)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    u[:, -1] *= d
    return u @ vt


def _skew_log(q: np.ndarray) -> np.ndarray:
    from scipy.linalg import logm

    log = np.real(logm(q))
    return 0.5 * (log - log.T)


def orthogonal_parts(base: StateDict, models: Sequence[StateDict]) -> dict[str, dict]:
    """What does not depend on ``lam``, per tensor: the summed skew-symmetric logs and residuals (matrices),
    or the summed deltas (other tensors); a sweep over ``lam`` reuses it."""
    if not models:
        raise ValueError("orthogonal merging needs at least one fine-tuned model")
    keys = check_compatible([base, *models])
    parts: dict[str, dict] = {}
    for key in keys:
        w0_t = base[key]
        if not mergeable(w0_t):
            parts[key] = {"copy": w0_t.detach().clone()}
            continue
        w0 = w0_t.detach().double().reshape(w0_t.shape[0], -1).numpy() if w0_t.dim() >= 2 else None
        if w0 is None or w0.shape[1] > MAX_ROTATION_DIM:
            parts[key] = {"delta": sum(m[key].detach().double() - w0_t.detach().double() for m in models), "base": w0_t}
            continue
        ws = [m[key].detach().double().reshape(w0.shape).numpy() for m in models]
        rotations = [procrustes_rotation(w0, w) for w in ws]
        parts[key] = {"w0": w0, "log": sum(_skew_log(q) for q in rotations),
                      "residual": sum(w - w0 @ q for w, q in zip(ws, rotations)), "base": w0_t}
    return parts


def orthogonal_combine(parts: dict[str, dict], lam: float) -> dict[str, torch.Tensor]:
    """``W0 expm(lam * sum_i log Q_i) + lam * sum_i residual_i`` per matrix; ``base + lam * sum delta`` otherwise."""
    from scipy.linalg import expm

    out = {}
    for key, part in parts.items():
        if "copy" in part:
            out[key] = part["copy"].clone()
        elif "delta" in part:
            out[key] = (part["base"].detach().double() + lam * part["delta"]).to(part["base"].dtype)
        else:
            merged = part["w0"] @ expm(lam * part["log"]) + lam * part["residual"]
            out[key] = torch.from_numpy(merged).reshape(part["base"].shape).to(part["base"].dtype)
    return out


def orthogonal_merge(base: StateDict, models: Sequence[StateDict], lam: float | None = None) -> dict[str, torch.Tensor]:
    """Rotation part merged on SO(n), residual merged additively; see the module docstring."""
    parts = orthogonal_parts(base, models)
    return orthogonal_combine(parts, 1.0 / len(models) if lam is None else float(lam))
