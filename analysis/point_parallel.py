"""Grid points on several CPU threads: each batch is split *between points*, one torch thread each.

Grid points are independent, so T single-threaded workers on T slices of a batch
keep every core busy on full-size products, whereas torch's intra-op threading
splits each medium-sized product and loses much of the second core to
synchronisation (measured: 0.37 of dense-GEMM peak at two threads, against 0.62
at one).  Torch releases the GIL inside its kernels, so plain threads suffice.

It is also what makes parallelism safe in a forked process (a Celery prefork
child): GNU OpenMP's thread pool does not survive ``fork``.  A child whose parent
ever ran an OpenMP region with more than one thread hangs on the first such
region of its own, waiting at a barrier for pool threads that were not copied
(reproduced in ``tests/analysis/test_point_parallel.py``).  While a plane runs
with ``threads=T > 1``, torch is held at one intra-op thread in *every* thread,
including the set-up of the evaluator, so no OpenMP team is ever formed and the
parent's history does not matter.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .point_evaluator import Evaluator


class PointParallel:
    """``with PointParallel(threads) as parallel: ev = ...; parallel.attach(ev); parallel.evaluate(coefs)``.

    ``threads=None`` or 1 leaves torch's threading alone and evaluates serially.
    """

    def __init__(self, threads: int | None):
        self.threads = int(threads) if threads else 1
        self.workers = 1
        self.ev: Evaluator | None = None
        self._pool = None
        self._threads_before = None

    def __enter__(self):
        if self.threads > 1:
            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(1)
        return self

    def attach(self, ev: Evaluator) -> "PointParallel":
        self.ev = ev
        if self.threads > 1 and ev.thread_safe and ev.X.device.type == "cpu":
            self.workers = self.threads
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="terrain-points")
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
        return False

    def _one(self, coefs: np.ndarray):
        with torch.no_grad():  # grad mode is per thread
            return self.ev.evaluate(coefs)

    def evaluate(self, coefs: np.ndarray):
        if self._pool is None or len(coefs) < 2:
            return self.ev.evaluate(coefs)
        parts = [part for part in self._split(coefs) if len(part)]
        results = list(self._pool.map(self._one, [coefs[part] for part in parts]))
        losses = np.empty(len(coefs))
        accs = None if results[0][1] is None else np.empty(len(coefs))
        for part, (loss, acc) in zip(parts, results):
            losses[part] = loss
            if accs is not None:
                accs[part] = acc
        return losses, accs

    def _split(self, coefs: np.ndarray) -> list[np.ndarray]:
        """One share of the batch per worker.

        An evaluator that shares products along grid rows (``shares_rows``: the MLP evaluator's
        walks) gets whole rows, so a point's value does not depend on how its batch was cut (a plane
        fanned out over workers equals the single-worker plane bit for bit); it is given batches of
        several rows per worker to balance.  Any other evaluator gets equal contiguous shares: keeping
        rows whole there gave a batch cut from one long row to a single worker.
        """
        if not getattr(self.ev, "shares_rows", False):
            return np.array_split(np.arange(len(coefs)), self.workers)
        rows: dict[tuple, list[int]] = {}
        for index, row in enumerate(coefs):
            rows.setdefault(tuple(row[:-1]), []).append(index)
        parts: list[list[int]] = [[] for _ in range(self.workers)]
        for members in sorted(rows.values(), key=len, reverse=True):
            min(parts, key=len).extend(members)
        if max(map(len, parts)) > 2 * (len(coefs) // self.workers + 1):  # one long row: split it instead
            return np.array_split(np.arange(len(coefs)), self.workers)
        return [np.array(part, dtype=int) for part in parts]
