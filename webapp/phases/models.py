"""A sweep is a Job of kind "sweep"; these rows hold its runs and its cells."""

from django.db import models

from webapp.jobs.models import JobStatus as RunStatus  # a run moves through the same states as a job


def run_state_path(instance, filename):
    return f"sweeps/{instance.job.slug}/{filename}"


class SweepRun(models.Model):
    """One small model: a (cell, seed) of a sweep."""

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="sweep_runs")
    i = models.PositiveSmallIntegerField()
    j = models.PositiveSmallIntegerField()
    seed = models.IntegerField()
    config = models.JSONField(help_text="analysis.phases.RunConfig.to_dict()")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    result = models.JSONField(null=True, blank=True, help_text="RunResult.to_dict(): curves and final metrics")
    state_file = models.FileField(upload_to=run_state_path, blank=True, max_length=300)
    checkpoint = models.ForeignKey("catalog.Checkpoint", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Who trains it, heartbeats and takeovers live on its JobPart (webapp.jobs.fanout); this counts training starts.
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "i", "j", "seed"]
        constraints = [models.UniqueConstraint(fields=["job", "i", "j", "seed"], name="sweeprun_unique_cell_seed")]
        indexes = [models.Index(fields=["job", "status"])]

    def __str__(self):
        return f"{self.job.slug} ({self.i},{self.j}) seed {self.seed}"


class SweepCell(models.Model):
    """A finished cell: seeds aggregated, between-seed metrics, phase labels. Written once."""

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="sweep_cells")
    i = models.PositiveSmallIntegerField()
    j = models.PositiveSmallIntegerField()
    result = models.JSONField(help_text="analysis.phases.CellResult.to_dict()")
    grokking_label = models.CharField(max_length=32, blank=True)
    taxonomy_label = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "i", "j"]
        constraints = [models.UniqueConstraint(fields=["job", "i", "j"], name="sweepcell_unique_cell")]

    def __str__(self):
        return f"{self.job.slug} cell ({self.i},{self.j})"
