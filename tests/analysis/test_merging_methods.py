"""Known answers for every merge method (analysis.merging), on small hand-built state dicts."""

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from analysis import merging
from analysis.connectivity import apply_permutations, permutation_spec
from analysis.merging import methods

SPEC = {"kind": "mlp", "in": 5, "hidden": [7, 6], "out": 3}


def random_state(seed, spec=SPEC, dtype=torch.float64):
    from analysis import zoo

    torch.manual_seed(seed)
    return {k: v.to(dtype) for k, v in zoo.build(spec).state_dict().items()}


def assert_states_equal(a, b, atol=0.0):
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0.0)


# --------------------------------------------------------------------------- average and task arithmetic


def test_average_of_identical_models_is_the_model():
    a = random_state(0)
    assert_states_equal(merging.weighted_average([a, a, a], [0.2, 0.3, 0.5]), a, atol=1e-15)


def test_weighted_average_normalises_weights():
    a, b = random_state(0), random_state(1)
    merged = merging.weighted_average([a, b], [1.0, 3.0])
    for k in a:
        torch.testing.assert_close(merged[k], 0.25 * a[k] + 0.75 * b[k], atol=1e-14, rtol=0)
    with pytest.raises(ValueError, match="weights"):
        merging.weighted_average([a, b], [1.0])


def test_mismatched_models_are_named():
    a, b = random_state(0), random_state(1, {"kind": "mlp", "in": 5, "hidden": [8, 6], "out": 3})
    with pytest.raises(ValueError, match="fc0.weight"):
        merging.weighted_average([a, b])


def test_task_arithmetic_lambda_zero_is_base_and_one_is_sum():
    base, a, b = random_state(0), random_state(1), random_state(2)
    assert_states_equal(merging.task_arithmetic(base, [a, b], lam=0.0), base)
    merged = merging.task_arithmetic(base, [a, b], lam=1.0)
    for k in base:
        torch.testing.assert_close(merged[k], a[k] + b[k] - base[k], atol=1e-14, rtol=0)
    assert_states_equal(merging.task_arithmetic(base, [a], lam=1.0), a, atol=1e-15)


# --------------------------------------------------------------------------- TIES


def test_trim_keeps_largest_magnitudes():
    delta = torch.tensor([0.1, -5.0, 0.3, 2.0, -0.2], dtype=torch.float64)
    assert merging.trim_top_magnitude(delta, 0.4).tolist() == [0.0, -5.0, 0.0, 2.0, 0.0]
    assert merging.trim_top_magnitude(delta, 1.0).tolist() == delta.tolist()


def test_ties_without_conflicts_or_trimming_is_the_sum():
    base = random_state(0)
    # Task vectors on disjoint entries: no entry has two values, so the disjoint mean is the sum.
    masks = [torch.rand(v.shape, generator=torch.Generator().manual_seed(i)) for i, v in enumerate(base.values())]
    a = {k: base[k] + torch.where(m < 0.5, 0.3 + m, torch.zeros_like(m)).double() for k, m in zip(base, masks)}
    b = {k: base[k] - torch.where(m >= 0.5, m, torch.zeros_like(m)).double() for k, m in zip(base, masks)}
    merged = merging.ties_merge(base, [a, b], density=1.0, lam=1.0)
    expected = merging.task_arithmetic(base, [a, b], lam=1.0)
    assert_states_equal(merged, expected, atol=1e-14)


def test_ties_elects_the_sign_with_more_mass_and_averages_agreeing_entries():
    base = {"w": torch.zeros(3, dtype=torch.float64)}
    a = {"w": torch.tensor([3.0, 1.0, 2.0], dtype=torch.float64)}
    b = {"w": torch.tensor([-1.0, 3.0, -4.0], dtype=torch.float64)}
    merged = merging.ties_merge(base, [a, b], density=1.0)
    # entry 0: + wins (3 vs 1) -> 3; entry 1: both + -> mean 2; entry 2: - wins -> -4
    assert merged["w"].tolist() == [3.0, 2.0, -4.0]


# --------------------------------------------------------------------------- DARE


def test_dare_p_zero_is_task_arithmetic():
    base, a, b = random_state(0), random_state(1), random_state(2)
    assert_states_equal(merging.dare_merge(base, [a, b], p=0.0, lam=0.7), merging.task_arithmetic(base, [a, b], lam=0.7))


def test_dare_is_seeded_drops_p_and_rescales():
    delta = torch.linspace(1, 2, 20_000, dtype=torch.float64)
    kept = merging.drop_and_rescale(delta, 0.3, torch.Generator().manual_seed(5))
    again = merging.drop_and_rescale(delta, 0.3, torch.Generator().manual_seed(5))
    assert torch.equal(kept, again)
    nonzero = kept != 0
    assert abs(1 - nonzero.double().mean().item() - 0.3) < 0.015  # ~5 standard deviations
    torch.testing.assert_close(kept[nonzero], delta[nonzero] / 0.7, atol=1e-15, rtol=0)


