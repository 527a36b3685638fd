"""Fast evaluation of any model at many points ``theta + sum_k c_k d_k``, one point at a time.

Used by :mod:`analysis.landscape` for every model without a special evaluator
(CNNs, ResNets, transformers, models from any source) with BatchNorm in "keep"
mode.  On a CPU, evaluating points one by one beats ``vmap`` over stacked
parameter sets (measured: the batched path loses up to 2x on a digits CNN), so:

1. **No allocation per point.**  Each thread owns a replica of the model whose
   parameters are views into one flat buffer; a point is written into it with
   two fused passes (``torch.add(theta, d1, alpha=a, out=flat)``, then
   ``flat.add_(d2, alpha=b)``), and the forward pass runs on the replica under
   ``torch.inference_mode``.  Replicas make the evaluator thread-safe, so the
   points of a batch can be split between threads (:mod:`analysis.point_parallel`).
2. **The first layer is linear in its weights.**  Whether it is a ``Linear``, a
   ``Conv1d/2d`` or an ``Embedding`` lookup, its output at
   ``theta + sum_k c_k d_k`` is ``O_0 + sum_k c_k O_k`` with ``O_0`` its output
   at the centre (bias included) and ``O_k`` its output with the direction's
   weights and bias.  The ``O_k`` are computed once per evaluator; each point
   then replaces the layer's work (for a CNN on images, a large share of the
   forward pass) by K fused multiply-adds.  The first layer is found by tracing
   a forward pass: the first leaf module with parameters, provided its input does not move
   with the point.
3. **Faster equivalents of slow CPU kernels** on the replicas only
   (:mod:`analysis.faster_kernels`: max pools, Hugging Face's Python tanh GELU,
   eager attention).
4. **BatchNorm folded.**  When the first layer feeds a BatchNorm straight away
   (eval mode, running statistics, and the directions leave its scale and shift
   at the centre, as they do unless ``include_bias``), the normalisation is an
   affine map per channel that is folded into the ``O_k`` once; every later
   ``Conv``/``Linear`` -> BatchNorm pair is folded into the flat centre and
   directions (:mod:`analysis.batchnorm_folding`).  The BatchNorms then pass
   their input through.  Rewrites and folds are kept only if a replica built
   with them computes the model's function at a point off the centre.
5. **Chunks sized for the cache**: the widest activation of a chunk of samples
   stays within ``CACHE_BYTES``.

Every point equals a plain forward pass at its coordinates up to floating-point
rounding (the tests compare every grid point with a direct evaluation).
"""

from __future__ import annotations

import copy
import threading

import numpy as np
import torch
from torch import nn

from . import batchnorm_folding, faster_kernels
from .point_evaluator import Evaluator, model_output

LINEAR_FIRST_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)
MAX_FIRST_LAYER_BYTES = 512 * 2**20  # the (K+1) stored first-layer outputs must stay modest
CACHE_BYTES = 2 * 2**20  # about a core's L2 cache and a share of L3 here


def _trace_leaf_calls(model: nn.Module, X: torch.Tensor) -> list[tuple[str, nn.Module, tuple, object]]:
    """(name, module, inputs, output) of every leaf module call during one forward pass, in order."""
    calls: list = []
    handles = []
    for name, mod in model.named_modules():
        if next(mod.children(), None) is None:
            handles.append(mod.register_forward_hook(lambda m, inp, out, name=name: calls.append((name, m, inp, out))))
    try:
        model(X)
    finally:
        for h in handles:
            h.remove()
    return calls


class _Stop(Exception):
    pass


def _input_of(model: nn.Module, layer: nn.Module, X: torch.Tensor, params=None) -> torch.Tensor:
    """The input ``layer`` receives when ``model`` runs on ``X`` (at ``params`` if given); stops there."""
    captured = []

    def grab(module, args):
        captured.append(args[0])
        raise _Stop

    handle = layer.register_forward_pre_hook(grab)
    try:
        if params is None:
            model(X)
        else:
            torch.func.functional_call(model, params, (X,))
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured[0]


