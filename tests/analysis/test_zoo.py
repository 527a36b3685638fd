import json
import subprocess
import sys

import pytest
import torch

from analysis import zoo
from analysis.zoo import SpecError

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


SPECS = [
    {"kind": "mlp", "in": 64, "hidden": [256, 256], "out": 10},
    {"kind": "mlp", "in": 2, "hidden": [16], "out": 2, "batchnorm": True, "activation": "tanh"},
    {"kind": "mlp", "in": 8, "out": 3},
    {"kind": "cnn", "in_channels": 1, "image_size": 8, "channels": [16, 32], "out": 10},
    {"kind": "cnn", "in_channels": 3, "image_size": 5, "channels": [4, 4, 4], "out": 3, "batchnorm": True},
    {"kind": "transformer", "p": 113, "d_model": 128, "heads": 4, "layers": 1, "d_mlp": 512},
    {"kind": "transformer", "p": 7, "d_model": 16, "heads": 2, "layers": 2, "d_mlp": 32, "layernorm": True},
]


def _example_input(spec, n=5):
    s = zoo.validate_spec(spec)
    if s["kind"] == "transformer":
        return torch.randint(0, s["p"], (n, 3))
    return torch.randn(n, zoo.input_shape(s)[0])


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["kind"])
def test_build_forward_and_parameter_count(spec):
    torch.manual_seed(0)
    model = zoo.build(spec)
    out = model(_example_input(spec))
    assert out.shape == (5, zoo.output_size(spec))
    assert sum(p.numel() for p in model.parameters()) == zoo.count_parameters(spec)
    # spec is JSON-able and the normalised form is stable
    s = zoo.validate_spec(spec)
    assert zoo.validate_spec(json.loads(json.dumps(s))) == s
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == zoo.parameter_shapes(spec)


def test_state_dict_keys_are_predictable():
    model = zoo.build({"kind": "mlp", "in": 64, "hidden": [256, 256], "out": 10})
    assert list(model.state_dict()) == ["fc0.weight", "fc0.bias", "fc1.weight", "fc1.bias", "out.weight", "out.bias"]
    cnn = zoo.build({"kind": "cnn", "image_size": 8, "channels": [4], "out": 10, "batchnorm": True})
    assert list(cnn.state_dict())[:3] == ["conv0.weight", "conv0.bias", "bn0.weight"]


def test_cnn_accepts_flat_and_image_inputs():
    torch.manual_seed(0)
    model = zoo.build({"kind": "cnn", "in_channels": 1, "image_size": 8, "channels": [4], "out": 10}).eval()
    x = torch.randn(3, 64)
    assert torch.equal(model(x), model(x.reshape(3, 1, 8, 8)))


def test_transformer_accepts_two_or_three_tokens():
    model = zoo.build({"kind": "transformer", "p": 7, "d_model": 8, "heads": 2, "d_mlp": 16})
    assert model(torch.tensor([[1, 2]])).shape == (1, 7)
    assert model(torch.tensor([[1, 2, 7]])).shape == (1, 7)


def test_defaults_filled():
    s = zoo.validate_spec({"kind": "mlp", "in": 4, "out": 2})
    assert s["hidden"] == [] and s["batchnorm"] is False and s["activation"] == "relu"


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"kind": "mlp", "in": 64, "hidden": [5000], "out": 10}, "hidden"),
        ({"kind": "mlp", "in": 64, "hidden": [16] * 9, "out": 10}, "hidden"),
        ({"kind": "mlp", "in": 64, "out": 10, "depth": 3}, "depth"),
        ({"kind": "mlp", "hidden": [3], "out": 10}, "in"),
        ({"kind": "mlp", "in": "64", "out": 10}, "in"),
        ({"kind": "mlp", "in": 64, "out": 10, "activation": "swish9"}, "activation"),
        ({"kind": "mlp", "in": 64, "out": 10, "batchnorm": 1}, "batchnorm"),
        ({"kind": "rnn"}, "kind"),
        ({"kind": "cnn", "image_size": 8, "channels": [], "out": 10}, "channels"),
        ({"kind": "transformer", "d_model": 10, "heads": 3}, "heads"),
        ({"kind": "transformer", "layers": 9}, "layers"),
    ],
)
def test_bad_specs_name_the_field(spec, field):
    with pytest.raises(SpecError, match=field):
        zoo.validate_spec(spec)


def test_parameter_limit():
    with pytest.raises(SpecError, match="parameters"):
        zoo.validate_spec({"kind": "mlp", "in": 4096, "hidden": [4096] * 2, "out": 10})
    with pytest.raises(SpecError):
        zoo.validate_spec("not a dict")


def test_check_compatible():
    from analysis import data

    d = data.describe("digits")
    zoo.check_compatible({"kind": "mlp", "in": 64, "out": 10}, d)
    zoo.check_compatible({"kind": "cnn", "image_size": 8, "out": 10}, d)
    with pytest.raises(SpecError, match="in"):
        zoo.check_compatible({"kind": "mlp", "in": 32, "out": 10}, d)
    with pytest.raises(SpecError, match="out"):
        zoo.check_compatible({"kind": "mlp", "in": 64, "out": 5}, d)
    with pytest.raises(SpecError, match="transformer"):
        zoo.check_compatible({"kind": "transformer", "p": 10}, d)
    zoo.check_compatible({"kind": "transformer", "p": 11}, data.describe("modular-addition", p=11))


def test_library_never_imports_django():
    code = (
        "import importlib, pkgutil, sys, analysis\n"
        "names = [m.name for m in pkgutil.iter_modules(analysis.__path__)]\n"
        "assert {'zoo', 'data', 'train', 'checkpoints'} <= set(names), names\n"
        "for name in names: importlib.import_module('analysis.' + name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'channels')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