def test_dare_expectation_is_unbiased():
    base = {"w": torch.zeros(50, dtype=torch.float64)}
    model = {"w": torch.linspace(-1, 1, 50, dtype=torch.float64)}
    p, runs = 0.6, 2000
    mean = sum(merging.dare_merge(base, [model], p=p, seed=s)["w"] for s in range(runs)) / runs
    # Each entry's estimate has standard deviation |d| sqrt(p/(1-p)) / sqrt(runs).
    sd = model["w"].abs() * np.sqrt(p / (1 - p)) / np.sqrt(runs)
    assert bool(((mean - model["w"]).abs() <= 5 * sd + 1e-12).all())
    assert not torch.equal(merging.dare_merge(base, [model], p=p, seed=0)["w"], model["w"])


# --------------------------------------------------------------------------- orthogonal


def rotation(n, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n)) * scale
    return expm(a - a.T)


def test_procrustes_recovers_a_rotation():
    w0 = np.random.default_rng(0).normal(size=(8, 5))
    q = rotation(5, 1)
    np.testing.assert_allclose(merging.procrustes_rotation(w0, w0 @ q), q, atol=1e-10)


def test_orthogonal_merge_of_one_rotation_returns_it():
    base = {"w": torch.from_numpy(np.random.default_rng(0).normal(size=(8, 5))), "b": torch.zeros(8, dtype=torch.float64)}
    rotated = {"w": base["w"] @ torch.from_numpy(rotation(5, 1)), "b": torch.ones(8, dtype=torch.float64)}
    merged = merging.orthogonal_merge(base, [rotated], lam=1.0)
    torch.testing.assert_close(merged["w"], rotated["w"], atol=1e-10, rtol=0)
    torch.testing.assert_close(merged["b"], rotated["b"], atol=0, rtol=0)


def test_orthogonal_merge_averages_on_the_group():
    w0 = np.random.default_rng(0).normal(size=(9, 6))
    a = np.random.default_rng(3).normal(size=(6, 6)) * 0.3
    a = a - a.T
    base = {"w": torch.from_numpy(w0)}
    models = [{"w": torch.from_numpy(w0 @ expm(a))}, {"w": torch.from_numpy(w0 @ expm(2 * a))}]
    merged = merging.orthogonal_merge(base, models)  # lam = 1/2: the geodesic mean expm(1.5 a)
    torch.testing.assert_close(merged["w"], torch.from_numpy(w0 @ expm(1.5 * a)), atol=1e-10, rtol=0)
    # A plain average of the two rotated matrices shrinks the weights; the group mean keeps the norm.
    plain = merging.weighted_average(models)["w"]
    assert float(plain.norm()) < float(merged["w"].norm()) - 1e-3
    assert abs(float(merged["w"].norm()) - float(np.linalg.norm(w0))) < 1e-9


# --------------------------------------------------------------------------- aligned averaging


def permuted(state, seed):
    ps = permutation_spec(SPEC)
    rng = np.random.default_rng(seed)
    return apply_permutations(state, ps, {p: rng.permutation(n) for p, n in ps.perms.items()})


def test_aligned_average_of_permuted_copies_is_the_model():
    a = random_state(0)
    copies = [a, permuted(a, 1), permuted(a, 2)]
    assert not torch.equal(copies[1]["fc0.weight"], a["fc0.weight"])
    merged = merging.aligned_average(copies, SPEC)
    assert_states_equal(merged.state, a, atol=1e-12)
    assert merged.changed_units[0] > 0 and merged.changed_units[-1] == 0
    naive = merging.weighted_average(copies)
    assert float((naive["fc0.weight"] - a["fc0.weight"]).abs().max()) > 0.05


# --------------------------------------------------------------------------- registry


def test_every_method_by_name_with_its_knob():
    base, a, b = random_state(0), random_state(1), random_state(2)
    for name, method in merging.METHODS.items():
        state = merging.merge(name, base=base, models=[a, b], spec=SPEC)
        assert set(state) == set(base), name
        assert method.citation
    assert_states_equal(merging.merge("average", models=[a, b], alpha=0.0), a)
    assert_states_equal(merging.merge("task_arithmetic", base=base, models=[a, b], lam=0.0), base)
    with pytest.raises(ValueError, match="unknown merge method"):
        merging.merge("soup", models=[a])
    with pytest.raises(ValueError, match="needs a base"):
        merging.merge("ties", models=[a])
    assert methods.alpha_weights(0.5, 3) == [0.5, 0.25, 0.25]
