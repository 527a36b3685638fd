import numpy as np
import pytest
import torch

from analysis import connectivity as CN
from analysis import zoo


def test_barrier_height_formula():
    t = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    loss = np.array([1.0, 2.0, 3.0, 2.5, 2.0])
    # line between endpoints: 1 + t; excess: 0, 0.75, 1.5, 0.75, 0
    assert CN.barrier_height(t, loss) == pytest.approx(1.5)
    assert CN.barrier_height(t, 1 + t) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        CN.barrier_height(np.array([0.0, 0.5]), np.array([1.0, 2.0]))


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "mlp", "in": 10, "hidden": [12, 9], "out": 4},
        {"kind": "mlp", "in": 10, "hidden": [12], "out": 4, "batchnorm": True},
        {"kind": "cnn", "in_channels": 2, "image_size": 6, "channels": [5, 7], "out": 3, "batchnorm": True},
    ],
    ids=["mlp", "mlp-bn", "cnn-bn"],
)
def test_weight_matching_preserves_function(spec):
    torch.manual_seed(0)
    a = zoo.build(spec).double().eval()
    b = zoo.build(spec).double().eval()
    for m in (a, b):
        for name, buf in m.named_buffers():
            if buf.is_floating_point():
                buf.uniform_(0.5, 1.5)
    X = torch.randn(64, zoo.input_shape(spec)[0], dtype=torch.float64)
    al = CN.weight_matching(a, b, spec=spec)
    with torch.no_grad():
        torch.testing.assert_close(al.model(X), b(X), rtol=1e-5, atol=1e-5)
    assert any((p != np.arange(len(p))).any() for p in al.permutations.values())
    # matching really moved b towards a
    def dist(m):
        return sum(((pa - pm) ** 2).sum().item() for pa, pm in zip(a.parameters(), m.parameters()))

    assert dist(al.model) < dist(b)


def test_weight_matching_lowers_digits_barrier(small_models, digits, record_property, capsys):
    (train_data, test_data) = digits
    a, b = small_models[0].model, small_models[1].model
    X = torch.cat([train_data[0], test_data[0]])
    y = torch.cat([train_data[1], test_data[1]])
    out = CN.align_and_compare(a, b, (X, y), steps=11)
    record_property("barrier_naive", out["barrier_naive"])
    record_property("barrier_aligned", out["barrier_aligned"])
    with capsys.disabled():
        print(f"\n[digits MLP 64-32-32-10] barrier naive={out['barrier_naive']:.4f} aligned={out['barrier_aligned']:.4f}")
    assert out["max_output_difference"] < 1e-4
    assert out["barrier_aligned"] < 0.5 * out["barrier_naive"]
    assert out["barrier_naive"] > 0.05  # two seeds really are separated by a barrier


def test_interpolate_endpoints(small_models, digits):
    (train_data, _) = digits
    a, b = small_models[0].model, small_models[1].model
    res = CN.interpolate(a, b, train_data, steps=5)
    assert res.t[0] == 0 and res.t[-1] == 1
    assert res.loss[0] == pytest.approx(small_models[0].history[-1]["train_loss"], rel=1e-5)
    assert res.loss[-1] == pytest.approx(small_models[1].history[-1]["train_loss"], rel=1e-5)
    assert res.barrier_height == pytest.approx(CN.barrier_height(res.t, res.loss))


def test_transformer_not_supported():
    with pytest.raises(NotImplementedError, match="transformer"):
        CN.permutation_spec({"kind": "transformer", "p": 7})


@pytest.mark.parametrize("hidden_b", [[12, 9], [7]], ids=["deeper", "narrower"])
def test_interpolating_models_of_different_architectures_says_so(hidden_b):
    a = zoo.build({"kind": "mlp", "in": 10, "hidden": [12], "out": 4})
    b = zoo.build({"kind": "mlp", "in": 10, "hidden": hidden_b, "out": 4})
    X, y = torch.randn(8, 10), torch.randint(0, 4, (8,))
    with pytest.raises(ValueError, match="different architectures"):
        CN.interpolate(a, b, (X, y), steps=3)
