from webapp.jobs.kinds import JobKind, register
from webapp.training.event_types import TRAIN_EVENTS
from webapp.training.exports import train_csv
from webapp.training.params import TrainParams
from webapp.training.results import TrainResult
from webapp.training.services import training_run


class TrainKind(JobKind):
    def title_for(self, params: dict) -> str:
        widths = "x".join(str(width) for width in params.get("hidden", []))
        return f"Train MLP {widths} on {params.get('dataset')} (seed {params.get('seed')})"


TRAIN = register(
    TrainKind(
        name="train",
        label="Train a small model",
        params=TrainParams,
        run=training_run,
        gpu_capable=True,
        template="training/result_train.html",
        events=TRAIN_EVENTS,
        to_csv=train_csv,
        result=TrainResult,
        renderers=("js/training_renderers.js",),
    )
)
