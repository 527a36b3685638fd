"""Reading and writing weight files without trusting them.

Uploads are hostile until proven otherwise: nothing here ever unpickles.  A
safetensors header is parsed and checked (sizes, dtypes, offsets that tile the
data exactly) before any tensor is read; a PyTorch ``.pt``/``.pth`` state dict is
read only through ``torch.load(path, weights_only=True)`` (PyTorch's restricted
unpickler), after its zip members are checked for decompression bombs.  Every
problem raises :class:`CheckpointError` with a message saying what is wrong.
Writes are atomic (temporary file + rename).
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from . import bounded_json

MAX_HEADER_BYTES = 100 * 2**20  # the limit safetensors itself uses
_ANSI_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # torch bolds parts of its errors for a terminal
_UNSUPPORTED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")  # the refused name, in any of torch's phrasings

ST_DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}


class CheckpointError(ValueError):
    """A checkpoint or trajectory file cannot be used; the message says why."""


class SpecNeeded(CheckpointError):
    """Weights without an architecture spec, and none given.  `reason` says why; each caller says where
    to give one (the CLI's --spec, the web form's field)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"{reason}: give its architecture spec")


NO_SPEC_IN_STATE_DICT = "a PyTorch state-dict file carries no architecture spec"
NO_SPEC_IN_SAFETENSORS = ("this safetensors file was not saved by Terrain (no 'terrain.spec' metadata; a Hugging Face "
                          "model's weights load with their folder, config.json included, as a .zip)")


def json_dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what} must be JSON-serialisable: {exc}") from None


def json_loads(text: str, what: str) -> Any:
    try:
        return bounded_json.loads(text)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what} in the file is not valid JSON: {exc}") from None


def check_size(path: Path, max_bytes: int | None) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint file {str(path)!r}: {exc}") from None
    if not path.is_file():
        raise CheckpointError(f"{str(path)!r} is not a regular file")
    if max_bytes is not None and size > max_bytes:
        raise CheckpointError(f"file is {size:,} bytes, more than the limit of {max_bytes:,} bytes")
    if size < 8:
        raise CheckpointError(f"file is only {size} bytes: empty or truncated")
    return size


def sniff(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(9)
    # safetensors: u64 header length, then a JSON object starting with '{'.
    # Checked first: the length's low byte may well be 0x80, like a pickle's first byte.
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    if head[:1] == b"\x80":  # pickle protocol 2+ (legacy torch.save format)
        return "pickle"
    return "unknown"


def misnamed(path: Path, kind: str) -> str | None:
    """Why a file named .safetensors is not one, from `kind` (its first bytes, see sniff); None if it is not misnamed."""
    if path.suffix.lower() != ".safetensors" or kind == "safetensors":
        return None
    if kind == "torch-zip":
        if _is_torch_save(path):
            return "this is a PyTorch torch.save file, not a safetensors file: upload it as a .pt with its architecture spec"
        return "this is a zip archive, not a safetensors file: upload it as a .zip"
    if kind == "pickle":
        return "this is a pickle, not a safetensors file; Terrain never unpickles uploads: save with safetensors"
    return None


def _is_torch_save(path: Path) -> bool:
    """A zip whose directory lists torch.save's data.pkl (only the directory is read)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.rsplit("/", 1)[-1] == "data.pkl" for name in archive.namelist()[:10_000])
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def read_safetensors_header(path: Path, size: int) -> tuple[dict[str, dict], dict[str, str], int]:
    """Parse and check the header without reading tensor data.

    Returns (tensor entries, metadata, data section length).
    """
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > MAX_HEADER_BYTES:
            raise CheckpointError(f"safetensors header claims {n:,} bytes, more than {MAX_HEADER_BYTES:,}: corrupt file")
        if 8 + n > size:
            raise CheckpointError(
                f"safetensors header claims {n:,} bytes but the file has only {size - 8:,} after the length: "
                "truncated or corrupt file"
            )
        raw = fh.read(n)
    try:
        header = bounded_json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"safetensors header is not valid JSON (corrupt file): {exc}") from None
    if not isinstance(header, dict):
        raise CheckpointError("safetensors header is not a JSON object (corrupt file)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise CheckpointError("safetensors metadata must map strings to strings")
    data_len = size - 8 - n
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"entry {name!r} is not a tensor description (non-tensor value)")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in ST_DTYPES:
            raise CheckpointError(f"tensor {name!r} has unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise CheckpointError(f"tensor {name!r} has an invalid shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise CheckpointError(f"tensor {name!r} has invalid data offsets {offsets!r}")
        begin, end = offsets
        if not 0 <= begin <= end:
            raise CheckpointError(f"tensor {name!r} has invalid data offsets {offsets!r}")
        if end > data_len:
            raise CheckpointError(
                f"tensor {name!r} ends at byte {end:,} of the data but the file holds only {data_len:,}: truncated file"
            )
        if end - begin != math.prod(shape) * ST_DTYPES[dtype][1]:
            raise CheckpointError(f"tensor {name!r}: data size does not match shape {shape} and dtype {dtype} (corrupt)")
        spans.append((begin, end))
    spans.sort()
    pos = 0
    for begin, end in spans:
        if begin != pos:
            raise CheckpointError("tensor data regions overlap or leave gaps (corrupt file)")
        pos = end
    if pos != data_len:
        raise CheckpointError(f"file has {data_len - pos:,} bytes after the last tensor (corrupt or wrong file)")
    return header, metadata, data_len


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read safetensors data: {exc}") from None


def check_torch_zip(path: Path, max_bytes: int | None) -> None:
    """torch.save stores its members uncompressed: a member that inflates, or members that
    add up to more than twice the file cap, are a decompression bomb, refused before loading."""
    from analysis.archives import ArchiveRejected, check_zip

    try:
        check_zip(path, max_unpacked_bytes=None if max_bytes is None else 2 * max_bytes)
    except ArchiveRejected as exc:
        raise CheckpointError(f"refused PyTorch file: {exc}") from None


def load_torch_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        # weights_only=True: PyTorch's restricted unpickler; never runs a payload.
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure is the file's fault
        text = _ANSI_ESCAPES.sub("", str(exc))
        if "weights_only" in text or "Unsupported global" in text or "Unpickl" in type(exc).__name__:
            # Not torch's own text: it explains how to switch weights_only off, which Terrain never does.
            named = _UNSUPPORTED_GLOBAL.search(text)
            asks = f" (it asks for {named.group(1)[:100]})" if named else ""
            raise CheckpointError(
                f"refused to load: the file is a pickle with objects other than tensors{asks}; only tensors are ever "
                "read from a .pt, no code runs: save the state dict with safetensors"
            ) from None
        msg = text.splitlines()[0] if text else type(exc).__name__
        raise CheckpointError(f"cannot read PyTorch file (corrupt or truncated?): {msg[:200]}") from None
    for wrapper in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict):
        raise CheckpointError(f"PyTorch file holds a {type(obj).__name__}, not a state dict of tensors")
    for k, v in obj.items():
        if not isinstance(k, str):
            raise CheckpointError(f"state dict key {k!r} is not a string")
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"state dict entry {k!r} is a {type(v).__name__}, not a tensor (non-tensor value)")
    return dict(obj)


def atomic_save(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
