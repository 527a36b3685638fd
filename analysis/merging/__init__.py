"""Model merging on plain state dicts (name -> tensor), so it applies to every model source.

One module per idea: :mod:`.average` (weighted average), :mod:`.task_arithmetic`,
:mod:`.ties`, :mod:`.dare`, :mod:`.aligned` (Git Re-Basin weight matching, then
average; MergeMany for 3+), :mod:`.orthogonal` (OrthoMerge-style rotations on
SO(n) plus additive residuals), :mod:`.kinship_greedy` (partners picked by
kinship), :mod:`.methods` (the methods by name with their knobs),
:mod:`.sweep` (a knob swept, scored per task), :mod:`.evaluation` (tasks and
scores).  The affine plane through three models, the classic picture of a merge,
is :mod:`analysis.three_model_plane` (a landscape's axes).
"""

from .aligned import AlignedMerge, aligned_average
from .average import weighted_average
from .dare import dare_merge, drop_and_rescale
from .evaluation import Task, digits_task, evaluate_state, union_task
from .kinship_greedy import GreedyMerge, kinship_greedy_merge
from .methods import METHODS, get_method, merge, prepare
from .orthogonal import orthogonal_merge, procrustes_rotation
from .state_dicts import task_vectors
from .sweep import Sweep, knob_values, sweep, sweep_prepared
from .task_arithmetic import task_arithmetic
from .ties import ties_merge, trim_top_magnitude

__all__ = [
    "AlignedMerge", "GreedyMerge", "METHODS", "Sweep", "Task", "aligned_average", "dare_merge", "digits_task",
    "drop_and_rescale", "evaluate_state", "get_method", "kinship_greedy_merge", "knob_values", "merge",
    "orthogonal_merge", "prepare", "procrustes_rotation", "sweep", "sweep_prepared", "task_arithmetic", "task_vectors", "ties_merge",
    "trim_top_magnitude", "union_task", "weighted_average",
]
