"""A run logged from a training script: metric rows and checkpoints along its steps.

Checkpoints of a Terrain spec model are ordinary catalog checkpoints (in the run's
experiment), so every analysis page takes them; together, in step order, they are
the run's trajectory. Hugging Face and LoRA checkpoints are kept as validated
safetensors files beside them.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.catalog.models import new_slug


class CheckpointSource(models.TextChoices):
    TERRAIN = "terrain", "Terrain spec model"
    HF = "hf", "Hugging Face model"
    LORA = "lora", "LoRA adapter"


class Run(models.Model):
    slug = models.CharField(max_length=32, unique=True, default=new_slug, editable=False)
    experiment = models.ForeignKey("catalog.Experiment", on_delete=models.CASCADE, related_name="runs")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=200)
    config = models.JSONField(default=dict, blank=True, help_text="Hyperparameters the script reported.")
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("run_detail", args=[self.slug])


class RunMetric(models.Model):
    """The metrics logged at one step (several log calls at a step merge into one row)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_rows")
    step = models.BigIntegerField()
    values = models.JSONField(default=dict)

    class Meta:
        ordering = ["run", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="runmetric_unique_step")]


def run_file_path(instance, filename):
    return f"runs/{instance.run.slug}/{filename}"


class RunCheckpoint(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="run_checkpoints")
    step = models.BigIntegerField()
    source = models.CharField(max_length=8, choices=CheckpointSource.choices)
    checkpoint = models.OneToOneField("catalog.Checkpoint", null=True, blank=True, on_delete=models.CASCADE, related_name="run_entry")
    file = models.FileField(upload_to=run_file_path, max_length=300, blank=True, help_text="Hugging Face / LoRA safetensors.")
    config = models.JSONField(default=dict, blank=True, help_text="config.json or adapter_config.json of an HF / LoRA checkpoint.")
    sha256 = models.CharField(max_length=64)
    num_parameters = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="runcheckpoint_unique_step")]
