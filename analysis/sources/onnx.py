"""ONNX graphs, forward only, run by onnxruntime with the weights fed in at every point.

The graph is edited as a protobuf, never turned into Python: every finite
floating-point initializer becomes a graph input (one holding +-inf, such as a
causal attention mask, stays a constant; NaN is refused), so a landscape evaluator
can feed ``theta + a d1 + b d2`` per grid point.  :class:`OnnxModule` holds
those weights as ``nn.Parameter`` s under their ONNX names, and its
``forward`` hands the current values (also the ones ``torch.func.functional_call``
substitutes) to the onnxruntime session, so :mod:`analysis.landscape` runs it
like any model.  There is no gradient: no Hessian, no Hessian axes.

Refused: tensors stored as external data (a location such as
``/etc/passwd`` or ``../../x`` is never read), sparse initializers, and
operators outside the standard ONNX domains.  Node names and doc strings are
never executed or interpolated anywhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .base import LoadedModel, SourceError, builtin_loss, builtin_accuracy

__all__ = ["load", "OnnxModule", "MAX_ONNX_BYTES"]

MAX_ONNX_BYTES = 2 * 2**30 - 1  # protobuf's own limit; bigger models need external data, which is refused
STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}
EXPORT_HINT = "export with torch.onnx.export(model, args, 'model.onnx') and keep the weights inside the file (no external data)"


def _tensors_of(graph):
    """Every TensorProto of a graph and its subgraphs (initializers and constant attributes)."""
    import onnx

    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t
            elif attr.type == onnx.AttributeProto.TENSORS:
                yield from attr.tensors
            elif attr.type == onnx.AttributeProto.GRAPH:
                yield from _tensors_of(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _tensors_of(g)


def _check(model, name: str) -> None:
    import onnx

    for t in _tensors_of(model.graph):
        if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
            where = next((e.value for e in t.external_data if e.key == "location"), "?")
            raise SourceError(f"{name}: tensor {t.name!r} refers to external data ({where!r}), which is never read; {EXPORT_HINT}")
    if len(model.graph.sparse_initializer):
        raise SourceError(f"{name}: sparse initializers are not supported; {EXPORT_HINT}")
    domains = {n.domain for n in model.graph.node} | {o.domain for o in model.opset_import}
    odd = sorted(d for d in domains if d not in STANDARD_DOMAINS)
    if odd:
        raise SourceError(f"{name}: operators from custom domains {odd} are not supported; {EXPORT_HINT}")
    if len(model.functions):
        raise SourceError(f"{name}: model-local functions are not supported; {EXPORT_HINT}")


def _attribute_name(text: str) -> str:
    """A valid module attribute name for one part of an ONNX tensor name."""
    clean = re.sub(r"\W", "_", text)
    return clean if clean and not clean[0].isdigit() else f"t_{clean}"


class OnnxModule(nn.Module):
    """An ONNX graph whose float initializers are parameters; ``forward`` runs onnxruntime."""

    def __init__(self, model_bytes: bytes, weights: dict[str, np.ndarray], data_input: str, output: str):
        super().__init__()
        self.model_bytes = model_bytes
        self.data_input = data_input
        self.output = output
        self.feeds: list[tuple[str, str]] = []  # (parameter path, ONNX input name)
        taken: set[str] = set()
        for onnx_name, arr in weights.items():
            parts = [_attribute_name(p) for p in onnx_name.split(".") if p] or ["t"]
            path = ".".join(parts)
            while path in taken:
                parts[-1] += "_"
                path = ".".join(parts)
            taken.add(path)
            owner = self
            for part in parts[:-1]:
                if not hasattr(owner, part):
                    owner.add_module(part, nn.Module())
                owner = getattr(owner, part)
            owner.register_parameter(parts[-1], nn.Parameter(torch.from_numpy(arr.copy()), requires_grad=False))
            self.feeds.append((path, onnx_name))
        self._session = None

    @property
    def session(self):
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = max(1, torch.get_num_threads())
            self._session = ort.InferenceSession(self.model_bytes, opts, providers=["CPUExecutionProvider"])
        return self._session

    def __deepcopy__(self, memo):
        # the session is read-only and shared; parameters are copied as usual
        clone = OnnxModule.__new__(OnnxModule)
        nn.Module.__init__(clone)
        clone.__dict__.update({k: v for k, v in self.__dict__.items() if k not in ("_parameters", "_modules", "_buffers")})
        import copy

        clone._modules = copy.deepcopy(self._modules, memo)
        clone._parameters = copy.deepcopy(self._parameters, memo)
        clone._buffers = copy.deepcopy(self._buffers, memo)
        return clone

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_session"] = None
        return state

    def _value(self, path: str) -> torch.Tensor:
        owner = self
        for part in path.split("."):
            owner = getattr(owner, part)  # getattr sees functional_call's substituted tensors
        return owner

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        feeds = {self.data_input: X.detach().cpu().numpy()}
        for path, onnx_name in self.feeds:
            feeds[onnx_name] = self._value(path).detach().cpu().numpy().astype(np.float32, copy=False)
        (out,) = self.session.run([self.output], feeds)
        return torch.from_numpy(out)


def _floating(t) -> bool:
    import onnx

    return t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)


def load(path: str | os.PathLike, *, input_kind: str | None = None, max_bytes: int = MAX_ONNX_BYTES) -> LoadedModel:
    """Load an ONNX file for forward-only analyses (Terrain's loss convention: cross-entropy
    for integer labels, mean squared error for float ones)."""
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    if path.is_dir():
        path = path / "model.onnx"
    name = path.name
    if path.stat().st_size > max_bytes:
        raise SourceError(f"{name}: larger than {max_bytes:,} bytes")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf decode errors have no common base class
        raise SourceError(f"{name}: not a valid ONNX file ({str(e)[:200]}); {EXPORT_HINT}") from None
    _check(model, name)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise SourceError(f"{name}: invalid ONNX graph ({str(e).splitlines()[0][:200]})") from None
    g = model.graph
    weights: dict[str, np.ndarray] = {}
    keep = []
    for t in g.initializer:
        if _floating(t) and len(t.dims) >= 1:
            arr = numpy_helper.to_array(t).astype(np.float32)
            if np.isnan(arr).any():
                raise SourceError(f"{name}: tensor {t.name!r} holds NaN values")
            if np.isinf(arr).any():  # a constant such as a causal mask's -inf, never a weight to move
                keep.append(t)
                continue
            weights[t.name] = arr
        else:
            keep.append(t)
    listed = {i.name for i in g.input}
    for t_name, arr in weights.items():
        if t_name not in listed:
            g.input.append(onnx.helper.make_tensor_value_info(t_name, onnx.TensorProto.FLOAT, list(arr.shape)))
    for t in g.initializer:
        if t.name in weights and t.data_type != onnx.TensorProto.FLOAT:
            raise SourceError(f"{name}: weights must be float32 (tensor {t.name!r} is not)")
    del g.initializer[:]
    g.initializer.extend(keep)
    data_inputs = [i.name for i in g.input if i.name not in weights]
    if len(data_inputs) != 1 or len(g.output) < 1:
        raise SourceError(f"{name}: the graph must take exactly one data input (found {len(data_inputs)}) and give an output")
    elem = g.input[[i.name for i in g.input].index(data_inputs[0])].type.tensor_type
    rank = len(elem.shape.dim)
    if input_kind is None:
        integer = elem.elem_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
        input_kind = "tokens" if integer else "images" if rank == 4 else "features"
    module = OnnxModule(model.SerializeToString(), weights, data_inputs[0], g.output[0].name)
    try:
        module.session
    except Exception as e:  # onnxruntime reports unsupported graphs with its own exception types
        raise SourceError(f"{name}: onnxruntime cannot run this graph ({str(e)[:200]})") from None
    return LoadedModel(
        module=module.eval(),
        loss_fn=_onnx_loss,
        accuracy_fn=_onnx_accuracy,
        input_kind=input_kind,
        provenance={
            "source": "onnx",
            "architecture": "onnx",
            "model_type": "onnx",
            "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
            "num_parameters": int(sum(a.size for a in weights.values())),
            "path": str(path),
        },
        differentiable=False,
    )


def _onnx_loss(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Terrain's convention; a function of its own so evaluators take the point-by-point path."""
    return builtin_loss(outputs, y)


def _onnx_accuracy(outputs: torch.Tensor, y: torch.Tensor):
    return builtin_accuracy(outputs, y)
