import json
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from analysis import checkpoints, zoo
from analysis.checkpoints import CheckpointError

SPEC = {"kind": "mlp", "in": 8, "hidden": [16, 16], "out": 3}
BN_SPEC = {"kind": "cnn", "in_channels": 1, "image_size": 4, "channels": [4], "out": 3, "batchnorm": True}


def _model(spec=SPEC, seed=0):
    torch.manual_seed(seed)
    m = zoo.build(spec)
    for buf_name, buf in m.named_buffers():  # non-trivial BN running stats
        if buf.is_floating_point():
            buf.uniform_(0.5, 1.5)
    return m


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("spec", [SPEC, BN_SPEC], ids=["mlp", "cnn-bn"])
def test_round_trip_is_exact(tmp_path, spec):
    model = _model(spec)
    path = checkpoints.save(tmp_path / "m.safetensors", model, spec, {"seed": 3, "note": "hi"})
    ck = checkpoints.load(path)
    loaded, s, meta = ck  # unpacks as a 3-tuple
    assert s == zoo.validate_spec(spec) and meta == {"seed": 3, "note": "hi"}
    assert not loaded.training
    _assert_same_state(model, loaded)
    x = torch.randn(4, zoo.input_shape(spec)[0])
    model.eval()
    assert torch.equal(model(x), loaded(x))


def test_float64_round_trip(tmp_path):
    model = _model().double()
    checkpoints.save(tmp_path / "m.safetensors", model, SPEC)
    loaded = checkpoints.load(tmp_path / "m.safetensors").model
    _assert_same_state(model, loaded)


def test_torch_state_dict_needs_spec(tmp_path):
    model = _model()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="spec"):
        checkpoints.load(tmp_path / "m.pt")
    loaded, spec, meta = checkpoints.load(tmp_path / "m.pt", spec=SPEC)
    _assert_same_state(model, loaded)
    assert meta == {}


def test_inspect_reports_without_building(tmp_path):
    model = _model()
    checkpoints.save(tmp_path / "m.safetensors", model, SPEC, {"a": 1})
    info = checkpoints.inspect(tmp_path / "m.safetensors")
    assert info["num_parameters"] == zoo.count_parameters(SPEC)
    assert info["tensors"]["fc0.weight"] == {"shape": [16, 8], "dtype": "float32"}
    assert info["meta"] == {"a": 1} and info["kind"] == "checkpoint"
    assert checkpoints.inspect(tmp_path / "m.safetensors", check_values=False)["spec"] == info["spec"]


def test_trajectory_round_trip(tmp_path):
    states = [_model(seed=i).state_dict() for i in range(3)]
    checkpoints.save_trajectory(tmp_path / "t.safetensors", states, [0, 5, 10], SPEC, {"run": 1})
    traj = checkpoints.load_trajectory(tmp_path / "t.safetensors")
    assert traj.steps == [0, 5, 10] and traj.meta == {"run": 1} and len(traj) == 3
    for a, b in zip(states, traj.states):
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    info = checkpoints.inspect(tmp_path / "t.safetensors")
    assert info["kind"] == "trajectory" and info["steps"] == [0, 5, 10]
    with pytest.raises(CheckpointError, match="trajectory"):
        checkpoints.load(tmp_path / "t.safetensors")
    with pytest.raises(CheckpointError, match="steps"):
        checkpoints.save_trajectory(tmp_path / "u.safetensors", states, [0, 1], SPEC)


# --------------------------------------------------------------------------- hostile files


@pytest.fixture
def good_file(tmp_path):
    return checkpoints.save(tmp_path / "good.safetensors", _model(), SPEC)


def _write_st(path, tensors, spec=SPEC):
    save_file(tensors, str(path), metadata={"terrain.spec": json.dumps(spec)})
    return path


def test_corrupt_header(tmp_path, good_file):
    raw = bytearray(good_file.read_bytes())
    raw[10:20] = b"\x00\xff" * 5
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoints.load(bad)


def test_random_bytes(tmp_path):
    bad = tmp_path / "noise.safetensors"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError):
        checkpoints.load(bad)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty or truncated"):
        checkpoints.load(empty)


def test_truncated(tmp_path, good_file):
    raw = good_file.read_bytes()
    for cut in (len(raw) - 7, len(raw) // 2, 30):
        bad = tmp_path / f"trunc{cut}.safetensors"
        bad.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match="truncated"):
            checkpoints.load(bad)


def test_huge_header_length(tmp_path):
    bad = tmp_path / "huge.safetensors"
    bad.write_bytes(struct.pack("<Q", 2**60) + b"{}" + b"\0" * 100)
    with pytest.raises(CheckpointError):
        checkpoints.load(bad)


