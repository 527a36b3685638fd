"""Point-parallel planes in forked processes (what a Celery prefork child is).

The hazard, reproduced: GNU OpenMP's thread pool does not survive fork.  A parent
that ran one torch op on two threads leaves every forked child hanging on its
own first two-thread op.  ``plane(threads=2)`` holds torch at one intra-op
thread in every thread it uses, so it finishes in such a child, equal to the
serial plane.
"""

import os
import pickle
import select
import signal
import time

import numpy as np
import torch

from analysis import data, landscape, zoo

CNN = {"kind": "cnn", "in_channels": 1, "image_size": 8, "channels": [4, 6], "out": 10, "batchnorm": True}
MLP = {"kind": "mlp", "in": 64, "hidden": [32, 32], "out": 10}


def _use_two_omp_threads() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    a = torch.randn(600, 600)
    for _ in range(3):
        a @ a  # forms the OpenMP team in this (parent) process
    torch.set_num_threads(before)


def _in_fork(job, timeout: float):
    """Run ``job()`` in a forked child; its pickled result, or None if it did not finish in time."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        try:
            payload = pickle.dumps(("ok", job()))
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            payload = pickle.dumps(("error", repr(exc)))
        os.write(write, payload)
        os._exit(0)
    os.close(write)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([read], [], [], 0.2)
            if ready:
                chunk = os.read(read, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        else:
            return None
    finally:
        os.close(read)
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == 0:  # still running (hung): end it
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    status, value = pickle.loads(b"".join(chunks))
    assert status == "ok", value
    return value


def test_two_intra_op_threads_hang_in_a_fork_of_a_parent_that_used_them():
    _use_two_omp_threads()

    def naive():
        torch.set_num_threads(2)
        a = torch.randn(600, 600)
        return float((a @ a).sum())

    assert _in_fork(naive, timeout=8) is None  # the hang that kept point-parallel off in workers


def test_point_parallel_plane_finishes_in_a_fork_and_equals_serial():
    X, y = data.load("digits", "train")
    X, y = X[:300], y[:300]
    torch.manual_seed(0)
    models = {"cnn": zoo.build(CNN).eval(), "mlp": zoo.build(MLP).eval()}
    serial = {k: landscape.plane(m, (X, y), resolution=7, seed=1) for k, m in models.items()}
    _use_two_omp_threads()

    def parallel():
        torch.set_num_threads(2)  # what the child inherits from a careless parent, at worst
        out = {}
        for k, m in models.items():
            s = landscape.plane(m, (X, y), resolution=7, seed=1, threads=2)
            out[k] = (s.loss, s.accuracy, s.point_threads, s.evaluator, torch.get_num_threads())
        return out

    result = _in_fork(parallel, timeout=120)
    assert result is not None, "point-parallel plane hung in a forked process"
    for k, (loss, acc, workers, evaluator, threads_after) in result.items():
        assert workers == 2 and threads_after == 2, k  # split between 2 threads; torch's setting restored
        assert evaluator == {"cnn": "PointEvaluator", "mlp": "MLPEvaluator"}[k]
        np.testing.assert_allclose(loss, serial[k].loss, rtol=1e-5)
        np.testing.assert_array_equal(acc, serial[k].accuracy)


def test_a_batch_is_shared_equally_between_the_workers():
    """32 points cut from one long grid row go 16/16 (whole rows only gave them all to one worker); an
    evaluator whose points share products along rows gets whole rows, balanced over several rows."""
    from analysis.point_parallel import PointParallel

    parallel = PointParallel(2)
    parallel.workers = 2
    parallel.ev = object()
    one_row = np.array([[0.3, b] for b in np.linspace(-1, 1, 32)])
    assert [len(s) for s in parallel._split(one_row)] == [16, 16]
    three_rows = np.array([[a, b] for a in (0.0, 0.1, 0.2) for b in np.linspace(-1, 1, 41)])
    assert [len(s) for s in parallel._split(three_rows)] == [62, 61]

    class RowSharing:
        shares_rows = True

    parallel.ev = RowSharing()
    six_rows = np.array([[a, b] for a in np.linspace(0, 0.5, 6) for b in np.linspace(-1, 1, 41)])
    shares = parallel._split(six_rows)
    assert [len(s) for s in shares] == [123, 123]
    assert all(len({tuple(six_rows[i, :-1]) for i in share}) == 3 for share in shares)  # whole rows each
    assert sorted(np.concatenate(shares).tolist()) == list(range(246))
