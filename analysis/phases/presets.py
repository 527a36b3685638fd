r"""Ready-made sweeps that finish on a 2-core CPU in minutes.

``PRESETS[name]`` is a raw sweep dict (what a form or the API would send);
:func:`preset` validates it.  ``PRESET_INFO[name]`` says which rule the
preset is about, what it should show, and what was measured when it was
tuned (single-threaded, ``torch.set_num_threads(1)``, on a shared 2-core
machine with a load average of 2-7, i.e. other jobs running).

``grokking`` -- weight decay x learning rate, modular addition (p = 31,
80% of the pairs for training), one-hidden-layer ReLU MLP of width 128 on
one-hot operands, AdamW, full batch, 3000 steps, 3 seeds, evaluated every 10
steps; comprehension = test accuracy reaches 90% within 4% of the budget (120
steps) of train accuracy.  Measured labels (``run_phase_presets grokking``,
the file in ``data/showcase/grokking.json.gz``; all 3 seeds agree in the
defining cells)::

    lr \ wd   0      0.3    1      2      3      5      10
    0.003      memo   grok   grok   grok   grok   memo   memo
    0.01       memo   grok   grok   grok   grok   memo   memo
    0.03       memo   grok   grok   grok   grok   memo   memo
    0.1        memo   grok   comp   comp   grok   memo   conf

All four phases of Liu et al. (2022): memorization without weight decay (test
accuracy stays near 0), grokking at moderate weight decay (t_train 20-110
steps, t_test 250-2,700), comprehension where moderate weight decay meets the
largest learning rate (test follows train within 60-100 steps: AdamW's
decoupled decay acts per step as lr x wd, so representation learning outpaces
memorisation), and confusion at the largest lr x wd (train accuracy never
reaches 90%).  Grokking sits between memorization and comprehension, as in the
paper; at weight decay 5-10 with small learning rates the runs memorise within
the budget (test accuracy 0.2-0.7, still rising), so the memorization region
reappears on the right instead of confusion filling the whole last column.

``load-temperature`` -- batch size ("temperature": smaller is hotter) x
width ("load"), digits, two-hidden-layer ReLU MLP, SGD (lr 0.05, momentum
0.9), 20 epochs, 3 seeds; meant for the loss-landscape taxonomy (default
thresholds: loss 0.1, |mc| <= 0.02, CKA 0.9; mc after weight matching).
Measured taxonomy labels::

    width \ batch  8     16    32    64    128   256   512
    4               II    I     I     I     I     I     II
    8               I     I     I     I     I     I     I
    16              I     III   III   III   I     I     I
    32              II    IV-A  IV-A  IV-B  III   I     I
    64              IV-A  IV-B  IV-B  IV-B  III   II    I
    128             II    IV-B  IV-B  IV-B  IV-B  II    II
    256             IV-B  IV-B  IV-B  IV-B  IV-B  IV-B  II

Narrow nets are poorly trained with barriers (I); wide nets trained for few
steps (large batches at a fixed epoch budget) are poorly trained but
connected (II); in between, well trained but separated by barriers (III);
wide nets at small batch are well trained and connected (IV), with similar
functions (IV-B) from width 64.  Batch 8 is too hot for lr 0.05 with momentum
at some widths (II at widths 32 and 128).  The grokking rule is not meaningful
here (with budgets of 60-3600 steps, 1% of the budget is 1-36 steps, so
grokking/comprehension flip with one evaluation).
"""

from __future__ import annotations

import copy

from .params import validate_sweep
from .sweep import SweepSpec

__all__ = ["PRESETS", "PRESET_INFO", "preset"]

PRESETS: dict[str, dict] = {
    "grokking": {
        "name": "Grokking: weight decay x learning rate (modular addition, MLP)",
        "task": {"name": "modular-addition-mlp", "p": 31, "depth": 1},
        "x": {"name": "weight_decay", "values": [0.0, 0.3, 1.0, 2.0, 3.0, 5.0, 10.0]},
        "y": {"name": "lr", "values": [3e-3, 1e-2, 3e-2, 1e-1], "scale": "log"},
        "seeds": 3,
        "budget": 3000,
        "fixed": {"width": 128, "data_fraction": 0.8, "optimizer": "adamw", "batch_size": None},
        "metrics": ["mode_connectivity", "cka", "l2_distance"],
        "eval_points": 300,
        "rules": {"grokking": {"accuracy_threshold": 0.9, "gap_fraction": 0.04}},
    },
    "load-temperature": {
        "name": "Load x temperature: width x batch size (digits, MLP)",
        "task": {"name": "digits-mlp", "depth": 2},
        "x": {"name": "batch_size", "values": [8, 16, 32, 64, 128, 256, 512], "scale": "log"},
        "y": {"name": "width", "values": [4, 8, 16, 32, 64, 128, 256], "scale": "log"},
        "seeds": 3,
        "budget": {"epochs": 20},
        "fixed": {"lr": 0.05, "optimizer": "sgd", "momentum": 0.9},
        "metrics": ["mode_connectivity", "cka", "l2_distance"],
        "rules": {"taxonomy": {"loss_threshold": 0.1, "mc_tolerance": 0.02, "cka_threshold": 0.9}},
    },
}

PRESET_INFO: dict[str, dict] = {
    "grokking": {
        "rule": "grokking",
        "title": "Grokking phase diagram (Liu et al. 2022)",
        "expect": "memorization at weight decay 0, grokking at moderate weight decay, comprehension at moderate weight "
                  "decay with the largest learning rate, confusion at the largest learning rate x weight decay",
        "runs": 84,
        "measured_run_seconds": [4.3, 98.4],  # min, max per run (3000 full-batch steps) on a machine with load 10-15
        "measured_total_seconds": 2596,  # all 28 cells incl. between-seed metrics, one process, same busy machine
    },
    "load-temperature": {
        "rule": "taxonomy",
        "title": "Loss-landscape taxonomy (Yang et al. 2021)",
        "expect": "Phases I/II for narrow or undertrained nets, III in between, IV-A/IV-B for wide nets at small batch",
        "runs": 147,
        "measured_run_seconds": [0.1, 7.3],
        "measured_total_seconds": 186,
    },
}


def preset(name: str) -> SweepSpec:
    """The validated :class:`SweepSpec` of ``PRESETS[name]``."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return validate_sweep(copy.deepcopy(PRESETS[name]))
