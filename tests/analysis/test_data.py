import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from analysis import data
from analysis.data import DataError


def test_digits_split():
    Xtr, ytr = data.load("digits")
    Xte, yte = data.load("digits", "test")
    Xall, yall = data.load("digits", "all")
    assert Xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert Xall.shape == (1797, 64) and len(Xtr) + len(Xte) == 1797
    assert abs(len(Xte) / 1797 - 0.2) < 0.01
    assert float(Xall.max()) == 1.0 and float(Xall.min()) == 0.0
    # stratified: every class has ~20% of its samples in test
    frac = torch.bincount(yte, minlength=10).double() / torch.bincount(yall, minlength=10).double()
    assert torch.all((frac - 0.2).abs() < 0.02)
    # fixed: same split every call, and train/test disjoint
    Xtr2, _ = data.load("digits")
    assert torch.equal(Xtr, Xtr2)
    train_rows = {tuple(r) for r in Xtr.numpy().round(4).tolist()}
    overlap = sum(tuple(r) in train_rows for r in Xte.numpy().round(4).tolist())
    assert overlap < 10  # digits has a few duplicate images; no systematic overlap


def test_moons_seeded():
    X1, y1 = data.load("moons", n=200, noise=0.2, seed=1)
    X2, y2 = data.load("moons", n=200, noise=0.2, seed=1)
    X3, _ = data.load("moons", n=200, noise=0.2, seed=2)
    assert torch.equal(X1, X2) and torch.equal(y1, y2) and not torch.equal(X1, X3)
    assert X1.shape == (160, 2) and set(y1.tolist()) == {0, 1}


def test_teacher_student_regression():
    X, y = data.load("teacher-student", "all", n=100, d_in=5, d_out=2)
    assert X.shape == (100, 5) and y.shape == (100, 2) and y.dtype == torch.float32
    d = data.describe("teacher-student", d_out=2)
    assert d["task"] == "regression" and d["output_dim"] == 2


def test_modular_addition():
    X, y = data.load("modular-addition", "all", p=7)
    assert X.shape == (49, 3) and X.dtype == torch.int64
    assert torch.equal(y, (X[:, 0] + X[:, 1]) % 7) and torch.all(X[:, 2] == 7)
    tr, _ = data.load("modular-addition", "train", p=7, train_fraction=0.5)
    te, _ = data.load("modular-addition", "test", p=7, train_fraction=0.5)
    assert len(tr) + len(te) == 49 and len(tr) == 24 or len(tr) == 25
    assert not ({tuple(r) for r in tr.tolist()} & {tuple(r) for r in te.tolist()})
    X2, _ = data.load("modular-addition", "all", p=7, equals_token=False)
    assert X2.shape == (49, 2)
    with pytest.raises(DataError, match="p"):
        data.load("modular-addition", p=500)


def test_describe_and_registry():
    d = data.describe("digits")
    assert d["input_shape"] == [64] and d["num_classes"] == 10 and d["task"] == "classification"
    assert d["num_train"] + d["num_test"] == 1797
    assert set(data.DATASETS) >= {"digits", "moons", "teacher-student", "modular-addition", "file"}
    assert data.describe("modular-addition", p=11)["vocab_size"] == 12


def test_bad_names_and_options():
    with pytest.raises(DataError, match="unknown dataset"):
        data.load("mnist")
    with pytest.raises(DataError, match="bogus"):
        data.load("moons", bogus=1)
    with pytest.raises(DataError, match="split"):
        data.load("digits", "validation")
    with pytest.raises(DataError, match="noise"):
        data.load("moons", noise="lots")


def test_file_npz_and_safetensors(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4)).astype(np.float64)
    y = rng.integers(0, 3, 50)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    Xa, ya = data.load("file", "all", path=str(tmp_path / "d.npz"))
    assert Xa.dtype == torch.float32 and ya.dtype == torch.int64 and Xa.shape == (50, 4)
    Xtr, _ = data.load("file", "train", path=str(tmp_path / "d.npz"))
    Xte, _ = data.load("file", "test", path=str(tmp_path / "d.npz"))
    assert len(Xtr) == 40 and len(Xte) == 10
    save_file({"X": torch.randn(20, 2, 3), "y": torch.randn(20)}, str(tmp_path / "d.safetensors"))
    Xs, ys = data.load("file", "all", path=str(tmp_path / "d.safetensors"))
    assert Xs.shape == (20, 2, 3) and ys.shape == (20, 1)
    assert data.describe("file", path=str(tmp_path / "d.safetensors"))["task"] == "regression"


def test_file_hostile(tmp_path):
    def npz(name, **arrays):
        np.savez(tmp_path / name, **arrays)
        return str(tmp_path / name)

    with pytest.raises(DataError, match="NaN"):
        data.load("file", path=npz("nan.npz", X=np.array([[np.nan, 1.0]] * 5), y=np.zeros(5, int)))
    with pytest.raises(DataError, match="rows"):
        data.load("file", path=npz("rows.npz", X=np.zeros((5, 2)), y=np.zeros(4, int)))
    with pytest.raises(DataError, match="'X' and 'y'"):
        data.load("file", path=npz("keys.npz", A=np.zeros((5, 2))))
    obj = np.empty(5, dtype=object)
    with pytest.raises(DataError, match="pickle"):
        data.load("file", path=npz("obj.npz", X=np.zeros((5, 2)), y=obj))
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="corrupt"):
        data.load("file", path=str(tmp_path / "junk.npz"))
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{bad")
    with pytest.raises(DataError):
        data.load("file", path=str(tmp_path / "junk.safetensors"))
    with pytest.raises(DataError, match="limit"):
        data.load("file", path=npz("big.npz", X=np.zeros((50, 2)), y=np.zeros(50, int)), max_bytes=10)
    with pytest.raises(DataError, match="path"):
        data.load("file")
    with pytest.raises(DataError, match="npz or .safetensors"):
        (tmp_path / "x.pkl").write_bytes(b"x")
        data.load("file", path=str(tmp_path / "x.pkl"))
