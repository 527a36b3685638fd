"""Running a whole sweep: cell by cell, resumable, with progress events.

:func:`run_sweep` is a convenience for notebooks, the CLI and a single
worker; a job system may instead distribute :func:`~analysis.phases.train_run`
over workers and call :func:`evaluate_cell` once a cell's seeds are done.

Progress events (``on_progress(event)``), all JSON-able:

* ``{"type": "run_progress", "run", "i", "j", "seed", "step", "total_steps",
  "fraction", "train_loss", "train_accuracy", "test_loss",
  "test_accuracy"}`` -- about ``progress_points`` times per run;
* ``{"type": "run", "index", "total_runs", "run": RunResult.to_dict(curves=False)}``
  after each run;
* ``{"type": "cell", "index", "total_cells", "cell": CellResult.to_dict()}``
  after each cell (the heatmap can colour the cell now);
* ``{"type": "done", "cells", "seconds"}`` at the end.

An exception raised by ``on_progress`` propagates (that is how a caller
cancels); cells finished before it are in the events already sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch

from .cells import CellResult, aggregate_cell
from .comparison import PAIR_METRICS, between_seed_metrics
from .runs import RunResult, train_run
from .params import validate_sweep
from .sweep import SweepSpec, run_configs, sweep_cells

__all__ = ["SweepResult", "evaluate_cell", "run_cell", "run_sweep", "MC_STEPS"]

MC_STEPS = 11  # points on the linear path for mc (odd: includes the midpoint)


@dataclass
class SweepResult:
    spec: SweepSpec
    cells: list[CellResult]
    seconds: float = 0.0
    runs: list[RunResult] = field(default_factory=list)  # only when run_sweep(keep_runs=True)

    def cell(self, i: int, j: int) -> CellResult | None:
        for c in self.cells:
            if c.i == i and c.j == j:
                return c
        return None

    def label_grid(self, rule: str = "grokking") -> list[list[str | None]]:
        """``grid[j][i]``: the label of the cell at y index ``j``, x index ``i`` (rows = y, as a heatmap)."""
        nx, ny = self.spec.shape
        grid: list[list[str | None]] = [[None] * nx for _ in range(ny)]
        for c in self.cells:
            grid[c.j][c.i] = c.phase.get(rule)
        return grid

    def metric_grid(self, metric: str, stat: str = "mean") -> list[list[float | None]]:
        """``grid[j][i]`` of a per-model or pair metric's ``stat`` (mean/std/min/max)."""
        nx, ny = self.spec.shape
        grid: list[list[float | None]] = [[None] * nx for _ in range(ny)]
        for c in self.cells:
            s = c.metrics.get(metric) or c.pair_metrics.get(metric)
            grid[c.j][c.i] = None if s is None else getattr(s, stat)
        return grid

    def to_dict(self) -> dict:
        return {
            "spec": self.spec.to_dict(),
            "x": self.spec.x.to_dict(),
            "y": self.spec.y.to_dict(),
            "cells": [c.to_dict() for c in self.cells],
            "labels": {"grokking": self.label_grid("grokking"), "taxonomy": self.label_grid("taxonomy")},
            "legend": {"grokking": self.spec.grokking.describe(), "taxonomy": self.spec.taxonomy.describe()},
            "seconds": self.seconds,
        }


def evaluate_cell(
    spec: SweepSpec,
    run_results: Sequence[RunResult],
    *,
    mc_steps: int = MC_STEPS,
) -> CellResult:
    """Between-seed metrics (if the sweep asks for them and states are present) + :func:`aggregate_cell`."""
    wanted = [m for m in PAIR_METRICS if m in spec.metrics]
    pairs = []
    if wanted and len(run_results) >= 2 and all(r.state is not None for r in run_results):
        pairs = between_seed_metrics(run_results, steps=mc_steps, metrics=wanted, alignment=spec.mc_alignment)
    return aggregate_cell(run_results, pairs, grokking=spec.grokking, taxonomy=spec.taxonomy)


def run_cell(
    spec: SweepSpec,
    i: int,
    j: int,
    *,
    on_progress: Callable[[dict], Any] | None = None,
    device: str | torch.device | None = None,
) -> tuple[CellResult, list[RunResult]]:
    """Train every seed of cell ``(i, j)`` and evaluate the cell."""
    configs = [c for c in run_configs(spec) if c.i == i and c.j == j]
    if not configs:
        raise ValueError(f"no cell ({i}, {j}) in a {spec.shape[0]} x {spec.shape[1]} sweep")
    runs = [train_run(c, on_progress=on_progress, device=device) for c in configs]
    return evaluate_cell(spec, runs), runs


def _throttled(on_progress, points: int):
    def forward(event: dict) -> None:
        total = max(1, int(event.get("total_steps") or 1))
        every = max(1, total // max(1, points))
        step = int(event.get("step", 0))
        if step % every == 0 or step == total:
            on_progress({**event, "type": "run_progress"})

    return forward


def run_sweep(
    spec: SweepSpec | Mapping,
    *,
    on_progress: Callable[[dict], Any] | None = None,
    completed_cells: Mapping[tuple[int, int], CellResult | Mapping] | None = None,
    device: str | torch.device | None = None,
    progress_points: int = 10,
    keep_runs: bool = False,
) -> SweepResult:
    """Run every cell of ``spec`` (a :class:`SweepSpec` or a raw dict, validated first).

    ``completed_cells`` maps ``(i, j)`` to cells already done (objects or
    their ``to_dict()``): they are not recomputed, which makes a re-run after
    an interruption resume where it stopped.  State dicts are dropped once a
    cell is evaluated unless ``keep_runs``.
    """
    t0 = time.perf_counter()
    if not isinstance(spec, SweepSpec):
        spec = validate_sweep(spec)
    emit = on_progress or (lambda event: None)
    done = {
        tuple(k): (v if isinstance(v, CellResult) else CellResult.from_dict(v)) for k, v in (completed_cells or {}).items()
    }
    forward = _throttled(emit, progress_points) if on_progress is not None else None
    cells = sweep_cells(spec)
    configs = run_configs(spec)
    by_cell: dict[tuple[int, int], list] = {}
    for c in configs:
        by_cell.setdefault((c.i, c.j), []).append(c)
    out: list[CellResult] = []
    kept: list[RunResult] = []
    run_index = 0
    for k, cell in enumerate(cells):
        if (cell.i, cell.j) in done:
            out.append(done[(cell.i, cell.j)])
            run_index += len(by_cell[(cell.i, cell.j)])
            continue
        runs = []
        for config in by_cell[(cell.i, cell.j)]:
            r = train_run(config, on_progress=forward, device=device)
            runs.append(r)
            run_index += 1
            emit({"type": "run", "index": run_index, "total_runs": len(configs), "run": r.to_dict(curves=False)})
        result = evaluate_cell(spec, runs)
        out.append(result)
        emit({"type": "cell", "index": k + 1, "total_cells": len(cells), "cell": result.to_dict()})
        if keep_runs:
            kept.extend(runs)
        else:
            for r in runs:
                r.state = None
    seconds = time.perf_counter() - t0
    emit({"type": "done", "cells": len(out), "seconds": seconds})
    return SweepResult(spec=spec, cells=out, seconds=seconds, runs=kept)