def test_wrong_shapes_missing_and_extra_keys(tmp_path):
    state = dict(_model().state_dict())
    wrong = dict(state, **{"fc0.weight": torch.zeros(16, 9)})
    with pytest.raises(CheckpointError, match=r"fc0\.weight.*shape"):
        checkpoints.load(_write_st(tmp_path / "shape.safetensors", wrong))
    missing = {k: v for k, v in state.items() if k != "out.bias"}
    with pytest.raises(CheckpointError, match=r"missing.*out\.bias"):
        checkpoints.load(_write_st(tmp_path / "missing.safetensors", missing))
    extra = dict(state, **{"evil": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="unexpected.*evil"):
        checkpoints.load(_write_st(tmp_path / "extra.safetensors", extra))
    ints = dict(state, **{"fc0.weight": torch.zeros(16, 8, dtype=torch.int32)})
    with pytest.raises(CheckpointError, match="floating"):
        checkpoints.load(_write_st(tmp_path / "int.safetensors", ints))
    # a spec that disagrees with the weights (the spec says 32 hidden units)
    with pytest.raises(CheckpointError, match="shape"):
        checkpoints.load(_write_st(tmp_path / "m.safetensors", state, {**SPEC, "hidden": [32, 16]}))
    with pytest.raises(CheckpointError, match="spec"):
        checkpoints.load(_write_st(tmp_path / "badspec.safetensors", state, {"kind": "mlp", "in": -1}))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_inf(tmp_path, value):
    state = dict(_model().state_dict())
    state["fc1.bias"] = state["fc1.bias"].clone()
    state["fc1.bias"][3] = value
    path = _write_st(tmp_path / "nan.safetensors", state)
    with pytest.raises(CheckpointError, match=r"fc1\.bias.*(NaN|Inf)"):
        checkpoints.load(path)
    with pytest.raises(CheckpointError):
        checkpoints.inspect(path)
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="NaN|Inf"):
        checkpoints.load(tmp_path / "nan.pt", spec=SPEC)
    with pytest.raises(CheckpointError, match="NaN|Inf"):
        checkpoints.save(tmp_path / "out.safetensors", state, SPEC)


def test_non_tensor_values(tmp_path):
    state = dict(_model().state_dict())
    state["fc0.bias"] = [1.0, 2.0]  # a list, not a tensor
    torch.save(state, tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a tensor"):
        checkpoints.load(tmp_path / "list.pt", spec=SPEC)
    torch.save([1, 2, 3], tmp_path / "notdict.pt")
    with pytest.raises(CheckpointError, match="not a state dict"):
        checkpoints.load(tmp_path / "notdict.pt", spec=SPEC)
    # safetensors header entry that is not a tensor description
    header = json.dumps({"__metadata__": {"terrain.spec": json.dumps(SPEC)}, "fc0.weight": {"hello": 1}}).encode()
    bad = tmp_path / "nontensor.safetensors"
    bad.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(CheckpointError, match="non-tensor"):
        checkpoints.load(bad)


class _Payload:
    marker = None

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dumps"])
def test_malicious_pickle_payload_never_runs(tmp_path, writer):
    marker = tmp_path / "PWNED"
    payload = _Payload()
    payload.marker = str(marker)
    obj = {"fc0.weight": payload}
    path = tmp_path / "evil.pt"
    if writer == "torch.save":
        torch.save(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj, protocol=2))
    # sanity: this file really does run its payload when unpickled naively
    assert not marker.exists()
    for loader in (lambda: checkpoints.load(path, spec=SPEC), lambda: checkpoints.inspect(path, spec=SPEC)):
        with pytest.raises(CheckpointError, match="refused|pickle|cannot read") as caught:
            loader()
        # Terrain's own words: not torch's text, with its terminal escapes and its advice on turning weights_only off
        message = str(caught.value)
        assert "\x1b" not in message and "trust the source" not in message and "weights_only" not in message
    assert not marker.exists(), "the pickle payload ran"
    # the same payload does run under a plain unpickler, so the test can fail
    if writer == "pickle.dumps":
        pickle.loads(path.read_bytes())
        assert marker.exists()


def test_max_bytes(tmp_path, good_file):
    with pytest.raises(CheckpointError, match="limit"):
        checkpoints.load(good_file, max_bytes=100)
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoints.load(tmp_path / "nope.safetensors")


def test_save_rejects_unserialisable_meta(tmp_path):
    with pytest.raises(CheckpointError, match="JSON"):
        checkpoints.save(tmp_path / "m.safetensors", _model(), SPEC, {"x": object()})
    assert not list(tmp_path.iterdir())  # nothing half-written


def _zip(path, names):
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        for name in names:
            z.writestr(name, "{}")
    return path


@pytest.mark.parametrize("write, says", [
    (lambda p: p.write_bytes(pickle.dumps({"fc0.weight": [1.0]}, protocol=4)),
     "this is a pickle, not a safetensors file; Terrain never unpickles uploads: save with safetensors"),
    (lambda p: _zip(p, ["model/config.json", "model/model.safetensors"]),
     "this is a zip archive, not a safetensors file: upload it as a .zip"),
    (lambda p: torch.save(_model().state_dict(), p), "this is a PyTorch torch.save file, not a safetensors file"),
])
def test_a_file_misnamed_safetensors_says_what_it_is(tmp_path, write, says):
    """Both used to be told "a PyTorch state-dict file carries no spec; pass spec= to load it"."""
    path = tmp_path / "model.safetensors"
    write(path)
    for loader in (lambda: checkpoints.load(path), lambda: checkpoints.load(path, spec=SPEC), lambda: checkpoints.inspect(path)):
        with pytest.raises(CheckpointError) as caught:
            loader()
        assert says in str(caught.value) and "spec=" not in str(caught.value)


def test_weights_without_a_spec_ask_for_one_without_api_jargon(tmp_path):
    torch.save(_model().state_dict(), tmp_path / "m.pt")
    save_file(dict(_model().state_dict()), str(tmp_path / "plain.safetensors"))
    for name, reason in (("m.pt", "a PyTorch state-dict file carries no architecture spec"),
                         ("plain.safetensors", "this safetensors file was not saved by Terrain")):
        with pytest.raises(checkpoints.SpecNeeded) as caught:
            checkpoints.load(tmp_path / name)
        assert caught.value.reason.startswith(reason) and "spec=" not in str(caught.value)