class PointEvaluator(Evaluator):
    """Any model, point by point, on per-thread replicas with a shared first layer (see the module docstring)."""

    thread_safe = True

    @staticmethod
    def supports(batchnorm: str) -> bool:
        return batchnorm == "keep"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.names = list(self.centre)
        first = next(iter(self.centre.values()))
        self.dtype, self.device = first.dtype, first.device
        self.theta = self._flatten(self.centre)
        self.flat_directions = [self._flatten(d) for d in self.directions]
        self.numel = self.theta.numel()
        self._local = threading.local()
        with torch.inference_mode():
            probe = self.X[:2]
            calls = _trace_leaf_calls(self.model, probe)
            out = model_output(self.model(probe))
        sizes = [o.numel() * o.element_size() / len(probe) for *_, o in calls if isinstance(o, torch.Tensor)]
        sizes.append(out[0].numel() * out.element_size())
        # Samples per forward: all activations within a few times the memory budget (whole data for small
        # models), and the widest one within CACHE_BYTES, so the elementwise passes over it (a transformer's
        # GELU, LayerNorm, softmax) run from cache: measured 1.3x faster per point on a GPT-2 at 64 sequences
        # than at 212, while convolution-heavy models are indifferent to the chunk size.
        by_memory = max(64, 4 * self.memory_budget // max(1.0, sum(sizes)))
        by_cache = max(1, CACHE_BYTES // max(1.0, max(sizes)))
        self.chunk = int(min(self.n, by_memory, by_cache))
        self.first_name, self.folded_bn, self.first_outputs = None, None, None
        with torch.inference_mode():
            self._plan_first_layer(calls, probe)
        self.offsets, pos = {}, 0
        for n in self.names:
            self.offsets[n] = pos
            pos += self.centre[n].numel()
        self.faster_kernels, self.folds = True, []
        with torch.no_grad():
            self._plan_replicas(calls, probe)

    # ------------------------------------------------------------------ set-up

    def _flatten(self, params) -> torch.Tensor:
        return torch.cat([params[n].reshape(-1).to(self.dtype) for n in self.names])

    def _plan_replicas(self, calls, probe) -> None:
        """Fold BatchNorms into the layers before them and swap in faster kernels, keeping each only if a
        replica so built still computes the model's function at a point off the centre (on a probe)."""
        names = self._param_names_by_identity()
        skip = {self.first_name} if self.folded_bn is not None else set()
        folds = batchnorm_folding.plan(calls, self.centre, self.directions, names, self.dtype, skip)
        coef = [0.5 - 0.3 * k for k in range(len(self.directions))]
        moved = {n: self.centre[n] + sum((c * d[n] for c, d in zip(coef, self.directions)), torch.zeros_like(self.centre[n]))
                 for n in self.names}
        with torch.inference_mode():
            expected = model_output(torch.func.functional_call(self.model, moved, (probe,)))
        unfolded = (self.theta.clone(), [d.clone() for d in self.flat_directions])
        for self.faster_kernels, self.folds in ((True, folds), (False, folds), (True, []), (False, [])):
            if self.folds:
                self.theta, self.flat_directions = unfolded[0].clone(), [d.clone() for d in unfolded[1]]
                shapes = {n: self.centre[n].shape for n in self.names}
                batchnorm_folding.fold_flat(self.folds, self.offsets, shapes, self.theta, self.flat_directions)
            else:
                self.theta, self.flat_directions = unfolded
            replica, flat = self._replica_model()
            self._write_point(flat, coef)
            with torch.inference_mode():
                if faster_kernels.outputs_agree(model_output(replica(probe.clone())), expected):
                    return
        # nothing left to fall back on: (False, []) is the plain model, which agrees with itself

    def _param_names_by_identity(self) -> dict[int, str]:
        return {id(p): n for n, p in self.model.named_parameters()}

    def _plan_first_layer(self, calls, probe) -> None:
        """Find the first layer, check it is safe to replace, and store its K+1 outputs on the data."""
        first = next((i for i, (_, m, _, _) in enumerate(calls) if next(m.parameters(recurse=False), None) is not None), None)
        if first is None or not self.directions:
            return
        name, mod, inputs, output = calls[first]
        if not isinstance(mod, LINEAR_FIRST_LAYERS) or len(inputs) != 1 or not isinstance(inputs[0], torch.Tensor):
            return
        if inputs[0].shape[0] != probe.shape[0] or not isinstance(output, torch.Tensor):
            return
        if isinstance(mod, nn.Embedding) and mod.max_norm is not None:
            return  # renormalising lookups are not linear
        if sum(1 for _, m, _, _ in calls if m is mod) != 1:
            return  # a layer applied twice (shared weights) cannot be replaced by one stored output
        names = self._param_names_by_identity()
        local = {ln: names[id(p)] for ln, p in mod.named_parameters(recurse=False)}
        if not all(n in self.centre for n in local.values()):
            return
        # Whatever runs before the layer must not depend on the parameters (a parent module could
        # use its own parameters on the input): its input must not move when the point moves.
        moved = {n: self.centre[n] + sum(d[n] for d in self.directions) for n in self.names}
        if not torch.equal(_input_of(self.model, mod, probe), _input_of(self.model, mod, probe, moved)):
            return
        per_sample = output[0].numel() * output.element_size()
        if (len(self.directions) + 1) * self.n * per_sample > MAX_FIRST_LAYER_BYTES:
            return
        inputs = [_input_of(self.model, mod, self.X[s : s + self.chunk]) for s in range(0, self.n, self.chunk)]
        outputs = []
        for k, params in enumerate([self.centre] + list(self.directions)):
            local_params = {ln: params[gn] for ln, gn in local.items()}
            outputs.append(torch.cat([torch.func.functional_call(mod, local_params, (x,)) for x in inputs]))
        self.first_name = name
        self.first_outputs = outputs
        if first + 1 < len(calls) and sum(1 for _, m, _, _ in calls if m is calls[first + 1][1]) == 1:
            self._fold_batchnorm(calls[first + 1], output, names)

    def _fold_batchnorm(self, call, first_output, names) -> None:
        """Fold a BatchNorm that directly follows the first layer into its stored outputs (see docstring)."""
        bn_name, bn, inputs, _ = call
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm) or not inputs or inputs[0] is not first_output:
            return
        affine = batchnorm_folding.fixed_affine(bn, self.centre, self.directions, names, self.dtype)
        if affine is None:
            return
        view = (1, -1) + (1,) * (self.first_outputs[0].dim() - 2)
        scale, shift = affine[0].view(view), affine[1].view(view)
        self.first_outputs = [o * scale + (shift if k == 0 else 0) for k, o in enumerate(self.first_outputs)]
        self.folded_bn = bn_name

    def _replica_model(self) -> tuple[nn.Module, torch.Tensor]:
        """A copy of the model whose parameters are views into one flat buffer, with the planned
        faster kernels and BatchNorm folds."""
        replica = copy.deepcopy(self.model)
        flat = torch.empty(self.numel, dtype=self.dtype, device=self.device)
        for n, p in replica.named_parameters():
            p.data = flat[self.offsets[n] : self.offsets[n] + p.numel()].view_as(p)
        if self.faster_kernels:
            faster_kernels.rewrite(replica)
        batchnorm_folding.fold_replica(self.folds, replica)
        return replica, flat

    def _write_point(self, flat: torch.Tensor, c: list[float]) -> None:
        if c:
            torch.add(self.theta, self.flat_directions[0], alpha=c[0], out=flat)
            for k in range(1, len(c)):
                flat.add_(self.flat_directions[k], alpha=c[k])
        else:
            flat.copy_(self.theta)

    def _replica(self):
        """This thread's model copy, its flat parameter buffer and its first-layer output buffer."""
        state = self._local.__dict__
        if "model" not in state:
            replica, flat = self._replica_model()
            state.update(model=replica, flat=flat, coef=None, span=None, out=None)
            if self.first_name is not None:
                replica.get_submodule(self.first_name).forward = self._first_layer_forward(replica.get_submodule(self.first_name))
            if self.folded_bn is not None:
                replica.get_submodule(self.folded_bn).forward = lambda x: x
        return state

    def _first_layer_forward(self, module: nn.Module):
        original = type(module).forward

        def forward(inp, *args, **kwargs):
            state = self._local.__dict__
            start, stop = state["span"]
            if args or kwargs or not isinstance(inp, torch.Tensor) or inp.shape[0] != stop - start:
                return original(module, inp, *args, **kwargs)  # called on something else: compute it
            out = state["out"]
            if out is None or out.shape[0] != stop - start:
                out = state["out"] = torch.empty_like(self.first_outputs[0][start:stop])
            torch.add(self.first_outputs[0][start:stop], self.first_outputs[1][start:stop], alpha=state["coef"][0], out=out)
            for k in range(2, len(self.first_outputs)):
                out.add_(self.first_outputs[k][start:stop], alpha=state["coef"][k - 1])
            return out

        return forward

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, coefs: np.ndarray):
        coefs = np.asarray(coefs, dtype=np.float64).reshape(len(coefs), -1)
        state = self._replica()
        losses = np.empty(len(coefs))
        accs = np.empty(len(coefs)) if self.has_accuracy else None
        with torch.inference_mode():
            for index, c in enumerate(coefs):
                c = [float(v) for v in c]
                self._write_point(state["flat"], c)
                state["coef"] = c
                total, correct, weight = 0.0, 0.0, 0.0
                for start in range(0, self.n, self.chunk):
                    stop = min(self.n, start + self.chunk)
                    state["span"] = (start, stop)
                    out = model_output(state["model"](self.X[start:stop]))
                    loss, corr, w = self._score(out, self.y[start:stop])
                    total += float(loss)
                    weight += w
                    if corr is not None:
                        correct += float(corr)
                if weight == 0:  # a language model's data with every label -100 (or one-token causal sequences)
                    raise ValueError("the data has no target to score: every label is -100 (a causal LM needs "
                                     "sequences of at least 2 tokens); check it with analysis.sources.data.check_against")
                losses[index] = total / weight
                if accs is not None:
                    accs[index] = correct / weight
        return losses, accs
