"""Parameters of the training job (the `train` kind), declared once: form, API, schema and CLI follow."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from webapp.jobs.params import Checks, JobParams, ui

DATASETS = {"digits": "digits (scikit-learn, 8x8 images, 10 classes)", "moons": "moons (2-D, 2 classes)"}
OPTIMIZERS = {"sgd": "SGD with momentum", "adam": "Adam", "adamw": "AdamW"}
MAX_WIDTH = 1024
MAX_LAYERS = 4
# Each sharpness measurement is one event; more than this would flood the live chart.
MAX_SHARPNESS_MEASUREMENTS = 400
# analysis.sharpness.DEFAULT_EVERY / DEFAULT_BATCH_SIZE (not imported: that would load torch with the forms)
DEFAULT_EVERY = 50
DEFAULT_BATCH_SIZE = 256


def _widths(value):
    """"64, 64" (the form, older clients) or [64, 64]."""
    if not isinstance(value, str):
        return value
    try:
        return [int(part) for part in value.replace(" ", "").split(",") if part]
    except ValueError:
        raise ValueError("hidden widths must be whole numbers separated by commas, e.g. 64,64") from None


Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]


class TrainParams(JobParams):
    dataset: Literal["digits", "moons"] = Field("digits", json_schema_extra=ui(labels=DATASETS))
    hidden: Annotated[list[Width], BeforeValidator(_widths)] = Field(
        [64, 64], min_length=1, max_length=MAX_LAYERS,
        description=f"Hidden widths, comma separated (1-{MAX_LAYERS} layers, each 1-{MAX_WIDTH}).")
    batchnorm: bool = False
    optimizer: Literal["sgd", "adam", "adamw"] = Field("sgd", json_schema_extra=ui(labels=OPTIMIZERS))
    lr: float = Field(0.05, title="Learning rate", ge=1e-6, le=10.0)
    momentum: float = Field(0.9, ge=0.0, le=0.999)
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    batch_size: int = Field(64, ge=1, le=4096)
    epochs: int = Field(30, ge=1, le=300)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    snapshots: int = Field(20, ge=2, le=100, description="Trajectory snapshots kept for PCA landscapes.")
    name: str = Field("", max_length=120, description="Name of the saved checkpoint.")
    track_sharpness: bool = Field(True, description="Top Hessian eigenvalue during training, against the 2/eta stability threshold.")
    sharpness_every: int = Field(DEFAULT_EVERY, ge=1, le=100_000, description="Measure sharpness every this many steps.")
    sharpness_batch: int = Field(DEFAULT_BATCH_SIZE, ge=16, le=4096,
                                 description="Fixed batch of training examples the Hessian is measured on.")
    sharpness_trace: bool = Field(False, description="Also estimate the Hessian trace (Hutch++, 30 more products).")

    def check(self, ctx: Checks) -> None:
        if not self.track_sharpness:
            return
        from analysis import data as datasets

        total_steps = math.ceil(len(datasets.load(self.dataset, "train")[0]) / self.batch_size) * self.epochs
        every = self.sharpness_every
        measurements = total_steps // every + 1 + (1 if total_steps % every else 0)  # the last step is measured too
        if measurements > MAX_SHARPNESS_MEASUREMENTS:
            ctx.error("sharpness_every",
                      f"{total_steps} steps measured every {every} would be {measurements} measurements; "
                      f"at most {MAX_SHARPNESS_MEASUREMENTS} (measure every "
                      f"{math.ceil(total_steps / (MAX_SHARPNESS_MEASUREMENTS - 2))} steps or more)")
