"""Phase diagrams: sweeps over two hyperparameters, per-model metrics, a phase label per cell.

Modules (one idea each):

* :mod:`~analysis.phases.sweep` -- :class:`SweepSpec`, :func:`sweep_cells`,
  :func:`run_configs`, :data:`LIMITS`, :data:`AXES`;
* :mod:`~analysis.phases.params` -- :class:`SweepParams` (pydantic: every rule of a
  sweep definition, errors located by field), :func:`validate_sweep`, :class:`SweepError`;
* :mod:`~analysis.phases.tasks` -- the trainable tasks (data + model + defaults);
* :mod:`~analysis.phases.runs` -- :func:`train_run` -> :class:`RunResult`;
* :mod:`~analysis.phases.comparison` -- :func:`mode_connectivity`,
  :func:`linear_cka`, :func:`l2_distance`, :func:`between_seed_metrics`;
* :mod:`~analysis.phases.rules` -- :class:`GrokkingRule`, :class:`TaxonomyRule`
  and their tables;
* :mod:`~analysis.phases.cells` -- :func:`aggregate_cell` -> :class:`CellResult`;
* :mod:`~analysis.phases.runner` -- :func:`run_sweep`, :func:`evaluate_cell`;
* :mod:`~analysis.phases.presets` -- :data:`PRESETS`, :data:`PRESET_INFO`;
* :mod:`~analysis.phases.cost` -- :func:`estimate_cost` (rough seconds before queueing).

Typical use::

    from analysis import phases
    spec = phases.preset("grokking")              # or phases.validate_sweep({...})
    result = phases.run_sweep(spec, on_progress=print)
    result.label_grid("grokking")                 # grid[j][i], rows = y values

Pure PyTorch/NumPy: no Django, Celery or Channels imports.
"""

from .cells import CellResult, MetricSummary, aggregate_cell
from .comparison import (
    ModeConnectivity,
    PairMetrics,
    between_seed_metrics,
    compare_runs,
    l2_distance,
    linear_cka,
    mc_from_path,
    mode_connectivity,
    model_from_state,
)
from .cost import estimate_cost
from .presets import PRESET_INFO, PRESETS, preset
from .rules import (
    GROKKING_PHASES,
    GROKKING_TABLE,
    TAXONOMY_PHASES,
    TAXONOMY_TABLE,
    GrokkingLabel,
    GrokkingRule,
    TaxonomyLabel,
    TaxonomyRule,
    first_step_reaching,
    majority_label,
)
from .runner import SweepResult, evaluate_cell, run_cell, run_sweep
from .runs import RunResult, run_data, train_run
from .sweep import (
    AXES,
    LIMITS,
    METRICS,
    Axis,
    Cell,
    RunConfig,
    SweepSpec,
    run_configs,
    sweep_cells,
)
from .params import SweepError, SweepParams, validate_sweep
from .tasks import TASKS

__all__ = [
    "AXES",
    "Axis",
    "Cell",
    "CellResult",
    "GROKKING_PHASES",
    "GROKKING_TABLE",
    "GrokkingLabel",
    "GrokkingRule",
    "LIMITS",
    "METRICS",
    "MetricSummary",
    "ModeConnectivity",
    "PRESETS",
    "PRESET_INFO",
    "PairMetrics",
    "RunConfig",
    "RunResult",
    "SweepError",
    "SweepParams",
    "SweepResult",
    "SweepSpec",
    "TASKS",
    "TAXONOMY_PHASES",
    "TAXONOMY_TABLE",
    "TaxonomyLabel",
    "TaxonomyRule",
    "aggregate_cell",
    "between_seed_metrics",
    "compare_runs",
    "estimate_cost",
    "evaluate_cell",
    "first_step_reaching",
    "l2_distance",
    "linear_cka",
    "majority_label",
    "mc_from_path",
    "mode_connectivity",
    "model_from_state",
    "preset",
    "run_cell",
    "run_configs",
    "run_data",
    "run_sweep",
    "sweep_cells",
    "train_run",
    "validate_sweep",
]
