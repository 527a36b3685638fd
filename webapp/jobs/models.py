from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.catalog.models import new_slug
from webapp.catalog.visibility import Visibility


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    slug = models.CharField(max_length=32, unique=True, default=new_slug, editable=False)
    kind = models.CharField(max_length=64, db_index=True)
    title = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, help_text="Validated parameters of the job kind.")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, help_text="0..1")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE)
    experiment = models.ForeignKey("catalog.Experiment", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    queue = models.CharField(max_length=16, default="cpu")
    device = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    last_seq = models.PositiveIntegerField(default=0, help_text="seq of the newest JobEvent")
    error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"]), models.Index(fields=["visibility", "status"])]

    def __str__(self):
        return self.title or f"{self.kind} {self.slug}"

    def get_absolute_url(self):
        return reverse("result_detail", args=[self.slug])

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def channel_group(self) -> str:
        return f"job.{self.slug}"


class JobEvent(models.Model):
    """One progress event of a job; the database copy is the truth, the websocket a hint."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=32)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="jobevent_unique_seq")]

    def __str__(self):
        return f"{self.job_id}#{self.seq} {self.kind}"

    def as_message(self) -> dict:
        return {"seq": self.seq, "kind": self.kind, "payload": self.payload}


class JobPart(models.Model):
    """One piece of a fanned-out job (webapp.jobs.fanout): claimed by one worker at a time, written once.

    `attempts` doubles as the claim token: a worker holds the part while the row
    still carries the attempt number it claimed with; a takeover increments it,
    so a late writer from an earlier attempt updates nothing.
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="parts")
    index = models.PositiveIntegerField()
    stage = models.PositiveSmallIntegerField(default=0, help_text="parts of stage s+1 start once every part of stage s is done")
    payload = models.JSONField(default=dict)
    weight = models.FloatField(default=1.0, help_text="share of the job's work, for its progress")
    finaliser = models.BooleanField(default=False, help_text="the last part: assembles the job's result")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="last sign of life of the worker holding it")
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="jobpart_unique_index")]
        indexes = [models.Index(fields=["job", "stage", "status"])]

    def __str__(self):
        return f"{self.job_id} part {self.index}"
