import math

from django import forms


from webapp.catalog.models import Experiment
from webapp.catalog.visibility import Visibility

DATASETS = [("digits", "digits (scikit-learn, 8x8 images, 10 classes)"), ("moons", "moons (2-D, 2 classes)")]
OPTIMIZERS = [("sgd", "SGD with momentum"), ("adam", "Adam"), ("adamw", "AdamW")]
MAX_WIDTH = 1024
MAX_LAYERS = 4
# Each sharpness measurement is one event; more than this would flood the live chart.
MAX_SHARPNESS_MEASUREMENTS = 400
# analysis.sharpness.DEFAULT_EVERY / DEFAULT_BATCH_SIZE (not imported: that would load torch with the forms)
DEFAULT_EVERY = 50
DEFAULT_BATCH_SIZE = 256


class JobOptionsMixin(forms.Form):
    """Who sees the job and where its outputs land: common to every job kind's form."""

    visibility = forms.ChoiceField(choices=Visibility.choices, initial=Visibility.PRIVATE, required=False)
    experiment = forms.CharField(
        required=False, max_length=120, help_text="Slug of one of your experiments; empty: your sandbox."
    )

    def __init__(self, *args, user=None, **kwargs):
        self.user = user  # before super(): other mixins' __init__ may read it
        super().__init__(*args, **kwargs)

    def clean_visibility(self):
        return self.cleaned_data.get("visibility") or Visibility.PRIVATE

    def clean_experiment(self):
        slug = (self.cleaned_data.get("experiment") or "").strip()
        if not slug:
            return None
        experiment = Experiment.objects.filter(slug=slug).first()
        user = self.user
        allowed = experiment is not None and user is not None and user.is_authenticated and (
            user.is_staff or experiment.owner_id == user.pk
        )
        if not allowed:
            raise forms.ValidationError(f"no experiment {slug!r} that you own")
        return experiment

    def job_options(self) -> dict:
        return {"visibility": self.cleaned_data["visibility"], "experiment": self.cleaned_data["experiment"]}


class TrainForm(JobOptionsMixin):
    dataset = forms.ChoiceField(choices=DATASETS, initial="digits")
    hidden = forms.CharField(
        initial="64,64", max_length=64, help_text=f"Hidden widths, comma separated (1-{MAX_LAYERS} layers, each 1-{MAX_WIDTH})."
    )
    batchnorm = forms.BooleanField(required=False, initial=False)
    optimizer = forms.ChoiceField(choices=OPTIMIZERS, initial="sgd")
    lr = forms.FloatField(label="Learning rate", initial=0.05, min_value=1e-6, max_value=10.0)
    momentum = forms.FloatField(initial=0.9, min_value=0.0, max_value=0.999)
    weight_decay = forms.FloatField(initial=0.0, min_value=0.0, max_value=1.0)
    batch_size = forms.IntegerField(initial=64, min_value=1, max_value=4096)
    epochs = forms.IntegerField(initial=30, min_value=1, max_value=300)
    seed = forms.IntegerField(initial=0, min_value=0, max_value=2**31 - 1)
    snapshots = forms.IntegerField(
        initial=20, min_value=2, max_value=100, help_text="Trajectory snapshots kept for PCA landscapes."
    )
    name = forms.CharField(required=False, max_length=120, help_text="Name of the saved checkpoint.")
    track_sharpness = forms.BooleanField(
        required=False, initial=True, help_text="Top Hessian eigenvalue during training, against the 2/eta stability threshold."
    )
    sharpness_every = forms.IntegerField(
        required=False, initial=DEFAULT_EVERY, min_value=1, max_value=100_000, help_text="Measure sharpness every this many steps."
    )
    sharpness_batch = forms.IntegerField(
        required=False, initial=DEFAULT_BATCH_SIZE, min_value=16, max_value=4096,
        help_text="Fixed batch of training examples the Hessian is measured on.",
    )
    sharpness_trace = forms.BooleanField(required=False, initial=False, help_text="Also estimate the Hessian trace (Hutch++, 30 more products).")

    def clean(self):
        data = super().clean()
        every, batch_size, epochs = data.get("sharpness_every"), data.get("batch_size"), data.get("epochs")
        if data.get("track_sharpness") and data.get("dataset") and every and batch_size and epochs:
            from analysis import data as datasets

            total_steps = math.ceil(len(datasets.load(data.get("dataset"), "train")[0]) / batch_size) * epochs
            measurements = total_steps // every + 1 + (1 if total_steps % every else 0)  # the last step is measured too
            if measurements > MAX_SHARPNESS_MEASUREMENTS:
                self.add_error(
                    "sharpness_every",
                    f"{total_steps} steps measured every {every} would be {measurements} measurements; "
                    f"at most {MAX_SHARPNESS_MEASUREMENTS} (measure every {math.ceil(total_steps / (MAX_SHARPNESS_MEASUREMENTS - 2))} steps or more)",
                )
        return data

    def clean_hidden(self):
        raw = self.cleaned_data["hidden"]
        try:
            widths = [int(part) for part in str(raw).replace(" ", "").split(",") if part]
        except ValueError:
            raise forms.ValidationError("hidden widths must be whole numbers separated by commas, e.g. 64,64") from None
        if not 1 <= len(widths) <= MAX_LAYERS:
            raise forms.ValidationError(f"give between 1 and {MAX_LAYERS} hidden widths")
        if any(not 1 <= width <= MAX_WIDTH for width in widths):
            raise forms.ValidationError(f"each hidden width must be between 1 and {MAX_WIDTH}")
        return widths

    def to_params(self) -> dict:
        data = self.cleaned_data
        return {
            "dataset": data["dataset"],
            "hidden": data["hidden"],
            "batchnorm": bool(data["batchnorm"]),
            "optimizer": data["optimizer"],
            "lr": data["lr"],
            "momentum": data["momentum"] if data["momentum"] is not None else 0.9,
            "weight_decay": data["weight_decay"] or 0.0,
            "batch_size": data["batch_size"],
            "epochs": data["epochs"],
            "seed": data["seed"],
            "snapshots": data["snapshots"] or 20,
            "name": data["name"] or "",
            "track_sharpness": bool(data.get("track_sharpness")),
            "sharpness_every": data.get("sharpness_every") or DEFAULT_EVERY,
            "sharpness_batch": data.get("sharpness_batch") or DEFAULT_BATCH_SIZE,
            "sharpness_trace": bool(data.get("sharpness_trace")),
        }
