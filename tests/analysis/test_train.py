import math

import pytest
import torch

from analysis import data
from analysis.train import train

from .conftest import DIGITS_MLP, SMALL_MLP


def test_digits_mlp_trains_well(digits):
    train_data, test_data = digits
    result = train(DIGITS_MLP, train_data, test_data=test_data, epochs=30, lr=0.05)
    last = result.history[-1]
    assert last["epoch"] == 30 and last["test_accuracy"] > 0.95 and last["train_accuracy"] > 0.99
    assert not result.model.training
    assert [s for s, _ in result.snapshots] == [0, result.total_steps]
    assert set(result.history[0]) == {"step", "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy"}


def test_same_seed_is_bit_identical_and_seeds_differ(digits):
    train_data, test_data = digits
    kwargs = dict(test_data=test_data, epochs=2, lr=0.05, snapshot_every=7)
    a = train(SMALL_MLP, train_data, seed=3, **kwargs)
    b = train(SMALL_MLP, train_data, seed=3, **kwargs)
    c = train(SMALL_MLP, train_data, seed=4, **kwargs)
    assert a.history == b.history
    assert [s for s, _ in a.snapshots] == [s for s, _ in b.snapshots] == [0, 7, 14, 21, 28, 35, 42, 46]
    for (_, sa), (_, sb) in zip(a.snapshots, b.snapshots):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(a.final_state["fc0.weight"], c.final_state["fc0.weight"])


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_optimizers_reduce_loss(digits, optimizer):
    train_data, _ = digits
    lr = 0.05 if optimizer == "sgd" else 3e-3
    r = train(SMALL_MLP, train_data, optimizer=optimizer, lr=lr, steps=60, eval_every=20, weight_decay=1e-4)
    losses = [h["train_loss"] for h in r.history]
    assert [h["step"] for h in r.history] == [0, 20, 40, 60]
    assert losses[-1] < 0.5 * losses[0]


def test_progress_events_and_cancel(digits):
    train_data, test_data = digits
    events = []
    train(SMALL_MLP, train_data, test_data=test_data, steps=30, eval_every=10, on_progress=events.append)
    assert [e["step"] for e in events] == [0, 10, 20, 30]
    assert events[-1]["fraction"] == 1.0 and events[1]["total_steps"] == 30
    assert all(e["type"] == "metrics" and e["test_accuracy"] is not None for e in events)

    class Cancelled(Exception):
        pass

    def cancel(event):
        if event["step"] >= 10:
            raise Cancelled

    with pytest.raises(Cancelled):
        train(SMALL_MLP, train_data, steps=1000, eval_every=10, on_progress=cancel)


def test_regression_uses_mse():
    X, y = data.load("teacher-student", n=300, d_in=4, d_out=1)
    spec = {"kind": "mlp", "in": 4, "hidden": [32], "out": 1, "activation": "tanh"}
    r = train(spec, (X, y), lr=0.05, epochs=20, batch_size=32)
    assert r.history[-1]["train_accuracy"] is None
    assert r.history[-1]["train_loss"] < 0.5 * r.history[0]["train_loss"]
    # the reported loss is the mean squared error
    with torch.no_grad():
        mse = torch.mean((r.model(X) - y) ** 2).item()
    assert math.isclose(mse, r.history[-1]["train_loss"], rel_tol=1e-4)


def test_label_noise_and_init_state(digits):
    train_data, _ = digits
    noisy = train(SMALL_MLP, train_data, steps=0, label_noise=0.5)
    clean = train(SMALL_MLP, train_data, steps=0)
    assert noisy.history[0]["train_loss"] != clean.history[0]["train_loss"]
    start = train(SMALL_MLP, train_data, steps=0, init_state=clean.final_state, seed=9)
    assert all(torch.equal(start.final_state[k], clean.final_state[k]) for k in clean.final_state)


def test_transformer_and_cnn_train_steps():
    X, y = data.load("modular-addition", p=11, train_fraction=0.6)
    spec = {"kind": "transformer", "p": 11, "d_model": 16, "heads": 2, "layers": 1, "d_mlp": 32}
    r = train(spec, (X, y), optimizer="adamw", lr=3e-3, batch_size=512, steps=40, eval_every=40)
    assert r.history[-1]["train_loss"] < r.history[0]["train_loss"]
    Xd, yd = data.load("digits")
    cnn = {"kind": "cnn", "image_size": 8, "channels": [4], "out": 10, "batchnorm": True}
    r = train(cnn, (Xd[:256], yd[:256]), steps=20, eval_every=20, lr=0.05)
    assert r.history[-1]["train_loss"] < r.history[0]["train_loss"]


def test_bad_arguments(digits):
    train_data, _ = digits
    with pytest.raises(ValueError, match="optimizer"):
        train(SMALL_MLP, train_data, optimizer="lbfgs")
    with pytest.raises(ValueError, match="not both"):
        train(SMALL_MLP, train_data, epochs=1, steps=1)
    with pytest.raises(ValueError, match="does not fit"):
        train({"kind": "mlp", "in": 10, "out": 10}, train_data, steps=1)
